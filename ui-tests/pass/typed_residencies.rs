// Happy path: residencies in signatures, a custom residency, generic code over any residency.
use umrf::residency::{Hugepage, Node0, NumaNode, Residency};
use umrf::typenum::U0;
use umrf::{Pool, SharedBuffer};

#[derive(umrf::Residency)]
#[residency(like = Hugepage, name = "staging")]
struct Staging;

fn sum<R: Residency>(buf: &SharedBuffer<u32, R>) -> u32 {
    buf.iter().sum()
}

fn node0_only(_buf: &SharedBuffer<u32, NumaNode<U0>>) {}

fn main() {
    assert_eq!(Staging::NAME, "staging");
    assert_eq!(<Node0 as Residency>::STRATEGY, <NumaNode<U0> as Residency>::STRATEGY);
    let _ = node0_only;
    let _ = sum::<Staging>;
    let _ = Pool::<Staging>::builder();
}
