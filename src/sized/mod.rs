//! Size classes over fixed-size pools: any request size from one lease.
//!
//! A [`SizedPool<R>`] is a family of [`Pool<R>`](crate::Pool)s, one per size class (16 B to
//! 1 MiB by default, [`classes`](class_of)) and per *row*; a thread leases a row as a
//! [`SizedLease<R>`] and allocates any size from it. The class of a request is computed, not
//! searched (a leading-zero count and two shifts), so the fast path is the single pool's:
//! a pop from the leased slot's list, no atomic read-modify-write, no lock, no system call.
//! Every class pool keeps what a pool has: residency `R`, placement for the row's CPU,
//! verification, block states, and remote frees that go home as lock-free pushes.
//!
//! Requests above the largest class (or sent there by [`ClassExhaustion::BorrowThenLarge`])
//! take the *large path*: a pool of one block of the request's size, placed and verified like
//! every pool, whose region goes back to the operating system when the block is freed. Its
//! block is a [`SharedBuffer`](crate::SharedBuffer) like any other, so a 64 MiB typed buffer can be frozen, mapped
//! for a device, or sent to another thread as a [`Capability`](crate::Capability).
//!
//! ```
//! use umrf::sized::SizedPool;
//! use umrf::residency::CpuLocal;
//!
//! let pool = SizedPool::<CpuLocal>::builder().rows(2).build()?;
//! let lease = pool.attach()?;
//! let small = lease.alloc::<u8>(24)?; // the 32-byte class
//! let mid = lease.alloc_zeroed::<f32>(1000)?; // 4000 bytes: the 4096-byte class
//! let big = lease.alloc_zeroed::<u64>(1 << 20)?; // 8 MiB: a region of its own
//! assert_eq!((small.block_size(), mid.block_size()), (32, 4096));
//! assert!(big.block_size() >= 8 << 20);
//! let stats = pool.stats();
//! assert_eq!(stats.class(24).unwrap().in_use, 1);
//! assert_eq!(stats.large.in_use(), 1);
//! # Ok::<(), umrf::Error>(())
//! ```

mod allocator;
mod classes;
mod core;
mod lease;
#[cfg(all(test, umrf_loom))]
mod loom_tests;
pub(crate) mod pagemap;
pub(crate) mod row;
mod stats;

use ::core::fmt;
use ::core::marker::PhantomData;

pub use self::classes::{CLASS_COUNT, MAX_CLASS_BYTES, MIN_CLASS_BYTES, class_bytes, class_of};
pub(crate) use self::classes::{class_for, class_index};
pub use self::core::ClassExhaustion;
pub(crate) use self::core::{Config, Core, classes_up_to};
pub use self::lease::SizedLease;
pub use self::stats::{ClassStats, LargeStats, SizedStats};

use crate::error::Error;
use crate::pool::Settings;
use crate::residency::{self, Residency};
use crate::sync::Arc;

/// Configures and builds a [`SizedPool`]. Made by [`SizedPool::builder`].
///
/// Defaults: classes up to [`MAX_CLASS_BYTES`] (1 MiB); one row per online CPU; each class
/// pool holds `bytes_per_class` = 1 MiB of blocks, at least 4 and at most 2^20 blocks;
/// pages faulted in at first touch (not at build); [`ClassExhaustion::BorrowThenLarge`]
/// with 2 classes; every class pool built at `build`.
///
/// The pool-wide setters ([`name`](Self::name), [`cpus`](Self::cpus),
/// [`topology`](Self::topology), [`prefault`](Self::prefault),
/// [`huge_pages`](Self::huge_pages), [`cxl_fallback`](Self::cxl_fallback)) apply to every
/// class pool; the geometry is [`largest_class`](Self::largest_class),
/// [`bytes_per_class`](Self::bytes_per_class), [`blocks_per_class`](Self::blocks_per_class)
/// and [`rows`](Self::rows).
///
/// ```
/// use umrf::sized::{ClassExhaustion, SizedPool};
/// use umrf::residency::CpuLocal;
/// let pool = SizedPool::<CpuLocal>::builder()
///     .name("messages")
///     .largest_class(64 << 10)
///     .bytes_per_class(256 << 10)
///     .rows(4)
///     .exhaustion(ClassExhaustion::Borrow { classes: 1 })
///     .build()?;
/// assert_eq!(pool.classes(), 44); // 16, 32, ..., 128, then 4 per doubling up to 64 KiB
/// assert_eq!(pool.rows(), 4);
/// # Ok::<(), umrf::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct SizedPoolBuilder<R: Residency> {
    settings: Settings,
    largest: usize,
    bytes_per_class: usize,
    min_blocks: usize,
    max_blocks: usize,
    rows: Option<usize>,
    exhaustion: ClassExhaustion,
    lazy: bool,
    _residency: PhantomData<fn() -> R>,
}

