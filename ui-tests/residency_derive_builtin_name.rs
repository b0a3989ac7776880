// I2: a custom marker cannot pass itself off as a built-in one by taking its name.
use umrf::residency::Hugepage;

#[derive(umrf::Residency)]
#[residency(like = Hugepage, name = "CpuLocal")]
struct Impostor;

fn main() {}
