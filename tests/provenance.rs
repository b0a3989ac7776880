//! `provenance::owner_of`: every block state, every position in a block, pointers of other
//! allocators, pools freed while lookups run.

mod observe_support;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use observe_support::pool;
use umrf::provenance::{self, Owner};
use umrf::{BlockState, Exhaustion};

fn owner(ptr: *const u8) -> Owner {
    provenance::owner_of(ptr).expect("address inside a live pool")
}

#[test]
fn every_state_is_reported_as_the_pool_records_it() {
    let p = pool("states", 256, 4, 2);
    let home = p.attach_slot(0).unwrap();

    // Free, never used: the address of block 2 (computed from block 0).
    let a = home.alloc::<u8>(256).unwrap();
    let base = a.as_ptr();
    let fresh = owner(base.wrapping_add(2 * 256));
    assert_eq!(
        (fresh.slot, fresh.block, fresh.state),
        (0, 2, BlockState::Free)
    );

    // Owned at home.
    let o = owner(base);
    assert_eq!(o.state, BlockState::Owned { slot: 0 });
    assert_eq!(
        o.state,
        p.block_state(0, 0).unwrap(),
        "the same record as block_state"
    );

    // In flight.
    let cap = a.into_capability();
    assert_eq!(owner(base).state, BlockState::InFlight);

    // Owned away from home, then freed remotely (pending in the remote queue: free).
    let p2 = p.clone();
    let addr = base.addr();
    let cap = std::thread::spawn(move || {
        let away = p2.attach_slot(1).unwrap();
        let buf = cap.accept(&away).unwrap();
        let seen = provenance::owner_of(core::ptr::without_provenance::<u8>(addr)).unwrap();
        assert_eq!(seen.state, BlockState::Owned { slot: 1 });
        buf.into_capability() // in flight again, back to the home thread
    })
    .join()
    .unwrap();
    assert_eq!(owner(base).state, BlockState::InFlight);

    // Accepted back at home: owned by slot 0; freed locally: free.
    let back = cap.accept(&home).unwrap();
    assert_eq!(owner(base).state, BlockState::Owned { slot: 0 });
    drop(back);
    assert_eq!(owner(base).state, BlockState::Free);

    // Freed remotely and not yet drained.
    let b = home.alloc::<u8>(1).unwrap();
    let b_ptr = b.as_ptr();
    let cap = b.into_capability();
    std::thread::spawn(move || drop(cap)).join().unwrap();
    assert_eq!(p.stats().remote_pending(), 1);
    assert_eq!(owner(b_ptr).state, BlockState::Free);

    // Frozen: shared by readers on two threads; free again once the last one drops.
    let c = home.alloc_from_slice(&[5u8; 16]).unwrap();
    let c_ptr = c.as_ptr();
    let frozen = c.freeze();
    let reader = frozen.clone();
    let c_addr = c_ptr.addr();
    std::thread::spawn(move || {
        let seen = provenance::owner_of(core::ptr::without_provenance::<u8>(c_addr)).unwrap();
        assert_eq!(seen.state, BlockState::Frozen);
        assert_eq!(reader[15], 5);
    })
    .join()
    .unwrap();
    assert_eq!(owner(c_ptr.wrapping_add(15)).state, BlockState::Frozen);
    drop(frozen);
    assert_eq!(owner(c_ptr).state, BlockState::Free);

    // Mapped for a device: no CPU owner until it is unmapped; then owned by its lease again.
    let d = home.alloc::<u8>(64).unwrap();
    let d_ptr = d.as_ptr();
    let mapping = d.map_for_device::<umrf::coherence::ToDevice>().unwrap();
    assert_eq!(owner(d_ptr).state, BlockState::MappedForDevice);
    let d = mapping.unmap();
    assert_eq!(owner(d_ptr).state, BlockState::Owned { slot: 0 });
    drop(d);
}

#[test]
fn positions_inside_blocks_map_to_their_block_and_offset() {
    let p = pool("positions", 128, 3, 1);
    let lease = p.attach().unwrap();
    let bufs: Vec<_> = (0..3).map(|_| lease.alloc::<u8>(128).unwrap()).collect();
    let base = bufs[0].as_ptr();
    for block in 0..3usize {
        for offset in [0usize, 1, 63, 64, 127] {
            let o = owner(base.wrapping_add(block * 128 + offset));
            assert_eq!((o.block, o.offset), (block, offset));
            assert_eq!(o.block_start, base.addr() + block * 128);
            assert_eq!(o.block_size, 128);
            assert_eq!(o.pool.as_str(), "positions");
            assert_eq!(o.pool_id, p.id());
            assert_eq!(o.residency, "CpuLocal");
        }
    }
    // One past the end of a block is the next block; one past the last block is no block
    // (3 × 128 bytes leave page slack after them, which holds no block).
    assert_eq!(owner(base.wrapping_add(128)).block, 1);
    assert!(provenance::owner_of(base.wrapping_add(3 * 128)).is_none());
    assert!(provenance::owner_of(base.wrapping_add(4095)).is_none());
    // One before the first block is outside this pool (another mapping may sit right below).
    assert!(provenance::owner_of(base.wrapping_sub(1)).is_none_or(|o| o.pool_id != p.id()));
}

