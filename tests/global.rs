//! The global allocator's raw operations, used directly (not installed as the global
//! allocator: see `global_alloc.rs` for that): any size, frees from any thread, foreign
//! pointers, thread exit, realloc in place, bad input.

use std::alloc::{GlobalAlloc, Layout};

use umrf::GlobalPool;
use umrf::residency::CpuLocal;

/// Bytes per class pool: small under Miri, whose allocations of the regions and their side
/// tables are interpreted byte by byte.
const BYTES: usize = if cfg!(miri) { 16 << 10 } else { 32 << 20 };

/// A block handed to another thread.
struct Sent(*mut u8);

// SAFETY: the pointer names an allocation that the receiving thread owns from then on; the
// global pool frees from any thread.
unsafe impl Send for Sent {}

fn in_use(pool: &GlobalPool<CpuLocal>) -> u64 {
    pool.stats().sized.map_or(0, |s| s.in_use())
}

#[test]
fn mixed_sizes_round_trip_and_the_stats_balance() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let n = if cfg!(miri) { 50 } else { 20_000 };
    let mut ptrs = Vec::with_capacity(n);
    for i in 0..n {
        let size = (i * 131) % 8192 + 1;
        let p = POOL.allocate(size, 8);
        assert!(!p.is_null());
        // SAFETY: no other thread frees the block asked about during the call.
        assert!(unsafe { POOL.usable_size(p) }.unwrap() >= size);
        // SAFETY: `p` holds at least `size` bytes.
        unsafe { p.write_bytes(i as u8, size) };
        ptrs.push((p, size, i as u8));
    }
    assert_eq!(in_use(&POOL), n as u64);
    for (p, size, byte) in ptrs {
        // SAFETY: the block is live and holds `size` bytes.
        assert_eq!(unsafe { p.wrapping_add(size - 1).read() }, byte);
        // SAFETY: from POOL, freed once.
        assert!(unsafe { POOL.free(p) });
    }
    let stats = POOL.stats();
    assert_eq!(stats.sized.as_ref().unwrap().in_use(), 0);
    assert_eq!(stats.system_allocations, 0, "{stats:?}");
}

#[test]
fn foreign_pointers_are_recognised_and_left_alone() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let mine = POOL.allocate(64, 8);
    let theirs = Box::into_raw(Box::new([0u8; 64])).cast::<u8>();
    let local = 5u64;
    // SAFETY: no other thread frees the block asked about during the call.
    assert!(unsafe { POOL.usable_size(theirs) }.is_none());
    let inside = mine.wrapping_add(16); // inside a block, not its start
    // SAFETY: pointers that are not POOL's are only looked up.
    assert!(!unsafe { POOL.free(theirs) });
    // SAFETY: as above.
    assert!(!unsafe { POOL.free((&local as *const u64).cast_mut().cast()) });
    // SAFETY: as above.
    assert!(!unsafe { POOL.free(inside) });
    // SAFETY: from POOL, freed once.
    assert!(unsafe { POOL.free(mine) });
    assert_eq!(POOL.stats().foreign_frees, 3);
    // SAFETY: `theirs` is the Box's, untouched.
    drop(unsafe { Box::from_raw(theirs.cast::<[u8; 64]>()) });
}

#[test]
fn bad_requests_get_null_and_never_panic() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    assert!(POOL.allocate(0, 8).is_null());
    assert!(POOL.allocate(8, 0).is_null());
    assert!(POOL.allocate(8, 24).is_null());
    assert!(POOL.allocate(usize::MAX, 1).is_null());
    assert!(POOL.allocate(isize::MAX as usize, 4096).is_null());
    assert!(POOL.allocate(64, 1 << 20).is_null()); // over-aligned
    for align in [1, 2, 8, 16, 64, 256, 4096] {
        let p = POOL.allocate(align * 3, align);
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0, "align {align}");
        // SAFETY: from POOL.
        assert!(unsafe { POOL.free(p) });
    }
}

#[test]
fn frees_from_other_threads_go_home_as_remote_frees() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let n = if cfg!(miri) { 20 } else { 10_000 };
    let ptrs: Vec<Sent> = (0..n)
        .map(|i| Sent(POOL.allocate(i % 500 + 1, 8)))
        .collect();
    std::thread::spawn(move || {
        for Sent(p) in ptrs {
            // SAFETY: each came from POOL and is freed once, here.
            assert!(unsafe { POOL.free(p) });
        }
    })
    .join()
    .unwrap();
    let stats = POOL.stats().sized.unwrap();
    assert_eq!(stats.in_use(), 0);
    let remote: u64 = stats.classes.iter().map(|c| c.remote_frees).sum();
    assert_eq!(remote, n as u64);
    // The home row takes them back: the next allocations reuse blocks, not fresh ones.
    let again: Vec<_> = (0..n).map(|i| POOL.allocate(i % 500 + 1, 8)).collect();
    let reuses: u64 = POOL
        .stats()
        .sized
        .unwrap()
        .classes
        .iter()
        .map(|c| c.reuses)
        .sum();
    assert!(reuses >= n as u64 / 2, "{reuses}");
    for p in again {
        // SAFETY: from POOL.
        unsafe { POOL.free(p) };
    }
}

