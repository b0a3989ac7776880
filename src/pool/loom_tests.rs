//! loom models of the pool's concurrent protocols (STYLE rule 11: models live next to the code).
//!
//! Run with `RUSTFLAGS="--cfg umrf_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --lib --release
//! loom` (or `.ci/loom`). Each model is explored over every interleaving of its threads (up to
//! the preemption bound), with loom's own checks on top of the assertions here:
//!
//! - every region is allocated through `loom::alloc` (see `crate::sync::heap`), so a pool whose
//!   memory is never given back is reported as a leak, and one given back twice panics;
//! - `PoolInner`'s loom-only `Drop` asserts that every block is home when the memory goes;
//! - a lease hand-over that does not order the new holder after the previous one shows as a
//!   block handed out twice or lost (the owner side is atomics read `Relaxed`: other threads
//!   read its stack entries for a block's state, so it can no longer be a loom `UnsafeCell`
//!   whose unordered access loom would report as a data race).

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use std::collections::BTreeSet;

use crate::residency::CpuLocal;
use crate::sync::loom_events::count;
use crate::{Error, LocalPool, Pool, SharedBuffer};

fn pool(blocks: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(blocks)
        .slots(slots)
        .prefault(false)
        .build()
        .expect("a small pool builds")
}

/// Lets the threads just spawned run first in loom's default schedule.
///
/// loom 0.7 forgets an access to an atomic when the same thread that later stores to it loads
/// it first (tokio-rs/loom#392), so a load by this thread *before* the others ran would never
/// be reordered after their stores. Yielding makes the others go first; their stores are then
/// the last accesses this thread's loads race with, and loom explores both orders.
fn give_way() {
    thread::yield_now();
}

/// Pools freed on this test's thread so far.
fn pools_freed() -> usize {
    count("pool freed")
}

/// Times an orphaning CAS found a remote free landed since its load.
fn orphan_retries() -> usize {
    count("orphan CAS retried")
}

/// Allocates one byte, or `None` if the slot is exhausted (any other error fails the model).
fn try_alloc(lease: &LocalPool<CpuLocal>) -> Option<SharedBuffer<u8, CpuLocal>> {
    match lease.alloc::<u8>(1) {
        Ok(buf) => Some(buf),
        Err(Error::Exhausted { .. }) => None,
        Err(other) => panic!("unexpected allocation error: {other}"),
    }
}

/// Asserts that `bufs` hold pairwise different blocks (no block handed out twice, I1).
fn assert_distinct(bufs: &[SharedBuffer<u8, CpuLocal>]) {
    let mut addrs: Vec<usize> = bufs.iter().map(|b| b.as_ptr() as usize).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), bufs.len(), "a block was handed out twice");
}

/// I6: two threads free blocks remotely (one CAS push each) while the owner keeps allocating,
/// which drains the remote-free stack with one swap whenever its own list runs dry. Every
/// block comes home exactly once: the owner ends up holding both, distinct, and a third
/// allocation finds the slot exhausted; the counters add up.
#[test]
fn loom_remote_frees_race_the_owners_drain() {
    let outcomes = crate::sync::model("loom_remote_frees_race_the_owners_drain", || {
        let pool = pool(2, 1);
        let lease = pool.attach_slot(0).unwrap();
        let a = lease.alloc::<u8>(1).unwrap().into_capability();
        let b = lease.alloc::<u8>(1).unwrap().into_capability();
        let ta = thread::spawn(move || drop(a));
        let tb = thread::spawn(move || drop(b));
        give_way();

        // Racing the frees: each success is a block that came home and was drained.
        let mut held: Vec<_> = (0..2).filter_map(|_| try_alloc(&lease)).collect();
        let drained_while_racing = held.len();
        ta.join().unwrap();
        tb.join().unwrap();
        // Every free has landed now: whatever is missing comes from the next drain.
        while held.len() < 2 {
            held.push(try_alloc(&lease).expect("both blocks are home after the joins"));
        }
        assert_distinct(&held);
        assert!(try_alloc(&lease).is_none(), "only two blocks exist");

        let s = lease.stats();
        assert_eq!((s.remote_frees, s.remote_pending), (2, 0));
        assert_eq!((s.allocations, s.in_use, s.free), (4, 2, 0));
        drop(held);
        let s = lease.stats();
        assert_eq!((s.local_frees, s.in_use, s.free), (2, 0, 2));
        assert_eq!(s.allocations, s.local_frees + s.remote_frees + s.in_use);
        drained_while_racing
    });
    // The model reached the drains that found nothing, one free, and both.
    assert_eq!(outcomes, [0, 1, 2].into());
}

