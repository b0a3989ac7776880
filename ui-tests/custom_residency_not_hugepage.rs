// I2: a user residency that borrows the Hugepage strategy is still its own type: code that
// asks for `Hugepage` memory does not take `Staging` memory.
use umrf::residency::Hugepage;
use umrf::SharedBuffer;

#[derive(umrf::Residency)]
#[residency(like = Hugepage, name = "staging")]
struct Staging;

fn wants_hugepage(_buf: SharedBuffer<u8, Hugepage>) {}

fn forward(buf: SharedBuffer<u8, Staging>) {
    wants_hugepage(buf);
}

fn main() {}
