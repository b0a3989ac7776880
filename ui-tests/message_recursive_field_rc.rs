// I3: a recursive message is still checked field by field: an `Rc` beside the recursion is
// refused at its field.
use std::rc::Rc;

#[derive(umrf::Message)]
struct Node {
    next: Option<Box<Node>>,
    shared: Rc<u8>,
}

fn main() {}
