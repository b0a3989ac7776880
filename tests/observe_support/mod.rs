//! Helpers shared by the observability tests (provenance, events, metrics).

#![allow(dead_code)] // each test binary uses a subset

use umrf::residency::CpuLocal;
use umrf::{Pool, PoolBuilder};

/// A builder for a named `CpuLocal` pool of `slots` slots of `blocks` blocks of `block_size`
/// bytes.
pub fn builder(
    name: &str,
    block_size: usize,
    blocks: usize,
    slots: usize,
) -> PoolBuilder<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .name(name)
        .block_size(block_size)
        .blocks_per_slot(blocks)
        .slots(slots)
}

/// As [`builder`], built.
pub fn pool(name: &str, block_size: usize, blocks: usize, slots: usize) -> Pool<CpuLocal> {
    builder(name, block_size, blocks, slots).build().unwrap()
}
