//! Criterion benchmarks of `umrf::Arena` against `bumpalo::Bump`, in one run:
//!
//! - `arena_zeroed/<bytes>`: allocate `bytes` bytes, zero-filled (`alloc_zeroed::<u8>` against
//!   `Bump::alloc_slice_fill_copy(bytes, 0u8)`), touch one byte; every 256 allocations (and
//!   whenever the next one would not fit) the arena is reset, so the reset's cost is included,
//!   amortised, as it is in a real request loop.
//! - `arena_alloc/<bytes>`: the same without initialising the bytes (`alloc::<u8>` against
//!   `Bump::alloc_layout`), which isolates the bump itself.
//! - `arena_reset/<allocations>`: `allocations` allocations of 64 bytes, then one reset.
//!
//! Both arenas get the same capacity up front (bumpalo's chunk is preallocated with
//! `Bump::with_capacity`, so neither calls the system allocator while measured).
//!
//! `cargo bench --bench arena`. Report ratios from one run: the machine is shared and noisy.

mod common;

use std::alloc::Layout;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bumpalo::Bump;
use common::{one_block_lease, pin_to};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umrf::residency::CpuLocal;
use umrf::{Arena, LocalPool};

/// Allocations between two resets.
const BATCH: usize = 256;
/// Arena capacity: one batch of the largest size.
const CAPACITY: usize = BATCH * 4096;

/// An umrf arena and a bumpalo arena of the same capacity, both allocated up front.
fn contenders() -> (LocalPool<CpuLocal>, Arena<CpuLocal>, Bump) {
    let lease = one_block_lease(CAPACITY);
    let arena = Arena::new_in(&lease, CAPACITY).unwrap();
    (lease, arena, Bump::with_capacity(CAPACITY))
}

/// Times `$iters` runs of `$alloc`, with `$reset` after every `BATCH` of them (a macro, not a
/// function taking closures: the allocation borrows the arena shared, the reset exclusively).
macro_rules! batched {
    ($iters:expr, $alloc:expr, $reset:expr) => {{
        let start = Instant::now();
        let mut left: u64 = $iters;
        while left > 0 {
            let n = left.min(BATCH as u64);
            for _ in 0..n {
                $alloc;
            }
            $reset;
            left -= n;
        }
        start.elapsed()
    }};
}

/// Benchmarks `$umrf` against `$bumpalo` (each an allocation, then its arena's reset) under
/// the id `<contender>/$bytes`.
macro_rules! pair {
    ($group:expr, $bytes:expr, umrf: $umrf:expr, $reset:expr; bumpalo: $bumpalo:expr, $breset:expr) => {{
        $group.bench_function(BenchmarkId::new("umrf", $bytes), |b| {
            b.iter_custom(|iters| batched!(iters, $umrf, $reset))
        });
        $group.bench_function(BenchmarkId::new("bumpalo", $bytes), |b| {
            b.iter_custom(|iters| batched!(iters, $bumpalo, $breset))
        });
    }};
}

fn arena_zeroed(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("arena_zeroed");
    group.throughput(Throughput::Elements(1));
    let (_lease, mut arena, mut bump) = contenders();
    for bytes in [64usize, 4096] {
        pair!(group, bytes,
            umrf: {
                let s = arena.alloc_zeroed::<u8>(black_box(bytes)).unwrap();
                s[0] = 1;
                black_box(s);
            }, arena.reset();
            bumpalo: {
                let s = bump.alloc_slice_fill_copy(black_box(bytes), 0u8);
                s[0] = 1;
                black_box(s);
            }, bump.reset()
        );
    }
    group.finish();
}

fn arena_alloc(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("arena_alloc");
    group.throughput(Throughput::Elements(1));
    let (_lease, mut arena, mut bump) = contenders();
    for bytes in [64usize, 4096] {
        pair!(group, bytes,
            umrf: {
                let s = arena.alloc::<u8>(black_box(bytes)).unwrap();
                s[0] = 1;
                black_box(s);
            }, arena.reset();
            bumpalo: {
                let layout = Layout::from_size_align(black_box(bytes), 1).unwrap();
                let mut p = bump.alloc_layout(layout);
                // SAFETY: `p` is a fresh allocation of `bytes` >= 1 bytes.
                unsafe { p.as_ptr().write(1) };
                black_box(&mut p);
            }, bump.reset()
        );
    }
    group.finish();
}

fn arena_reset(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("arena_reset");
    let (_lease, mut arena, mut bump) = contenders();
    for allocations in [16usize, 1024] {
        group.throughput(Throughput::Elements(allocations as u64));
        group.bench_with_input(
            BenchmarkId::new("umrf", allocations),
            &allocations,
            |b, &n| {
                b.iter(|| {
                    for _ in 0..n {
                        black_box(arena.alloc::<u8>(64).unwrap());
                    }
                    arena.reset();
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("bumpalo", allocations),
            &allocations,
            |b, &n| {
                b.iter(|| {
                    for _ in 0..n {
                        black_box(bump.alloc_layout(Layout::from_size_align(64, 1).unwrap()));
                    }
                    bump.reset();
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = arena_zeroed, arena_alloc, arena_reset
}
criterion_main!(benches);
