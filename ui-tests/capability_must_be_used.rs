// I1: a capability owns a block; dropping one by accident returns the block at once, which is
// almost always a bug. It is `#[must_use]`, so with warnings denied this does not compile.
#![deny(unused_must_use)]
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    lease.alloc::<u8>(8).unwrap().into_capability();
}
