//! Frozen blocks: single writer, many readers; the block goes home with the last reader, or
//! becomes a buffer again when the last reader thaws it.

mod common;

use common::pool;
use std::sync::Barrier;

use umrf::residency::CpuLocal;
use umrf::{BlockState, Capability, Frozen, Transferable, mailbox};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_transferable<T: Transferable>() {}

#[test]
fn frozen_is_send_sync_and_transferable() {
    assert_send_sync::<Frozen<f32, CpuLocal>>();
    assert_transferable::<Frozen<u8, CpuLocal>>();
    assert_transferable::<(u64, Frozen<u64, CpuLocal>, Capability<u8, CpuLocal>)>();
}

#[test]
fn freezing_records_the_state_and_the_last_reader_frees_locally_at_home() {
    let p = pool(2, 1);
    let lease = p.attach().unwrap();
    let frozen = lease.alloc_from_slice(&[1u16, 2, 3]).unwrap().freeze();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Frozen));
    assert_eq!(
        (frozen.len(), frozen.readers(), frozen.home_slot()),
        (3, 1, 0)
    );
    let addr = frozen.as_ptr() as usize;
    let clones: Vec<_> = (0..5).map(|_| frozen.clone()).collect();
    assert_eq!(frozen.readers(), 6);
    assert!(clones.iter().all(|c| c.as_ptr() == frozen.as_ptr()));
    drop(clones);
    assert_eq!(p.block_state(0, 0), Some(BlockState::Frozen));
    drop(frozen);
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 1, 0));
    // The block is on the local free list: the next allocation takes it at once.
    assert_eq!(lease.alloc::<u8>(1).unwrap().as_ptr() as usize, addr);
}

#[test]
fn many_readers_on_many_threads_then_the_block_goes_home_remotely() {
    let p = pool(4, 2);
    let lease = p.attach_slot(0).unwrap();
    let mut buf = lease.alloc_zeroed::<u64>(512).unwrap();
    for (i, x) in buf.iter_mut().enumerate() {
        *x = i as u64;
    }
    let frozen = buf.freeze();
    let readers = 4;
    let barrier = std::sync::Arc::new(Barrier::new(readers));
    let handles: Vec<_> = (0..readers)
        .map(|_| {
            let mine = frozen.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let rounds = if cfg!(miri) { 1 } else { 200 };
                let mut sum = 0;
                for _ in 0..rounds {
                    sum = mine.iter().sum::<u64>();
                    let again = mine.clone();
                    drop(again);
                }
                sum
            })
        })
        .collect();
    drop(frozen); // the writer's own handle goes first: a reader thread is the last
    for h in handles {
        assert_eq!(h.join().unwrap(), 511 * 512 / 2);
    }
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.remote_frees, s.local_frees), (0, 1, 0));
}

#[test]
fn frozen_handles_travel_in_mailboxes() {
    let p = pool(4, 2);
    let lease = p.attach_slot(0).unwrap();
    let (tx, rx) = mailbox::<(u32, Frozen<u32, CpuLocal>)>(4);
    let frozen = lease.alloc_from_slice(&[10u32, 20, 30]).unwrap().freeze();
    for tag in 0..3 {
        tx.send((tag, frozen.clone())).unwrap();
    }
    drop(tx);
    let reader = std::thread::spawn(move || {
        rx.iter()
            .map(|(tag, data)| tag + data.iter().sum::<u32>())
            .sum::<u32>()
    });
    assert_eq!(reader.join().unwrap(), 3 + 3 * 60);
    // The home thread still holds a reader and its lease: the last drop frees locally.
    drop(frozen);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 1, 0));
}

#[test]
fn try_thaw_refuses_while_other_readers_live_and_hands_the_handle_back() {
    let p = pool(2, 1);
    let lease = p.attach().unwrap();
    let frozen = lease.alloc_from_slice(&[5u8, 6]).unwrap().freeze();
    let other = frozen.clone();
    let frozen = frozen.try_thaw(&lease).unwrap_err().into_inner();
    assert_eq!(&frozen[..], &[5, 6]);
    assert_eq!(frozen.readers(), 2);
    let other = other.try_thaw(&lease).unwrap_err().into_inner();
    drop(frozen);
    let mut buf = other.try_thaw(&lease).unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    buf[0] = 50;
    assert_eq!(&buf[..], &[50, 6]);
    drop(buf);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 1, 0));
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
}

