// I2: residency markers are zero-sized: a marker with fields is refused.
#[derive(umrf::Residency)]
#[residency(like = umrf::residency::CpuLocal)]
struct Heavy {
    bytes: [u8; 16],
}

fn main() {}
