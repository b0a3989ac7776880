//! Pool building, leasing, allocation errors, exhaustion, fallback, stats and block states.

mod common;

use common::pool;
use umrf::residency::{CpuLocal, Hugepage};
use umrf::{BlockState, Error, Exhaustion, Pool};

#[test]
fn builder_rejects_every_bad_setting_with_a_reason() {
    let cases: [(umrf::PoolBuilder<CpuLocal>, &str); 5] = [
        (Pool::builder().block_size(0), "block_size is 0"),
        (Pool::builder().blocks_per_slot(0), "blocks_per_slot is 0"),
        (Pool::builder().slots(0), "slots is 0"),
        (
            Pool::builder().blocks_per_slot(u32::MAX as usize),
            "blocks_per_slot",
        ),
        (
            Pool::builder()
                .block_size(1 << 40)
                .blocks_per_slot(1 << 20)
                .slots(1 << 10),
            "overflows",
        ),
    ];
    for (builder, expected) in cases {
        match builder.build() {
            Err(Error::InvalidConfig { reason }) => assert!(reason.contains(expected), "{reason}"),
            other => panic!("expected InvalidConfig containing {expected:?}, got {other:?}"),
        }
    }
    let too_many_slots = Pool::<CpuLocal>::builder()
        .slots((1 << 24) + 1)
        .build()
        .unwrap_err();
    assert!(
        too_many_slots.to_string().contains("too many"),
        "{too_many_slots}"
    );
}

#[test]
fn block_size_rounds_up_to_the_cache_line_and_defaults_follow_the_machine() {
    let p = Pool::<CpuLocal>::builder()
        .block_size(100)
        .blocks_per_slot(2)
        .slots(1)
        .build()
        .unwrap();
    assert_eq!(p.block_size(), 128);
    assert_eq!(
        p.block_align(),
        128,
        "blocks at multiples of 128 from a page-aligned base"
    );
    let defaults = Pool::<CpuLocal>::builder()
        .blocks_per_slot(2)
        .build()
        .unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert!(
        defaults.slots() >= cpus,
        "one slot per online CPU: {} < {cpus}",
        defaults.slots()
    );
    assert_eq!(defaults.block_size(), 4096);
    assert_eq!(defaults.block_align(), 4096);
}

#[test]
fn attach_takes_free_slots_and_refuses_busy_or_missing_ones() {
    let p = pool(1, 2);
    let a = p.attach().unwrap();
    let b = p.attach().unwrap();
    assert_ne!(a.slot(), b.slot());
    assert!(matches!(
        p.attach(),
        Err(Error::NoFreeSlot { slots: 2, .. })
    ));
    assert!(matches!(
        p.attach_slot(a.slot()),
        Err(Error::SlotBusy { .. })
    ));
    assert!(matches!(
        p.attach_slot(7),
        Err(Error::NoSuchSlot {
            slot: 7,
            slots: 2,
            ..
        })
    ));
    let freed = a.slot();
    drop(a);
    assert_eq!(p.attach_slot(freed).unwrap().slot(), freed);
}

#[test]
#[cfg_attr(miri, ignore = "reads /sys and pins a thread")]
fn attach_prefers_the_slot_serving_the_calling_cpu_then_any_free_one() {
    let online: Vec<u32> = umrf::topology::Topology::detect()
        .unwrap()
        .online_cpus()
        .iter()
        .collect();
    let (first, last) = (online[0], *online.last().unwrap());
    std::thread::spawn(move || {
        if let Err(e) = umrf::cores::pin_current_thread(last) {
            println!("SKIPPED: cannot pin to CPU {last}: {e}");
            return;
        }
        // Slots 0 and 1 serve another CPU where the machine has two; slot 2 serves this one.
        let p = Pool::<CpuLocal>::builder()
            .block_size(64)
            .blocks_per_slot(1)
            .cpus([first, first, last])
            .build()
            .unwrap();
        let mine = p.attach().unwrap();
        assert_eq!(p.backing()[mine.slot()].cpu, Some(last));
        if first != last {
            assert_eq!(mine.slot(), 2, "the slot of the calling CPU");
        }
        // That slot is taken: the next lease falls back to the first free slot.
        let next = p.attach().unwrap();
        assert_eq!(next.slot(), if first != last { 0 } else { 1 });
    })
    .join()
    .unwrap();
}

