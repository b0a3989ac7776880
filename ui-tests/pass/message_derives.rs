// Happy path: #[derive(Message)] on structs, tuple structs, enums and generics.
use umrf::residency::CpuLocal;
use umrf::{Capability, Message, Transferable};

#[derive(Message)]
struct Named {
    id: u64,
    name: String,
    tags: Vec<(u8, char)>,
    data: Option<Capability<u8, CpuLocal>>,
}

#[derive(Message)]
struct Tuple(u32, Box<[f64]>);

#[derive(Message)]
struct Unit;

#[derive(Message)]
enum Command {
    Stop,
    Resize { width: u32, height: u32 },
    Data(Capability<f32, CpuLocal>),
}

#[derive(Message)]
struct Envelope<T> {
    seq: u64,
    body: T,
}

fn transferable<T: Transferable>() {}

fn main() {
    transferable::<Named>();
    transferable::<Tuple>();
    transferable::<Unit>();
    transferable::<Command>();
    transferable::<Envelope<Command>>();
    transferable::<Envelope<Vec<Envelope<u8>>>>();
}