impl<R: Residency> fmt::Debug for SizedPoolBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SizedPoolBuilder")
            .field("residency", &R::NAME)
            .field("largest", &self.largest)
            .field("bytes_per_class", &self.bytes_per_class)
            .field("rows", &self.rows)
            .field("exhaustion", &self.exhaustion)
            .finish_non_exhaustive()
    }
}

/// The most blocks a class pool of the defaults holds.
const DEFAULT_MAX_BLOCKS: usize = 1 << 20;

impl<R: Residency> SizedPoolBuilder<R> {
    /// Names the family (for errors, stats and metrics; class pools are named
    /// `<name>/<bytes>B/row<r>`). Default: `sized-<residency>-<id>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = Some(name.into());
        self
    }

    /// The CPUs the rows serve: row `i` is placed for `cpus[i % cpus.len()]`. Default: the
    /// online CPUs in order. See [`PoolBuilder::cpus`](crate::PoolBuilder::cpus).
    pub fn cpus(mut self, cpus: impl IntoIterator<Item = u32>) -> Self {
        self.settings.cpus = Some(cpus.into_iter().collect());
        self
    }

    /// Fault every class pool's pages in at build. Default `false`: a size-class family
    /// reserves far more than a program touches.
    pub fn prefault(mut self, prefault: bool) -> Self {
        self.settings.prefault = prefault;
        self
    }

    crate::pool::backing_setters!();

    /// The largest class, in bytes (rounded up to a class; at most [`MAX_CLASS_BYTES`]).
    /// Larger requests take the large path. Default [`MAX_CLASS_BYTES`].
    pub fn largest_class(mut self, bytes: usize) -> Self {
        self.largest = bytes;
        self
    }

    /// Bytes of blocks in each class pool (each (class, row)): the pool of class `c` holds
    /// `bytes / class_bytes(c)` blocks, clamped to
    /// [`blocks_per_class`](Self::blocks_per_class)'s bounds. Default 1 MiB.
    pub fn bytes_per_class(mut self, bytes: usize) -> Self {
        self.bytes_per_class = bytes;
        self
    }

    /// The fewest and the most blocks a class pool holds. Default 4 and 2^20.
    pub fn blocks_per_class(mut self, min: usize, max: usize) -> Self {
        self.min_blocks = min;
        self.max_blocks = max;
        self
    }

    /// Number of rows: threads that can hold a lease at once. Default: one per CPU of
    /// [`cpus`](Self::cpus), else one per online CPU.
    pub fn rows(mut self, rows: usize) -> Self {
        self.rows = Some(rows);
        self
    }

    /// What an allocation does when its class is empty in the thread's row. Default
    /// [`ClassExhaustion::BorrowThenLarge`] with 2 classes.
    pub fn exhaustion(mut self, policy: ClassExhaustion) -> Self {
        self.exhaustion = policy;
        self
    }

    /// Builds each class pool when a row first allocates from that class, instead of every
    /// one at `build`. Default `false` (all built at `build`, so placement errors surface
    /// there). Lazy pools cost nothing for the classes a program never uses.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// The validated configuration.
    pub(crate) fn config(self) -> Result<Config, Error> {
        let invalid = |reason: String| Err(Error::InvalidConfig { reason });
        if self.largest == 0 || self.largest > MAX_CLASS_BYTES {
            return invalid(format!(
                "largest_class {} is out of range: give 1..={MAX_CLASS_BYTES} bytes (larger requests take the large path anyway)",
                self.largest
            ));
        }
        if self.bytes_per_class == 0 {
            return invalid("bytes_per_class is 0: each class pool needs room for blocks".into());
        }
        if self.min_blocks == 0 || self.min_blocks > self.max_blocks {
            return invalid(format!(
                "blocks_per_class({}, {}) is empty: give 1 <= min <= max",
                self.min_blocks, self.max_blocks
            ));
        }
        let rows = self
            .rows
            .or(self.settings.cpus.as_ref().map(Vec::len))
            .unwrap_or_else(crate::backing::os::online_cpus);
        if rows == 0 {
            return invalid("rows is 0: a sized pool needs at least one row".into());
        }
        if self.settings.cpus.as_ref().is_some_and(Vec::is_empty) {
            return invalid("cpus is empty: give at least one CPU for the rows to serve".into());
        }
        let mut config = Config {
            classes: classes_up_to(self.largest),
            rows,
            bytes_per_class: self.bytes_per_class,
            min_blocks: self.min_blocks,
            max_blocks: self.max_blocks,
            exhaustion: self.exhaustion,
            map_pages: false,
            cpus: Vec::new(),
            strategy: R::STRATEGY,
            residency: R::NAME,
            label: residency::describe::<R>(),
            settings: self.settings,
        };
        config.resolve_machine();
        Ok(config)
    }

    /// Reserves every class pool of every row (unless [`lazy`](Self::lazy)), placed as
    /// residency `R` asks, and returns the pool.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero or out-of-range setting, and every error of
    /// [`PoolBuilder::build`](crate::PoolBuilder::build) for the class pools. Nothing is
    /// leaked on failure.
    ///
    /// ```
    /// use umrf::{Error, sized::SizedPool, residency::CpuLocal};
    /// let err = SizedPool::<CpuLocal>::builder().largest_class(0).build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidConfig { .. }));
    /// assert!(err.to_string().contains("largest_class"));
    /// ```
    pub fn build(self) -> Result<SizedPool<R>, Error> {
        let lazy = self.lazy;
        let core = Core::new(self.config()?);
        if !lazy {
            for class in 0..core.config.classes {
                for row in 0..core.config.rows {
                    // SAFETY: the core is not shared yet: no row is claimed.
                    unsafe { core.build_cell(class, row) }?;
                }
            }
        }
        Ok(SizedPool {
            core: Arc::new(core),
            _residency: PhantomData,
        })
    }
}

