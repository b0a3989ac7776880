//! Group 7, `threads/2`: two threads (CPU 0 and CPU 1) each doing `same_slot_pair/4096` at
//! the same time, each on its own state (umrf: its own slot; the allocators: their own
//! thread caches; `vec_free_list`: its own list). Reported per pair per thread, from the wall
//! time of both: with perfect scaling it equals the one-thread `same_slot_pair/4096`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::common::{Peer, VecFreeList, umrf_pool};
use crate::measure::{Config, Contender, Row, measure_at_least, two_threads};
use crate::report::Comparison;
use crate::same_slot::{self, peer_pair, umrf_pair, vec_free_list_pair};

pub const GROUP: &str = "threads";
const BYTES: usize = 4096;
/// The fewest pairs per thread in one sample: starting the threads stays a small part of it.
const MIN_PAIRS: u64 = 1_000_000;

/// Runs `pair` `iters` times on each of two threads, each with its own state from `state`.
fn both<T>(iters: u64, state: impl Fn() -> T + Sync, pair: impl Fn(&mut T) + Sync) -> Duration {
    let (state, pair) = (&state, &pair);
    let side = move || {
        let mut s = state();
        move || {
            for _ in 0..iters {
                pair(&mut s);
            }
        }
    };
    two_threads(side, side)
}

pub fn run(config: &Config) -> Vec<Row> {
    let pool = umrf_pool(BYTES, 64, 2);
    let pool = &pool;
    let mut contenders = vec![
        Contender::new("2", "umrf", move |iters| {
            both(
                iters,
                || pool.attach().expect("a free slot"),
                |lease| umrf_pair(lease, BYTES),
            )
        }),
        Contender::new("2", "vec_free_list", |iters| {
            both(iters, || VecFreeList::new(BYTES, 64), vec_free_list_pair)
        }),
    ];
    for peer in Peer::ALL {
        contenders.push(Contender::new("2", peer.name(), move |iters| {
            both(iters, || (), |_| peer_pair(peer, BYTES))
        }));
    }
    measure_at_least(config, GROUP, contenders, MIN_PAIRS)
}

pub fn comparisons() -> Vec<Comparison> {
    vec![
        Comparison::new(GROUP, "2")
            .peers(
                &["2"],
                &["system", "mimalloc", "jemalloc"],
                "the fastest of system, mimalloc and jemalloc, two threads at once",
            )
            .limit("2", "vec_free_list"),
    ]
}

/// Scaling: each implementation's two-thread time per pair over its one-thread time (1.00 is
/// perfect scaling), from the same run.
pub fn scaling_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| impl | 1 thread ns/pair | 2 threads ns/pair/thread | 2 threads ÷ 1 thread |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for two in rows.iter().filter(|r| r.group == GROUP) {
        let one = rows
            .iter()
            .find(|r| r.group == same_slot::GROUP && r.case == "4096" && r.imp == two.imp);
        if let Some(one) = one {
            let _ = writeln!(
                out,
                "| `{}` | {:.2} | {:.2} | {:.2} |",
                two.imp,
                one.median_ns,
                two.median_ns,
                two.median_ns / one.median_ns
            );
        }
    }
    out
}
