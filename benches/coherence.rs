//! The cost of software cache coherence for device mappings, by page count and by allocation
//! size (the experiment of `docs/COHERENCE.md`).
//!
//! Each measured iteration first writes every byte of the buffer (so every line is dirty in
//! the cache, as after the CPU prepared data for a device), then times, through the public API:
//!
//! - `coherence_pages/clean/<method>/<pages>` and `coherence_size/clean/<method>/<bytes>`:
//!   `map_for_device_with::<ToDevice>` + `unmap`, i.e. cleaning every line (a `ToDevice`
//!   unmap does nothing);
//! - `coherence_pages/roundtrip/<method>/<pages>`: `map_for_device_with::<Bidirectional>` +
//!   `unmap`, i.e. a clean, then a clean and invalidate.
//!
//! `<method>` is `hardware` (fences only, the x86-64 default), or one instruction forced with
//! `Coherence::SoftwareWith(LineMethod::using(..))`: `clflush`, `clflushopt`, `clwb` (each
//! where the CPU has it). The write that dirties the buffer is not timed.
//!
//! `cargo bench --bench coherence`. Report ratios from one run: the machine is shared and noisy.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{one_block_lease, pin_to};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use umrf::coherence::{Bidirectional, Coherence, Direction, Instruction, LineMethod, ToDevice};
use umrf::residency::CpuLocal;
use umrf::{LocalPool, SharedBuffer};

const PAGE: usize = 4096;
const PAGES: [usize; 6] = [1, 4, 16, 64, 256, 1024];
const SIZES: [usize; 7] = [64, 256, 1024, 4096, 16384, 65536, 262144];

/// The modes to compare: hardware coherence, and each line instruction the CPU has.
fn methods() -> Vec<(&'static str, Coherence)> {
    let mut methods = vec![("hardware", Coherence::Hardware)];
    for (name, instruction) in [
        ("clflush", Instruction::Clflush),
        ("clflushopt", Instruction::Clflushopt),
        ("clwb", Instruction::Clwb),
        ("dc_cvac", Instruction::DcCvac),
    ] {
        match LineMethod::using(instruction) {
            Ok(method) => methods.push((name, Coherence::SoftwareWith(method))),
            Err(why) => eprintln!("skipping {name}: {why}"),
        }
    }
    methods
}

/// Times `iters` map + unmap cycles of a buffer of `bytes` in direction `D`, each after writing
/// the whole buffer.
fn cycles<D: Direction>(
    lease: &LocalPool<CpuLocal>,
    bytes: usize,
    coherence: Coherence,
    iters: u64,
) -> Duration {
    let mut buf: SharedBuffer<u8, CpuLocal> = lease.alloc::<u8>(bytes).unwrap();
    let mut total = Duration::ZERO;
    for i in 0..iters {
        buf.fill(i as u8);
        black_box(&mut buf);
        let start = Instant::now();
        let mapping = buf.map_for_device_with::<D>(coherence).unwrap();
        buf = mapping.unmap();
        total += start.elapsed();
    }
    total
}

fn by_pages(c: &mut Criterion) {
    pin_to(0);
    let lease = one_block_lease(PAGES[PAGES.len() - 1] * PAGE);
    let mut group = c.benchmark_group("coherence_pages");
    for (name, coherence) in methods() {
        for pages in PAGES {
            group.throughput(Throughput::Bytes((pages * PAGE) as u64));
            group.bench_function(BenchmarkId::new(format!("clean/{name}"), pages), |b| {
                b.iter_custom(|iters| cycles::<ToDevice>(&lease, pages * PAGE, coherence, iters))
            });
            group.bench_function(BenchmarkId::new(format!("roundtrip/{name}"), pages), |b| {
                b.iter_custom(|iters| {
                    cycles::<Bidirectional>(&lease, pages * PAGE, coherence, iters)
                })
            });
        }
    }
    group.finish();
}

fn by_size(c: &mut Criterion) {
    pin_to(0);
    let lease = one_block_lease(PAGES[PAGES.len() - 1] * PAGE);
    let mut group = c.benchmark_group("coherence_size");
    for (name, coherence) in methods() {
        for bytes in SIZES {
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_function(BenchmarkId::new(format!("clean/{name}"), bytes), |b| {
                b.iter_custom(|iters| cycles::<ToDevice>(&lease, bytes, coherence, iters))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = by_pages, by_size
}
criterion_main!(benches);
