//! Criterion benchmarks of the core paths against their peers, in one run:
//!
//! - `same_slot_pair/<bytes>`: allocate, touch one byte, free, on one thread.
//! - `handoff/4096`: a producer thread allocates 4 KiB and writes 8 bytes, a consumer thread
//!   reads and frees it; umrf sends a capability over its mailbox and the block goes home as a
//!   remote free. The peers send a `Box<[u8; 4096]>` over `crossbeam-channel`
//!   (`crossbeam+<allocator>`): allocated and zero-initialised, as `Box::new([0u8; 4096])`
//!   compiles to, since a `Box<[u8; 4096]>` cannot exist uninitialised. For a stricter bound
//!   they also send a raw, uninitialised 4 KiB allocation (`crossbeam+<allocator>_raw`), which
//!   no safe `Box` can be but which isolates the allocator and channel costs. Like for like:
//!   `umrf_zeroed` (the block cleared with `alloc_zeroed`) against the zeroed `Box`es, `umrf`
//!   (the block as its last owner left it) against the raw allocations.
//!
//! `cargo bench --bench core`. Report ratios from one run: the machine is shared and noisy.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{HANDOFF_BYTES, Peer, PeerBox, QUEUE, VecFreeList, handoff_umrf, pin_to};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umrf::Pool;
use umrf::residency::CpuLocal;

fn same_slot_pair(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("same_slot_pair");
    for bytes in [64usize, 4096, 65536] {
        group.throughput(Throughput::Elements(1));
        let pool = Pool::<CpuLocal>::builder()
            .block_size(bytes)
            .blocks_per_slot(64)
            .slots(1)
            .build()
            .unwrap();
        let lease = pool.attach().unwrap();
        group.bench_with_input(BenchmarkId::new("umrf", bytes), &bytes, |b, &bytes| {
            b.iter(|| {
                let mut buf = lease.alloc::<u8>(bytes).unwrap();
                buf[0] = 1;
                black_box(&mut buf);
            })
        });
        // Every contender's handle goes through `black_box(&mut handle)`, so each one is
        // materialised in memory the same way: the buffer, the box, and here the raw pointer.
        let mut list = VecFreeList::new(bytes, 64);
        group.bench_with_input(BenchmarkId::new("vec_free_list", bytes), &bytes, |b, _| {
            b.iter(|| {
                let mut block = list.pop();
                // SAFETY: the block is one of the list's, `bytes` long.
                unsafe { block.write(1) };
                black_box(&mut block);
                list.push(block);
            })
        });
        for peer in Peer::ALL {
            group.bench_with_input(BenchmarkId::new(peer.name(), bytes), &bytes, |b, &bytes| {
                b.iter(|| {
                    let mut boxed = PeerBox::new(peer, bytes);
                    boxed.bytes_mut()[0] = 1;
                    black_box(&mut boxed);
                })
            });
        }
    }
    group.finish();
}

/// Producer/consumer with a peer allocator over crossbeam-channel: a `Box<[u8; 4096]>`
/// (zero-initialised) when `zeroed`, else a raw allocation.
fn handoff_peer(peer: Peer, zeroed: bool, messages: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<PeerBox>(QUEUE);
    let consumer = std::thread::spawn(move || {
        pin_to(1);
        let mut sum = 0u64;
        for boxed in rx.iter() {
            sum += u64::from_ne_bytes(boxed.bytes()[..8].try_into().unwrap());
        }
        sum
    });
    pin_to(0);
    let start = Instant::now();
    for i in 0..messages {
        let mut boxed = if zeroed {
            PeerBox::new_zeroed(peer, HANDOFF_BYTES)
        } else {
            PeerBox::new(peer, HANDOFF_BYTES)
        };
        boxed.bytes_mut()[..8].copy_from_slice(&i.to_ne_bytes());
        tx.send(boxed).unwrap();
    }
    drop(tx);
    black_box(consumer.join().unwrap());
    start.elapsed()
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements(1));
    for (zeroed, name) in [(false, "umrf"), (true, "umrf_zeroed")] {
        group.bench_function(BenchmarkId::new(name, HANDOFF_BYTES), |b| {
            b.iter_custom(|n| handoff_umrf(Pool::builder(), zeroed, n))
        });
    }
    for peer in Peer::ALL {
        for (zeroed, suffix) in [(true, ""), (false, "_raw")] {
            let name = format!("crossbeam+{}{suffix}", peer.name());
            group.bench_function(BenchmarkId::new(name, HANDOFF_BYTES), |b| {
                b.iter_custom(|n| handoff_peer(peer, zeroed, n))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = same_slot_pair, handoff
}
criterion_main!(benches);
