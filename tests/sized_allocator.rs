//! `allocator_api2::alloc::Allocator` on a size-class lease: `allocator_api2::vec::Vec`,
//! `hashbrown::HashMap`, grow and shrink, zero-sized and over-aligned layouts.

use allocator_api2::alloc::{AllocError, Allocator};
use allocator_api2::vec::Vec;
use core::alloc::Layout;
use umrf::residency::CpuLocal;
use umrf::sized::SizedPool;

fn pool() -> SizedPool<CpuLocal> {
    SizedPool::<CpuLocal>::builder()
        .lazy(true)
        .bytes_per_class(256 << 10)
        .rows(1)
        .build()
        .unwrap()
}

#[test]
fn a_vec_grows_through_the_classes_into_the_large_path_and_frees_everything() {
    let pool = pool();
    let lease = pool.attach().unwrap();
    let n: u64 = if cfg!(miri) { 3000 } else { 300_000 }; // 2.4 MB: past the largest class
    let mut v: Vec<u64, _> = Vec::new_in(&lease);
    for i in 0..n {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), n * (n - 1) / 2);
    if !cfg!(miri) {
        assert_eq!(pool.stats().large.in_use(), 1);
    }
    v.truncate(10);
    v.shrink_to_fit(); // a new small block, the contents copied
    assert_eq!(&v[..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(pool.stats().large.in_use(), 0);
    drop(v);
    assert_eq!(pool.stats().in_use(), 0);
}

#[test]
fn a_hashbrown_map_runs_on_the_lease() {
    let pool = pool();
    let lease = pool.attach().unwrap();
    let n = if cfg!(miri) { 200 } else { 50_000 };
    let mut map = hashbrown::HashMap::new_in(&lease);
    for i in 0..n {
        let mut value = Vec::with_capacity_in(i % 40 + 1, &lease);
        value.extend(core::iter::repeat_n(i as u8, i % 40 + 1));
        map.insert(i, value);
    }
    for i in (0..n).step_by(2) {
        map.remove(&i);
    }
    for i in (0..n).step_by(2) {
        let mut value = Vec::with_capacity_in(i % 40 + 1, &lease); // reuses the freed blocks
        value.extend(core::iter::repeat_n(i as u8, i % 40 + 1));
        map.insert(i, value);
    }
    for i in (0..n).step_by(2) {
        map.remove(&i);
    }
    assert_eq!(map.len(), n / 2);
    assert!(
        map.iter()
            .all(|(k, v)| v.len() == k % 40 + 1 && v[0] == *k as u8)
    );
    let stats = pool.stats();
    assert!(stats.in_use() as usize >= n / 2);
    drop(map);
    let stats = pool.stats();
    assert_eq!(stats.in_use(), 0);
    assert!(stats.classes.iter().any(|c| c.reuses > 0));
}

#[test]
fn grow_and_shrink_stay_in_place_while_the_block_holds_the_new_size() {
    let pool = pool();
    let lease = pool.attach().unwrap();
    let alloc = &lease;
    let small = Layout::from_size_align(20, 8).unwrap();
    let block = alloc.allocate(small).unwrap();
    assert_eq!(block.len(), 32); // the whole block is usable
    let ptr = block.cast::<u8>();
    let l = |size| Layout::from_size_align(size, 8).unwrap();
    let byte_at = |p: core::ptr::NonNull<[u8]>, i: usize| {
        // SAFETY: every caller passes a live block of more than `i` bytes.
        unsafe { p.cast::<u8>().as_ptr().wrapping_add(i).read() }
    };
    // SAFETY: the block holds 20 bytes.
    unsafe { ptr.as_ptr().write_bytes(3, 20) };
    // SAFETY: `ptr` is live with `small`; each later call passes the layout it was resized to.
    let same = unsafe { alloc.grow(ptr, small, l(32)) }.unwrap();
    assert_eq!(same.cast::<u8>(), ptr);
    // SAFETY: as above.
    let moved = unsafe { alloc.grow(ptr, l(32), l(900)) }.unwrap();
    assert_ne!(moved.cast::<u8>(), ptr);
    assert_eq!(moved.len(), 1024);
    assert_eq!(byte_at(moved, 19), 3);
    let moved = moved.cast::<u8>();
    // SAFETY: as above.
    let kept = unsafe { alloc.shrink(moved, l(900), l(600)) }.unwrap();
    assert_eq!(
        kept.cast::<u8>(),
        moved,
        "600 bytes still fill more than half of 1024"
    );
    // SAFETY: as above.
    let shrunk = unsafe { alloc.shrink(moved, l(600), l(40)) }.unwrap();
    assert_ne!(shrunk.cast::<u8>(), moved);
    assert_eq!(byte_at(shrunk, 19), 3);
    // SAFETY: as above, freed once.
    unsafe { alloc.deallocate(shrunk.cast(), l(40)) };
    assert_eq!(pool.stats().in_use(), 0);
}

#[test]
fn alignment_up_to_the_page_is_given_and_zero_or_over_aligned_layouts_are_refused() {
    let pool = pool();
    let lease = pool.attach().unwrap();
    let alloc = &lease;
    let mut align = 1;
    while align <= 4096 {
        for size in [1, align, 3 * align, 5 * align + 1] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let block = alloc.allocate(layout).unwrap();
            assert!(block.len() >= size);
            assert_eq!(
                block.cast::<u8>().as_ptr() as usize % align,
                0,
                "{layout:?}"
            );
            // SAFETY: just allocated with `layout`.
            unsafe { alloc.deallocate(block.cast(), layout) };
        }
        align *= 2;
    }
    assert_eq!(
        alloc.allocate(Layout::from_size_align(0, 8).unwrap()),
        Err(AllocError)
    );
    assert_eq!(
        alloc.allocate(Layout::from_size_align(64, 8192).unwrap()),
        Err(AllocError)
    );
    assert!(Layout::array::<u64>(usize::MAX / 4).is_err()); // overflow never reaches us
    assert_eq!(pool.stats().in_use(), 0);
}

