// The `umrf` attribute names umrf's path and nothing else; a misspelt key says what it takes.
#[derive(umrf::Message)]
#[umrf(krate = "umrf")]
struct Job {
    id: u64,
}

fn main() {}
