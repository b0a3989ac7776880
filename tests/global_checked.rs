//! Checked frees of the global allocator, as a C `free` uses them: what any address is to the
//! pools, and interior pointers and double frees refused and counted, from any thread.

use umrf::residency::CpuLocal;
use umrf::{GlobalPool, PointerKind};

/// Bytes per class pool: small under Miri.
const BYTES: usize = if cfg!(miri) { 16 << 10 } else { 4 << 20 };

/// A block handed to another thread.
struct Sent(*mut u8);

// SAFETY: the pointer names a block the receiving thread frees (or tries to); the global pool
// takes frees from any thread.
unsafe impl Send for Sent {}

/// `pool.classify(ptr)`.
fn classify(pool: &GlobalPool<CpuLocal>, ptr: *const u8) -> PointerKind {
    // SAFETY: no test frees a block on another thread while it asks about that block.
    unsafe { pool.classify(ptr) }
}

/// `pool.usable_size(ptr)`.
fn usable_size(pool: &GlobalPool<CpuLocal>, ptr: *mut u8) -> Option<usize> {
    // SAFETY: as in `classify`.
    unsafe { pool.usable_size(ptr) }
}

#[test]
fn every_address_is_classified() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    assert_eq!(classify(&POOL, std::ptr::null()), PointerKind::Foreign);
    let p = POOL.allocate(100, 8);
    assert_eq!(classify(&POOL, p), PointerKind::Live { usable: 112 });
    assert_eq!(classify(&POOL, p.wrapping_add(1)), PointerKind::Interior);
    assert_eq!(classify(&POOL, p.wrapping_add(111)), PointerKind::Interior);
    let on_stack = 7u64;
    assert_eq!(
        classify(&POOL, (&raw const on_stack).cast()),
        PointerKind::Foreign
    );
    let boxed = Box::new(7u64);
    assert_eq!(
        classify(&POOL, (&raw const *boxed).cast()),
        PointerKind::Foreign
    );
    // A block never handed out yet, next to ours, is free.
    let q = POOL.allocate(100, 8);
    // SAFETY: both came from POOL and are freed once.
    unsafe {
        assert_eq!(POOL.free_checked(q), PointerKind::Live { usable: 112 });
    }
    assert_eq!(classify(&POOL, q), PointerKind::Free);
    // SAFETY: as above.
    unsafe { POOL.free(p) };
    assert_eq!(classify(&POOL, p), PointerKind::Free);
    assert_eq!(POOL.stats().invalid_frees, 0);
}

#[test]
fn large_blocks_are_classified_and_interior_frees_refused() {
    if cfg!(miri) {
        return; // a region of its own: megabytes, too slow to interpret
    }
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let big = POOL.allocate(3 << 20, 8);
    assert!(matches!(classify(&POOL, big), PointerKind::Live { usable } if usable >= 3 << 20));
    let inside = big.wrapping_add(4096 * 3);
    // SAFETY: an interior address: refused, nothing freed.
    assert_eq!(unsafe { POOL.free_checked(inside) }, PointerKind::Interior);
    assert_eq!(POOL.stats().invalid_frees, 1);
    // SAFETY: the block is still live (the interior free was refused): freed once.
    let freed = unsafe { POOL.free_checked(big) };
    assert!(matches!(freed, PointerKind::Live { .. }));
    // Its region is gone: the address is no longer ours.
    assert_eq!(classify(&POOL, big), PointerKind::Foreign);
}

#[test]
fn a_local_double_free_is_refused_counted_and_never_pushed_twice() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let p = POOL.allocate(48, 8);
    // SAFETY: p came from POOL and is freed once.
    let first = unsafe { POOL.free_checked(p) };
    assert_eq!(first, PointerKind::Live { usable: 48 });
    // SAFETY: a double free: refused, not performed.
    let second = unsafe { POOL.free_checked(p) };
    assert_eq!(second, PointerKind::Free);
    // SAFETY: an interior address: refused, not performed.
    let inside = unsafe { POOL.free_checked(p.wrapping_add(16)) };
    assert_eq!(inside, PointerKind::Interior);
    assert_eq!(POOL.stats().invalid_frees, 2);
    // Pushed once: two allocations of the class get two different blocks.
    let a = POOL.allocate(48, 8);
    let b = POOL.allocate(48, 8);
    assert_ne!(a, b);
    assert_eq!(classify(&POOL, a), PointerKind::Live { usable: 48 });
    for q in [a, b] {
        // SAFETY: both live, freed once each.
        let kind = unsafe { POOL.free_checked(q) };
        assert!(matches!(kind, PointerKind::Live { .. }));
    }
}

/// `resize` (the C `realloc`) gives the old block back recorded: a later `free` of the old
/// pointer is a double free, and refused like any other.
#[test]
fn a_free_of_a_pointer_that_resize_gave_up_is_a_double_free() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let old = POOL.allocate(48, 8);
    // SAFETY: `old` is POOL's and replaced by the result.
    let new = unsafe { POOL.resize(old, 1000, 8) };
    assert!(!new.is_null() && new != old);
    assert_eq!(classify(&POOL, old), PointerKind::Free);
    // SAFETY: a double free: refused, not performed.
    assert_eq!(unsafe { POOL.free_checked(old) }, PointerKind::Free);
    assert_eq!(POOL.stats().invalid_frees, 1);
    // The old block was pushed once: two allocations of its class get two blocks.
    let a = POOL.allocate(48, 8);
    let b = POOL.allocate(48, 8);
    assert_ne!(a, b);
    for q in [a, b, new] {
        // SAFETY: live, freed once each.
        let kind = unsafe { POOL.free_checked(q) };
        assert!(matches!(kind, PointerKind::Live { .. }));
    }
}

#[test]
fn a_remote_double_free_is_refused_before_and_after_the_block_comes_home() {
    static POOL: GlobalPool<CpuLocal> = GlobalPool::new().bytes_per_class(BYTES);
    let p = Sent(POOL.allocate(200, 8));
    let usable = usable_size(&POOL, p.0).unwrap();
    let first = std::thread::spawn(move || {
        let p = p;
        // SAFETY: the block is POOL's, owned by this thread now, freed once.
        let kind = unsafe { POOL.free_checked(p.0) };
        (kind, p)
    });
    let (kind, p) = first.join().unwrap();
    assert_eq!(kind, PointerKind::Live { usable });
    // Freed remotely, still queued for home: a second free from a third thread is refused.
    let second = std::thread::spawn(move || {
        let p = p;
        // SAFETY: refused, not performed.
        let kind = unsafe { POOL.free_checked(p.0) };
        (kind, p)
    });
    let (kind, p) = second.join().unwrap();
    assert_eq!(kind, PointerKind::Free);
    // SAFETY: refused on the home thread too.
    assert_eq!(unsafe { POOL.free_checked(p.0) }, PointerKind::Free);
    assert_eq!(POOL.stats().invalid_frees, 2);
    // Drain the queue by allocating the class until the block comes back, once.
    let n = if cfg!(miri) { 40 } else { 5000 };
    let mut got = Vec::new();
    for _ in 0..n {
        let q = POOL.allocate(200, 8);
        got.push(q);
    }
    assert_eq!(
        got.iter().filter(|&&q| q == p.0).count(),
        1,
        "the block came home once"
    );
    for q in got {
        // SAFETY: each live, freed once.
        let kind = unsafe { POOL.free_checked(q) };
        assert!(matches!(kind, PointerKind::Live { .. }));
    }
    // SAFETY: freed above: refused.
    assert_eq!(unsafe { POOL.free_checked(p.0) }, PointerKind::Free);
}