/// The orphan protocol: the last pool handle goes (with the lease) while a remote free is in
/// flight and a buffer outlives every handle. The memory must be freed exactly once, and only
/// after the last block is home (loom's leak and double-free tracking, and PoolInner's
/// loom-only drop check). Run twice, with the freeing thread first and last in loom's default
/// schedule, so that the free lands before, inside and after the orphaning's load-to-CAS
/// window.
#[test]
fn loom_last_handle_dropped_while_a_remote_free_is_in_flight() {
    let mut outcomes = BTreeSet::new();
    for free_first in [false, true] {
        let name = format!(
            "loom_last_handle_dropped_while_a_remote_free_is_in_flight (free_first: {free_first})"
        );
        outcomes.extend(crate::sync::model(&name, move || {
            let (freed, retries) = (pools_freed(), orphan_retries());
            let pool = pool(2, 1);
            let lease = pool.attach_slot(0).unwrap();
            let cap = lease.alloc::<u8>(1).unwrap().into_capability();
            let mut kept = lease.alloc::<u8>(1).unwrap();
            let t = thread::spawn(move || drop(cap));
            if free_first {
                give_way();
            }
            drop(lease);
            drop(pool); // the last handle: the pool is orphaned with blocks out
            assert_eq!(pools_freed(), freed, "freed with a block out");
            kept[0] = 7; // the buffer's memory is still valid
            assert_eq!(kept[0], 7);
            drop(kept); // no lease: a remote free, which may be the one that frees the pool
            let freed_by_main = pools_freed() - freed;
            t.join().unwrap();
            assert_eq!(pools_freed() - freed, 1, "freed exactly once");
            (freed_by_main, orphan_retries() - retries)
        }));
    }
    // Each side freed the pool in some execution, and a free landed inside the orphaning.
    assert!(
        outcomes.contains(&(0, 0)) && outcomes.contains(&(1, 0)),
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|&(_, retried)| retried > 0),
        "{outcomes:?}"
    );
}

/// Two handles dropped on two threads while a capability is freed on a third: whichever order,
/// exactly one thread orphans the pool and exactly one frees it.
#[test]
fn loom_handles_and_a_remote_free_race_to_release_the_pool() {
    let outcomes = crate::sync::model(
        "loom_handles_and_a_remote_free_race_to_release_the_pool",
        || {
            let freed = pools_freed();
            let pool = pool(1, 2);
            let cap = {
                let lease = pool.attach_slot(1).unwrap();
                lease.alloc::<u8>(1).unwrap().into_capability()
            };
            let other = pool.clone();
            let t1 = thread::spawn(move || drop(cap));
            let t2 = thread::spawn(move || drop(other));
            give_way();
            drop(pool);
            let freed_by_main = pools_freed() - freed;
            t1.join().unwrap();
            t2.join().unwrap();
            assert_eq!(pools_freed() - freed, 1, "freed exactly once");
            freed_by_main
        },
    );
    assert_eq!(outcomes, [0, 1].into());
}

