//! `provenance::owner_of` for the blocks of size-class pools: a `GlobalPool`'s (found through
//! its page map) and a `SizedPool`'s (in the registry), from the owning thread and from others.

use umrf::provenance::{self, Owner};
use umrf::residency::CpuLocal;
use umrf::sized::SizedPool;
use umrf::{BlockState, GlobalPool};

/// A small global pool: classes up to 256 bytes, 16 blocks per class pool, a row for each test
/// thread that may run at once.
static POOL: GlobalPool<CpuLocal> = GlobalPool::new()
    .rows(8)
    .largest_class(256)
    .bytes_per_class(16 * 256)
    .max_blocks_per_class(16);

/// Initialises `POOL` (several test threads race its first allocation; the losers' allocations
/// go to the system allocator).
fn ready() {
    let layout = std::alloc::Layout::from_size_align(8, 8).unwrap();
    while POOL.stats().sized.is_none() {
        let p = POOL.allocate(8, 8);
        // SAFETY: from POOL with this layout (its block or the system fallback's), freed once.
        unsafe { std::alloc::GlobalAlloc::dealloc(&POOL, p, layout) };
    }
}

fn owner(ptr: *mut u8) -> Owner {
    provenance::owner_of(ptr).expect("a block of the global pool")
}

#[test]
fn global_blocks_are_answered_with_class_row_block_and_state() {
    ready();
    let a = POOL.allocate(100, 8); // the 112-byte class
    let b = POOL.allocate(100, 8);
    let first = owner(a);
    assert!(first.pool.as_str().contains("/112B/row"), "{first:?}");
    assert_eq!(first.residency, "CpuLocal");
    assert_eq!((first.slot, first.block_size, first.offset), (0, 112, 0));
    assert_eq!(first.block_start, a as usize);
    assert_ne!(
        first.state,
        BlockState::Free,
        "a block out is reported free"
    );
    let second = owner(b.wrapping_add(111));
    assert_eq!(second.pool_id, first.pool_id);
    assert_eq!((second.block_start, second.offset), (b as usize, 111));
    assert_ne!(second.block, first.block);
    // SAFETY: from POOL, freed once.
    assert!(unsafe { POOL.free(a) });
    assert_eq!(owner(a).state, BlockState::Free);
    // SAFETY: as above.
    assert!(unsafe { POOL.free(b) });
    assert_eq!(owner(b).state, BlockState::Free);
}

#[test]
fn global_blocks_are_answered_on_other_threads_and_after_their_thread_exits() {
    /// The block, sent home with its provenance (the pointer, not its address).
    struct Sent(*mut u8);
    // SAFETY: the block is owned by the receiving thread from then on; the pool frees from any.
    unsafe impl Send for Sent {}
    let (Sent(ptr), row_pool) = std::thread::spawn(|| {
        ready();
        let p = POOL.allocate(24, 8);
        (Sent(p), owner(p).pool)
    })
    .join()
    .unwrap();
    let seen = owner(ptr);
    assert_eq!(seen.pool, row_pool);
    assert_eq!((seen.block_size, seen.block_start), (32, ptr as usize));
    assert_ne!(seen.state, BlockState::Free);
    // SAFETY: from POOL, freed once (remotely: its thread has exited).
    assert!(unsafe { POOL.free(ptr) });
    assert_eq!(owner(ptr).state, BlockState::Free);
}

#[test]
fn addresses_outside_global_blocks_are_not_answered() {
    let large = POOL.allocate(64 << 10, 8);
    assert!(!large.is_null());
    assert!(
        provenance::owner_of(large).is_none(),
        "large blocks are not answered"
    );
    let layout = std::alloc::Layout::from_size_align(64 << 10, 8).unwrap();
    // SAFETY: from POOL with this layout (a large block, or the system allocator's if another
    // test thread was initialising the pool), freed once.
    unsafe { std::alloc::GlobalAlloc::dealloc(&POOL, large, layout) };
    let boxed = Box::new(7u64);
    assert!(provenance::owner_of(&*boxed as *const u64).is_none());
    let on_stack = 0u32;
    assert!(provenance::owner_of(&raw const on_stack).is_none());
    assert!(provenance::owner_of(core::ptr::null::<u8>()).is_none());
}

#[test]
fn sized_pool_blocks_are_answered_with_their_class_pool() -> Result<(), umrf::Error> {
    let pool = SizedPool::<CpuLocal>::builder()
        .largest_class(64)
        .blocks_per_class(4, 4)
        .rows(1)
        .prefault(false)
        .build()?;
    let lease = pool.attach()?;
    let buf = lease.alloc::<u8>(20)?; // the 32-byte class
    let seen = provenance::owner_of(&buf[3..]).expect("a block of the sized pool");
    assert!(seen.pool.as_str().ends_with("/32B/row0"), "{seen:?}");
    assert_eq!((seen.slot, seen.block_size, seen.offset), (0, 32, 3));
    assert_eq!(seen.state, BlockState::Owned { slot: 0 });
    let addr = buf.as_ptr();
    drop(buf);
    assert_eq!(provenance::owner_of(addr).unwrap().state, BlockState::Free);
    Ok(())
}
