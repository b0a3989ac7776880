//! Memory access patterns over a 1 GiB buffer of one pool slot, shared by the page-size
//! benchmarks (`benches/pages.rs`, and the `pages` group of `benches/compare.rs`).

use umrf::residency::Residency;
use umrf::{LocalPool, Pool, PoolBuilder, SharedBuffer};

pub const GIB: usize = 1 << 30;
/// Reads per call of [`random_reads`].
pub const READS: u64 = 1 << 16;
/// Dependent reads per call of [`random_chase`].
pub const CHASES: u64 = 1 << 14;

/// An access pattern: reads over the buffer, advancing the seed; returns something to keep.
pub type Pattern = fn(&[u64], &mut u64) -> u64;

/// One slot of one 1 GiB block, for CPU 0.
pub fn one_gib<R: Residency>() -> PoolBuilder<R> {
    Pool::<R>::builder()
        .name("bench-1g")
        .block_size(GIB)
        .blocks_per_slot(1)
        .cpus([0])
}

/// The slot's whole block as `u64`s, each holding its own index (what [`random_chase`]
/// follows), every page written.
pub fn indexed_gib<R: Residency>(lease: &LocalPool<R>) -> SharedBuffer<u64, R> {
    let mut buf = lease.alloc::<u64>(GIB / 8).expect("the 1 GiB block");
    for (i, x) in buf.iter_mut().enumerate() {
        *x = i as u64;
    }
    buf
}

/// Sums `READS` elements at pseudo-random indices (xorshift64*; `len` a power of two).
#[inline(never)]
pub fn random_reads(data: &[u64], seed: &mut u64) -> u64 {
    let mask = data.len() as u64 - 1;
    let mut x = *seed;
    let mut sum = 0u64;
    for _ in 0..READS {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let i = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 20) & mask;
        // `i <= mask < data.len()`: the bounds check never fails, and is cheap next
        // to the cache and TLB miss of each load.
        sum = sum.wrapping_add(data[i as usize]);
    }
    *seed = x;
    sum
}

/// Follows `CHASES` dependent reads: each index mixes the value just read (`data[i] == i`)
/// with a step counter, so no read can start before the previous one ends, and the walk never
/// falls into a short cycle.
#[inline(never)]
pub fn random_chase(data: &[u64], seed: &mut u64) -> u64 {
    let mask = data.len() as u64 - 1;
    let mut i = *seed & mask;
    let mut step = *seed;
    for _ in 0..CHASES {
        let value = data[i as usize];
        step = step.wrapping_add(0x9e37_79b9_7f4a_7c15);
        i = ((value ^ step).wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 20) & mask;
    }
    *seed = step;
    i
}
