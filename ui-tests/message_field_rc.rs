// I3: `Rc` shares a counter between owners without atomics; a message holding one would share
// mutable state across cores. The derive rejects it at the field.
use std::rc::Rc;

#[derive(umrf::Message)]
struct Job {
    id: u64,
    shared: Rc<Vec<u8>>,
}

fn main() {}
