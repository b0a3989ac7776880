//! The global-allocator workload (`benches/global/workload.rs`) on system as the global allocator.
//! Run all contenders with `.ci/global-bench`.

#[path = "global/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: std::alloc::System = std::alloc::System;

fn main() {
    workload::run("system");
}
