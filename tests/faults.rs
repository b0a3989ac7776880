//! Faults and bad input (invariant I7): every refusal is a value with a reason, loses nothing,
//! and leaves the pool usable; failures of threads (panics, early exits, dropped receivers,
//! dropped pools) strand no block.
//!
//! Failures of the operating-system calls themselves (mmap, madvise, mbind, mlock, CUDA host
//! registration) need the fault-injection seam of the backing layer; the one such failure that
//! can be provoked without it, a region larger than the address space, is here.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::Draw;
use umrf::mailbox::{Receiver, Sender, TrySendError};
use umrf::residency::CpuLocal;
use umrf::{Capability, Error, Exhaustion, LocalPool, Pool, PoolStats, SharedBuffer};

fn pool(name: &str, block_size: usize, blocks: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .name(name)
        .block_size(block_size)
        .blocks_per_slot(blocks)
        .slots(slots)
        .prefault(false)
        .build()
        .unwrap()
}

/// Every block home, and every allocation freed exactly once.
fn assert_all_home(stats: &PoolStats) {
    assert_eq!(stats.in_use(), 0, "{}: blocks still out", stats.pool);
    assert_eq!(stats.free(), stats.capacity(), "{}", stats.pool);
    assert_eq!(
        stats.allocations(),
        stats.local_frees() + stats.remote_frees(),
        "{}: allocations = local + remote frees",
        stats.pool
    );
}

/// The request forms that `tests/pool.rs::requests_the_blocks_cannot_hold_are_errors_that_say_why`
/// does not cover (zeroed and copied allocations, an element type larger than a block), with
/// a block held meanwhile: each refusal leaves every counter as it was, counts no exhaustion,
/// and the pool serves a full block right after.
#[test]
fn requests_the_blocks_cannot_hold_are_refused_and_lose_nothing() {
    let p = pool("geometry", 64, 2, 1);
    let lease = p.attach().unwrap();
    let held = lease.alloc::<u8>(1).unwrap();
    let before = p.stats();

    assert!(matches!(
        lease.alloc_zeroed::<u8>(0),
        Err(Error::ZeroLength)
    ));
    assert!(matches!(
        lease.alloc_from_slice::<u16>(&[]),
        Err(Error::ZeroLength)
    ));
    assert!(matches!(
        lease.alloc_zeroed::<()>(1),
        Err(Error::ZeroSizedElement { .. })
    ));
    // An element type larger than a block: not even one fits.
    let err = lease.alloc::<[u64; 16]>(1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                requested: 128,
                block_size: 64,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("larger block_size"), "{err}");
    assert!(lease.alloc_from_slice(&[[0u64; 16]]).is_err());

    // Nothing was taken, counted as exhaustion, or lost.
    assert_eq!(p.stats(), before);
    let again = lease.alloc::<u8>(64).unwrap();
    assert_eq!(again.len(), 64);
    drop((held, again));
    assert_all_home(&p.stats());
}

