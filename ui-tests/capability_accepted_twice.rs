// I1 and I4: `accept` consumes the capability; the same block cannot become two buffers.
use umrf::residency::CpuLocal;
use umrf::{Capability, LocalPool};

fn twice(cap: Capability<u8, CpuLocal>, lease: &LocalPool<CpuLocal>) {
    let _a = cap.accept(lease);
    let _b = cap.accept(lease);
}

fn main() {}
