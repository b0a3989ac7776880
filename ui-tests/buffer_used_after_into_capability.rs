// I1 and I4: `into_capability` consumes the buffer; the sender cannot keep touching memory
// whose ownership it gave away.
use umrf::{Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let mut buf = lease.alloc::<u8>(8).unwrap();
    let cap = buf.into_capability();
    buf[0] = 1;
    drop(cap);
}