#[test]
fn try_thaw_refuses_a_lease_of_another_pool() {
    let a = pool(1, 1);
    let b = pool(1, 1);
    let (la, lb) = (a.attach().unwrap(), b.attach().unwrap());
    let frozen = la.alloc_from_slice(&[9u32]).unwrap().freeze();
    let frozen = frozen.try_thaw(&lb).unwrap_err().into_inner();
    assert_eq!(frozen.readers(), 1, "nothing was lost");
    assert_eq!(b.stats().in_use(), 0);
    let buf = frozen.try_thaw(&la).unwrap();
    assert_eq!(buf[0], 9);
}

#[test]
fn thawed_on_another_slot_the_buffer_frees_remotely_and_can_be_frozen_again() {
    let p = pool(2, 2);
    let home = p.attach_slot(0).unwrap();
    let frozen = home.alloc_from_slice(&[1u8; 64]).unwrap().freeze();
    let q = p.clone();
    std::thread::spawn(move || {
        let there = q.attach_slot(1).unwrap();
        let mut buf = frozen.try_thaw(&there).unwrap();
        assert_eq!(q.block_state(0, 0), Some(BlockState::Owned { slot: 1 }));
        buf[0] = 2;
        // Frozen again away from home: the state follows, the last reader frees remotely.
        let again = buf.freeze();
        assert_eq!(q.block_state(0, 0), Some(BlockState::Frozen));
        assert_eq!(again[0], 2);
    })
    .join()
    .unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.remote_frees, s.local_frees), (0, 1, 0));
    assert_eq!(p.slot_stats(1).unwrap().allocations, 0);
}

#[test]
fn frozen_away_from_home_then_thawed_at_home() {
    let p = pool(2, 2);
    let home = p.attach_slot(0).unwrap();
    let cap = home.alloc_from_slice(&[3u16; 8]).unwrap().into_capability();
    let q = p.clone();
    let frozen = std::thread::spawn(move || {
        let there = q.attach_slot(1).unwrap();
        let frozen = cap.accept(&there).unwrap().freeze();
        assert_eq!(q.block_state(0, 0), Some(BlockState::Frozen));
        frozen
    })
    .join()
    .unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Frozen));
    let buf = frozen.try_thaw(&home).unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    drop(buf);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 1, 0));
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
}

#[test]
fn the_last_reader_on_the_home_thread_after_its_lease_changed_frees_remotely() {
    let p = pool(2, 1);
    let lease = p.attach_slot(0).unwrap();
    let frozen = lease.alloc_from_slice(&[1u8]).unwrap().freeze();
    drop(lease);
    let lease = p.attach_slot(0).unwrap(); // a new lease: the old generation is gone
    drop(frozen);
    let s = lease.stats();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 0, 1));
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
}

#[test]
fn frozen_blocks_outlive_every_pool_handle() {
    let p = pool(2, 1);
    let lease = p.attach().unwrap();
    let frozen = lease.alloc_from_slice(&[4u64; 4]).unwrap().freeze();
    let reader = frozen.clone();
    drop(lease);
    drop(p);
    let t = std::thread::spawn(move || reader.iter().sum::<u64>());
    assert_eq!(frozen.iter().sum::<u64>(), 16);
    drop(frozen);
    assert_eq!(t.join().unwrap(), 16); // the last reader frees the pool's memory
}

#[test]
fn racing_last_drops_free_the_block_exactly_once() {
    let p = pool(1, 1);
    let lease = p.attach().unwrap();
    let rounds = if cfg!(miri) { 5 } else { 2000 };
    for _ in 0..rounds {
        let frozen = lease.alloc_from_slice(&[1u32; 16]).unwrap().freeze();
        let barrier = std::sync::Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let mine = frozen.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    drop(mine);
                })
            })
            .collect();
        drop(frozen);
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Exactly one free: the slot's only block is back, once. A second free would put it
        // on the free lists twice, and two allocations would succeed.
        assert_eq!(lease.stats().in_use, 0);
        let only = lease.alloc::<u8>(1).unwrap();
        assert!(lease.alloc::<u8>(1).is_err(), "the block was freed twice");
        drop(only);
    }
}

#[test]
fn debug_output_shows_readers_and_data() {
    let p = pool(1, 1);
    let lease = p.attach().unwrap();
    let frozen = lease.alloc_from_slice(&[1u8, 2]).unwrap().freeze();
    let text = format!("{frozen:?}");
    assert!(
        text.contains("readers: 1") && text.contains("[1, 2]"),
        "{text}"
    );
    assert_eq!(frozen.as_bytes(), &[1, 2]);
    assert_eq!(frozen.residency_name(), "CpuLocal");
    assert!(!frozen.is_empty());
}
