//! Arenas: bump allocation in pool blocks, no free, only reset; errors, never panics.

use proptest::prelude::*;
use umrf::residency::CpuLocal;
use umrf::{Arena, BlockState, Error, Pool};

fn pool(block_size: usize, blocks: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(block_size)
        .blocks_per_slot(blocks)
        .slots(1)
        .build()
        .unwrap()
}

#[test]
fn an_arena_takes_whole_blocks_and_gives_them_back_when_dropped() {
    let p = pool(4096, 8);
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 3 * 4096 + 1).unwrap();
    assert_eq!(
        (arena.chunks(), arena.capacity(), arena.chunk_size()),
        (4, 16384, 4096)
    );
    assert_eq!(lease.stats().in_use, 4);
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    assert_eq!(arena.residency_name(), "CpuLocal");
    drop(arena);
    let s = lease.stats();
    assert_eq!((s.in_use, s.local_frees), (0, 4));
    // Zero bytes still makes a usable arena of one block.
    let small = Arena::new_in(&lease, 0).unwrap();
    assert_eq!(small.capacity(), 4096);
}

#[test]
fn allocations_are_aligned_disjoint_and_inside_the_pool_blocks() {
    let p = pool(4096, 2);
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 8192).unwrap();
    let a = arena.alloc::<u8>(3).unwrap();
    let b = arena.alloc::<u64>(5).unwrap();
    let c = arena.alloc::<u16>(7).unwrap();
    let d = arena.alloc_value(0x1234_5678u32).unwrap();
    let e = arena.alloc::<u128>(1).unwrap();
    assert_eq!(b.as_ptr() as usize % 8, 0);
    assert_eq!(c.as_ptr() as usize % 2, 0);
    assert_eq!(core::ptr::from_mut(d) as usize % 4, 0);
    assert_eq!(e.as_ptr() as usize % align_of::<u128>(), 0);
    a.fill(1);
    b.fill(u64::MAX);
    c.fill(3);
    e[0] = 7;
    assert_eq!(
        (a[2], b[4], c[6], *d, e[0]),
        (1, u64::MAX, 3, 0x1234_5678, 7)
    );
    // Pieces of one 4 KiB block, all of them.
    let block = arena.alloc::<u8>(0).unwrap().as_ptr() as usize & !4095;
    for addr in [
        a.as_ptr() as usize,
        b.as_ptr() as usize,
        c.as_ptr() as usize,
    ] {
        assert_eq!(addr & !4095, block);
    }
}

#[test]
fn zero_lengths_and_zero_sized_types_are_allowed() {
    let p = pool(64, 1);
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 64).unwrap();
    assert!(arena.alloc::<u32>(0).unwrap().is_empty());
    assert_eq!(arena.alloc::<()>(1000).unwrap().len(), 1000);
    assert_eq!(arena.used(), 0);
    assert_eq!(arena.alloc::<u8>(64).unwrap().len(), 64);
}

#[test]
fn exhaustion_is_an_error_and_reset_makes_room_again() {
    let p = pool(256, 2);
    let lease = p.attach().unwrap();
    let mut arena = Arena::new_in(&lease, 512).unwrap();
    let first = arena.alloc::<u8>(200).unwrap().as_ptr() as usize;
    arena.alloc::<u8>(200).unwrap(); // does not fit in the first block: the second one
    assert_eq!(arena.used(), 256 + 200);
    match arena.alloc::<u8>(100) {
        Err(Error::ArenaFull {
            requested,
            capacity,
            pool,
        }) => {
            assert_eq!((requested, capacity), (100, 512));
            assert_eq!(pool, *p.name());
        }
        other => panic!("expected ArenaFull, got {other:?}"),
    }
    let err = arena.alloc::<u8>(100).unwrap_err();
    assert!(err.to_string().contains("Arena::reset"), "{err}");
    assert_eq!(arena.alloc::<u8>(56).unwrap().len(), 56); // exactly what is left
    assert_eq!(arena.remaining(), 0);
    arena.reset();
    assert_eq!((arena.used(), arena.remaining()), (0, 512));
    assert_eq!(arena.alloc::<u8>(200).unwrap().as_ptr() as usize, first);
}

#[test]
fn requests_larger_than_a_block_or_overflowing_are_too_large() {
    let p = pool(256, 4);
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 1024).unwrap();
    assert!(matches!(
        arena.alloc::<u8>(257),
        Err(Error::TooLarge {
            requested: 257,
            block_size: 256,
            ..
        })
    ));
    assert!(matches!(
        arena.alloc::<u64>(usize::MAX / 4),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(arena.used(), 0, "a refused request takes nothing");
}

#[test]
fn types_aligned_beyond_the_blocks_are_refused() {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(128))]
    struct Wide([u8; 128]);
    let p = pool(64, 1); // 64-byte blocks: 64-byte alignment
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 64).unwrap();
    match arena.alloc::<Wide>(1) {
        Err(Error::Misaligned {
            align, block_align, ..
        }) => assert_eq!((align, block_align), (128, 64)),
        other => panic!("expected Misaligned, got {:?}", other.map(|s| s.len())),
    }
    // With 4 KiB blocks (page aligned) the same type fits.
    let q = pool(4096, 1);
    let lease = q.attach().unwrap();
    let arena = Arena::new_in(&lease, 4096).unwrap();
    let w = arena.alloc_zeroed::<Wide>(2).unwrap();
    assert_eq!(w.as_ptr() as usize % 128, 0);
}

