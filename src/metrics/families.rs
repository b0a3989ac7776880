//! The metric families umrf exports: one table, rendered per slot and per pool.

use super::text::{Kind, Value};
use crate::backing::BackingInfo;
use crate::pool::{PoolStats, SlotStats};

/// One statistic, exported as `umrf_slot_<suffix>` (labels pool, residency, slot) and, where it
/// has a pool-wide value, as `umrf_pool_<suffix>` (labels pool, residency).
pub(crate) struct Family {
    pub(crate) suffix: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    pub(crate) slot: fn(&SlotStats) -> Value,
    pub(crate) pool: Option<PoolValue>,
}

macro_rules! family {
    ($suffix:literal, $kind:ident, $help:literal, |$s:ident| $slot:expr, $pool:expr) => {
        Family {
            suffix: $suffix,
            help: $help,
            kind: Kind::$kind,
            slot: |$s: &SlotStats| $slot,
            pool: $pool,
        }
    };
}

/// Every per-slot statistic, with its pool-wide aggregate.
pub(crate) const FAMILIES: &[Family] = &[
    family!(
        "capacity_blocks",
        Gauge,
        "Blocks the pool holds (fixed at build).",
        |s| Value::Int(s.capacity),
        Some(|p| Value::Int(p.capacity()))
    ),
    family!(
        "in_use_blocks",
        Gauge,
        "Blocks owned outside the pool now: buffers and capabilities in flight.",
        |s| Value::Int(s.in_use),
        Some(|p| Value::Int(p.in_use()))
    ),
    family!(
        "free_blocks",
        Gauge,
        "Free blocks: never used, on an owner's free list, or freed remotely and not yet taken back.",
        |s| Value::Int(s.free),
        Some(|p| Value::Int(p.free()))
    ),
    family!(
        "high_water_blocks",
        Gauge,
        "The most blocks out of the owner's hands at once (for a pool: the sum over its slots).",
        |s| Value::Int(s.high_water),
        Some(|p| Value::Int(p.high_water()))
    ),
    family!(
        "remote_frees_pending_blocks",
        Gauge,
        "Remote frees pushed home and not yet taken back by the owning slot.",
        |s| Value::Int(s.remote_pending),
        Some(|p| Value::Int(p.remote_pending()))
    ),
    family!(
        "region_bytes",
        Gauge,
        "Bytes of memory reserved (whole pages, including slack after the last block).",
        |s| Value::Int(s.region_bytes as u64),
        Some(|p| Value::Int(p.slots.iter().map(|s| s.region_bytes as u64).sum()))
    ),
    family!(
        "leased",
        Gauge,
        "1 when a LocalPool leases the slot, else 0 (for a pool: the slots leased).",
        |s| Value::Int(u64::from(s.leased)),
        Some(|p| Value::Int(p.slots.iter().filter(|s| s.leased).count() as u64))
    ),
    family!(
        "allocations_total",
        Counter,
        "Blocks handed out.",
        |s| Value::Int(s.allocations),
        Some(|p| Value::Int(p.allocations()))
    ),
    family!(
        "reuses_total",
        Counter,
        "Blocks handed out that had been used and freed before.",
        |s| Value::Int(s.reuses),
        Some(|p| Value::Int(p.slots.iter().map(|s| s.reuses).sum()))
    ),
    family!(
        "local_frees_total",
        Counter,
        "Frees on the owning slot's thread.",
        |s| Value::Int(s.local_frees),
        Some(|p| Value::Int(p.local_frees()))
    ),
    family!(
        "remote_frees_total",
        Counter,
        "Frees from other threads (lock-free pushes home).",
        |s| Value::Int(s.remote_frees),
        Some(|p| Value::Int(p.remote_frees()))
    ),
    family!(
        "exhaustion_events_total",
        Counter,
        "Allocations that found their slot empty.",
        |s| Value::Int(s.exhaustion_events),
        Some(|p| Value::Int(p.exhaustion_events()))
    ),
    family!(
        "fallback_allocations_total",
        Counter,
        "Allocations served by a fallback pool because the slot was empty.",
        |s| Value::Int(s.fallback_allocations),
        Some(|p| Value::Int(p.fallback_allocations()))
    ),
    family!(
        "accept_failures_total",
        Counter,
        "Capabilities refused by a lease (Capability::accept errors).",
        |s| Value::Int(s.accept_failures),
        Some(|p| Value::Int(p.accept_failures()))
    ),
    family!(
        "reuse_ratio",
        Gauge,
        "Allocations served by a previously freed block, over all allocations (0 before any).",
        |s| Value::Float(s.reuse_rate()),
        Some(|p| Value::Float(p.reuse_rate()))
    ),
    family!(
        "external_fragmentation_ratio",
        Gauge,
        "Share of free memory that cannot serve a one-block request (page slack only; fixed-size blocks never split).",
        |s| Value::Float(s.external_fragmentation()),
        Some(|p| Value::Float(p.external_fragmentation()))
    ),
];

/// How a pool-wide figure is read from the pool's stats.
pub(crate) type PoolValue = fn(&PoolStats) -> Value;

/// The pool's geometry, exported per pool only.
pub(crate) const GEOMETRY: &[(&str, &str, PoolValue)] = &[
    ("umrf_pool_block_size_bytes", "Bytes per block.", |p| {
        Value::Int(p.block_size as u64)
    }),
    ("umrf_pool_slots", "Slots in the pool.", |p| {
        Value::Int(p.slots.len() as u64)
    }),
];

/// The backing facts of one slot's region that are labels of `umrf_slot_backing_info`.
///
/// To export a new [`BackingInfo`] fact as a label, add one entry here; a numeric fact goes in
/// [`backing_values`].
pub(crate) fn backing_labels(info: &BackingInfo) -> Vec<(&'static str, String)> {
    let nodes: Vec<String> = info.nodes.iter().map(u32::to_string).collect();
    vec![
        ("strategy", info.strategy.to_string()),
        ("mechanism", info.mechanism.to_string()),
        ("prefaulted", info.prefaulted.to_string()),
        ("nodes", nodes.join(",")),
        ("verified", info.verified.to_string()),
        ("locked", info.locked.to_string()),
        ("registered", info.registered.to_string()),
        ("emulated", info.emulated.to_string()),
    ]
}

/// The numeric backing facts of one slot's region: `(metric name, help, value)`.
pub(crate) fn backing_values(info: &BackingInfo) -> [(&'static str, &'static str, Value); 2] {
    [
        (
            "umrf_slot_page_size_bytes",
            "The page size backing the slot's region.",
            Value::Int(info.page_size as u64),
        ),
        (
            "umrf_slot_huge_page_bytes",
            "Bytes of the slot's region backed by huge pages (explicit or transparent).",
            Value::Int(info.huge_page_bytes as u64),
        ),
    ]
}
