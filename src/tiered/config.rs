//! Building a [`TieredStore`]: page size, budgets, tier directories, I/O threads, policy.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use super::backend::IoBackend;
use super::error::{SpillTier, TieredError};
use super::pressure::{PressureMonitor, PressurePolicy};
use super::replace::Replacement;
use super::store::TieredStore;
use crate::Residency;

/// Settings of a [`TieredStore`]; made by [`TieredStore::builder`].
///
/// Defaults: 64 KiB pages, a 64 MiB RAM budget, a tmpfs tier of 1 GiB in `/dev/shm`, a disk
/// tier of 16 GiB in the system temporary directory, background I/O on `io_uring` where the
/// kernel allows it (else two I/O threads), demotion from tmpfs to disk, LRU replacement, no
/// read-ahead, no pressure monitoring. Tier files grow as pages are spilled; the budgets are
/// caps, not reservations.
///
/// ```
/// use umrf::tiered::{Replacement, TieredStore};
/// use umrf::residency::CpuLocal;
/// let store = TieredStore::<CpuLocal>::builder()
///     .name("scratch")
///     .page_size(16 << 10)
///     .ram_budget(1 << 20)
///     .tmpfs("/dev/shm", 4 << 20)
///     .disk(std::env::temp_dir(), 64 << 20)
///     .io_threads(1)
///     .replacement(Replacement::Clock)
///     .read_ahead(4)
///     .build()?;
/// assert_eq!(store.stats().ram_budget, 1 << 20);
/// # Ok::<(), umrf::tiered::TieredError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TieredBuilder<R: Residency> {
    pub(crate) name: String,
    pub(crate) page_size: usize,
    pub(crate) ram_budget: u64,
    pub(crate) tiers: [(PathBuf, u64); 2],
    pub(crate) io_threads: usize,
    pub(crate) io: IoBackend,
    pub(crate) demote: bool,
    pub(crate) replacement: Replacement,
    pub(crate) read_ahead: usize,
    pub(crate) pressure: Option<(PressureMonitor, PressurePolicy, Duration)>,
    _residency: PhantomData<fn() -> R>,
}

impl<R: Residency> Default for TieredBuilder<R> {
    fn default() -> Self {
        TieredBuilder {
            name: "tiered".to_owned(),
            page_size: 64 << 10,
            ram_budget: 64 << 20,
            tiers: [
                (PathBuf::from("/dev/shm"), 1 << 30),
                (std::env::temp_dir(), 16 << 30),
            ],
            io_threads: 2,
            io: IoBackend::Auto,
            demote: true,
            replacement: Replacement::Lru,
            read_ahead: 0,
            pressure: None,
            _residency: PhantomData,
        }
    }
}

impl<R: Residency> TieredBuilder<R> {
    /// The store's name: its RAM pool's name, and the `store` label of its metrics.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Bytes per page: a multiple of 64 (a pool block), at least 64.
    pub fn page_size(mut self, bytes: usize) -> Self {
        self.page_size = bytes;
        self
    }

    /// The most bytes of pages kept in RAM (rounded down to whole pages, at least one).
    pub fn ram_budget(mut self, bytes: u64) -> Self {
        self.ram_budget = bytes;
        self
    }

    /// The tmpfs tier: a directory on a memory file system and its budget in bytes (0 leaves
    /// the tier out).
    pub fn tmpfs(mut self, dir: impl Into<PathBuf>, budget: u64) -> Self {
        self.tiers[SpillTier::Tmpfs.index()] = (dir.into(), budget);
        self
    }

    /// The disk tier: a directory and its budget in bytes (0 leaves the tier out).
    pub fn disk(mut self, dir: impl Into<PathBuf>, budget: u64) -> Self {
        self.tiers[SpillTier::Disk.index()] = (dir.into(), budget);
        self
    }