#[test]
fn an_exited_threads_row_is_reused_and_its_blocks_are_not_lost() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().rows(1).bytes_per_class(BYTES);
    let leftover = std::thread::spawn(|| {
        let kept: Vec<Sent> = (0..100).map(|_| Sent(POOL.allocate(40, 8))).collect();
        for _ in 0..100 {
            // SAFETY: from POOL, freed at once.
            unsafe { POOL.free(POOL.allocate(40, 8)) };
        }
        kept
    })
    .join()
    .unwrap();
    let stats = POOL.stats().sized.unwrap();
    assert_eq!(stats.rows_claimed, 0, "the exited thread released its row");
    assert_eq!(stats.in_use(), 100);
    let built = stats.class(40).unwrap().rows_built;
    // Many threads in turn: each takes a free row, which already has its pools.
    for _ in 0..4 {
        std::thread::spawn(|| {
            // SAFETY: from POOL.
            unsafe { POOL.free(POOL.allocate(40, 8)) };
        })
        .join()
        .unwrap();
    }
    assert_eq!(
        POOL.stats().sized.unwrap().class(40).unwrap().rows_built,
        built
    );
    for Sent(p) in leftover {
        // SAFETY: the exited thread's blocks, freed once.
        assert!(unsafe { POOL.free(p) });
    }
    assert_eq!(POOL.stats().sized.unwrap().in_use(), 0);
    assert_eq!(POOL.stats().system_allocations, 0);
}

#[test]
fn more_threads_than_rows_fall_back_to_the_system_allocator_and_are_counted() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().rows(1).bytes_per_class(BYTES);
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let p = POOL.allocate(24, 8);
                barrier.wait(); // both threads hold an allocation: one of them has no row
                // SAFETY: from POOL (or its system fallback), freed through GlobalAlloc.
                unsafe { POOL.dealloc(p, Layout::from_size_align(24, 8).unwrap()) };
            });
        }
    });
    let stats = POOL.stats();
    assert_eq!(stats.system_allocations, 1, "{stats:?}");
    assert_eq!(stats.sized.unwrap().in_use(), 0);
}

#[test]
fn realloc_stays_in_place_while_the_class_allows() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let layout = Layout::from_size_align(100, 8).unwrap();
    let at = |p: *mut u8, i: usize| {
        // SAFETY: every caller passes a live block of more than `i` bytes.
        unsafe { p.wrapping_add(i).read() }
    };
    // SAFETY: a non-zero layout.
    let p = unsafe { POOL.alloc(layout) };
    // SAFETY: the block holds 100 bytes.
    unsafe { p.write_bytes(7, 100) };
    // SAFETY: `p` is live with `layout`; each later call passes the layout it was grown to.
    let same = unsafe { POOL.realloc(p, layout, 112) };
    assert_eq!(same, p, "112 bytes fit the 112-byte block");
    // SAFETY: as above.
    let moved = unsafe { POOL.realloc(same, Layout::from_size_align(112, 8).unwrap(), 5000) };
    assert_ne!(moved, p);
    assert_eq!(at(moved, 99), 7);
    // SAFETY: as above.
    let big = unsafe { POOL.realloc(moved, Layout::from_size_align(5000, 8).unwrap(), 3 << 20) };
    assert_eq!(at(big, 99), 7);
    // SAFETY: no other thread frees the block asked about during the call.
    assert!(unsafe { POOL.usable_size(big) }.unwrap() >= 3 << 20);
    // SAFETY: as above.
    let shrunk =
        unsafe { POOL.realloc(big, Layout::from_size_align(3 << 20, 8).unwrap(), 2 << 20) };
    assert_eq!(shrunk, big, "a large region shrinks in place to half");
    // SAFETY: as above, freed once.
    unsafe { POOL.dealloc(shrunk, Layout::from_size_align(2 << 20, 8).unwrap()) };
    let stats = POOL.stats().sized.unwrap();
    assert_eq!(stats.in_use(), 0);
    assert_eq!(stats.large.allocations, 1);
}
