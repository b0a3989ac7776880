// I1: a device mapping gives the device an address, and the CPU no access: it does not deref
// to the data.
use umrf::coherence::FromDevice;
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let mapping = lease.alloc_zeroed::<u8>(8).unwrap().map_for_device::<FromDevice>().unwrap();
    let first = mapping[0];
    let _ = (first, mapping.unmap());
}
