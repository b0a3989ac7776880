//! Group 3, `handoff/4096`: a producer thread (CPU 0) allocates 4 KiB, writes 8 bytes and
//! hands the block over; a consumer thread (CPU 1) reads the 8 bytes and frees it. Reported as
//! time per message (the inverse of throughput), queues 256 deep.
//!
//! Cases (the implementation names stay the issue's; the variant is in the case name):
//!
//! - `4096`: each contender as the issue specifies it. `umrf`: a `Capability` over the umrf
//!   mailbox, accepted by the consumer's lease, its drop a remote free home. `system`,
//!   `mimalloc`, `jemalloc`: a `Box<[u8; 4096]>` from that allocator over `crossbeam-channel`,
//!   zero-initialised, as `Box::new([0u8; 4096])` compiles to (a `Box<[u8; 4096]>` cannot
//!   exist uninitialised).
//! - `4096_rtrb`: the same messages over an `rtrb` single-producer ring (spinning ends): the
//!   fastest channel there is for one producer and one consumer, so the allocators are
//!   compared on equal footing.
//! - `4096_raw`, `4096_rtrb_raw`: the peers' raw, uninitialised 4 KiB allocations, which no safe
//!   `Box` can be (umrf needs no zeroing: its blocks are always initialised memory).
//! - `4096_zeroed`: umrf zeroing the block as the `Box` does (`alloc_zeroed`): like for like.
//! - `4096_copy`, `copy_ring`: no allocator at all; the producer copies its 4 KiB message into
//!   a slot of an `rtrb` ring of `[u8; 4096]`, the consumer reads it in place.
//! - `4096`, `atomic_pingpong`: the limit: half a round trip of one atomic word between the two
//!   threads, that is one cache line handed from one core to the other and seen there. Measured
//!   in this group, interleaved with the rest, because the cost of a cross-core transfer on a
//!   virtual machine changes when the hypervisor moves its virtual CPUs.

use std::hint::black_box;
use std::time::Duration;

use rtrb::RingBuffer;
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, mailbox};

use crate::common::{Peer, PeerBox, umrf_pool};
use crate::measure::{Config, Contender, Row, Spin, measure_at_least, two_threads};
use crate::report::{Against, Comparison};
use crate::roundtrip;

pub const GROUP: &str = "handoff";
const BYTES: usize = 4096;
const QUEUE: usize = 256;
/// The fewest messages in one sample: starting the consumer stays a small part of it.
const MIN_MESSAGES: u64 = 20_000;
const PEERS: [&str; 3] = ["system", "mimalloc", "jemalloc"];

type Cap = Capability<u8, CpuLocal>;

/// The message's 8 bytes as the consumer reads them.
#[inline(always)]
fn read_word(bytes: &[u8]) -> u64 {
    u64::from_ne_bytes(bytes[..8].try_into().unwrap())
}

/// Pushes onto an rtrb ring, waiting while it is full.
#[inline(always)]
pub fn push_spin<T>(tx: &mut rtrb::Producer<T>, mut value: T) {
    let mut spin = Spin::default();
    loop {
        match tx.push(value) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                value = back;
                spin.wait();
            }
        }
    }
}

/// Pops from an rtrb ring, waiting while it is empty.
#[inline(always)]
pub fn pop_spin<T>(rx: &mut rtrb::Consumer<T>) -> T {
    let mut spin = Spin::default();
    loop {
        match rx.pop() {
            Ok(value) => return value,
            Err(rtrb::PopError::Empty) => spin.wait(),
        }
    }
}