#[test]
#[cfg_attr(miri, ignore = "calls mimalloc, C code Miri cannot run")]
fn pointers_of_other_allocators_have_no_owner() {
    let _p = pool("others", 4096, 16, 2);
    let boxed = Box::new([7u8; 4096]);
    assert!(provenance::owner_of(boxed.as_ptr()).is_none());
    let vec = vec![0u64; 1 << 16];
    assert!(provenance::owner_of(vec.as_ptr()).is_none());
    let on_stack = 5u32;
    assert!(provenance::owner_of(&raw const on_stack).is_none());
    let layout = Layout::from_size_align(4096, 64).unwrap();
    // SAFETY: non-zero size.
    let mi = unsafe { mimalloc::MiMalloc.alloc(layout) };
    // SAFETY: non-zero size.
    let je = unsafe { tikv_jemallocator::Jemalloc.alloc(layout) };
    assert!(provenance::owner_of(mi).is_none());
    assert!(provenance::owner_of(je).is_none());
    // SAFETY: allocated above with this layout, freed once.
    unsafe { mimalloc::MiMalloc.dealloc(mi, layout) };
    // SAFETY: as above.
    unsafe { tikv_jemallocator::Jemalloc.dealloc(je, layout) };
    assert!(provenance::owner_of(core::ptr::null::<u8>()).is_none());
    assert!(provenance::owner_of(core::ptr::without_provenance::<u8>(usize::MAX)).is_none());
}

#[test]
fn blocks_of_a_fallback_pool_name_the_fallback_pool() {
    let spare = pool("spare", 64, 4, 1);
    let main = observe_support::builder("main", 64, 1, 1)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let lease = main.attach().unwrap();
    let first = lease.alloc::<u8>(1).unwrap();
    let second = lease.alloc::<u8>(1).unwrap();
    assert_eq!(owner(first.as_ptr()).pool.as_str(), "main");
    let o = owner(second.as_ptr());
    assert_eq!(o.pool.as_str(), "spare");
    assert_eq!(o.pool_id, spare.id());
    assert!(matches!(o.state, BlockState::Owned { .. }));
}

#[test]
fn a_pool_stays_found_while_blocks_are_out_and_is_gone_once_freed() {
    let p = pool("lifetime", 64, 2, 1);
    let id = p.id();
    let lease = p.attach().unwrap();
    let buf = lease.alloc::<u8>(8).unwrap();
    let cap = buf.into_capability();
    drop(lease);
    drop(p); // orphaned: the capability keeps the memory alive
    let ptr = {
        let spans: Vec<_> = provenance::regions()
            .into_iter()
            .filter(|r| r.pool_id == id)
            .collect();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].end - spans[0].start, 2 * 64);
        core::ptr::without_provenance::<u8>(spans[0].start)
    };
    assert_eq!(owner(ptr).state, BlockState::InFlight);
    drop(cap); // the last block comes home: the pool is freed and unregistered
    assert!(provenance::owner_of(ptr).is_none());
    assert!(provenance::regions().iter().all(|r| r.pool_id != id));
}

#[test]
fn lookups_racing_with_pools_being_freed_never_read_freed_memory() {
    let rounds = if cfg!(miri) { 5 } else { 300 };
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(2));
    let looker = {
        let (stop, barrier) = (stop.clone(), barrier.clone());
        std::thread::spawn(move || {
            barrier.wait();
            let mut seen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for span in provenance::regions() {
                    for addr in [span.start, span.start + 64, span.end - 1] {
                        let found = provenance::owner_of(core::ptr::without_provenance::<u8>(addr));
                        if let Some(o) = found.filter(|o| o.pool.as_str().starts_with("churn-")) {
                            assert!(o.block < 4 && o.slot < 2, "{o:?}");
                            seen += 1;
                        }
                    }
                }
            }
            seen
        })
    };
    barrier.wait();
    for round in 0..rounds {
        let p = pool(&format!("churn-{round}"), 64, 4, 2);
        let lease = p.attach().unwrap();
        let cap = lease.alloc::<u8>(1).unwrap().into_capability();
        drop(lease);
        drop(p);
        drop(cap); // frees the pool while the other thread looks it up
    }
    stop.store(true, Ordering::Relaxed);
    let seen = looker.join().unwrap();
    println!("{seen} lookups hit a live pool");
}