/// Two threads race `attach_slot` on one slot: at most one holds it at any time (a shared
/// counter of holders is never above one), at least one gets it, and a later holder sees the
/// owner-side state the previous one left (the blocks it hands out stay distinct).
#[test]
fn loom_two_threads_race_for_one_slot() {
    /// Holds the slot if it can; returns whether it did.
    fn use_slot(pool: &Pool<CpuLocal>, holders: &AtomicUsize) -> bool {
        let lease = match pool.attach_slot(0) {
            Ok(lease) => lease,
            Err(Error::SlotBusy { slot: 0, .. }) => return false,
            Err(other) => panic!("unexpected attach error: {other}"),
        };
        // Relaxed: the counter must not itself order the two holders' accesses, or it would
        // hide a lease hand-over that fails to (its modification order still catches overlap).
        assert_eq!(
            holders.fetch_add(1, Ordering::Relaxed),
            0,
            "two leases at once"
        );
        let a = try_alloc(&lease).expect("two blocks per slot");
        let b = try_alloc(&lease).expect("two blocks per slot");
        assert_distinct(&[a, b]); // both freed locally: one to the hot cell, one to the stack
        let again = [try_alloc(&lease).unwrap(), try_alloc(&lease).unwrap()];
        assert_distinct(&again);
        drop(again);
        holders.fetch_sub(1, Ordering::Relaxed);
        true
    }

    let outcomes = crate::sync::model("loom_two_threads_race_for_one_slot", || {
        let pool = pool(2, 1);
        let holders = Arc::new(AtomicUsize::new(0));
        let (p2, h2) = (pool.clone(), holders.clone());
        let t = thread::spawn(move || use_slot(&p2, &h2));
        give_way();
        let mine = use_slot(&pool, &holders);
        let theirs = t.join().unwrap();
        assert!(mine || theirs, "someone got the free slot");

        let winners = u64::from(mine) + u64::from(theirs);
        let s = pool.slot_stats(0).unwrap();
        assert_eq!((s.allocations, s.local_frees), (4 * winners, 4 * winners));
        assert_eq!((s.in_use, s.leased), (0, false));
        let lease = pool.attach_slot(0).expect("every lease was given back");
        let held: Vec<_> = (0..2).filter_map(|_| try_alloc(&lease)).collect();
        assert_eq!(held.len(), 2);
        assert_distinct(&held);
        (mine, theirs)
    });
    // One after the other (both win), and each losing the race to the other.
    assert_eq!(
        outcomes,
        [(false, true), (true, false), (true, true)].into()
    );
}

/// The fold of a slot's 32-bit pop count into its allocations of all time (a sequence lock):
/// a stats reader on another thread races the owner's pop that wraps the count. It reads the
/// count before that pop or after it, never one off by 2^32 (the fold's two stores seen apart).
#[test]
fn loom_a_stats_read_races_the_pop_count_fold() {
    let outcomes = crate::sync::model("loom_a_stats_read_races_the_pop_count_fold", || {
        let pool = pool(1, 1);
        let lease = pool.attach_slot(0).unwrap();
        let slot = &pool.raw().inner().slots[0];
        let words = slot.states().owner_words();
        // SAFETY: this thread holds the lease; the one block is handed out raw, pushed back,
        // popped again by the pop that wraps the count, and pushed back before the pool goes.
        let block = unsafe { slot.refill() }.expect("a fresh block");
        // SAFETY: as above.
        unsafe { slot.push_stack(block, words) };
        slot.start_pops_at(u32::MAX);
        let reader = {
            let pool = pool.clone();
            thread::spawn(move || pool.raw().inner().slots[0].counters().allocations)
        };
        // SAFETY: as above.
        assert_eq!(unsafe { slot.pop_top() }, Some(block));
        // SAFETY: as above.
        unsafe { slot.push_stack(block, words) };
        let seen = reader.join().unwrap();
        assert!(seen == 1 || seen == 2, "a reader saw {seen} allocations");
        assert_eq!(slot.counters().allocations, 2);
        drop(lease);
        seen
    });
    assert_eq!(outcomes, [1, 2].into());
}

/// A block freed remotely stays free to a reader on another thread while the owner drains it
/// onto its stack: the checked free's reading (`state_before_remote_free`) never finds it
/// owned in between, or a double free would pass for a first one.
#[test]
fn loom_a_drained_block_reads_free_throughout_the_drain() {
    let outcomes = crate::sync::model(
        "loom_a_drained_block_reads_free_throughout_the_drain",
        || {
            let pool = pool(1, 1);
            let lease = pool.attach_slot(0).unwrap();
            let cap = lease.alloc::<u8>(1).unwrap().into_capability();
            thread::spawn(move || drop(cap)).join().unwrap(); // queued as a remote free
            let reader = {
                let pool = pool.clone();
                thread::spawn(move || {
                    let slot = &pool.raw().inner().slots[0];
                    (slot.state_before_remote_free(0), slot.counters().len)
                })
            };
            let slot = &pool.raw().inner().slots[0];
            // SAFETY: this thread holds the slot's lease.
            let drained = unsafe { slot.drain_remote() };
            assert_eq!(drained, 1);
            let (seen, stack_len) = reader.join().unwrap();
            assert_eq!(seen, Some(super::BlockState::Free), "read mid-drain");
            assert_eq!(slot.state(0), Some(super::BlockState::Free));
            drop(lease);
            // The stack's length the reader saw just after: before the drain's store, or after.
            stack_len
        },
    );
    assert_eq!(outcomes, [0, 1].into());
}
