// I2: `NumaNode<U0>` and `NumaNode<U1>` are different types: memory bound to node 0 cannot be
// passed where node-1 memory is required.
use umrf::residency::NumaNode;
use umrf::typenum::{U0, U1};
use umrf::SharedBuffer;

fn on_node1(_buf: SharedBuffer<u8, NumaNode<U1>>) {}

fn forward(buf: SharedBuffer<u8, NumaNode<U0>>) {
    on_node1(buf);
}

fn main() {}