    /// Background I/O threads for spills and prefetches (of the [`IoBackend::Threads`]
    /// engine, and of [`IoBackend::Auto`] when it falls back). With 0 there is no background
    /// I/O, whatever the engine: spills are written on the caller's thread and prefetches are
    /// not made (counted as dropped).
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = threads;
        self
    }

    /// The background I/O engine (default [`IoBackend::Auto`]: `io_uring` where the kernel
    /// allows it, else threads; [`TieredStats::io_engine`](super::TieredStats::io_engine) and
    /// [`io_fallback`](super::TieredStats::io_fallback) tell which runs, and why).
    ///
    /// ```
    /// use umrf::tiered::{IoBackend, IoEngine, TieredStore};
    /// let store = TieredStore::<umrf::residency::CpuLocal>::builder().io(IoBackend::Auto).build()?;
    /// let stats = store.stats();
    /// // io_uring, or threads with the kernel's reason for refusing the ring.
    /// assert!(stats.io_engine == IoEngine::IoUring || stats.io_fallback.is_some());
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn io(mut self, backend: IoBackend) -> Self {
        self.io = backend;
        self
    }

    /// Demotion (default on): when the tmpfs tier is at its budget or full, its coldest pages
    /// are moved to the disk tier in the background, so new spills from RAM find room on tmpfs.
    /// Needs background I/O (`io_threads` above 0).
    pub fn demote(mut self, on: bool) -> Self {
        self.demote = on;
        self
    }

    /// The replacement policy (default [`Replacement::Lru`]; see docs/PERFORMANCE.md).
    pub fn replacement(mut self, policy: Replacement) -> Self {
        self.replacement = policy;
        self
    }

    /// Sequential read-ahead: after a pin of page `p`, pages `p+1 ..= p+pages` (in allocation
    /// order) are kept prefetched, refilled in batches of half the window. 0 turns it off; [`TieredStore::set_read_ahead`] changes it later.
    pub fn read_ahead(mut self, pages: usize) -> Self {
        self.read_ahead = pages;
        self
    }

    /// Watch memory pressure with `monitor`, at most once per `interval`, and lower the RAM
    /// limit below the budget as `policy` says while it lasts.
    pub fn pressure(
        mut self,
        monitor: PressureMonitor,
        policy: PressurePolicy,
        interval: Duration,
    ) -> Self {
        self.pressure = Some((monitor, policy, interval));
        self
    }

    /// Builds the store: its RAM pool of `ram_budget / page_size` blocks of residency `R`, and
    /// its I/O threads. Tier files are created on the first spill into each tier.
    ///
    /// # Errors
    /// [`TieredError::InvalidConfig`] for a page size that is not a positive multiple of 64 or
    /// a budget below one page, or [`IoBackend::IoUring`] with `io_threads(0)`;
    /// [`TieredError::Pool`] when the pool cannot be built (the residency is unavailable, or
    /// memory cannot be had); [`TieredError::IoUnavailable`] when [`IoBackend::IoUring`] was
    /// asked for and the kernel refuses the ring.
    ///
    /// ```
    /// use umrf::tiered::{IoBackend, TieredError, TieredStore};
    /// let err = TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .io(IoBackend::IoUring)
    ///     .io_threads(0)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, TieredError::InvalidConfig { .. }));
    /// ```
    pub fn build(self) -> Result<TieredStore<R>, TieredError> {
        if self.io == IoBackend::IoUring && self.io_threads == 0 {
            return Err(TieredError::InvalidConfig {
                reason: "io_threads(0) asks for I/O on the caller's thread and \
                         io(IoBackend::IoUring) for a ring: drop one of them"
                    .to_owned(),
            });
        }
        if self.page_size == 0 || !self.page_size.is_multiple_of(crate::BLOCK_GRANULE) {
            return Err(TieredError::InvalidConfig {
                reason: format!(
                    "page size {} is not a positive multiple of {}: pages are pool blocks",
                    self.page_size,
                    crate::BLOCK_GRANULE
                ),
            });
        }
        if self.ram_budget < self.page_size as u64 {
            return Err(TieredError::InvalidConfig {
                reason: format!(
                    "a RAM budget of {} bytes holds no page of {} bytes: raise it",
                    self.ram_budget, self.page_size
                ),
            });
        }
        TieredStore::from_builder(self)
    }
}
