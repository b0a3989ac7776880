//! The global allocator's multi-threaded paths on small pools, sized to run under Miri: threads
//! racing the first allocation, frees from other threads, a thread exiting with blocks still
//! out (and frees of them racing its exit), and new threads adopting the orphaned rows.
//!
//! Each block carries a pattern of its own, written when it is handed out and checked before it
//! is freed, so a block handed out twice (or reused while still out) shows as a clobbered
//! pattern; the stats must balance at the end (nothing lost, nothing served by the system
//! allocator that should not have been).

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use umrf::GlobalPool;
use umrf::residency::CpuLocal;

/// Blocks per class pool: a few, so that rows run dry and refill, and the whole family (three
/// classes of up to 64 bytes, a few rows) is cheap to build under Miri.
const BLOCKS: usize = 8;

/// A global pool of classes up to 64 bytes, `BLOCKS` blocks per class pool, `rows` rows.
const fn small(rows: usize) -> GlobalPool<CpuLocal> {
    GlobalPool::new()
        .rows(rows)
        .largest_class(64)
        .bytes_per_class(64 * BLOCKS)
        .max_blocks_per_class(BLOCKS)
        .borrow_classes(0)
}

/// Rounds of each test: few under Miri.
const ROUNDS: usize = if cfg!(miri) { 3 } else { 200 };

/// A block handed to another thread, with the pattern it holds.
struct Sent {
    ptr: *mut u8,
    size: usize,
    tag: u8,
}

// SAFETY: the pointer names a block that the receiving thread owns from then on; the global
// pool frees from any thread.
unsafe impl Send for Sent {}

/// Allocates `size` bytes from `pool` and fills them with `tag`.
fn take(pool: &GlobalPool<CpuLocal>, size: usize, tag: u8) -> Sent {
    let ptr = pool.allocate(size, 8);
    assert!(!ptr.is_null(), "no memory for {size} bytes");
    // SAFETY: a fresh allocation of `size` bytes, owned by this thread.
    unsafe { ptr.write_bytes(tag, size) };
    Sent { ptr, size, tag }
}

/// Checks `block`'s pattern (it was not handed to anyone else meanwhile) and frees it.
fn give_back(pool: &GlobalPool<CpuLocal>, block: Sent) {
    // SAFETY: the block is live, owned by the caller, and holds `size` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr, block.size) };
    assert!(
        bytes.iter().all(|&b| b == block.tag),
        "block {:p} was clobbered while out: handed out twice?",
        block.ptr
    );
    // SAFETY: from `pool`, freed once, here.
    let ours = unsafe { pool.free(block.ptr) };
    assert!(ours, "a block of the pool was not recognised");
}

