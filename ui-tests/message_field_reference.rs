// I3: a message must own its data; a reference would let the receiver read memory the sender
// still owns. The derive names the field.
#[derive(umrf::Message)]
struct Borrowed<'a> {
    header: u32,
    payload: &'a [u8],
}

fn main() {}
