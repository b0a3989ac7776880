// I3: mailboxes carry only Transferable messages; an `Rc` is shared state and is refused.
use std::rc::Rc;

fn main() {
    let (_tx, _rx) = umrf::mailbox::<Rc<u32>>(4);
}