#[test]
fn bad_builder_and_mailbox_settings_are_refused_with_a_reason() {
    let cases: [(&str, Result<Pool<CpuLocal>, Error>); 4] = [
        ("block_size", Pool::builder().block_size(0).build()),
        (
            "blocks_per_slot",
            Pool::builder().blocks_per_slot(0).build(),
        ),
        ("slots", Pool::builder().slots(0).build()),
        (
            "too large for this machine",
            Pool::builder().block_size(usize::MAX).build(),
        ),
    ];
    for (needle, result) in cases {
        match result {
            Err(Error::InvalidConfig { reason }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected InvalidConfig about {needle}, got {other:?}"),
        }
    }
    for capacity in [0, umrf::mailbox::MAX_CAPACITY + 1] {
        match umrf::try_mailbox::<u8>(capacity) {
            Err(e @ Error::MailboxCapacity { .. }) => {
                assert!(e.to_string().contains("mailbox capacity"), "{e}")
            }
            other => panic!("expected MailboxCapacity, got {:?}", other.map(|_| ())),
        }
    }
    let small = pool("small", 64, 1, 1);
    let err = Pool::<CpuLocal>::builder()
        .block_size(128)
        .blocks_per_slot(1)
        .slots(1)
        .exhaustion(Exhaustion::Fallback(small.clone()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("fallback pool `small`"), "{err}");
    assert_all_home(&small.stats());
}

/// The one operating-system failure that needs no fault injection: a region larger than the
/// address space. The error names the call and the remedy, and nothing was built.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri stops at an allocation this large instead of returning null"
)]
fn a_region_the_system_cannot_map_is_a_backing_error() {
    let err = Pool::<CpuLocal>::builder()
        .block_size(1 << 40)
        .blocks_per_slot(1 << 16)
        .slots(1)
        .prefault(false)
        .build()
        .unwrap_err();
    match &err {
        Error::Backing {
            bytes, operation, ..
        } => {
            assert_eq!(*bytes, 1 << 56);
            assert!(operation.contains("mmap"), "{operation}");
        }
        other => panic!("expected a backing error, got {other:?}"),
    }
    assert!(err.to_string().contains("lower blocks_per_slot"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the OS error is kept"
    );
}

/// Workers on their own slots allocate, pass capabilities around and free them, in a pool
/// far too small for what they ask: every failed allocation is an `Exhausted` value, the
/// pool counts each one, and every block is home at the end.
fn exhaustion_under_load(fallback: bool) {
    const WORKERS: usize = 3;
    let rounds: u64 = if cfg!(miri) { 60 } else { 20_000 };
    let spare = pool("spare", 256, 2, WORKERS);
    let mut builder = Pool::<CpuLocal>::builder()
        .name("primary")
        .block_size(256)
        .blocks_per_slot(3)
        .slots(WORKERS)
        .prefault(false);
    if fallback {
        builder = builder.exhaustion(Exhaustion::Fallback(spare.clone()));
    }
    let primary = builder.build().unwrap();
    let failures = AtomicU64::new(0);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..WORKERS)
        .map(|_| umrf::try_mailbox::<Capability<u32, CpuLocal>>(2).unwrap())
        .unzip();
    std::thread::scope(|s| {
        for (me, inbox) in receivers.into_iter().enumerate() {
            let (primary, senders, failures) = (&primary, senders.clone(), &failures);
            s.spawn(move || {
                let lease = primary.attach_slot(me).unwrap();
                let mut draw = Draw(me as u64);
                let mut held: Vec<SharedBuffer<u32, CpuLocal>> = Vec::new();
                for _ in 0..rounds {
                    match draw.below(4) {
                        0 | 1 => match lease.alloc::<u32>(1 + draw.below(64) as usize) {
                            Ok(buf) => held.push(buf),
                            Err(Error::Exhausted { .. }) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(other) => panic!("{other}"),
                        },
                        2 => {
                            if let Some(buf) = held.pop() {
                                let to = draw.below(WORKERS as u64) as usize;
                                if let Err(
                                    TrySendError::Full(cap) | TrySendError::Disconnected(cap),
                                ) = senders[to].try_send(buf.into_capability())
                                {
                                    drop(cap); // an unaccepted capability goes home
                                }
                            }
                        }
                        _ => {
                            if let Ok(cap) = inbox.try_recv() {
                                held.push(cap.accept(&lease).unwrap());
                            }
                            if held.len() > 2 {
                                held.swap_remove(draw.below(held.len() as u64) as usize);
                            }
                        }
                    }
                }
                // The worker leaves with buffers held and capabilities queued for it.
            });
        }
    });
    drop(senders);
    let (p, f) = (primary.stats(), spare.stats());
    let failed = failures.load(Ordering::Relaxed);
    assert!(failed > 0, "the load reached exhaustion");
    assert_eq!(
        p.exhaustion_events(),
        failed + p.fallback_allocations(),
        "every empty slot was counted: a failure or a fallback"
    );
    if fallback {
        assert!(p.fallback_allocations() > 0, "the fallback pool served");
        assert_eq!(f.allocations(), p.fallback_allocations());
    } else {
        assert_eq!((p.fallback_allocations(), f.allocations()), (0, 0));
    }
    assert_all_home(&p);
    assert_all_home(&f);
}

#[test]
fn exhaustion_under_load_is_counted_and_strands_nothing() {
    exhaustion_under_load(false);
}

#[test]
fn exhaustion_under_load_with_a_fallback_pool() {
    exhaustion_under_load(true);
}