#[test]
fn threads_racing_the_first_allocation_share_one_pool() {
    static POOL: GlobalPool<CpuLocal> = small(4);
    let threads = 3;
    let start = Arc::new(Barrier::new(threads));
    let blocks: Vec<Vec<Sent>> = (0..threads)
        .map(|t| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                let first = take(&POOL, 24, t as u8 + 1);
                let second = take(&POOL, 24, t as u8 + 101);
                vec![first, second]
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let stats = POOL.stats();
    let sized = stats
        .sized
        .as_ref()
        .expect("one thread initialised the pool");
    // A thread whose allocation found another initialising fell back to the system allocator;
    // the initialising thread's own allocations are the pool's.
    assert!(sized.allocations() >= 2, "{stats:?}");
    assert_eq!(
        sized.allocations() + stats.system_allocations,
        2 * threads as u64,
        "{stats:?}"
    );
    assert_eq!(
        sized.rows_claimed, 0,
        "every exited thread released its row"
    );
    for block in blocks.into_iter().flatten() {
        give_back_any(&POOL, block);
    }
    let stats = POOL.stats();
    assert_eq!(stats.sized.unwrap().in_use(), 0);
}

/// As [`give_back`], for a block that may be the system fallback's.
fn give_back_any(pool: &GlobalPool<CpuLocal>, block: Sent) {
    use std::alloc::{GlobalAlloc, Layout};
    // SAFETY: the block is live, owned by the caller, and holds `size` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr, block.size) };
    assert!(bytes.iter().all(|&b| b == block.tag), "block clobbered");
    let layout = Layout::from_size_align(block.size, 8).unwrap();
    // SAFETY: from `pool` (a block or its system fallback) with this layout, freed once.
    unsafe { pool.dealloc(block.ptr, layout) };
}

#[test]
fn blocks_freed_remotely_while_their_thread_works_and_exits_all_come_home() {
    static POOL: GlobalPool<CpuLocal> = small(2);
    for round in 0..ROUNDS {
        let (to_freer, inbox) = mpsc::channel::<Sent>();
        // The freer frees every block it is sent: remote frees into the worker's row, racing
        // the worker's own allocations and frees, and its exit.
        let freer = thread::spawn(move || {
            let mut freed = 0;
            for block in inbox {
                give_back(&POOL, block);
                freed += 1;
            }
            freed
        });
        let worker = thread::spawn(move || {
            let mut kept = Vec::new();
            for i in 0..2 * BLOCKS {
                let size = [8, 24, 40, 64][i % 4];
                let block = take(&POOL, size, (round * 31 + i) as u8);
                match i % 3 {
                    0 => to_freer.send(block).unwrap(),
                    1 => give_back(&POOL, block),
                    _ => kept.push(block),
                }
            }
            kept // still out when the worker exits: its row is orphaned with them
        });
        let kept = worker.join().unwrap();
        let freed = freer.join().unwrap();
        assert!(freed > 0);
        // An adopter takes a row (the worker's, or the other one), allocates and frees, while
        // the exited worker's blocks are freed from here, remotely.
        let adopter = thread::spawn(|| {
            // Half a class pool: the exited worker's row may still have blocks of the class out.
            let mine: Vec<Sent> = (0..BLOCKS / 2)
                .map(|i| take(&POOL, 40, 200 + i as u8))
                .collect();
            for block in mine {
                give_back(&POOL, block);
            }
        });
        for block in kept {
            give_back(&POOL, block);
        }
        adopter.join().unwrap();
        let stats = POOL.stats();
        let sized = stats.sized.as_ref().unwrap();
        assert_eq!(
            sized.in_use(),
            0,
            "round {round}: a block was lost: {stats:?}"
        );
        assert_eq!(sized.rows_claimed, 0, "round {round}: {stats:?}");
        assert_eq!(stats.system_allocations, 0, "round {round}: {stats:?}");
    }
    // Only two rows of pools were ever built per class, however many threads came and went.
    let sized = POOL.stats().sized.unwrap();
    assert!(sized.classes.iter().all(|c| c.rows_built <= 2), "{sized:?}");
    let remote: u64 = sized.classes.iter().map(|c| c.remote_frees).sum();
    assert!(remote > 0, "{sized:?}");
}

#[test]
fn an_orphaned_row_is_adopted_with_its_blocks_coming_home_concurrently() {
    static POOL: GlobalPool<CpuLocal> = small(1);
    for round in 0..ROUNDS {
        // One row: the owner's exit orphans it, and the adopter can only get that row.
        let out: Vec<Sent> = thread::spawn(move || {
            (0..BLOCKS)
                .map(|i| take(&POOL, 16, (round + i) as u8))
                .collect()
        })
        .join()
        .unwrap();
        let ready = Arc::new(Barrier::new(2));
        let freer = {
            let ready = ready.clone();
            thread::spawn(move || {
                ready.wait();
                for block in out {
                    give_back(&POOL, block);
                }
            })
        };
        // Every block of the only row is out: the adopter's first allocations race the frees;
        // each is a block that came home, or the system allocator's when none has yet.
        let adopter = thread::spawn(move || {
            ready.wait();
            let got: Vec<Sent> = (0..BLOCKS)
                .map(|i| take(&POOL, 16, 100 + i as u8))
                .collect();
            got.into_iter().for_each(|b| give_back_any(&POOL, b));
        });
        freer.join().unwrap();
        adopter.join().unwrap();
        let stats = POOL.stats();
        let sized = stats.sized.as_ref().unwrap();
        assert_eq!(sized.in_use(), 0, "round {round}: {stats:?}");
        assert_eq!(sized.class(16).unwrap().rows_built, 1, "{stats:?}");
    }
    // After all that, the row serves all of its blocks again: none was lost.
    let before = POOL.stats().system_allocations;
    let all: Vec<Sent> = (0..BLOCKS).map(|i| take(&POOL, 16, i as u8)).collect();
    let stats = POOL.stats();
    assert_eq!(
        stats.system_allocations, before,
        "the row fell short: {stats:?}"
    );
    assert_eq!(stats.sized.unwrap().in_use(), BLOCKS as u64);
    for block in all {
        give_back(&POOL, block);
    }
    assert_eq!(POOL.stats().sized.unwrap().in_use(), 0);
}
