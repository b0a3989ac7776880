// I2: a custom marker cannot pass itself off as a built-in one by taking its name.
#[derive(umrf::Residency)]
#[residency(like = umrf::residency::Hugepage, name = "CpuLocal")]
struct Impostor;

fn main() {}
