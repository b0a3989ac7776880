// Blocks hold plain bytes: element types must be `bytemuck::Pod` (no pointers, no drop glue),
// so a block can be reused, sent and freed without running any user code.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let _strings = lease.alloc::<String>(2);
}
