// I3: a LocalPool is one thread's exclusive lease on one slot; it cannot move to another
// thread (it is !Send), so the slot's free list is only ever touched by its owner.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    std::thread::spawn(move || {
        let _buf = lease.alloc::<u8>(1);
    });
}
