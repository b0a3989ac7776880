// I2: a block's residency is part of its type. A function that needs huge-page memory does
// not accept a buffer from a CpuLocal pool.
use umrf::residency::{CpuLocal, Hugepage};
use umrf::{Pool, SharedBuffer};

fn needs_hugepages(_buf: SharedBuffer<f32, Hugepage>) {}

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let buf = lease.alloc::<f32>(4).unwrap();
    needs_hugepages(buf);
}
