//! The global-allocator workload (`benches/global/workload.rs`) on jemalloc as the global allocator.
//! Run all contenders with `.ci/global-bench`.

#[path = "global/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    workload::run("jemalloc");
}