#[test]
fn slot_leases_are_exclusive_across_threads() {
    let p = pool(1, 1);
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| match p.attach_slot(0) {
                    Ok(lease) => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        drop(lease);
                        1
                    }
                    Err(Error::SlotBusy { .. }) => 0,
                    Err(other) => panic!("{other}"),
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(winners >= 1);
    assert!(p.attach_slot(0).is_ok(), "every lease was given back");
}

#[derive(Clone, Copy, Debug, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(128))]
struct Wide([u8; 128]);

#[test]
fn requests_the_blocks_cannot_hold_are_errors_that_say_why() {
    let p = Pool::<CpuLocal>::builder()
        .name("geo")
        .block_size(64)
        .blocks_per_slot(2)
        .slots(1)
        .build()
        .unwrap();
    let lease = p.attach().unwrap();
    assert!(matches!(lease.alloc::<u8>(0), Err(Error::ZeroLength)));
    assert!(matches!(
        lease.alloc::<()>(3),
        Err(Error::ZeroSizedElement { .. })
    ));
    match lease.alloc::<u32>(17) {
        Err(Error::TooLarge {
            requested: 68,
            block_size: 64,
            pool,
        }) => assert_eq!(pool.as_str(), "geo"),
        other => panic!("{other:?}"),
    }
    match lease.alloc::<u64>(usize::MAX) {
        Err(Error::TooLarge {
            requested: usize::MAX,
            ..
        }) => {}
        other => panic!("overflowing request: {other:?}"),
    }
    match lease.alloc::<Wide>(1) {
        Err(
            e @ Error::Misaligned {
                align: 128,
                block_align: 64,
                ..
            },
        ) => {
            assert!(e.to_string().contains("multiple of 128"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // None of the failures took a block.
    assert_eq!(lease.stats().allocations, 0);
    assert_eq!(lease.stats().in_use, 0);
}

#[test]
fn a_full_block_and_an_aligned_wide_type_fit() {
    let p = Pool::<CpuLocal>::builder()
        .block_size(256)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let lease = p.attach().unwrap();
    let mut buf = lease.alloc_zeroed::<Wide>(2).unwrap();
    assert_eq!(buf.as_ptr() as usize % 128, 0);
    buf[1].0[127] = 9;
    assert_eq!(buf.as_bytes()[255], 9);
    assert_eq!(buf.block_size(), 256);
}

#[derive(Clone, Copy, Debug, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(65536))]
struct AbovePage([[u8; 4096]; 16]);

#[derive(Clone, Copy, Debug, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(4096))]
struct OnePage([u8; 4096]);

#[test]
fn an_alignment_above_the_page_size_is_not_told_to_change_the_block_size() {
    let p = Pool::<CpuLocal>::builder()
        .block_size(65536) // a multiple of the alignment, which cannot help
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let page = p.block_align(); // blocks are aligned to at most a page
    if page >= 65536 {
        println!("SKIPPED: pages of {page} bytes hold a 64 KiB-aligned type");
        return;
    }
    let err = p.attach().unwrap().alloc::<AbovePage>(1).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::Misaligned { align: 65536, .. }),
        "{err:?}"
    );
    assert!(!message.contains("multiple of"), "{message}");
    assert!(
        message.contains(&format!("aligned to at most {page} bytes")),
        "{message}"
    );
    // The remedy works: a type aligned to at most a page fits a page-sized block.
    let q = Pool::<CpuLocal>::builder()
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    assert!(q.attach().unwrap().alloc::<OnePage>(1).is_ok());
}

#[test]
fn exhaustion_is_an_error_and_loses_nothing() {
    let p = pool(3, 1);
    let lease = p.attach().unwrap();
    let held: Vec<_> = (0..3).map(|_| lease.alloc::<u8>(1).unwrap()).collect();
    let err = lease.alloc::<u8>(1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Exhausted {
                slot: 0,
                capacity: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("fallback pool"),
        "the message says what to do: {err}"
    );
    assert_eq!(p.stats().exhaustion_events(), 1);
    drop(held);
    assert!(
        lease.alloc::<u8>(1).is_ok(),
        "blocks came back after the failure"
    );
    assert_eq!(p.stats().in_use(), 0);
}

#[test]
fn exhaustion_falls_back_along_a_chain_of_pools() {
    let last = Pool::<Hugepage>::builder()
        .name("last")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let middle = Pool::<Hugepage>::builder()
        .name("middle")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .exhaustion(Exhaustion::Fallback(last.clone()))
        .build()
        .unwrap();
    let first = Pool::<Hugepage>::builder()
        .name("first")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .exhaustion(Exhaustion::Fallback(middle.clone()))
        .build()
        .unwrap();
    let lease = first.attach().unwrap();
    let a = lease.alloc::<u8>(1).unwrap();
    let b = lease.alloc::<u8>(1).unwrap();
    let c = lease.alloc::<u8>(1).unwrap();
    assert!(matches!(lease.alloc::<u8>(1), Err(Error::Exhausted { .. })));
    assert_eq!(
        [
            first.stats().in_use(),
            middle.stats().in_use(),
            last.stats().in_use()
        ],
        [1, 1, 1]
    );
    assert_eq!(first.stats().fallback_allocations(), 2);
    assert_eq!(first.stats().exhaustion_events(), 3);
    // Fallback blocks go home to their own pools, locally: the lease holds their slots.
    drop((a, b, c));
    for p in [&first, &middle, &last] {
        let s = p.stats();
        assert_eq!(
            (s.in_use(), s.local_frees(), s.remote_frees()),
            (0, 1, 0),
            "{}",
            p.name()
        );
    }
    // The fallback leases were given back with the primary lease.
    drop(lease);
    assert!(middle.attach_slot(0).is_ok() && last.attach_slot(0).is_ok());
}

#[test]
fn a_lease_gives_its_fallback_slot_back_once_its_own_slot_has_blocks_again() {
    let spare = pool(2, 1); // one slot: only one lease at a time can overflow into it
    let main = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(2)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let (first, second) = (main.attach_slot(0).unwrap(), main.attach_slot(1).unwrap());
    let own = first.alloc::<u8>(1).unwrap();
    let overflow = first.alloc::<u8>(1).unwrap(); // from the spare slot, now leased by `first`
    assert_eq!(spare.stats().in_use(), 1);
    drop(own);
    let _again = first.alloc::<u8>(1).unwrap(); // its own slot serves: the spare goes back
    drop(overflow); // goes home to the spare slot as a remote free
    let _mine = second.alloc::<u8>(1).unwrap();
    let _theirs = second
        .alloc::<u8>(1)
        .expect("the spare slot is free for the next overflowing lease");
    let s = spare.stats();
    assert_eq!((s.in_use(), s.remote_frees()), (1, 1));
    assert_eq!(main.stats().fallback_allocations(), 2);
}

#[test]
fn a_fallback_pool_with_no_free_slot_means_exhaustion() {
    let spare = pool(4, 1);
    let _other_user = spare.attach().unwrap();
    let main = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let lease = main.attach().unwrap();
    let _a = lease.alloc::<u8>(1).unwrap();
    assert!(matches!(lease.alloc::<u8>(1), Err(Error::Exhausted { .. })));
    assert_eq!(spare.stats().allocations(), 0);
}

#[test]
fn stats_follow_every_kind_of_free_and_satisfy_the_accounting() {
    let p = pool(8, 2);
    let lease = p.attach_slot(0).unwrap();
    let local = lease.alloc::<u8>(10).unwrap();
    let remote: Vec<_> = (0..3)
        .map(|_| lease.alloc::<u8>(10).unwrap().into_capability())
        .collect();
    drop(local);
    std::thread::spawn(move || drop(remote)).join().unwrap();
    let s = p.slot_stats(0).unwrap();
    assert_eq!(
        (
            s.allocations,
            s.local_frees,
            s.remote_frees,
            s.remote_pending
        ),
        (4, 1, 3, 3)
    );
    assert_eq!((s.in_use, s.free, s.high_water), (0, 8, 4));
    assert_eq!(s.capacity, s.free + s.in_use);
    assert_eq!(s.allocations, s.local_frees + s.remote_frees + s.in_use);
    // Using the 4 blocks never handed out, then the one freed locally, then the remote frees
    // are drained in one swap.
    let again: Vec<_> = (0..8).map(|_| lease.alloc::<u8>(1).unwrap()).collect();
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.remote_pending, s.in_use, s.reuses), (0, 8, 4));
    assert!((s.reuse_rate() - 4.0 / 12.0).abs() < 1e-12);
    assert_eq!(s.external_fragmentation(), 0.0);
    drop(again);
    let total = p.stats();
    assert_eq!(total.capacity(), 16);
    assert_eq!(total.allocations(), 12);
    assert_eq!(total.high_water(), 8);
    assert!(total.slots[0].leased && !total.slots[1].leased);
}

#[test]
fn fragmentation_counts_only_region_slack_that_no_block_can_use() {
    // 3 blocks of 3008 bytes = 9024 bytes in a 12288-byte region: 3264 bytes of slack.
    let p = Pool::<CpuLocal>::builder()
        .block_size(3000)
        .blocks_per_slot(3)
        .slots(1)
        .build()
        .unwrap();
    let page = p.backing()[0].page_size;
    if page != 4096 {
        eprintln!("SKIPPED: slack figures assume 4 KiB pages, this machine has {page}");
        return;
    }
    let s = p.slot_stats(0).unwrap();
    assert_eq!(s.region_bytes, 12288);
    assert!((s.external_fragmentation() - 3264.0 / 12288.0).abs() < 1e-12);
    let lease = p.attach().unwrap();
    let _held = lease.alloc::<u8>(3008).unwrap();
    let s = p.slot_stats(0).unwrap();
    assert!((s.external_fragmentation() - 3264.0 / (2.0 * 3008.0 + 3264.0)).abs() < 1e-12);
    assert!((p.stats().external_fragmentation() - s.external_fragmentation()).abs() < 1e-12);
}

#[test]
fn block_states_follow_ownership() {
    let p = pool(2, 2);
    let lease = p.attach_slot(0).unwrap();
    let buf = lease.alloc::<u8>(1).unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    assert_eq!(p.block_state(0, 1), Some(BlockState::Free));
    let cap = buf.into_capability();
    assert_eq!(p.block_state(0, 0), Some(BlockState::InFlight));
    let other = p.clone();
    std::thread::spawn(move || {
        let there = other.attach_slot(1).unwrap();
        let buf = cap.accept(&there).unwrap();
        assert_eq!(other.block_state(0, 0), Some(BlockState::Owned { slot: 1 }));
        drop(buf);
        assert_eq!(other.block_state(0, 0), Some(BlockState::Free));
    })
    .join()
    .unwrap();
    assert_eq!(p.block_state(0, 2), None);
    assert_eq!(p.block_state(2, 0), None);
    assert_eq!(p.block_state(0, usize::MAX), None);
}

#[test]
fn contents_are_initialised_zero_then_kept_until_reuse() {
    let p = pool(1, 1);
    let lease = p.attach().unwrap();
    let mut buf = lease.alloc::<u64>(512).unwrap();
    assert!(buf.iter().all(|&x| x == 0), "fresh memory is zero");
    buf.fill(0xdead_beef);
    drop(buf);
    let reused = lease.alloc::<u64>(512).unwrap();
    assert!(
        reused.iter().all(|&x| x == 0xdead_beef),
        "alloc does not clear"
    );
    drop(reused);
    assert!(
        lease
            .alloc_zeroed::<u64>(512)
            .unwrap()
            .iter()
            .all(|&x| x == 0)
    );
    assert_eq!(
        &lease.alloc_from_slice(&[1u8, 2, 3]).unwrap()[..],
        &[1, 2, 3]
    );
}

#[test]
fn backing_reports_what_was_obtained() {
    let p = pool(4, 2);
    let backing = p.backing();
    assert_eq!(backing.len(), 2);
    for info in backing {
        assert_eq!(info.strategy, umrf::residency::Strategy::CpuLocal);
        assert!(info.bytes >= 4 * 4096 && info.bytes % info.page_size == 0);
        assert!(info.prefaulted);
        assert!(!info.reason.is_empty());
    }
}

#[test]
fn names_ids_and_debug_output_identify_the_pool() {
    let p = Pool::<umrf::residency::Node0>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    assert_eq!(p.residency_name(), "NumaNode<0>");
    assert!(p.name().as_str().starts_with("NumaNode<0>-"));
    let q = pool(1, 1);
    assert_ne!(p.id(), q.id());
    let debug = format!("{q:?} {:?}", q.attach().unwrap());
    assert!(
        debug.contains("Pool") && debug.contains("LocalPool") && debug.contains("CpuLocal"),
        "{debug}"
    );
}

#[test]
fn a_fallback_pool_with_smaller_blocks_is_refused() {
    let small = Pool::<CpuLocal>::builder()
        .name("small")
        .block_size(64)
        .blocks_per_slot(4)
        .slots(1)
        .build()
        .unwrap();
    let err = Pool::<CpuLocal>::builder()
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .exhaustion(Exhaustion::Fallback(small))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { ref reason } if reason.contains("fallback pool `small`")),
        "{err}"
    );
}
