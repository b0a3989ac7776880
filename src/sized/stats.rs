//! Per-class statistics of a family of class pools.

use crate::pool::PoolStats;

use super::classes::class_of;
use super::core::Core;

/// Counters of one size class, summed over its rows. Read without stopping the owners: while
/// threads work the figures may lag each other; when they are quiescent they are exact.
///
/// ```
/// use umrf::sized::SizedPool;
/// use umrf::residency::CpuLocal;
/// let pool = SizedPool::<CpuLocal>::builder().largest_class(4096).rows(1).build()?;
/// let lease = pool.attach()?;
/// let a = lease.alloc::<u8>(100)?; // class of 112 bytes
/// let class = pool.stats().class(100).cloned().unwrap();
/// assert_eq!((class.block_size, class.in_use, class.requested_bytes), (112, 1, 100));
/// assert!((class.waste() - 12.0 / 112.0).abs() < 1e-9);
/// # drop(a);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class's index.
    pub class: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// Rows whose pool of this class is built.
    pub rows_built: usize,
    /// Blocks in the built pools.
    pub capacity: u64,
    /// Blocks out now (allocated and not yet freed).
    pub in_use: u64,
    /// Blocks handed out, all time.
    pub allocations: u64,
    /// Blocks handed out that had been used before.
    pub reuses: u64,
    /// Frees on the owning thread, all time.
    pub local_frees: u64,
    /// Frees from other threads (lock-free pushes), all time.
    pub remote_frees: u64,
    /// Bytes asked for by the allocations this class's blocks served, all time (against
    /// `allocations * block_size`: the waste).
    pub requested_bytes: u64,
    /// Allocations of this class that found it empty in their row.
    pub exhausted: u64,
    /// Of those, how many a larger class served.
    pub borrowed: u64,
    /// Of those, how many the large path served.
    pub to_large: u64,
}

impl ClassStats {
    /// The share of the served block bytes that was not asked for, all time (0 with no
    /// allocations).
    pub fn waste(&self) -> f64 {
        let served = self.allocations as f64 * self.block_size as f64;
        if served == 0.0 {
            0.0
        } else {
            1.0 - self.requested_bytes as f64 / served
        }
    }

    /// The share of allocations that reused a block.
    pub fn reuse_rate(&self) -> f64 {
        if self.allocations == 0 {
            0.0
        } else {
            self.reuses as f64 / self.allocations as f64
        }
    }
}

/// Counters of the large path (requests above the largest class, or sent there by the
/// exhaustion policy): one dedicated region each, returned to the operating system on free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LargeStats {
    /// Large allocations, all time.
    pub allocations: u64,
    /// Large frees, all time.
    pub frees: u64,
    /// Bytes of the large regions live now.
    pub live_bytes: u64,
}

impl LargeStats {
    /// Large allocations live now.
    pub fn in_use(&self) -> u64 {
        self.allocations - self.frees.min(self.allocations)
    }
}

/// Counters of every class of a size-class pool, and of its large path.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SizedStats {
    /// One entry per class, smallest first.
    pub classes: Vec<ClassStats>,
    /// The large path.
    pub large: LargeStats,
    /// Rows held by a lease now.
    pub rows_claimed: usize,
}

impl SizedStats {
    pub(crate) fn of(core: &Core) -> SizedStats {
        let rows = core.config.rows;
        let classes = (0..core.config.classes)
            .map(|class| {
                let mut stats = ClassStats {
                    class,
                    block_size: super::classes::class_bytes(class),
                    rows_built: 0,
                    capacity: 0,
                    in_use: 0,
                    allocations: 0,
                    reuses: 0,
                    local_frees: 0,
                    remote_frees: 0,
                    requested_bytes: 0,
                    exhausted: 0,
                    borrowed: 0,
                    to_large: 0,
                };
                for row in 0..rows {
                    let cell = core.cell(class, row);
                    let relaxed = crate::sync::Ordering::Relaxed;
                    stats.exhausted += cell.exhausted.load(relaxed);
                    stats.borrowed += cell.borrowed.load(relaxed);
                    stats.to_large += cell.to_large.load(relaxed);
                    if let Some(built) = cell.built() {
                        let pool = PoolStats::of(built.raw.inner());
                        stats.rows_built += 1;
                        stats.capacity += pool.capacity();
                        stats.in_use += pool.in_use();
                        stats.allocations += pool.allocations();
                        stats.local_frees += pool.local_frees();
                        stats.remote_frees += pool.remote_frees();
                        stats.reuses += pool.slots.iter().map(|s| s.reuses).sum::<u64>();
                        stats.requested_bytes += built
                            .raw
                            .inner()
                            .slots
                            .iter()
                            .map(|s| s.counters().requested)
                            .sum::<u64>();
                    }
                }
                stats
            })
            .collect();
        let relaxed = crate::sync::Ordering::Relaxed;
        let allocations = core.large.allocations.load(relaxed);
        let (frees, live_bytes) = if core.config.map_pages {
            (
                core.large.frees.load(relaxed),
                core.large.live_bytes.load(relaxed),
            )
        } else {
            let name = core.large_name();
            let (live, bytes) = crate::provenance::regions()
                .iter()
                .filter(|r| r.pool.as_str() == name)
                .fold((0u64, 0u64), |(n, bytes), r| {
                    (n + 1, bytes + (r.end - r.start) as u64)
                });
            (allocations.saturating_sub(live), bytes)
        };
        SizedStats {
            classes,
            large: LargeStats {
                allocations,
                frees,
                live_bytes,
            },
            rows_claimed: core.claimed_rows(),
        }
    }

    /// The class that serves requests of `bytes` bytes, if there is one.
    pub fn class(&self, bytes: usize) -> Option<&ClassStats> {
        self.classes.get(class_of(bytes))
    }

    /// Blocks of every class out now, plus live large allocations.
    pub fn in_use(&self) -> u64 {
        self.classes.iter().map(|c| c.in_use).sum::<u64>() + self.large.in_use()
    }

    /// Bytes of the blocks out now, plus the live large regions.
    pub fn in_use_bytes(&self) -> u64 {
        self.classes
            .iter()
            .map(|c| c.in_use * c.block_size as u64)
            .sum::<u64>()
            + self.large.live_bytes
    }

    /// Allocations of every class plus large allocations, all time.
    pub fn allocations(&self) -> u64 {
        self.classes.iter().map(|c| c.allocations).sum::<u64>() + self.large.allocations
    }

    /// Allocations that found their class empty, all time.
    pub fn exhausted(&self) -> u64 {
        self.classes.iter().map(|c| c.exhausted).sum()
    }
}
