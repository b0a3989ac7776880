//! Per-class metrics of a size-class family ([`SizedPool`](crate::sized::SizedPool) or
//! [`GlobalPool`](crate::GlobalPool)), in the same exposition format.

use crate::sized::{ClassStats, SizedStats};

use super::text::{Kind, Value, header, sample};

/// One per-class family: suffix, help, type, value.
type ClassFamily = (&'static str, &'static str, Kind, fn(&ClassStats) -> Value);

const CLASS_FAMILIES: &[ClassFamily] = &[
    (
        "capacity_blocks",
        "Blocks in the built pools of the class.",
        Kind::Gauge,
        |c| Value::Int(c.capacity),
    ),
    (
        "in_use_blocks",
        "Blocks of the class out now.",
        Kind::Gauge,
        |c| Value::Int(c.in_use),
    ),
    (
        "allocations_total",
        "Blocks of the class handed out.",
        Kind::Counter,
        |c| Value::Int(c.allocations),
    ),
    (
        "reuses_total",
        "Of those, blocks used before.",
        Kind::Counter,
        |c| Value::Int(c.reuses),
    ),
    (
        "remote_frees_total",
        "Frees of the class's blocks from other threads.",
        Kind::Counter,
        |c| Value::Int(c.remote_frees),
    ),
    (
        "requested_bytes_total",
        "Bytes asked for by the allocations the class served.",
        Kind::Counter,
        |c| Value::Int(c.requested_bytes),
    ),
    (
        "waste_ratio",
        "Share of the served block bytes not asked for.",
        Kind::Gauge,
        |c| Value::Float(c.waste()),
    ),
    (
        "exhausted_total",
        "Allocations that found the class empty in their row.",
        Kind::Counter,
        |c| Value::Int(c.exhausted),
    ),
    (
        "borrowed_total",
        "Of those, allocations a larger class served.",
        Kind::Counter,
        |c| Value::Int(c.borrowed),
    ),
    (
        "to_large_total",
        "Of those, allocations the large path served.",
        Kind::Counter,
        |c| Value::Int(c.to_large),
    ),
];

/// The per-class and large-path metrics of a size-class family named `family`, as Prometheus
/// text: `umrf_class_<suffix>{family, class_bytes}` for every class in use (built in some row),
/// and `umrf_large_{allocations_total, live_bytes}{family}`.
///
/// ```
/// use umrf::metrics::render_classes;
/// use umrf::residency::CpuLocal;
/// use umrf::sized::SizedPool;
/// let pool = SizedPool::<CpuLocal>::builder().lazy(true).rows(1).build()?;
/// let lease = pool.attach()?;
/// let _a = lease.alloc::<u8>(100)?;
/// let text = render_classes("messages", &pool.stats());
/// assert!(text.contains("# TYPE umrf_class_in_use_blocks gauge\n"));
/// assert!(text.contains("umrf_class_in_use_blocks{family=\"messages\",class_bytes=\"112\"} 1\n"));
/// assert!(text.contains("umrf_class_requested_bytes_total{family=\"messages\",class_bytes=\"112\"} 100\n"));
/// # Ok::<(), umrf::Error>(())
/// ```
pub fn render_classes(family: &str, stats: &SizedStats) -> String {
    let mut out = String::new();
    let classes: Vec<(String, &ClassStats)> = stats
        .classes
        .iter()
        .filter(|c| c.rows_built > 0)
        .map(|c| (c.block_size.to_string(), c))
        .collect();
    for &(suffix, help, kind, value) in CLASS_FAMILIES {
        let name = format!("umrf_class_{suffix}");
        header(&mut out, &name, help, kind);
        for (bytes, class) in &classes {
            sample(
                &mut out,
                &name,
                &[("family", family), ("class_bytes", bytes)],
                value(class),
            );
        }
    }
    let large: [(&str, &str, Kind, u64); 2] = [
        (
            "umrf_large_allocations_total",
            "Allocations served by a region of their own.",
            Kind::Counter,
            stats.large.allocations,
        ),
        (
            "umrf_large_live_bytes",
            "Bytes of the large regions live now.",
            Kind::Gauge,
            stats.large.live_bytes,
        ),
    ];
    for (name, help, kind, value) in large {
        header(&mut out, name, help, kind);
        sample(&mut out, name, &[("family", family)], Value::Int(value));
    }
    out
}
