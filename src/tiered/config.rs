//! Building a [`TieredStore`]: page size, budgets, tier directories, I/O threads, policy.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{SpillTier, TieredError};
use super::pressure::{PressureMonitor, PressurePolicy};
use super::replace::Replacement;
use super::store::TieredStore;
use crate::Residency;

/// Settings of a [`TieredStore`]; made by [`TieredStore::builder`].
///
/// Defaults: 64 KiB pages, a 64 MiB RAM budget, a tmpfs tier of 1 GiB in `/dev/shm`, a disk
/// tier of 16 GiB in the system temporary directory, two I/O threads, LRU replacement, no
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

    /// Background I/O threads for spills and prefetches. With 0, spills are written on the
    /// caller's thread and prefetches are not made (counted as dropped).
    pub fn io_threads(mut self, threads: usize) -> Self {
        self.io_threads = threads;
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
    /// a budget below one page; [`TieredError::Pool`] when the pool cannot be built (the
    /// residency is unavailable, or memory cannot be had).
    pub fn build(self) -> Result<TieredStore<R>, TieredError> {
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
