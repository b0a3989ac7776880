//! Group 4, `roundtrip/capability`: one block's ownership bounced between two pinned threads
//! (CPU 0 and CPU 1); reported per round trip (two one-way handoffs).
//!
//! - `umrf` (`capability`): thread A turns its buffer into a capability and sends it over one
//!   umrf mailbox; thread B accepts it on its own lease (ownership arrives), turns it back into
//!   a capability and sends it over a second mailbox; A accepts it. The data is not touched:
//!   this is the cost of moving ownership alone.
//! - `umrf` (`capability_rtrb`): the same over two rtrb rings, to separate the mailbox's share
//!   from the capability's (accept and `into_capability`).
//! - `atomic_pingpong`: one cache-line-padded atomic counter, A writing odd values and B even
//!   ones, each spinning for the other's: the least a cross-core round trip can cost here.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use rtrb::RingBuffer;
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, mailbox};

use crate::common::umrf_pool;
use crate::handoff::{pop_spin, push_spin};
use crate::measure::{Config, Contender, Row, Spin, measure_at_least, two_threads};
use crate::report::{Against, Comparison};

pub const GROUP: &str = "roundtrip";
const BYTES: usize = 4096;
/// The fewest round trips in one sample: starting the second thread stays a small part of it.
const MIN_TRIPS: u64 = 10_000;

type Cap = Capability<u8, CpuLocal>;

/// umrf over two mailboxes (`rtrb == false`) or two rtrb rings.
fn bounce(pool: &Pool<CpuLocal>, over_rtrb: bool, trips: u64) -> Duration {
    let (ab_tx, ab_rx) = mailbox::<Cap>(4);
    let (ba_tx, ba_rx) = mailbox::<Cap>(4);
    let (mut ab_ring_tx, mut ab_ring_rx) = RingBuffer::<Cap>::new(4);
    let (mut ba_ring_tx, mut ba_ring_rx) = RingBuffer::<Cap>::new(4);
    two_threads(
        || {
            let lease = pool.attach_slot(0).expect("lease A");
            let mut buf = lease.alloc::<u8>(BYTES).unwrap();
            buf[0] = 1;
            move || {
                for _ in 0..trips {
                    let cap = buf.into_capability();
                    let back = if over_rtrb {
                        push_spin(&mut ab_ring_tx, cap);
                        pop_spin(&mut ba_ring_rx)
                    } else {
                        ab_tx.send(cap).unwrap();
                        ba_rx.recv().unwrap()
                    };
                    buf = back.accept(&lease).unwrap();
                }
                drop(ab_tx);
                black_box(&mut buf);
            }
        },
        move || {
            let lease = pool.attach_slot(1).expect("lease B");
            move || {
                for _ in 0..trips {
                    let cap = if over_rtrb {
                        pop_spin(&mut ab_ring_rx)
                    } else {
                        ab_rx.recv().unwrap()
                    };
                    let buf = cap.accept(&lease).unwrap();
                    let cap = buf.into_capability();
                    if over_rtrb {
                        push_spin(&mut ba_ring_tx, cap);
                    } else {
                        ba_tx.send(cap).unwrap();
                    }
                }
            }
        },
    )
}

/// Two threads taking turns on one atomic word, `trips` round trips (two one-way handoffs of
/// the word's cache line each).
pub fn atomic_pingpong(trips: u64) -> Duration {
    let word = CachePadded::new(AtomicU64::new(0));
    let word = &word;
    two_threads(
        || {
            move || {
                for trip in 0..trips {
                    word.store(2 * trip + 1, Ordering::Release);
                    let mut spin = Spin::default();
                    while word.load(Ordering::Acquire) != 2 * trip + 2 {
                        spin.wait();
                    }
                }
            }
        },
        move || {
            move || {
                for trip in 0..trips {
                    let mut spin = Spin::default();
                    while word.load(Ordering::Acquire) != 2 * trip + 1 {
                        spin.wait();
                    }
                    word.store(2 * trip + 2, Ordering::Release);
                }
            }
        },
    )
}

pub fn run(config: &Config) -> Vec<Row> {
    let pool = umrf_pool(BYTES, 4, 2);
    let pool = &pool;
    let contenders = vec![
        Contender::new("capability", "umrf", move |n| bounce(pool, false, n)),
        Contender::new("capability_rtrb", "umrf", move |n| bounce(pool, true, n)),
        Contender::new("capability", "atomic_pingpong", atomic_pingpong),
    ];
    measure_at_least(config, GROUP, contenders, MIN_TRIPS)
}

pub fn comparisons() -> Vec<Comparison> {
    vec![
        Comparison::new(GROUP, "capability")
            .limit("capability", "atomic_pingpong")
            .target(Against::Limit, 1.5, "≤ 1.5× atomic_pingpong"),
        Comparison::new(GROUP, "capability_rtrb").limit("capability", "atomic_pingpong"),
    ]
}
