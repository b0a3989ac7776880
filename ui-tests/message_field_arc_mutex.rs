// I3: `Arc<Mutex<_>>` is shared mutable state by design; umrf messages move ownership instead.
use std::sync::{Arc, Mutex};

#[derive(umrf::Message)]
struct Update {
    counter: Arc<Mutex<u64>>,
}

fn main() {}
