//! Mailboxes: order, bounds, blocking, time limits, disconnection, and that nothing is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use umrf::mailbox::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, Transferable, mailbox, try_mailbox};

/// A message that counts its drops.
struct Counted(&'static AtomicUsize);

// SAFETY: it holds a reference to a static counter, which is immutable shared data updated only
// atomically; it shares no other state. (Test-only type.)
unsafe impl Transferable for Counted {}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn messages_arrive_in_order_up_to_capacity() {
    let (tx, rx) = mailbox::<u32>(3);
    assert_eq!((tx.capacity(), rx.capacity(), tx.is_empty()), (3, 3, true));
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.len(), 3);
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    assert_eq!(rx.try_recv(), Ok(0));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.is_empty());
}

#[test]
fn capacity_is_exact_for_any_size_across_many_laps() {
    for cap in [1usize, 2, 3, 5, 8, 13] {
        let (tx, rx) = mailbox::<usize>(cap);
        let mut next = 0;
        for round in 0..(if cfg!(miri) { 3 } else { 50 }) {
            let mut sent = 0;
            while tx.try_send(round * 100 + sent).is_ok() {
                sent += 1;
            }
            assert_eq!(sent, cap, "capacity {cap}");
            for expected in 0..sent {
                assert_eq!(rx.try_recv(), Ok(round * 100 + expected));
                next += 1;
            }
        }
        assert!(next > 0);
    }
}

#[test]
fn out_of_range_capacities_are_clamped_or_refused() {
    assert_eq!(mailbox::<u8>(0).0.capacity(), 1);
    let max = umrf::mailbox::MAX_CAPACITY;
    for capacity in [0, max + 1] {
        let err = try_mailbox::<u8>(capacity).unwrap_err();
        assert!(
            matches!(err, umrf::Error::MailboxCapacity { capacity: c, max: m } if c == capacity && m == max),
            "{err:?}"
        );
        // The message names the mailbox, not a pool, and the range that works.
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("mailbox capacity {capacity} is out of range"))
                && message.contains(&format!("1..={max}"))
                && !message.contains("pool"),
            "{message}"
        );
    }
    // The remedy works: capacities in the range are accepted (the largest is not built here: a
    // ring of 2^26 cells is a gigabyte).
    for capacity in [1, 1000] {
        assert_eq!(try_mailbox::<u8>(capacity).unwrap().0.capacity(), capacity);
    }
}

#[test]
fn blocking_send_and_recv_meet_across_threads() {
    let n = if cfg!(miri) { 50 } else { 100_000 };
    let (tx, rx) = mailbox::<u64>(4);
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    });
    let mut expected = 0;
    for got in rx.iter() {
        assert_eq!(got, expected);
        expected += 1;
    }
    assert_eq!(expected, n);
    producer.join().unwrap();
}

