//! Prometheus series of [`TieredStore`](crate::tiered::TieredStore)s: per tier pages, bytes,
//! spills, promotions, I/O bytes and time; per store pins, hits, misses, prefetches and
//! demotions, and two info series: the I/O engine running and, when `io_uring` was refused, why.

use super::text::{Kind, Value, header, sample};
use crate::tiered::{SpillTier, TierStats, TieredMetrics, TieredStats};

type StoreValue = fn(&TieredStats) -> Value;
type TierValue = fn(&TierStats) -> Value;

const STORE: [(&str, &str, Kind, StoreValue); 17] = [
    (
        "umrf_tiered_ram_pages",
        "Pages in RAM, including those on their way to or from a tier.",
        Kind::Gauge,
        |s| Value::Int(s.ram_pages),
    ),
    (
        "umrf_tiered_ram_bytes",
        "Bytes of pages in RAM.",
        Kind::Gauge,
        |s| Value::Int(s.ram_bytes),
    ),
    (
        "umrf_tiered_ram_limit_bytes",
        "The RAM limit in force: the budget, or less under memory pressure.",
        Kind::Gauge,
        |s| Value::Int(s.ram_limit),
    ),
    (
        "umrf_tiered_pins_total",
        "Pins of pages.",
        Kind::Counter,
        |s| Value::Int(s.pins),
    ),
    (
        "umrf_tiered_hits_total",
        "Pins that found their page in RAM.",
        Kind::Counter,
        |s| Value::Int(s.hits),
    ),
    (
        "umrf_tiered_misses_total",
        "Pins that read their page from a tier on the caller's thread.",
        Kind::Counter,
        |s| Value::Int(s.misses),
    ),
    (
        "umrf_tiered_hit_ratio",
        "Hits over pins.",
        Kind::Gauge,
        |s| Value::Float(s.hit_rate()),
    ),
    (
        "umrf_tiered_prefetch_issued_total",
        "Page reads started by prefetches and read-ahead.",
        Kind::Counter,
        |s| Value::Int(s.prefetch_issued),
    ),
    (
        "umrf_tiered_prefetch_hits_total",
        "Hits on pages a prefetch brought in.",
        Kind::Counter,
        |s| Value::Int(s.prefetch_hits),
    ),
    (
        "umrf_tiered_prefetch_hit_ratio",
        "Of the pins that needed a page from a tier, the share a prefetch had in RAM already.",
        Kind::Gauge,
        |s| Value::Float(s.prefetch_hit_rate()),
    ),
    (
        "umrf_tiered_prefetch_late_total",
        "Pins that found their page's prefetch still in flight and waited for it.",
        Kind::Counter,
        |s| Value::Int(s.prefetch_late),
    ),
    (
        "umrf_tiered_prefetch_dropped_total",
        "Prefetches not started: no background I/O, or no RAM to be had without waiting.",
        Kind::Counter,
        |s| Value::Int(s.prefetch_dropped),
    ),
    (
        "umrf_tiered_clean_evictions_total",
        "Clean pages dropped from RAM without a write.",
        Kind::Counter,
        |s| Value::Int(s.clean_evictions),
    ),
    (
        "umrf_tiered_spill_failures_total",
        "Spills every tier refused (the page stayed in RAM).",
        Kind::Counter,
        |s| Value::Int(s.spill_failures),
    ),
    (
        "umrf_tiered_corrupt_reads_total",
        "Page reads that failed their checksum.",
        Kind::Counter,
        |s| Value::Int(s.corrupt_reads),
    ),
    (
        "umrf_tiered_demotions_total",
        "Pages moved from the tmpfs tier to the disk tier to make room on tmpfs.",
        Kind::Counter,
        |s| Value::Int(s.demotions),
    ),
    (
        "umrf_tiered_demotion_failures_total",
        "Demotions given up (the page stayed on tmpfs).",
        Kind::Counter,
        |s| Value::Int(s.demotion_failures),
    ),
];

const ENGINE: &str = "umrf_tiered_io_engine";
const FALLBACK: &str = "umrf_tiered_io_fallback";

const TIER: [(&str, &str, Kind, TierValue); 9] = [
    (
        "umrf_tiered_tier_pages",
        "Pages stored in the tier.",
        Kind::Gauge,
        |t| Value::Int(t.pages),
    ),
    (
        "umrf_tiered_tier_bytes",
        "Bytes stored in the tier.",
        Kind::Gauge,
        |t| Value::Int(t.bytes),
    ),
    (
        "umrf_tiered_tier_spills_total",
        "Pages spilled into the tier.",
        Kind::Counter,
        |t| Value::Int(t.spills),
    ),
    (
        "umrf_tiered_tier_promotions_total",
        "Pages promoted from the tier into RAM.",
        Kind::Counter,
        |t| Value::Int(t.promotions),
    ),
    (
        "umrf_tiered_tier_write_bytes_total",
        "Bytes written to the tier.",
        Kind::Counter,
        |t| Value::Int(t.write_bytes),
    ),
    (
        "umrf_tiered_tier_read_bytes_total",
        "Bytes read from the tier.",
        Kind::Counter,
        |t| Value::Int(t.read_bytes),
    ),
    (
        "umrf_tiered_tier_write_seconds_total",
        "Time spent writing pages to the tier.",
        Kind::Counter,
        |t| Value::Float(t.write_time.as_secs_f64()),
    ),
    (
        "umrf_tiered_tier_read_seconds_total",
        "Time spent reading pages from the tier.",
        Kind::Counter,
        |t| Value::Float(t.read_time.as_secs_f64()),
    ),
    (
        "umrf_tiered_tier_full_total",
        "Times the tier's file system reported it full (ENOSPC).",
        Kind::Counter,
        |t| Value::Int(t.full_events),
    ),
];

/// Appends the series of `stores` to `out`.
pub(crate) fn render(out: &mut String, stores: &[TieredMetrics]) {
    if stores.is_empty() {
        return;
    }
    let snapshots: Vec<(String, TieredStats)> = stores
        .iter()
        .map(|m| (m.name().to_owned(), m.stats()))
        .collect();
    for (name, help, kind, value) in STORE {
        header(out, name, help, kind);
        for (store, stats) in &snapshots {
            sample(out, name, &[("store", store)], value(stats));
        }
    }
    header(
        out,
        ENGINE,
        "The background I/O engine the store runs (engine: inline, threads or io_uring); always 1.",
        Kind::Gauge,
    );
    for (store, stats) in &snapshots {
        let labels = [
            ("store", store.as_str()),
            ("engine", stats.io_engine.as_str()),
        ];
        sample(out, ENGINE, &labels, Value::Int(1));
    }
    header(
        out,
        FALLBACK,
        "Present (1) when the kernel refused io_uring and the store runs threads: the reason \
         (unsupported, forbidden, locked_memory, other) and the errno.",
        Kind::Gauge,
    );
    for (store, stats) in &snapshots {
        if let Some(why) = stats.io_fallback {
            let errno = why.errno.to_string();
            let labels = [
                ("store", store.as_str()),
                ("reason", why.reason()),
                ("errno", errno.as_str()),
            ];
            sample(out, FALLBACK, &labels, Value::Int(1));
        }
    }
    for (name, help, kind, value) in TIER {
        header(out, name, help, kind);
        for (store, stats) in &snapshots {
            for tier in SpillTier::ALL {
                let labels = [("store", store.as_str()), ("tier", tier.as_str())];
                sample(out, name, &labels, value(stats.tier(tier)));
            }
        }
    }
}