#[test]
fn making_an_arena_from_an_exhausted_lease_loses_nothing() {
    let p = pool(128, 3);
    let lease = p.attach().unwrap();
    let held = lease.alloc::<u8>(1).unwrap();
    assert!(matches!(
        Arena::new_in(&lease, 3 * 128),
        Err(Error::Exhausted { .. })
    ));
    assert_eq!(
        lease.stats().in_use,
        1,
        "the blocks taken before the failure went back"
    );
    drop(held);
    assert!(Arena::new_in(&lease, 3 * 128).is_ok());
}

#[test]
fn an_arena_outliving_its_lease_returns_its_blocks_remotely() {
    let p = pool(128, 2);
    let lease = p.attach().unwrap();
    let arena = Arena::new_in(&lease, 256).unwrap();
    drop(lease);
    arena.alloc::<u8>(128).unwrap().fill(9);
    drop(arena);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.remote_frees), (0, 2));
}

#[test]
fn alloc_zeroed_and_from_slice_initialise() {
    let p = pool(1024, 1);
    let lease = p.attach().unwrap();
    let mut arena = Arena::new_in(&lease, 1024).unwrap();
    arena.alloc::<u8>(1024).unwrap().fill(0xaa);
    arena.reset();
    let z = arena.alloc_zeroed::<u32>(10).unwrap();
    assert!(z.iter().all(|&x| x == 0));
    let s = arena.alloc_from_slice(&[1.0f32, -2.0]).unwrap();
    assert_eq!(s, &[1.0, -2.0]);
    let text = format!("{arena:?}");
    assert!(text.contains("capacity: 1024"), "{text}");
}

/// One allocation request of the property test.
#[derive(Clone, Debug)]
enum Request {
    Bytes(usize),
    Words(usize),
    Wide(usize),
    Reset,
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        8 => (0usize..300).prop_map(Request::Bytes),
        8 => (0usize..40).prop_map(Request::Words),
        4 => (0usize..20).prop_map(Request::Wide),
        1 => Just(Request::Reset),
    ]
}

/// A model of the arena: the live allocations (start, length, the byte they were filled with)
/// and the arena's geometry.
struct Model {
    live: Vec<(*const u8, usize, u8)>,
    chunk: usize,
    chunks: usize,
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        // Miri isolates the file system: no failure file there.
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    /// Whatever the sequence: every allocation is aligned, inside the arena's blocks, disjoint
    /// from every other live one (the patterns written stay intact), exhaustion is an error
    /// exactly when the request cannot fit in what is left, and reset gives everything back.
    #[test]
    fn allocations_never_overlap_and_fail_only_when_full(
        requests in proptest::collection::vec(request(), 1..120),
        chunks in 1usize..4,
    ) {
        let p = pool(512, 4);
        let lease = p.attach().unwrap();
        let mut arena = Arena::new_in(&lease, chunks * 512).unwrap();
        let mut model = Model { live: Vec::new(), chunk: 512, chunks };
        let mut stamp = 0u8;
        for request in requests {
            let (len, size, align) = match request {
                Request::Reset => {
                    model.live.clear();
                    arena.reset();
                    prop_assert_eq!(arena.used(), 0);
                    continue;
                }
                Request::Bytes(n) => (n, 1, 1),
                Request::Words(n) => (n, 8, 8),
                Request::Wide(n) => (n, 16, align_of::<u128>()),
            };
            let bytes = len * size;
            let used_before = arena.used();
            // The model: the current block is the one the last byte used lies in (the arena
            // moves on only to serve a request, of at least one byte); its room is what lies
            // below the cursor. A request fits there, or else in a fresh block if one is left.
            let current = if used_before == 0 { 0 } else { (used_before - 1) / model.chunk };
            let room = (current + 1) * model.chunk - used_before;
            let expect_ok = bytes <= room || (bytes <= model.chunk && current + 1 < model.chunks);
            stamp = stamp.wrapping_add(1);
            let got: Result<(*const u8, usize), Error> = match request {
                Request::Bytes(n) => arena.alloc::<u8>(n).map(|s| { s.fill(stamp); (s.as_ptr(), s.len()) }),
                Request::Words(n) => arena.alloc::<u64>(n).map(|s| { s.fill(u64::from_ne_bytes([stamp; 8])); (s.as_ptr().cast(), s.len() * 8) }),
                Request::Wide(n) => arena.alloc::<u128>(n).map(|s| { s.fill(u128::from_ne_bytes([stamp; 16])); (s.as_ptr().cast(), s.len() * 16) }),
                Request::Reset => unreachable!(),
            };
            match got {
                Ok((ptr, len_bytes)) => {
                    prop_assert_eq!(len_bytes, bytes);
                    prop_assert_eq!(ptr.addr() % align, 0);
                    prop_assert!(expect_ok, "allocated {} bytes although the model says full", bytes);
                    if bytes > 0 {
                        let addr = ptr.addr();
                        for &(start, len, _) in &model.live {
                            prop_assert!(addr + bytes <= start.addr() || addr >= start.addr() + len, "overlap");
                        }
                        model.live.push((ptr, bytes, stamp));
                    }
                }
                Err(Error::ArenaFull { .. }) => {
                    prop_assert!(!expect_ok, "refused {} bytes although there was room", bytes);
                    prop_assert!(bytes > 0);
                    prop_assert_eq!(arena.used(), used_before);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
        // Every live allocation still holds its own pattern.
        for &(start, len, stamp) in &model.live {
            // SAFETY: the range is an allocation made since the last reset of `arena`,
            // which is alive; its `&mut` borrow ended, and nothing else borrows it now.
            let bytes = unsafe { core::slice::from_raw_parts(start, len) };
            prop_assert!(bytes.iter().all(|&b| b == stamp));
        }
    }
}