#[test]
fn exhaustion_is_an_alloc_error() {
    use umrf::sized::ClassExhaustion;
    let pool = SizedPool::<CpuLocal>::builder()
        .largest_class(64)
        .bytes_per_class(64)
        .blocks_per_class(1, 4)
        .rows(1)
        .exhaustion(ClassExhaustion::Fail)
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    let mut v: Vec<u8, _> = Vec::new_in(&lease);
    assert!(v.try_reserve(16).is_ok());
    let held: std::vec::Vec<_> = (0..3)
        .map(|_| (&lease).allocate(Layout::new::<[u8; 16]>()).unwrap())
        .collect();
    assert_eq!(
        (&lease).allocate(Layout::new::<[u8; 16]>()),
        Err(AllocError)
    );
    for block in held {
        // SAFETY: allocated above with this layout.
        unsafe { (&lease).deallocate(block.cast(), Layout::new::<[u8; 16]>()) };
    }
}

#[test]
fn interleaved_sizes_get_each_classes_last_freed_block_back_and_count_per_class() {
    use umrf::sized::{class_bytes, class_of};
    let pool = pool();
    let lease = pool.attach().unwrap();
    let alloc = &lease;
    let sizes = [8usize, 100, 24, 4000, 17, 128, 640, 9, 3000, 64];
    let layout = |n: usize| Layout::from_size_align(n, 8).unwrap();
    let mut live: std::vec::Vec<_> = sizes
        .iter()
        .map(|&n| (alloc.allocate(layout(n)).unwrap().cast::<u8>(), n))
        .collect();
    // Free in an order that interleaves the classes, then allocate each size again: every
    // class hands back the block it took back last, whatever was freed in other classes since.
    let mut last_freed = std::collections::HashMap::new();
    for &(ptr, n) in live.iter().rev() {
        // SAFETY: allocated just above with this layout, freed once.
        unsafe { alloc.deallocate(ptr, layout(n)) };
        last_freed.insert(class_of(n), ptr);
    }
    for (ptr, n) in live.iter_mut() {
        let again = alloc.allocate(layout(*n)).unwrap();
        assert_eq!(again.len(), class_bytes(class_of(*n)), "size {n}");
        let class = class_of(*n);
        if let Some(expected) = last_freed.remove(&class) {
            assert_eq!(again.cast::<u8>(), expected, "size {n}");
        }
        *ptr = again.cast();
    }
    let stats = pool.stats();
    assert_eq!(stats.in_use(), sizes.len() as u64);
    for class in &stats.classes {
        let served: std::vec::Vec<usize> = sizes
            .iter()
            .copied()
            .filter(|&n| class_of(n) == class.class)
            .collect();
        assert_eq!(
            class.allocations,
            2 * served.len() as u64,
            "class {}",
            class.class
        );
        assert_eq!(
            class.local_frees,
            served.len() as u64,
            "class {}",
            class.class
        );
        assert_eq!(
            class.requested_bytes,
            2 * served.iter().map(|&n| n as u64).sum::<u64>(),
            "class {}",
            class.class
        );
    }
    for (ptr, n) in live {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { alloc.deallocate(ptr, layout(n)) };
    }
    assert_eq!(pool.stats().in_use(), 0);
}

/// The allocator's frees write no block state (a block is free by being on its class's free
/// stack): the queries still say what each block is, before and after it is handed out again.
#[test]
fn blocks_freed_through_the_allocator_read_free_until_handed_out_again() {
    use umrf::{BlockState, provenance};
    let pool = pool();
    let lease = pool.attach().unwrap();
    let layout = Layout::from_size_align(40, 8).unwrap();
    let blocks: std::vec::Vec<_> = (0..4).map(|_| (&lease).allocate(layout).unwrap()).collect();
    let state = |block: core::ptr::NonNull<[u8]>| {
        provenance::owner_of(block.cast::<u8>().as_ptr())
            .expect("a block of the pool")
            .state
    };
    let owned = |state| matches!(state, BlockState::Owned { .. });
    assert!(blocks.iter().all(|&b| owned(state(b))));
    for &block in &blocks {
        // SAFETY: allocated above with `layout`, freed once.
        unsafe { (&lease).deallocate(block.cast(), layout) };
    }
    assert!(blocks.iter().all(|&b| state(b) == BlockState::Free));
    // The last freed comes back first; the others stay free.
    let again = (&lease).allocate(layout).unwrap();
    assert_eq!(again, blocks[3]);
    assert!(owned(state(again)));
    assert!(blocks[..3].iter().all(|&b| state(b) == BlockState::Free));
    // SAFETY: as above.
    unsafe { (&lease).deallocate(again.cast(), layout) };
    assert_eq!(pool.stats().in_use(), 0);
}
