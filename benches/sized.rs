//! Criterion benchmarks of the size-class paths against their peers, in one run:
//!
//! - `mixed/8-4096` and `mixed/8-128`: the shapes of Intel UMF's allocator benchmark. 1024
//!   live allocations; each iteration frees one and allocates a new one of a size drawn
//!   uniformly from the range (a fixed pseudo-random sequence, the same for every contender),
//!   touching its first byte. `umrf_sized` is a `SizedLease` through its `Allocator`
//!   (`allocate`/`deallocate`), `umrf_global` the `GlobalPool`'s raw operations called directly;
//!   `system`, `mimalloc` and `jemalloc` are their `GlobalAlloc` called directly.
//! - `class_lookup/64`: allocate, touch one byte, free a 64-byte block: a `LocalPool` of one
//!   64-byte pool (today's single-pool fast path) against a `SizedLease` (the same block, found
//!   through the class computation) and its `Allocator` path. The difference is the cost of
//!   the lookup.
//!
//! `cargo bench --bench sized -- --warm-up-time 1 --measurement-time 3`. Report ratios from
//! one run: the machine is shared and noisy.

mod common;

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use allocator_api2::alloc::Allocator;
use common::{Peer, pin_to};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umrf::residency::CpuLocal;
use umrf::sized::SizedPool;
use umrf::{GlobalPool, Pool};

/// Live allocations in the mixed benchmarks.
const LIVE: usize = 1024;
/// Length of the size sequence (a power of two).
const SEQUENCE: usize = 1 << 16;

static GLOBAL: GlobalPool<CpuLocal> = GlobalPool::new();

/// A fixed sequence of sizes uniform in `lo..=hi` (xorshift, the same for every contender).
fn sizes(lo: usize, hi: usize) -> Vec<usize> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..SEQUENCE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + (x % (hi - lo + 1) as u64) as usize
        })
        .collect()
}

/// An allocator under test: allocate and free raw bytes.
trait Raw {
    fn alloc(&self, layout: Layout) -> NonNull<u8>;
    /// # Safety
    /// `ptr` came from `alloc(layout)` and is freed once.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout);
}

impl Raw for Peer {
    #[inline(always)]
    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        NonNull::new(Peer::alloc(*self, layout)).expect("peer allocation")
    }
    #[inline(always)]
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.dealloc(ptr.as_ptr(), layout) }
    }
}

struct Sized<'a>(&'a umrf::sized::SizedLease<CpuLocal>);

impl Raw for Sized<'_> {
    #[inline(always)]
    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        self.0.allocate(layout).expect("umrf allocation").cast()
    }
    #[inline(always)]
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

struct Global;

impl Raw for Global {
    #[inline(always)]
    fn alloc(&self, layout: Layout) -> NonNull<u8> {
        NonNull::new(GLOBAL.allocate(layout.size(), layout.align())).expect("umrf allocation")
    }
    #[inline(always)]
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { std::alloc::GlobalAlloc::dealloc(&GLOBAL, ptr.as_ptr(), layout) }
    }
}

/// Runs the churn with `raw`: `LIVE` allocations, one freed and one made per iteration.
fn churn<A: Raw>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    case: &str,
    raw: &A,
    seq: &[usize],
) {
    let layout = |size: usize| Layout::from_size_align(size, 8).unwrap();
    let mut live: Vec<(NonNull<u8>, Layout)> = (0..LIVE)
        .map(|i| {
            let l = layout(seq[i]);
            (raw.alloc(l), l)
        })
        .collect();
    let mut at = LIVE;
    c.bench_function(BenchmarkId::new(name, case), |b| {
        b.iter(|| {
            let slot = at % LIVE;
            let (old, old_layout) = live[slot];
            // SAFETY: allocated by `raw` with this layout, freed once.
            unsafe { raw.free(old, old_layout) };
            let l = layout(seq[at % SEQUENCE]);
            let fresh = raw.alloc(l);
            // SAFETY: at least one byte.
            unsafe { fresh.as_ptr().write(1) };
            live[slot] = (black_box(fresh), l);
            at += 1;
        })
    });
    for (ptr, l) in live {
        // SAFETY: each live allocation, freed once.
        unsafe { raw.free(ptr, l) };
    }
}

fn mixed(c: &mut Criterion) {
    pin_to(0);
    let pool = SizedPool::<CpuLocal>::builder()
        .largest_class(4096)
        .bytes_per_class(1 << 20)
        .rows(1)
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    let mut group = c.benchmark_group("mixed");
    group.throughput(Throughput::Elements(1));
    for (lo, hi, case) in [(8, 4096, "8-4096"), (8, 128, "8-128")] {
        let seq = sizes(lo, hi);
        churn(&mut group, "umrf_sized", case, &Sized(&lease), &seq);
        churn(&mut group, "umrf_global", case, &Global, &seq);
        for peer in Peer::ALL {
            churn(&mut group, peer.name(), case, &peer, &seq);
        }
    }
    group.finish();
}

fn class_lookup(c: &mut Criterion) {
    pin_to(0);
    let mut group = c.benchmark_group("class_lookup");
    group.throughput(Throughput::Elements(1));
    let single = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(64)
        .slots(1)
        .build()
        .unwrap();
    let lease = single.attach().unwrap();
    group.bench_function(BenchmarkId::new("single_pool", 64), |b| {
        b.iter(|| {
            let mut buf = lease.alloc::<u8>(black_box(64)).unwrap();
            buf[0] = 1;
            black_box(&mut buf);
        })
    });
    let sized = SizedPool::<CpuLocal>::builder()
        .largest_class(4096)
        .rows(1)
        .build()
        .unwrap();
    let sized_lease = sized.attach().unwrap();
    group.bench_function(BenchmarkId::new("sized_lease", 64), |b| {
        b.iter(|| {
            let mut buf = sized_lease.alloc::<u8>(black_box(64)).unwrap();
            buf[0] = 1;
            black_box(&mut buf);
        })
    });
    let alloc = &sized_lease;
    group.bench_function(BenchmarkId::new("sized_allocator", 64), |b| {
        b.iter(|| {
            let layout = Layout::from_size_align(black_box(64), 8).unwrap();
            let block = alloc.allocate(layout).unwrap().cast::<u8>();
            // SAFETY: at least one byte; freed once with its layout.
            unsafe { block.as_ptr().write(1) };
            // SAFETY: as above.
            unsafe { alloc.deallocate(black_box(block), layout) };
        })
    });
    group.finish();
}

criterion_group!(benches, class_lookup, mixed);
criterion_main!(benches);
