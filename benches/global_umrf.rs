//! The global-allocator workload (`benches/global/workload.rs`) on umrf as the global allocator.
//! Run all contenders with `.ci/global-bench`.

#[path = "global/workload.rs"]
mod workload;

#[global_allocator]
static ALLOC: umrf::GlobalPool<umrf::residency::CpuLocal> = umrf::GlobalPool::new();

fn main() {
    workload::run("umrf");
    let stats = ALLOC.stats();
    let sized = stats.sized.expect("initialised");
    println!(
        "{{\"umrf_stats\":{{\"allocations\":{},\"system_allocations\":{},\"internal_allocations\":{},\"exhausted\":{},\"large\":{}}}}}",
        sized.allocations(),
        stats.system_allocations,
        stats.internal_allocations,
        sized.exhausted(),
        sized.large.allocations
    );
}