/// A family of fixed-size pools of residency `R`, one per size class and row: allocation of
/// any size through a [`SizedLease`]. See the [module docs](self).
///
/// Cheap to clone and share between threads. Buffers stay valid when every handle is dropped.
///
/// ```
/// use umrf::sized::SizedPool;
/// use umrf::residency::CpuLocal;
/// let pool = SizedPool::<CpuLocal>::builder().largest_class(4096).rows(2).build()?;
/// let other = pool.clone();
/// std::thread::spawn(move || {
///     let lease = other.attach().unwrap();
///     let buf = lease.alloc_from_slice(b"hello").unwrap();
///     assert_eq!(&buf[..], b"hello");
/// })
/// .join()
/// .unwrap();
/// assert_eq!(pool.stats().allocations(), 1);
/// assert_eq!(pool.stats().in_use(), 0);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct SizedPool<R: Residency> {
    core: Arc<Core>,
    _residency: PhantomData<fn() -> R>,
}

impl<R: Residency> SizedPool<R> {
    /// A builder with the defaults (see [`SizedPoolBuilder`]).
    pub fn builder() -> SizedPoolBuilder<R> {
        SizedPoolBuilder {
            settings: Settings {
                prefault: false,
                ..Settings::default()
            },
            largest: MAX_CLASS_BYTES,
            bytes_per_class: 1 << 20,
            min_blocks: 4,
            max_blocks: DEFAULT_MAX_BLOCKS,
            rows: None,
            exhaustion: ClassExhaustion::BorrowThenLarge { classes: 2 },
            lazy: false,
            _residency: PhantomData,
        }
    }

    /// Leases the first free row for this thread.
    ///
    /// # Errors
    /// [`Error::NoFreeSlot`] when every row is leased.
    ///
    /// ```
    /// use umrf::{Error, sized::SizedPool, residency::CpuLocal};
    /// let pool = SizedPool::<CpuLocal>::builder().largest_class(64).rows(1).build()?;
    /// let lease = pool.attach()?;
    /// assert!(matches!(pool.attach(), Err(Error::NoFreeSlot { slots: 1, .. })));
    /// drop(lease);
    /// assert!(pool.attach().is_ok());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn attach(&self) -> Result<SizedLease<R>, Error> {
        let row = self.core.claim_row(0).ok_or_else(|| Error::NoFreeSlot {
            pool: crate::error::PoolName::new(&self.name()),
            slots: self.core.config.rows,
        })?;
        // SAFETY: the row was just claimed, and the claim is handed to the lease.
        Ok(unsafe { SizedLease::new(self.core.clone(), row) })
    }

    /// Counters of every class and of the large path.
    pub fn stats(&self) -> SizedStats {
        SizedStats::of(&self.core)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.core.config.classes
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.core.config.rows
    }

    /// The pool family's name (its class pools are named `<name>/<bytes>B/row<r>`).
    pub fn name(&self) -> String {
        self.core
            .config
            .settings
            .name
            .clone()
            .unwrap_or_else(|| format!("sized-{}-{}", self.core.config.label, self.core.id))
    }

    /// The residency's name, with the node for `NumaNode<N>`.
    pub fn residency_name(&self) -> &str {
        &self.core.config.label
    }
}

impl<R: Residency> Clone for SizedPool<R> {
    fn clone(&self) -> Self {
        SizedPool {
            core: self.core.clone(),
            _residency: PhantomData,
        }
    }
}

impl<R: Residency> fmt::Debug for SizedPool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SizedPool")
            .field("name", &self.name())
            .field("residency", &self.core.config.label)
            .field("classes", &self.core.config.classes)
            .field("rows", &self.core.config.rows)
            .finish_non_exhaustive()
    }
}
