// I1: a capability is the single owner of its block in flight; cloning it would make two.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let cap = lease.alloc::<u8>(8).unwrap().into_capability();
    let _twin = cap.clone();
}
