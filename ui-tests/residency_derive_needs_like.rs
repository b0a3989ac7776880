// I2: a user residency must say which built-in strategy obtains its memory.
#[derive(umrf::Residency)]
struct Mystery;

fn main() {}
