// I1 and I4: `unmap` consumes the mapping; the block cannot be handed back twice.
use umrf::coherence::ToDevice;
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let mapping = lease.alloc_zeroed::<u8>(8).unwrap().map_for_device::<ToDevice>().unwrap();
    let first = mapping.unmap();
    let second = mapping.unmap();
    drop((first, second));
}