/// umrf: capability over the umrf mailbox, remote free home.
fn umrf_mailbox(pool: &Pool<CpuLocal>, zeroed: bool, messages: u64) -> Duration {
    let (tx, rx) = mailbox::<Cap>(QUEUE);
    two_threads(
        || {
            let lease = pool.attach_slot(0).expect("producer lease");
            move || {
                for i in 0..messages {
                    let mut buf = if zeroed {
                        lease.alloc_zeroed::<u8>(BYTES).unwrap()
                    } else {
                        lease.alloc::<u8>(BYTES).unwrap()
                    };
                    buf[..8].copy_from_slice(&i.to_ne_bytes());
                    tx.send(buf.into_capability()).unwrap();
                }
            }
        },
        move || {
            let lease = pool.attach_slot(1).expect("consumer lease");
            move || {
                let mut sum = 0u64;
                for cap in rx.iter() {
                    let buf = cap.accept(&lease).unwrap();
                    sum = sum.wrapping_add(read_word(&buf));
                }
                black_box(sum);
            }
        },
    )
}

/// umrf: capability over an rtrb ring, remote free home.
fn umrf_rtrb(pool: &Pool<CpuLocal>, messages: u64) -> Duration {
    let (mut tx, mut rx) = RingBuffer::<Cap>::new(QUEUE);
    two_threads(
        || {
            let lease = pool.attach_slot(0).expect("producer lease");
            move || {
                for i in 0..messages {
                    let mut buf = lease.alloc::<u8>(BYTES).unwrap();
                    buf[..8].copy_from_slice(&i.to_ne_bytes());
                    push_spin(&mut tx, buf.into_capability());
                }
            }
        },
        move || {
            let lease = pool.attach_slot(1).expect("consumer lease");
            move || {
                let mut sum = 0u64;
                for _ in 0..messages {
                    let buf = pop_spin(&mut rx).accept(&lease).unwrap();
                    sum = sum.wrapping_add(read_word(&buf));
                }
                black_box(sum);
            }
        },
    )
}

#[inline(always)]
fn peer_box(peer: Peer, zeroed: bool, i: u64) -> PeerBox {
    let mut boxed = if zeroed {
        PeerBox::new_zeroed(peer, BYTES)
    } else {
        PeerBox::new(peer, BYTES)
    };
    boxed.bytes_mut()[..8].copy_from_slice(&i.to_ne_bytes());
    boxed
}

/// A peer allocator's box over crossbeam-channel.
fn peer_crossbeam(peer: Peer, zeroed: bool, messages: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<PeerBox>(QUEUE);
    two_threads(
        || {
            move || {
                for i in 0..messages {
                    tx.send(peer_box(peer, zeroed, i)).unwrap();
                }
            }
        },
        move || {
            move || {
                let mut sum = 0u64;
                for boxed in rx.iter() {
                    sum = sum.wrapping_add(read_word(boxed.bytes()));
                }
                black_box(sum);
            }
        },
    )
}

/// A peer allocator's box over an rtrb ring.
fn peer_rtrb(peer: Peer, zeroed: bool, messages: u64) -> Duration {
    let (mut tx, mut rx) = RingBuffer::<PeerBox>::new(QUEUE);
    two_threads(
        || {
            move || {
                for i in 0..messages {
                    push_spin(&mut tx, peer_box(peer, zeroed, i));
                }
            }
        },
        move || {
            move || {
                let mut sum = 0u64;
                for _ in 0..messages {
                    sum = sum.wrapping_add(read_word(pop_spin(&mut rx).bytes()));
                }
                black_box(sum);
            }
        },
    )
}

