// I4: no use after free. A slice borrowed from a buffer cannot outlive it, so its block cannot
// be read after it went home.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let buf = lease.alloc::<u8>(8).unwrap();
    let view: &[u8] = &buf;
    drop(buf);
    println!("{}", view[0]);
}
