// I3: a raw pointer could reach memory another thread owns; messages never carry one.
#[derive(umrf::Message)]
struct Sneaky {
    at: *mut u8,
}

fn main() {}