/// No allocator: the 4 KiB message is copied into a ring slot and read in place.
fn copy_ring(messages: u64) -> Duration {
    let (mut tx, mut rx) = RingBuffer::<[u8; BYTES]>::new(QUEUE);
    two_threads(
        || {
            let mut message = vec![1u8; BYTES];
            move || {
                for i in 0..messages {
                    message[..8].copy_from_slice(&i.to_ne_bytes());
                    let mut spin = Spin::default();
                    let mut chunk = loop {
                        match tx.write_chunk_uninit(1) {
                            Ok(chunk) => break chunk,
                            Err(_) => spin.wait(),
                        }
                    };
                    let (first, _) = chunk.as_mut_slices();
                    let slot = first[0].as_mut_ptr().cast::<u8>();
                    // SAFETY: `slot` is one uninitialised `[u8; BYTES]` cell of the ring, ours
                    // until the commit; `message` is BYTES long and does not overlap it.
                    unsafe { std::ptr::copy_nonoverlapping(message.as_ptr(), slot, BYTES) };
                    // SAFETY: the one slot of the chunk was fully written just above.
                    unsafe { chunk.commit_all() };
                }
                black_box(&mut message);
            }
        },
        move || {
            move || {
                let mut sum = 0u64;
                for _ in 0..messages {
                    let mut spin = Spin::default();
                    let chunk = loop {
                        match rx.read_chunk(1) {
                            Ok(chunk) => break chunk,
                            Err(_) => spin.wait(),
                        }
                    };
                    sum = sum.wrapping_add(read_word(&chunk.as_slices().0[0]));
                    chunk.commit_all();
                }
                black_box(sum);
            }
        },
    )
}

pub fn run(config: &Config) -> Vec<Row> {
    let pool = umrf_pool(BYTES, 4 * QUEUE, 2);
    let pool = &pool;
    let mut contenders = vec![
        Contender::new("4096", "umrf", move |n| umrf_mailbox(pool, false, n)),
        Contender::new("4096_zeroed", "umrf", move |n| umrf_mailbox(pool, true, n)),
        Contender::new("4096_rtrb", "umrf", move |n| umrf_rtrb(pool, n)),
        Contender::new("4096_copy", "copy_ring", copy_ring),
        Contender::new("4096", "atomic_pingpong", roundtrip::atomic_pingpong).per_iter(2),
    ];
    for peer in Peer::ALL {
        let name = peer.name();
        contenders.extend([
            Contender::new("4096", name, move |n| peer_crossbeam(peer, true, n)),
            Contender::new("4096_rtrb", name, move |n| peer_rtrb(peer, true, n)),
            Contender::new("4096_raw", name, move |n| peer_crossbeam(peer, false, n)),
            Contender::new("4096_rtrb_raw", name, move |n| peer_rtrb(peer, false, n)),
        ]);
    }
    measure_at_least(config, GROUP, contenders, MIN_MESSAGES)
}

pub fn comparisons() -> Vec<Comparison> {
    let strict = {
        let mut c = Comparison::new(GROUP, "4096").variant("strict").peers(
            &["4096", "4096_rtrb", "4096_raw", "4096_rtrb_raw"],
            &PEERS,
            "the fastest of every peer variant: zeroed Box or raw allocation, over crossbeam or rtrb, with system, mimalloc or jemalloc, and the copying ring (`copy_ring`, 4096_copy)",
        );
        c.peers.push(("4096_copy", "copy_ring"));
        c
    };
    vec![
        Comparison::new(GROUP, "4096")
            .variant("as specified")
            .peers(
                &["4096", "4096_rtrb"],
                &PEERS,
                "the fastest `Box<[u8; 4096]>` (allocated and zeroed) over crossbeam-channel or rtrb, with system, mimalloc or jemalloc",
            )
            .limit("4096", "atomic_pingpong")
            .target(Against::Peer, 1.0 / 3.0, "≥ 3× best peer's throughput"),
        strict
            .limit("4096", "atomic_pingpong")
            .target(Against::Peer, 1.0 / 3.0, "≥ 3× best peer's throughput"),
        Comparison::new(GROUP, "4096_zeroed")
            .variant("like for like")
            .peers(
                &["4096", "4096_rtrb"],
                &PEERS,
                "umrf zeroing its block too, against the fastest zeroed `Box<[u8; 4096]>` over crossbeam or rtrb",
            ),
        Comparison::new(GROUP, "4096_rtrb")
            .variant("same channel")
            .peers(
                &["4096_rtrb", "4096_rtrb_raw"],
                &PEERS,
                "every message over the same rtrb ring: the fastest peer allocation, zeroed Box or raw",
            ),
    ]
}