#[test]
fn many_producers_deliver_every_message_once() {
    let per = if cfg!(miri) { 20 } else { 20_000 };
    let producers = 4;
    let (tx, rx) = mailbox::<(usize, usize)>(8);
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    tx.send((p, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = vec![0; producers];
    for (p, i) in rx.iter() {
        assert_eq!(i, next[p], "per-producer order");
        next[p] += 1;
    }
    assert!(next.iter().all(|&n| n == per));
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn time_limits_expire_and_hand_the_message_back() {
    let (tx, rx) = mailbox::<u8>(1);
    let start = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    tx.send(1).unwrap();
    match tx.send_timeout(2, Duration::from_millis(30)) {
        Err(SendTimeoutError::Timeout(m)) => assert_eq!(m, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
    assert!(tx.send_timeout(3, Duration::from_secs(5)).is_ok());
}

#[test]
fn disconnection_is_reported_both_ways_and_hands_messages_back() {
    let (tx, rx) = mailbox::<String>(2);
    tx.send("queued".into()).unwrap();
    let tx2 = tx.clone();
    drop(tx);
    assert!(!rx.is_disconnected());
    drop(tx2);
    assert!(rx.is_disconnected());
    assert_eq!(
        rx.recv().as_deref(),
        Ok("queued"),
        "queued messages outlive the senders"
    );
    assert_eq!(rx.recv(), Err(umrf::mailbox::RecvError));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );

    let (tx, rx) = mailbox::<String>(1);
    drop(rx);
    assert!(tx.is_disconnected());
    assert_eq!(tx.send("lost?".into()).unwrap_err().into_inner(), "lost?");
    assert!(matches!(
        tx.try_send("x".into()),
        Err(TrySendError::Disconnected(_))
    ));
    assert!(matches!(
        tx.send_timeout("y".into(), Duration::from_secs(1)),
        Err(SendTimeoutError::Disconnected(_))
    ));
}

#[test]
fn a_blocked_sender_wakes_when_the_receiver_leaves() {
    let (tx, rx) = mailbox::<u32>(1);
    tx.send(1).unwrap();
    let sender = std::thread::spawn(move || tx.send(2).map_err(|e| e.into_inner()));
    // Long enough for the sender to block (under Miri too, whose clock is virtual): a send that
    // is still claiming when the receiver goes may legitimately succeed and be dropped with the
    // queue, which is not what this test is about.
    std::thread::sleep(Duration::from_millis(50));
    drop(rx);
    assert_eq!(sender.join().unwrap(), Err(2));
}

#[test]
fn a_blocked_receiver_wakes_when_the_last_sender_leaves() {
    let (tx, rx) = mailbox::<u32>(1);
    let receiver = std::thread::spawn(move || rx.recv());
    std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 50 }));
    drop(tx);
    assert!(receiver.join().unwrap().is_err());
}

#[test]
fn every_message_is_dropped_exactly_once() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let (tx, rx) = mailbox::<Counted>(8);
    for _ in 0..5 {
        tx.send(Counted(&DROPS)).unwrap();
    }
    drop(rx.recv().unwrap());
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    drop(rx); // four still queued: dropped with the receiver
    assert_eq!(DROPS.load(Ordering::SeqCst), 5);
    let back = tx.send(Counted(&DROPS)).unwrap_err(); // handed back, not dropped
    assert_eq!(DROPS.load(Ordering::SeqCst), 5);
    drop(back);
    assert_eq!(DROPS.load(Ordering::SeqCst), 6);
    drop(tx);
    assert_eq!(DROPS.load(Ordering::SeqCst), 6);
}

#[test]
fn messages_left_when_both_ends_go_are_dropped() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let (tx, rx) = mailbox::<Counted>(4);
    tx.send(Counted(&DROPS)).unwrap();
    tx.send(Counted(&DROPS)).unwrap();
    drop(tx);
    drop(rx);
    assert_eq!(DROPS.load(Ordering::SeqCst), 2);
}

#[test]
fn capabilities_queued_in_a_dropped_mailbox_go_home() {
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(4)
        .slots(1)
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    let (tx, rx) = mailbox::<Capability<u8, CpuLocal>>(4);
    for _ in 0..4 {
        tx.send(lease.alloc::<u8>(1).unwrap().into_capability())
            .unwrap();
    }
    assert_eq!(pool.stats().in_use(), 4);
    drop(rx);
    assert_eq!(pool.stats().in_use(), 0);
    assert_eq!(pool.stats().remote_frees(), 4);
    drop(tx);
}

#[test]
fn ends_are_transferable_ports() {
    fn transferable<T: Transferable>() {}
    transferable::<umrf::mailbox::Sender<u8>>();
    transferable::<umrf::mailbox::Receiver<Capability<u8, CpuLocal>>>();
    let (tx, rx) = mailbox::<umrf::mailbox::Sender<u8>>(1);
    let (reply_tx, reply_rx) = mailbox::<u8>(1);
    tx.send(reply_tx).unwrap();
    rx.recv().unwrap().send(7).unwrap();
    assert_eq!(reply_rx.recv(), Ok(7));
    assert!(format!("{tx:?} {rx:?}").contains("capacity"));
}

/// A message that carries a sender of its own mailbox.
struct Carrier(#[allow(dead_code)] umrf::mailbox::Sender<Carrier>);

// SAFETY: a Sender is Transferable (a port that owns a share of its channel); the wrapper adds
// no other state. (Test-only type: `#[derive(Message)]` is tested on recursive types in
// tests/derive.rs.)
unsafe impl Transferable for Carrier {}

#[test]
fn dropping_the_receiver_while_a_queued_message_holds_the_last_sender_returns() {
    let (tx, rx) = mailbox::<Carrier>(2);
    tx.send(Carrier(tx.clone())).unwrap();
    drop(tx); // the queued message now holds the mailbox's last sender
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(rx);
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "dropping the receiver deadlocked on the mailbox's lock"
    );
}
