//! The store's counters (shared with its I/O workers and a metrics registry) and snapshots.

use std::sync::Arc;
use std::time::Duration;

use super::backend::{IoEngine, IoFallback};
use super::error::SpillTier;
use crate::sync::{AtomicU64, Ordering};

/// Counters of one spill tier.
#[derive(Debug, Default)]
pub(crate) struct TierCounters {
    pub(crate) pages: AtomicU64,
    pub(crate) spills: AtomicU64,
    pub(crate) promotions: AtomicU64,
    pub(crate) write_bytes: AtomicU64,
    pub(crate) read_bytes: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) write_ns: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) read_ns: AtomicU64,
    pub(crate) full: AtomicU64,
}

/// Every counter of a store: updated by the store's thread and its I/O workers, read by
/// [`TieredStore::stats`](super::TieredStore::stats) and by metrics scrapes on any thread.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) name: String,
    pub(crate) page_size: u64,
    pub(crate) ram_pages: AtomicU64,
    pub(crate) ram_limit: AtomicU64,
    pub(crate) ram_budget: u64,
    pub(crate) pins: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) prefetch_issued: AtomicU64,
    pub(crate) prefetch_hits: AtomicU64,
    pub(crate) prefetch_late: AtomicU64,
    pub(crate) prefetch_dropped: AtomicU64,
    pub(crate) clean_evictions: AtomicU64,
    pub(crate) spill_failures: AtomicU64,
    pub(crate) corrupt: AtomicU64,
    pub(crate) pressure_shrinks: AtomicU64,
    /// [`IoEngine::code`] of the engine running.
    pub(crate) io_engine: AtomicU64,
    /// The `errno` of the refused ring that made `Auto` fall back (0: none).
    pub(crate) io_fallback: AtomicU64,
    pub(crate) demotions: AtomicU64,
    pub(crate) demotion_failures: AtomicU64,
    pub(crate) tiers: [TierCounters; 2],
}

impl Counters {
    pub(crate) fn new(name: String, page_size: usize, ram_budget: u64) -> Arc<Counters> {
        Arc::new(Counters {
            name,
            page_size: page_size as u64,
            ram_pages: AtomicU64::new(0),
            ram_limit: AtomicU64::new(ram_budget),
            ram_budget,
            pins: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            prefetch_issued: AtomicU64::new(0),
            prefetch_hits: AtomicU64::new(0),
            prefetch_late: AtomicU64::new(0),
            prefetch_dropped: AtomicU64::new(0),
            clean_evictions: AtomicU64::new(0),
            spill_failures: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            pressure_shrinks: AtomicU64::new(0),
            io_engine: AtomicU64::new(IoEngine::Inline.code()),
            io_fallback: AtomicU64::new(0),
            demotions: AtomicU64::new(0),
            demotion_failures: AtomicU64::new(0),
            tiers: Default::default(),
        })
    }

    pub(crate) fn tier(&self, tier: SpillTier) -> &TierCounters {
        &self.tiers[tier.index()]
    }

    /// Records one page written into `tier`, taking `took`.
    pub(crate) fn wrote(&self, tier: SpillTier, took: Duration) {
        let t = self.tier(tier);
        t.writes.fetch_add(1, Ordering::Relaxed);
        t.write_bytes.fetch_add(self.page_size, Ordering::Relaxed);
        t.write_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Records one page read from `tier`, taking `took`.
    pub(crate) fn read(&self, tier: SpillTier, took: Duration) {
        let t = self.tier(tier);
        t.reads.fetch_add(1, Ordering::Relaxed);
        t.read_bytes.fetch_add(self.page_size, Ordering::Relaxed);
        t.read_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TieredStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let tier = |t: &TierCounters| TierStats {
            pages: get(&t.pages),
            bytes: get(&t.pages) * self.page_size,
            spills: get(&t.spills),
            promotions: get(&t.promotions),
            write_bytes: get(&t.write_bytes),
            read_bytes: get(&t.read_bytes),
            writes: get(&t.writes),
            write_time: Duration::from_nanos(get(&t.write_ns)),
            reads: get(&t.reads),
            read_time: Duration::from_nanos(get(&t.read_ns)),
            full_events: get(&t.full),
        };
        TieredStats {
            page_size: self.page_size,
            ram_pages: get(&self.ram_pages),
            ram_bytes: get(&self.ram_pages) * self.page_size,
            ram_budget: self.ram_budget,
            ram_limit: get(&self.ram_limit),
            pins: get(&self.pins),
            hits: get(&self.hits),
            misses: get(&self.misses),
            prefetch_issued: get(&self.prefetch_issued),
            prefetch_hits: get(&self.prefetch_hits),
            prefetch_late: get(&self.prefetch_late),
            prefetch_dropped: get(&self.prefetch_dropped),
            clean_evictions: get(&self.clean_evictions),
            spill_failures: get(&self.spill_failures),
            corrupt_reads: get(&self.corrupt),
            pressure_shrinks: get(&self.pressure_shrinks),
            io_engine: IoEngine::from_code(get(&self.io_engine)),
            io_fallback: match get(&self.io_fallback) {
                0 => None,
                errno => Some(IoFallback {
                    errno: errno as i32,
                }),
            },
            demotions: get(&self.demotions),
            demotion_failures: get(&self.demotion_failures),
            tmpfs: tier(&self.tiers[0]),
            disk: tier(&self.tiers[1]),
        }
    }
}

/// What one spill tier holds and has done.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TierStats {
    /// Pages stored in the tier now.
    pub pages: u64,
    /// Bytes stored in the tier now (`pages × page_size`).
    pub bytes: u64,
    /// Pages spilled into the tier (written because they left RAM dirty or new).
    pub spills: u64,
    /// Pages promoted from the tier into RAM (misses and prefetches served by it).
    pub promotions: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Page writes.
    pub writes: u64,
    /// Time spent in page writes.
    pub write_time: Duration,
    /// Page reads.
    pub reads: u64,
    /// Time spent in page reads.
    pub read_time: Duration,
    /// Times the tier's file system reported it full (`ENOSPC`): a full tmpfs takes no new
    /// slots (spills go to disk), a full disk is tried again by the next spill.
    pub full_events: u64,
}

