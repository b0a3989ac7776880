//! loom models of the size classes' concurrent pieces: row claims handed between threads, and
//! the class pools built lazily by whichever thread holds a row.
//!
//! Run with `RUSTFLAGS="--cfg umrf_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --lib --release
//! loom` (or `.ci/loom`). Regions come from `loom::alloc`, so a class pool built twice for one
//! cell (one of them never freed) is reported as a leak, and `PoolInner`'s loom-only `Drop`
//! asserts that every block is home when a pool's memory goes. A cell's `built` pointer is a
//! loom atomic, so a thread that found a pool without the claim's `Acquire` ordering it after
//! the builder's writes would read them as a data race.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use std::collections::BTreeSet;

use super::SizedPool;
use crate::residency::CpuLocal;

/// A family of one class (8-byte blocks, two per pool) over `rows` rows, built lazily.
fn family(rows: usize) -> SizedPool<CpuLocal> {
    SizedPool::<CpuLocal>::builder()
        .largest_class(8)
        .blocks_per_class(2, 2)
        .rows(rows)
        .prefault(false)
        .lazy(true)
        .build()
        .expect("a small sized pool builds")
}

/// Class pools built in `pool` so far.
fn pools_built(pool: &SizedPool<CpuLocal>) -> usize {
    pool.stats().classes.iter().map(|c| c.rows_built).sum()
}

/// Attaches to `pool`, allocates one block and gives both back; `None` when every row was
/// claimed. `holders[row]` counts the threads holding each row: a second holder fails the
/// model (a row handed to two threads at once).
fn take_a_row(pool: &SizedPool<CpuLocal>, holders: &[AtomicUsize; 2]) -> Option<usize> {
    let lease = pool.attach().ok()?;
    let row = lease.row();
    let before = holders[row].fetch_add(1, Ordering::AcqRel);
    assert_eq!(before, 0, "row {row} was handed to two threads at once");
    let block = lease
        .alloc::<u8>(1)
        .expect("a freshly claimed row's class pool has a free block");
    drop(block);
    holders[row].fetch_sub(1, Ordering::AcqRel);
    Some(row)
}

/// Two threads claim rows of a two-row family while the main thread gives its row back with a
/// block of it still out, which it frees afterwards (into a row another thread may hold by
/// then). No row is ever held twice; the released row is reused; each row's class pool is
/// built once, by its first holder, and a later holder finds it (ordered by the claim's
/// `Acquire` after the release's `Release`); every block comes home before the pools go.
#[test]
fn loom_rows_claimed_while_one_is_released() {
    let outcomes = crate::sync::model("loom_rows_claimed_while_one_is_released", || {
        let pool = Arc::new(family(2));
        let holders = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let lease = pool.attach().expect("the first row is free");
        assert_eq!(lease.row(), 0);
        holders[0].fetch_add(1, Ordering::AcqRel);
        let out = lease.alloc::<u8>(1).expect("a fresh class pool serves");
        let claimants: Vec<_> = (0..2)
            .map(|_| {
                let (pool, holders) = (pool.clone(), holders.clone());
                thread::spawn(move || take_a_row(&pool, &holders))
            })
            .collect();
        holders[0].fetch_sub(1, Ordering::AcqRel);
        drop(lease);
        drop(out);
        let rows: Vec<Option<usize>> = claimants.into_iter().map(|t| t.join().unwrap()).collect();
        let built = pools_built(&pool);
        let used: BTreeSet<usize> = rows.iter().flatten().copied().chain([0]).collect();
        assert_eq!(
            built,
            used.len(),
            "each row used builds its class pool once"
        );
        (rows[0], rows[1])
    });
    let got = |row| {
        outcomes
            .iter()
            .any(|&(a, b)| a == Some(row) || b == Some(row))
    };
    assert!(got(0), "the released row was never reused: {outcomes:?}");
    assert!(got(1), "no thread ever took the free row: {outcomes:?}");
    assert!(
        outcomes.iter().any(|&(a, b)| a.is_none() || b.is_none()),
        "no claimant ever found every row taken: {outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|&(a, b)| a.is_some() && a == b),
        "no row was ever handed from one claimant to the other: {outcomes:?}"
    );
}
