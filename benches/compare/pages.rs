//! Group 6, `pages/<pattern>`: reads at random positions of a 1 GiB buffer, one pool slot's
//! block, on one pinned thread, per read. Each page size's share of the cost is its TLB misses
//! and page walks.
//!
//! - `random_read_1g`: independent reads (the core overlaps their misses): throughput.
//! - `random_chase_1g`: each read's position depends on the value read before: latency.
//!
//! Contenders: `umrf` is a `Hugepage` pool (automatic mode: explicit huge pages where enough
//! are reserved, else transparent huge pages); `umrf_4k` a `CpuLocal` pool of base pages. What
//! each pool really got (page size, verified from `/proc/self/smaps`) is printed with the
//! table, so the numbers stand next to the pages that produced them.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Mutex;

use umrf::residency::{CpuLocal, Hugepage, Residency};

use crate::common::access::{
    CHASES, Pattern, READS, indexed_gib, one_gib, random_chase, random_reads,
};
use crate::measure::{Config, Contender, Row, measure, pin, timed};
use crate::report::Comparison;

pub const GROUP: &str = "pages";
const CASES: [&str; 2] = ["random_read_1g", "random_chase_1g"];

/// The backing each contender's pool reported in this run, for [`backing_table`].
static BACKINGS: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

/// A pool of one 1 GiB block of residency `R`, its block filled, or `None` (said on stderr)
/// where this machine cannot build it.
fn filled<R: Residency>(
    imp: &'static str,
) -> Option<(umrf::LocalPool<R>, umrf::SharedBuffer<u64, R>)> {
    let pool = match one_gib::<R>().build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("pages/{imp}: skipped: {e}");
            return None;
        }
    };
    let backing = pool.backing()[0].to_string();
    eprintln!("pages/{imp}: {backing}");
    BACKINGS.lock().unwrap().push((imp, backing));
    let lease = pool.attach_slot(0).expect("the slot of CPU 0");
    let buf = indexed_gib(&lease);
    Some((lease, buf))
}

pub fn run(config: &Config) -> Vec<Row> {
    pin(0);
    BACKINGS.lock().unwrap().clear();
    let huge = filled::<Hugepage>("umrf");
    let base = filled::<CpuLocal>("umrf_4k");
    let huge_data = huge.as_ref().map(|(_, buf)| &buf[..]);
    let base_data = base.as_ref().map(|(_, buf)| &buf[..]);
    let mut rows = Vec::new();
    let patterns: [(&str, u64, Pattern); 2] = [
        (CASES[0], READS, random_reads),
        (CASES[1], CHASES, random_chase),
    ];
    for (case, reads, pattern) in patterns {
        let mut contenders = Vec::new();
        for (imp, data) in [("umrf", huge_data), ("umrf_4k", base_data)] {
            let Some(data) = data else { continue };
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            contenders.push(
                Contender::new(case, imp, move |iters| {
                    timed(iters, || {
                        black_box(pattern(data, &mut seed));
                    })
                })
                .per_iter(reads),
            );
        }
        rows.extend(measure(config, GROUP, contenders));
    }
    rows
}

pub fn comparisons() -> Vec<Comparison> {
    CASES
        .iter()
        .map(|&case| {
            Comparison::new(GROUP, case).peers(
                &[case],
                &["umrf_4k"],
                "the same reads through a CpuLocal pool of 4 KiB pages",
            )
        })
        .collect()
}

/// What each contender's pool really got, as a markdown list.
pub fn backing_table(_rows: &[Row]) -> String {
    let mut out = String::from("Backings of this run:\n\n");
    for (imp, backing) in BACKINGS.lock().unwrap().iter() {
        let _ = writeln!(out, "- `{imp}`: {backing}");
    }
    out
}
