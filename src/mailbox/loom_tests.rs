//! loom models of the mailbox's sleep/wake and disconnection protocols.
//!
//! Run with `RUSTFLAGS="--cfg umrf_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --lib --release
//! loom` (or `.ci/loom`). Under loom an untimed condition-variable wait (the receiver in
//! `recv`) blocks until notified, so a lost wake-up shows up as a deadlock in some explored
//! execution; a timed wait (a sender blocked on a full mailbox, which re-checks at least every
//! `SENDER_RECHECK` by design) is modelled as its timeout firing after the other threads ran
//! (see `crate::sync`), the worst case for that sender. Messages carry loom `Arc`s, so a message
//! that is never dropped is reported as a leak.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::{RecvError, SendError, mailbox};
use crate::residency::CpuLocal;
use crate::sync::loom_events::count;
use crate::transfer::Transferable;
use crate::{Capability, Pool};

/// A message that counts how many times it is dropped.
struct Counted {
    drops: Arc<AtomicUsize>,
}

impl Counted {
    fn new(drops: &Arc<AtomicUsize>) -> Self {
        Counted {
            drops: drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: a test message; the counter it shares is an atomic that is only incremented.
unsafe impl Transferable for Counted {}

/// A receiver that goes to sleep on an empty mailbox is always woken: by the sender's push,
/// and at the end by the last sender leaving. The sender's second message waits for room
/// (capacity 1), so both sides' sleep paths are explored.
#[test]
fn loom_a_sleeping_receiver_is_always_woken() {
    let outcomes = crate::sync::model("loom_a_sleeping_receiver_is_always_woken", || {
        let slept = (count("receiver sleeps"), count("sender sleeps"));
        let (tx, rx) = mailbox::<u32>(1);
        let t = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap(); // full until the receiver pops: waits for room
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(
            rx.recv(),
            Err(RecvError),
            "the sender left: woken, not stuck"
        );
        t.join().unwrap();
        (
            count("receiver sleeps") > slept.0,
            count("sender sleeps") > slept.1,
        )
    });
    // The receiver really went to sleep in some executions, and so did the sender.
    assert!(
        outcomes.iter().any(|&(receiver, _)| receiver),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|&(_, sender)| sender), "{outcomes:?}");
}

/// Two senders each send one message and leave, in any order against the receiver: it gets
/// both, once each, and then learns that every sender is gone (the last one's wake-up and the
/// receiver's final look at a claim in progress).
#[test]
fn loom_the_last_sender_leaving_wakes_the_receiver() {
    let outcomes = crate::sync::model("loom_the_last_sender_leaving_wakes_the_receiver", || {
        let slept = count("receiver sleeps");
        let (tx, rx) = mailbox::<u32>(2);
        let tx2 = tx.clone();
        let t1 = thread::spawn(move || tx.send(1).unwrap());
        let t2 = thread::spawn(move || tx2.send(2).unwrap());
        let mut got: Vec<u32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        t1.join().unwrap();
        t2.join().unwrap();
        count("receiver sleeps") > slept
    });
    assert!(
        outcomes.contains(&true),
        "the receiver slept in some execution"
    );
}

/// The receiver leaves while a sender is sending (and, with capacity 1, waiting for room): a
/// blocked sender is released, and every message is dropped exactly once — received, handed
/// back in a `SendError`, or dropped with the queue by whichever side comes last.
#[test]
fn loom_disconnection_drops_every_message_exactly_once() {
    let outcomes = crate::sync::model(
        "loom_disconnection_drops_every_message_exactly_once",
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mailbox::<Counted>(1);
            let d = drops.clone();
            let t = thread::spawn(move || {
                let mut handed_back = 0;
                for _ in 0..2 {
                    if let Err(SendError(message)) = tx.send(Counted::new(&d)) {
                        drop(message);
                        handed_back += 1;
                    }
                }
                handed_back
            });
            thread::yield_now(); // the sender first in loom's default schedule (loom#392)
            let received = usize::from(rx.try_recv().is_ok()); // dropped at once
            drop(rx);
            let handed_back = t.join().unwrap();
            assert!(received + handed_back <= 2);
            assert_eq!(drops.load(Ordering::SeqCst), 2, "each message dropped once");
            (received, handed_back)
        },
    );
    // Received or not, refused before or after a send that got through, or both refused.
    assert!(
        outcomes.contains(&(0, 2)) && outcomes.contains(&(1, 0)),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().any(|&(_, back)| back == 1), "{outcomes:?}");
}

/// Capabilities still queued when the receiver goes return their blocks home (I6): after the
/// race, the owner can allocate both blocks again, and nothing is in use.
#[test]
fn loom_capabilities_queued_in_a_dropped_mailbox_go_home() {
    let outcomes = crate::sync::model(
        "loom_capabilities_queued_in_a_dropped_mailbox_go_home",
        || {
            let pool = Pool::<CpuLocal>::builder()
                .block_size(64)
                .blocks_per_slot(2)
                .slots(1)
                .prefault(false)
                .build()
                .unwrap();
            let lease = pool.attach_slot(0).unwrap();
            let caps: Vec<Capability<u8, CpuLocal>> = (0..2)
                .map(|_| lease.alloc::<u8>(1).unwrap().into_capability())
                .collect();
            let (tx, rx) = mailbox::<Capability<u8, CpuLocal>>(2);
            let t = thread::spawn(move || {
                // A refused send hands the capability back; dropping it frees the block.
                let mut refused = 0;
                for cap in caps {
                    if let Err(SendError(cap)) = tx.send(cap) {
                        drop(cap);
                        refused += 1;
                    }
                }
                refused
            });
            drop(rx);
            let refused = t.join().unwrap();
            let s = pool.stats();
            assert_eq!((s.in_use(), s.remote_frees()), (0, 2));
            let a = lease.alloc::<u8>(1).unwrap();
            let b = lease.alloc::<u8>(1).unwrap();
            assert_ne!(a.as_ptr(), b.as_ptr());
            refused
        },
    );
    // Both queued and dropped with the mailbox, or some refused and handed back.
    assert!(
        outcomes.contains(&0) && outcomes.contains(&2),
        "{outcomes:?}"
    );
}
