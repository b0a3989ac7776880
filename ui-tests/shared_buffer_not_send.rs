// I3: a SharedBuffer stays on the thread that owns it (it is !Send). Ownership crosses threads
// only as a Capability.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let buf = lease.alloc::<u8>(8).unwrap();
    std::thread::spawn(move || {
        let _first = buf[0];
    });
}
