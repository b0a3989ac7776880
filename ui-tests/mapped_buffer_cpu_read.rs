// I1: mapping a buffer for a device moves it into the mapping; the CPU cannot read it while
// the device may be writing.
use umrf::coherence::FromDevice;
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let buf = lease.alloc_zeroed::<u8>(8).unwrap();
    let mapping = buf.map_for_device::<FromDevice>().unwrap();
    let first = buf[0];
    drop((mapping, first));
}
