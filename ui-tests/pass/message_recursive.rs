// Happy path: recursive messages derive, the generated impl never has to prove itself (no
// E0275), and a crate that re-exports umrf names its path with `#[umrf(crate = ...)]`.
use umrf::residency::CpuLocal;
use umrf::{Capability, Message, Transferable};

#[derive(Message)]
struct Node {
    value: u64,
    next: Option<Box<Node>>,
}

#[derive(Message)]
struct Tree {
    data: Option<Capability<u8, CpuLocal>>,
    children: Vec<Self>,
}

#[derive(Message)]
enum Expr {
    Literal(i64),
    Add(Box<Expr>, Box<Expr>),
}

#[derive(Message)]
struct List<T> {
    head: T,
    tail: Option<Box<List<T>>>,
}

// Mutual recursion: the field that leads back through the other type is marked.
#[derive(Message)]
struct Ping {
    #[umrf(recursive)]
    pong: Option<Box<Pong>>,
}

#[derive(Message)]
struct Pong {
    ping: Option<Box<Ping>>,
}

mod reexport {
    pub use umrf as inner;
}

#[derive(Message)]
#[umrf(crate = reexport::inner)]
struct ViaPath {
    id: u32,
}

#[derive(umrf::Residency)]
#[umrf(crate = "reexport::inner")]
#[residency(like = CpuLocal)]
struct Local;

// The path is the one used: this message implements a look-alike trait, not umrf's.
mod lookalike {
    /// # Safety
    /// Test-only stand-in.
    pub unsafe trait Transferable {}
    // SAFETY: test-only stand-in for umrf's trait.
    unsafe impl Transferable for u32 {}
}

#[derive(Message)]
#[umrf(crate = "crate::lookalike")]
struct ViaString {
    id: u32,
}

fn transferable<T: Transferable>() {}
fn lookalike_transferable<T: lookalike::Transferable>() {}

fn main() {
    transferable::<Node>();
    transferable::<Tree>();
    transferable::<Expr>();
    transferable::<List<String>>();
    transferable::<List<Capability<f32, CpuLocal>>>();
    transferable::<Ping>();
    transferable::<Pong>();
    transferable::<ViaPath>();
    lookalike_transferable::<ViaString>();
    assert_eq!(<Local as umrf::residency::Residency>::NAME, "Local");
    let list = List { head: 1u8, tail: Some(Box::new(List { head: 2, tail: None })) };
    let (tx, rx) = umrf::mailbox::<List<u8>>(1);
    tx.send(list).unwrap();
    let got = rx.recv().unwrap();
    assert_eq!((got.head, got.tail.map(|t| t.head)), (1, Some(2)));
    let _ = Node { value: 0, next: None }.value;
    let _ = Tree { data: None, children: Vec::new() }.children;
    let _ = (Expr::Literal(1), Ping { pong: None }.pong, Pong { ping: None }.ping);
    let _ = (ViaPath { id: 1 }.id, ViaString { id: 2 }.id);
    if let Expr::Add(a, b) = Expr::Add(Box::new(Expr::Literal(1)), Box::new(Expr::Literal(2))) {
        drop((a, b));
    }
}
