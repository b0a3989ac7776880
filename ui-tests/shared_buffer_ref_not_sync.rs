// I3: a SharedBuffer is !Sync, so not even a shared reference to it reaches another thread.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let buf = lease.alloc::<u8>(8).unwrap();
    let shared = &buf;
    std::thread::scope(|s| {
        s.spawn(|| shared[0]);
    });
}
