// I2: a capability is accepted only by a lease of the same residency: a CpuLocal block never
// becomes a Hugepage buffer.
use umrf::residency::{CpuLocal, Hugepage};
use umrf::{Capability, LocalPool};

fn receive(cap: Capability<u8, CpuLocal>, lease: &LocalPool<Hugepage>) {
    let _buf = cap.accept(lease);
}

fn main() {}
