// I4: an arena allocation is a borrow of the arena: it cannot outlive the arena, whose blocks
// go home when it is dropped.
use umrf::{Arena, Pool, residency::CpuLocal};

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build().unwrap();
    let lease = pool.attach().unwrap();
    let kept: &mut [u32];
    {
        let arena = Arena::new_in(&lease, 64).unwrap();
        kept = arena.alloc::<u32>(4).unwrap();
    }
    kept[0] = 1;
}
