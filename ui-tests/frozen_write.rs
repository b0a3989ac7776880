// I1 (single writer, many readers): a frozen block is read-only; no handle can write it.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let mut frozen = lease.alloc_zeroed::<u8>(8).unwrap().freeze();
    frozen[0] = 1;
}
