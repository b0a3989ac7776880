//! The global-allocator workload (`benches/global/workload.rs`) on mimalloc as the global allocator.
//! Run all contenders with `.ci/global-bench`.

#[path = "global/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    workload::run("mimalloc");
}
