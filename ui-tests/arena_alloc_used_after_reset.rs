// I4: `Arena::reset` takes `&mut self`, so no allocation can be used after the arena was reset
// (its memory is handed out again).
use umrf::{Arena, Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let mut arena = Arena::new_in(&lease, 64).unwrap();
    let scratch = arena.alloc::<u8>(8).unwrap();
    arena.reset();
    scratch[0] = 1;
}
