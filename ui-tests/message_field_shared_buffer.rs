// I3: a SharedBuffer is bound to its thread; to send it, turn it into a Capability first.
use umrf::residency::CpuLocal;
use umrf::SharedBuffer;

#[derive(umrf::Message)]
struct Frame {
    pixels: SharedBuffer<u8, CpuLocal>,
}

fn main() {}
