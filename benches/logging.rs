//! What ownership logging costs, in one run: the same hot paths on a pool built without
//! logging (`off`) and with it (`ring`: per-slot rings only), next to the physical limit of a
//! same-thread free list (`vec_free_list`), so each can be read as a ratio.
//!
//! - `logging_same_slot/4096`: allocate 4 KiB, touch one byte, free, on one thread.
//! - `logging_handoff/4096`: a producer allocates and sends a capability, a consumer on another
//!   core accepts, reads and frees it (a remote free home).
//!
//! `cargo bench --bench logging`. The claim "logging off costs nothing measurable" is checked by
//! comparing `off` against a build without the hooks (`benches/core.rs` on the parent commit,
//! as a ratio to `vec_free_list` in each run) and by `off` against `ring` here.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{VecFreeList, handoff_umrf, pin_to};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umrf::events::LogConfig;
use umrf::residency::CpuLocal;
use umrf::{Pool, PoolBuilder};

const BYTES: usize = 4096;

/// The two configurations compared: no logging, and rings of 64 Ki events per slot.
fn configure(builder: PoolBuilder<CpuLocal>, logging: bool) -> PoolBuilder<CpuLocal> {
    if logging {
        builder.log_ownership(LogConfig::new().ring_capacity(1 << 16))
    } else {
        builder
    }
}

const MODES: [(&str, bool); 2] = [("off", false), ("ring", true)];

fn same_slot(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("logging_same_slot");
    group.throughput(Throughput::Elements(1));
    for (mode, logging) in MODES {
        let pool = configure(Pool::builder(), logging)
            .block_size(BYTES)
            .blocks_per_slot(64)
            .slots(1)
            .build()
            .unwrap();
        let lease = pool.attach().unwrap();
        group.bench_function(BenchmarkId::new(mode, BYTES), |b| {
            b.iter(|| {
                let mut buf = lease.alloc::<u8>(BYTES).unwrap();
                buf[0] = 1;
                black_box(&mut buf);
            })
        });
    }
    let mut list = VecFreeList::new(BYTES, 64);
    group.bench_function(BenchmarkId::new("vec_free_list", BYTES), |b| {
        b.iter(|| {
            let mut block = list.pop();
            // SAFETY: the block is one of the list's, `BYTES` long.
            unsafe { block.write(1) };
            black_box(&mut block);
            list.push(block);
        })
    });
    group.finish();
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("logging_handoff");
    group.throughput(Throughput::Elements(1));
    for (mode, logging) in MODES {
        group.bench_function(BenchmarkId::new(mode, BYTES), |b| {
            b.iter_custom(|n| handoff_umrf(configure(Pool::builder(), logging), false, n))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = same_slot, handoff
}
criterion_main!(benches);
