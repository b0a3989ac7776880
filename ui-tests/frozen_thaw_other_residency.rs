// I2: a frozen block thaws only into a buffer of its own residency: a CpuLocal block never
// becomes a Hugepage buffer.
use umrf::residency::{CpuLocal, Hugepage};
use umrf::{Frozen, LocalPool, SharedBuffer};

fn thaw(frozen: Frozen<u8, CpuLocal>, lease: &LocalPool<Hugepage>) -> SharedBuffer<u8, Hugepage> {
    frozen.try_thaw(lease).ok().unwrap()
}

fn main() {}