impl TierStats {
    /// Mean time of one page read (zero before the first).
    ///
    /// ```
    /// assert_eq!(umrf::tiered::TierStats::default().mean_read_latency(), std::time::Duration::ZERO);
    /// ```
    pub fn mean_read_latency(&self) -> Duration {
        self.read_time
            .checked_div(self.reads as u32)
            .unwrap_or_default()
    }

    /// Mean time of one page write (zero before the first).
    pub fn mean_write_latency(&self) -> Duration {
        self.write_time
            .checked_div(self.writes as u32)
            .unwrap_or_default()
    }
}

/// A snapshot of a [`TieredStore`](super::TieredStore)'s counters.
///
/// Pins are counted once each: a **hit** found the page in RAM, a **miss** read it from a tier
/// on the caller's thread. A **prefetch hit** is a hit on a page that a prefetch (or the
/// sequential read-ahead) brought in before it was pinned; a **late prefetch** is a pin that
/// found its page's read still in flight and waited for it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TieredStats {
    /// Bytes per page.
    pub page_size: u64,
    /// Pages in RAM now, including those on their way to or from a tier.
    pub ram_pages: u64,
    /// Bytes in RAM now.
    pub ram_bytes: u64,
    /// The RAM budget given at build.
    pub ram_budget: u64,
    /// The RAM limit in force: the budget, or less while memory pressure lasts.
    pub ram_limit: u64,
    /// Pins (`pin` and `pin_mut`).
    pub pins: u64,
    /// Pins that found the page in RAM.
    pub hits: u64,
    /// Pins that read the page from a tier on the caller's thread.
    pub misses: u64,
    /// Page reads started by prefetches and read-ahead.
    pub prefetch_issued: u64,
    /// Hits on pages a prefetch brought in.
    pub prefetch_hits: u64,
    /// Pins that waited for their page's prefetch to finish.
    pub prefetch_late: u64,
    /// Prefetches not started because RAM had no room that could be had without waiting.
    pub prefetch_dropped: u64,
    /// Clean pages dropped from RAM without a write (a valid copy was on a tier already).
    pub clean_evictions: u64,
    /// Spills that every tier refused (the page stayed in RAM).
    pub spill_failures: u64,
    /// Reads that failed their checksum.
    pub corrupt_reads: u64,
    /// Times memory pressure lowered the RAM limit.
    pub pressure_shrinks: u64,
    /// The background I/O engine running.
    pub io_engine: IoEngine,
    /// Why [`IoBackend::Auto`](super::IoBackend::Auto) runs threads: the kernel refused the
    /// ring (`None` when it was not tried, or was set up).
    pub io_fallback: Option<IoFallback>,
    /// Pages moved from the tmpfs tier to the disk tier to make room on tmpfs (their disk copy
    /// written and checked).
    pub demotions: u64,
    /// Demotions given up (a read, checksum or write failed, or the page changed meanwhile):
    /// the page stayed on tmpfs.
    pub demotion_failures: u64,
    /// The tmpfs tier.
    pub tmpfs: TierStats,
    /// The disk tier.
    pub disk: TierStats,
}

impl TieredStats {
    /// Hits over pins (1 before the first pin).
    ///
    /// ```
    /// assert_eq!(umrf::tiered::TieredStats::default().hit_rate(), 1.0);
    /// ```
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.pins)
    }

    /// Of the pins that needed a page from a tier, the share a prefetch had in RAM already:
    /// `prefetch_hits / (prefetch_hits + prefetch_late + misses)` (1 when none needed one).
    ///
    /// ```
    /// assert_eq!(umrf::tiered::TieredStats::default().prefetch_hit_rate(), 1.0);
    /// ```
    pub fn prefetch_hit_rate(&self) -> f64 {
        ratio(
            self.prefetch_hits,
            self.prefetch_hits + self.prefetch_late + self.misses,
        )
    }

    /// The stats of one tier.
    pub fn tier(&self, tier: SpillTier) -> &TierStats {
        match tier {
            SpillTier::Tmpfs => &self.tmpfs,
            SpillTier::Disk => &self.disk,
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// A store's counters, readable from any thread: what a metrics
/// [`Registry`](crate::metrics::Registry) holds for a store
/// ([`Registry::register_tiered`](crate::metrics::Registry::register_tiered)).
///
/// ```
/// use umrf::tiered::TieredStore;
/// use umrf::residency::CpuLocal;
/// let store = TieredStore::<CpuLocal>::builder().page_size(4096).ram_budget(16 * 4096).build()?;
/// let metrics = store.metrics();
/// std::thread::spawn(move || assert_eq!(metrics.stats().pins, 0)).join().unwrap();
/// # Ok::<(), umrf::tiered::TieredError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TieredMetrics {
    pub(crate) counters: Arc<Counters>,
}

impl TieredMetrics {
    /// The store's name (the `store` label of its series).
    pub fn name(&self) -> &str {
        &self.counters.name
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TieredStats {
        self.counters.snapshot()
    }
}