/// A worker panics while holding a lease (and a fallback lease), buffers from both pools,
/// capabilities, and capabilities queued in its inbox: on unwind every block goes home and
/// every slot can be leased again.
#[test]
fn a_panicking_worker_returns_everything_it_held() {
    let spare = pool("spare", 64, 2, 2);
    let primary = Pool::<CpuLocal>::builder()
        .name("primary")
        .block_size(64)
        .blocks_per_slot(2)
        .slots(2)
        .prefault(false)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let (tx, rx) = umrf::mailbox::<Capability<u8, CpuLocal>>(4);
    let home = primary.attach_slot(1).unwrap();
    tx.send(home.alloc::<u8>(1).unwrap().into_capability())
        .unwrap();
    let worker_pool = primary.clone();
    let outcome = std::thread::spawn(move || {
        let inbox: Receiver<Capability<u8, CpuLocal>> = rx;
        let lease = worker_pool.attach_slot(0).unwrap();
        let a = lease.alloc::<u8>(8).unwrap();
        let b = lease.alloc::<u8>(8).unwrap();
        let from_spare = lease.alloc::<u8>(8).unwrap(); // the slot is empty: the fallback
        let cap = lease.alloc::<u8>(8).unwrap().into_capability();
        let accepted = inbox.recv().unwrap().accept(&lease).unwrap();
        let _held = (a, b, from_spare, cap, accepted, lease, inbox);
        panic!("worker failed while holding buffers");
    })
    .join();
    assert!(outcome.is_err(), "the worker panicked");
    tx.send(home.alloc::<u8>(1).unwrap().into_capability())
        .expect_err("the receiver went with the worker: the capability comes back");
    drop(home);
    assert_all_home(&primary.stats());
    assert_all_home(&spare.stats());
    assert_eq!(primary.stats().fallback_allocations(), 2);
    for slot in 0..2 {
        primary
            .attach_slot(slot)
            .expect("the lease was given back on unwind");
        spare.attach_slot(slot).expect("the fallback lease too");
    }
}

/// A receiver dropped with capabilities queued while senders keep sending: each capability is
/// received, handed back, or dropped with the queue, and every block goes home.
#[test]
fn a_receiver_dropped_under_traffic_sends_every_block_home() {
    const SENDERS: usize = 2;
    let per_sender = if cfg!(miri) { 20 } else { 5_000 };
    let p = pool("traffic", 64, 8, SENDERS);
    let (tx, rx) = umrf::mailbox::<Capability<u8, CpuLocal>>(4);
    let received = std::thread::scope(|s| {
        for me in 0..SENDERS {
            let (p, tx): (&Pool<CpuLocal>, Sender<_>) = (&p, tx.clone());
            s.spawn(move || {
                let lease = p.attach_slot(me).unwrap();
                for _ in 0..per_sender {
                    let Ok(buf) = lease.alloc::<u8>(1) else {
                        continue; // all eight out (queued or in flight): try again
                    };
                    if let Err(err) = tx.send(buf.into_capability()) {
                        drop(err.into_inner()); // refused: goes home from here
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut received = 0;
        for _ in 0..per_sender / 2 {
            match rx.recv() {
                Ok(cap) => {
                    drop(cap);
                    received += 1;
                }
                Err(_) => break,
            }
        }
        drop(rx); // with capabilities queued and senders still sending
        received
    });
    assert!(received > 0);
    assert_all_home(&p.stats());
}

/// Every handle of a pool is dropped while buffers and capabilities are out on several
/// threads: they stay valid and writable, and when the last comes home the pool's memory is
/// returned (under Miri, its leak check at exit proves that; natively, see
/// `lifetime::region_stays_mapped_until_the_last_buffer_comes_home`).
#[test]
fn buffers_outlive_every_pool_handle_on_any_thread() {
    let p = pool("orphan", 256, 4, 2);
    let lease = p.attach_slot(0).unwrap();
    let mut local = lease.alloc_zeroed::<u64>(32).unwrap();
    let caps: Vec<_> = (0..3)
        .map(|i| {
            lease
                .alloc_from_slice(&[i as u64; 32])
                .unwrap()
                .into_capability()
        })
        .collect();
    drop(lease);
    drop(p); // the last handle
    local[31] = 7;
    assert_eq!(local.iter().sum::<u64>(), 7);
    std::thread::scope(|s| {
        for cap in caps {
            s.spawn(move || {
                // No lease on these threads: the capability cannot be accepted, only dropped.
                assert_eq!(cap.len(), 32);
                assert_eq!(cap.pool_name().as_str(), "orphan");
                drop(cap);
            });
        }
    });
    drop(local); // the last block: the pool is freed now
}

/// A pool left with nothing out is freed by its last handle; a lease keeps it alive.
#[test]
fn the_last_lease_can_be_the_last_handle() {
    let p = pool("leased", 64, 2, 1);
    let lease: LocalPool<CpuLocal> = p.attach().unwrap();
    drop(p);
    let buf = lease.alloc::<u8>(1).unwrap();
    let pool_again = lease.pool();
    assert_eq!(pool_again.stats().in_use(), 1);
    drop(pool_again);
    drop(lease); // now the buffer is the only thing keeping the memory
    assert_eq!(buf.len(), 1);
    drop(buf);
}
