//! Tiered store benchmarks, peers in the same run, reported as ratios:
//!
//! - out-of-core GEMM with the matrices at 4x the RAM budget vs the same tiled kernel with
//!   everything in RAM (GFLOPS), CLOCK and LRU, on threads and on the ring, and the GEMM as it
//!   was (two steps prefetched, C tile by C tile) beside the default (a deeper window, blocks
//!   of C that RAM holds);
//! - a sequential scan with a RAM budget of 1/8 of the data (tmpfs tier, disk tier) vs all in
//!   RAM vs `mmap` of a file with `MADV_SEQUENTIAL` on the same tmpfs / disk;
//! - what bounds that scan: the CPU time per page of the sum, the CRC-32C and the read back
//!   from tmpfs, and the least time a scan from the tier can take with 2, 4 or 8 CPUs;
//! - uniform random pins with a budget of 1/8: hit rate and latency per tier, CLOCK and LRU.
//!
//! `cargo bench --bench tiered` (full sizes) or `cargo bench --bench tiered -- --quick`; a
//! word among the arguments (`gemm`, `scan`, `bound`, `random`, `engines`) runs only the sections it names (for a
//! profile: `perf record -g target/release/deps/tiered-* --bench scan`).
//! Prints Markdown tables (docs/PERFORMANCE.md holds a run).

#[path = "../examples/ooc_gemm/gemm.rs"]
#[allow(dead_code)] // the checks of the example are not timed here
mod gemm;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use umrf::residency::CpuLocal;
use umrf::tiered::{IoBackend, Replacement, Tiered, TieredStore};

const MIB: u64 = 1 << 20;

fn store(budget: u64, page: usize, tmpfs: u64, policy: Replacement) -> TieredStore<CpuLocal> {
    store_with(budget, page, tmpfs, policy, 2)
}

fn store_with(
    budget: u64,
    page: usize,
    tmpfs: u64,
    policy: Replacement,
    io_threads: usize,
) -> TieredStore<CpuLocal> {
    store_on(budget, page, tmpfs, policy, io_threads, IoBackend::Auto).expect("tiered store")
}

fn store_on(
    budget: u64,
    page: usize,
    tmpfs: u64,
    policy: Replacement,
    io_threads: usize,
    io: IoBackend,
) -> Result<TieredStore<CpuLocal>, umrf::tiered::TieredError> {
    TieredStore::<CpuLocal>::builder()
        .page_size(page)
        .ram_budget(budget)
        .tmpfs("/dev/shm", tmpfs)
        .disk(std::env::temp_dir(), 64 << 30)
        .io_threads(io_threads)
        .io(io)
        .replacement(policy)
        .build()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn gemm_section(n: usize, runs: usize) {
    let tile = 256;
    let page = tile * tile * 4;
    let data = 3 * (n * n * 4) as u64;
    println!(
        "\n### Out-of-core GEMM, n = {n} (3 x {} MiB), tiles {tile}x{tile}, rows interleaved, \
         median of {runs} rounds\n",
        (n * n * 4) >> 20
    );
    println!(
        "| configuration | RAM budget | prefetch steps | C block (tiles) | GFLOPS | vs all in RAM (median of per-round ratios) | hit rate | prefetch hit rate |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // "before" is the GEMM as it was: two steps prefetched, C tile by C tile (blocks of one
    // tile); the other rows run the defaults (`gemm::PREFETCH_STEPS`, `gemm::block_tiles`), on
    // the engine each names.
    let (deep, before) = (gemm::PREFETCH_STEPS, Some(1));
    let (threads, ring) = (IoBackend::Threads, IoBackend::IoUring);
    let (clock, lru) = (Replacement::Clock, Replacement::Lru);
    let ram = data + 4 * page as u64;
    let configs = [
        ("all in RAM", ram, clock, deep, None, threads),
        (
            "4x budget, tmpfs, CLOCK, threads",
            data / 4,
            clock,
            deep,
            None,
            threads,
        ),
        (
            "4x budget, tmpfs, LRU, threads, before",
            data / 4,
            lru,
            2,
            before,
            threads,
        ),
        (
            "4x budget, tmpfs, LRU, threads",
            data / 4,
            lru,
            deep,
            None,
            threads,
        ),
        (
            "4x budget, tmpfs, LRU, io_uring, before",
            data / 4,
            lru,
            2,
            before,
            ring,
        ),
        (
            "4x budget, tmpfs, LRU, io_uring",
            data / 4,
            lru,
            deep,
            None,
            ring,
        ),
        (
            "4x budget, disk, CLOCK, threads",
            data / 4,
            clock,
            deep,
            None,
            threads,
        ),
    ];
    let nt = n / tile;
    let mut peers = Vec::new();
    for (name, budget, policy, steps, block, io) in configs {
        let tmpfs = if name.contains("disk") { 0 } else { 16 << 30 };
        let s = match store_on(budget, page, tmpfs, policy, 2, io) {
            Ok(s) => s,
            Err(e) => {
                println!("| {name} | {io:?} unavailable: {e} |");
                continue;
            }
        };
        let steps = steps.min(gemm::max_prefetch_steps(&s));
        let block = block.unwrap_or_else(|| gemm::block_tiles(&s, nt, steps));
        let a = gemm::TiledMatrix::generate(&s, nt, tile, Some(1)).unwrap();
        let b = gemm::TiledMatrix::generate(&s, nt, tile, Some(2)).unwrap();
        let c = gemm::TiledMatrix::generate(&s, nt, tile, None).unwrap();
        let before = s.stats();
        peers.push((name, budget, steps, block, s, a, b, c, before));
    }
    let mut gflops = vec![Vec::new(); peers.len()];
    for round in 0..runs {
        // The order rotates every round, so no configuration always follows the same one.
        for offset in 0..peers.len() {
            let k = (round + offset) % peers.len();
            let (_, _, steps, block, s, a, b, c, _) = &mut peers[k];
            let run = gemm::multiply(s, a, b, c, *steps, Some(*block), |_, _| {}).unwrap();
            gflops[k].push(run.gflops);
        }
    }
    for (k, (name, budget, steps, block, s, _, _, _, before)) in peers.iter().enumerate() {
        let after = s.stats();
        let pins = after.pins - before.pins;
        let hits = after.hits - before.hits;
        let pf = after.prefetch_hits - before.prefetch_hits;
        let needed =
            pf + (after.prefetch_late - before.prefetch_late) + (after.misses - before.misses);
        let ratio = median(
            gflops[k]
                .iter()
                .zip(&gflops[0])
                .map(|(x, b)| x / b)
                .collect(),
        );
        println!(
            "| {name} | {} MiB | {steps} | {block}x{block} | {:.1} | {ratio:.2}x | {:.3} | {} |",
            budget / MIB,
            median(gflops[k].clone()),
            hits as f64 / pins as f64,
            if needed == 0 {
                "-".to_owned()
            } else {
                format!("{:.3}", pf as f64 / needed as f64)
            }
        );
    }
}

fn fill_pages(s: &TieredStore<CpuLocal>, pages: usize) -> Vec<Tiered<u64, CpuLocal>> {
    (0..pages)
        .map(|i| {
            let mut p = s.alloc::<u64>().unwrap();
            for (j, x) in s.pin_mut(&mut p).unwrap().iter_mut().enumerate() {
                *x = (i * 31 + j) as u64;
            }
            p
        })
        .collect()
}

fn scan_store(s: &TieredStore<CpuLocal>, pages: &[Tiered<u64, CpuLocal>]) -> u64 {
    pages
        .iter()
        .map(|p| {
            s.pin(p)
                .unwrap()
                .iter()
                .fold(0u64, |a, &x| a.wrapping_add(x))
        })
        .fold(0, u64::wrapping_add)
}

/// A read-only shared mapping of `file`, `MADV_SEQUENTIAL`.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(file: &File, len: usize) -> Mapping {
        // SAFETY: a fresh mapping (address chosen by the kernel) of an open file descriptor;
        // no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            ptr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `ptr..ptr+len` is the mapping made above.
        let advised = unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        assert_eq!(advised, 0);
        Mapping { ptr, len }
    }

    fn words(&self) -> &[u64] {
        // SAFETY: the mapping is `len` readable bytes, page-aligned, alive while `self` is;
        // the file is not written while mapped, and any bytes are valid `u64`s.
        unsafe { core::slice::from_raw_parts(self.ptr.cast::<u64>(), self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer borrowed (`words` borrows `self`).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A file of `bytes` (the `u64`s 0, 1, 2, ...) in `dir`, already unlinked.
fn scan_file(dir: &Path, bytes: usize) -> File {
    let path = dir.join(format!("umrf-bench-scan-{}", std::process::id()));
    let words: Vec<u64> = (0..bytes / 8).map(|j| j as u64).collect();
    std::fs::write(&path, bytemuck_bytes(&words)).unwrap();
    let file = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

/// One scan of `file` through a fresh `MADV_SEQUENTIAL` mapping (mapped, summed, unmapped).
fn scan_mmap(file: &File, bytes: usize) -> u64 {
    let m = Mapping::new(file, bytes);
    m.words().iter().fold(0u64, |a, &x| a.wrapping_add(x))
}

fn bytemuck_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// What one row of the scan scans.
enum ScanPeer {
    Store {
        store: Box<TieredStore<CpuLocal>>,
        pages: Vec<Tiered<u64, CpuLocal>>,
    },
    Mmap(File),
}

const SCAN_ROUNDS: usize = 7;

fn scan_section(data: u64) {
    let page = 64 << 10;
    let pages = (data / page as u64) as usize;
    println!(
        "\n### Sequential scan of {} MiB, 64 KiB pages, RAM budget {} MiB (1/8), read-ahead 16, \
         rows interleaved, median of {SCAN_ROUNDS} rounds\n",
        data / MIB,
        data / 8 / MIB
    );
    println!(
        "| peer | time per scan | GB/s | vs all in RAM (median of per-round ratios) | prefetch hit rate |"
    );
    println!("|---|---|---|---|---|");
    let mut peers: Vec<(String, ScanPeer)> = Vec::new();
    for (name, budget, tmpfs, ahead, threads) in [
        ("tiered, all in RAM", data + page as u64, 0, 0, 2),
        ("tiered, 1/8 in RAM, tmpfs tier", data / 8, 64 << 30, 16, 2),
        (
            "tiered, 1/8 in RAM, tmpfs tier, 1 I/O thread",
            data / 8,
            64 << 30,
            16,
            1,
        ),
        ("tiered, 1/8 in RAM, disk tier", data / 8, 0, 16, 2),
        (
            "tiered, 1/8 in RAM, tmpfs, no read-ahead",
            data / 8,
            64 << 30,
            0,
            2,
        ),
    ] {
        let s = store_with(budget, page, tmpfs, Replacement::Clock, threads);
        let handles = fill_pages(&s, pages);
        s.quiesce();
        s.set_read_ahead(ahead);
        let _ = scan_store(&s, &handles); // warm: the first scan writes the last dirty pages
        s.quiesce();
        peers.push((
            name.into(),
            ScanPeer::Store {
                store: Box::new(s),
                pages: handles,
            },
        ));
    }
    for (name, dir) in [
        (
            "mmap of a tmpfs file, MADV_SEQUENTIAL",
            Path::new("/dev/shm"),
        ),
        (
            "mmap of a disk file, MADV_SEQUENTIAL",
            &std::env::temp_dir(),
        ),
    ] {
        let file = scan_file(dir, data as usize);
        std::hint::black_box(scan_mmap(&file, data as usize)); // warm, as the stores are
        peers.push((name.into(), ScanPeer::Mmap(file)));
    }
    let before: Vec<_> = peers
        .iter()
        .map(|(_, p)| match p {
            ScanPeer::Store { store, .. } => Some(store.stats()),
            ScanPeer::Mmap(_) => None,
        })
        .collect();
    let mut times = vec![Vec::new(); peers.len()];
    for round in 0..SCAN_ROUNDS {
        // The order rotates every round, so no peer always follows the same one.
        for offset in 0..peers.len() {
            let k = (round + offset) % peers.len();
            let start = Instant::now();
            let sum = match &peers[k].1 {
                ScanPeer::Store { store, pages } => scan_store(store, pages),
                ScanPeer::Mmap(file) => scan_mmap(file, data as usize),
            };
            std::hint::black_box(sum);
            times[k].push(start.elapsed().as_secs_f64());
        }
    }
    for (k, (name, peer)) in peers.iter().enumerate() {
        let rate = match (peer, &before[k]) {
            (ScanPeer::Store { store, .. }, Some(before)) => {
                let after = store.stats();
                let pf = after.prefetch_hits - before.prefetch_hits;
                let needed = pf
                    + (after.prefetch_late - before.prefetch_late)
                    + (after.misses - before.misses);
                if needed == 0 {
                    "-".into()
                } else {
                    format!("{:.3}", pf as f64 / needed as f64)
                }
            }
            _ => "-".into(),
        };
        let t = median(times[k].clone());
        let ratio = median(times[k].iter().zip(&times[0]).map(|(x, b)| x / b).collect());
        println!(
            "| {name} | {:.1} ms | {:.2} | {ratio:.2}x | {rate} |",
            t * 1e3,
            data as f64 / t / 1e9,
        );
    }
}

fn random_section(data: u64, pins: usize) {
    let page = 64 << 10;
    let pages = (data / page as u64) as usize;
    println!(
        "\n### Random pins over {} MiB, 64 KiB pages, RAM budget {} MiB (1/8), {pins} pins\n",
        data / MIB,
        data / 8 / MIB
    );
    println!("| tier below RAM | policy | hit rate | mean pin | mean tier read | read bandwidth |");
    println!("|---|---|---|---|---|---|");
    for (tier, tmpfs) in [("tmpfs", 64u64 << 30), ("disk", 0)] {
        for policy in [Replacement::Clock, Replacement::Lru] {
            let s = store(data / 8, page, tmpfs, policy);
            let handles = fill_pages(&s, pages);
            s.quiesce();
            let before = s.stats();
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let start = Instant::now();
            for _ in 0..pins {
                // A skewed pattern (a hot eighth gets half the pins) so policies differ.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = if x & 1 == 0 {
                    (x >> 1) as usize % (pages / 8)
                } else {
                    (x >> 1) as usize % pages
                };
                std::hint::black_box(s.pin(&handles[i]).unwrap()[0]);
            }
            let took = start.elapsed();
            let after = s.stats();
            let t = if tmpfs > 0 { after.tmpfs } else { after.disk };
            let t0 = if tmpfs > 0 { before.tmpfs } else { before.disk };
            let reads = t.reads - t0.reads;
            let read_time = t.read_time - t0.read_time;
            let mean_read = read_time
                .checked_div(reads as u32)
                .unwrap_or(Duration::ZERO);
            println!(
                "| {tier} | {policy:?} | {:.3} | {:.1} µs | {:.1} µs | {:.2} GB/s |",
                (after.hits - before.hits) as f64 / (after.pins - before.pins) as f64,
                took.as_secs_f64() * 1e6 / pins as f64,
                mean_read.as_secs_f64() * 1e6,
                (reads * page as u64) as f64 / read_time.as_secs_f64().max(1e-9) / 1e9
            );
        }
    }
}

/// Per-page CPU costs that bound a scan from the tmpfs tier, each alone on one thread over
/// `data` bytes in 64 KiB pages (more than the caches hold): the scan's own sum in RAM, the
/// CRC-32C the store verifies, the read back (`pread` from a tmpfs file, the I/O thread's
/// copy) with and without that CRC, and a plain copy between two places in RAM into a ring of
/// blocks the size of the RAM budget (the least any read into the pool costs: an ideal read
/// that verifies for free while it copies). From them, the least time a scan from the tier can
/// take per page with `c` CPUs for the scan and the reads, against the sum in RAM: the
/// scanning thread sums every page, and the reads need the CPUs as well,
/// `max(sum, (sum + read) / c)` (perfect overlap, no other cost; shared memory bandwidth only
/// adds to it).
fn bound_section(data: u64) {
    const PAGE: usize = 64 << 10;
    let pages = (data as usize) / PAGE;
    let bytes: Vec<u8> = (0..pages * PAGE).map(|j| (j / 8) as u8).collect();
    let file = scan_file(Path::new("/dev/shm"), pages * PAGE);
    let mut buf = vec![0u8; PAGE];
    let mut ring = vec![0u8; (pages / 8).max(1) * PAGE];
    let time = |work: &mut dyn FnMut(usize) -> u64| -> f64 {
        let rounds: Vec<f64> = (0..3)
            .map(|_| {
                let start = Instant::now();
                let check = (0..pages).map(&mut *work).fold(0u64, u64::wrapping_add);
                std::hint::black_box(check);
                start.elapsed().as_secs_f64() * 1e6 / pages as f64
            })
            .collect();
        median(rounds)
    };
    let page_of = |p: usize| &bytes[p * PAGE..(p + 1) * PAGE];
    let sum = time(&mut |p| {
        page_of(p)
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().unwrap()))
            .fold(0u64, u64::wrapping_add)
    });
    let crc = time(&mut |p| u64::from(crc32c::crc32c(page_of(p))));
    let mut read_page = |p: usize, verify: bool| -> u64 {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut buf, (p * PAGE) as u64).unwrap();
        if verify {
            u64::from(crc32c::crc32c(&buf))
        } else {
            u64::from(buf[0])
        }
    };
    let read = time(&mut |p| read_page(p, false));
    let verified = time(&mut |p| read_page(p, true));
    let ring_blocks = ring.len() / PAGE;
    let copy = time(&mut |p| {
        let block = &mut ring[(p % ring_blocks) * PAGE..][..PAGE];
        block.copy_from_slice(page_of(p));
        u64::from(block[0])
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n### What bounds a scan from the tmpfs tier: CPU time per 64 KiB page over {} MiB, median of 3\n",
        data / MIB
    );
    println!("| work | µs per page | GB/s |");
    println!("|---|---|---|");
    for (work, us) in [
        ("sum in RAM (the scan)", sum),
        ("CRC-32C", crc),
        ("`pread` from tmpfs", read),
        ("`pread` from tmpfs + CRC-32C of the page read", verified),
        ("copy in RAM into a budget-sized ring of blocks", copy),
    ] {
        println!("| {work} | {us:.2} | {:.1} |", PAGE as f64 / us / 1e3);
    }
    println!(
        "\n| CPUs for the scan and its reads | least time per page, `pread` + CRC-32C | vs the sum in RAM | least, an ideal copy that verifies for free | vs the sum in RAM |"
    );
    println!("|---|---|---|---|---|");
    for c in [2usize, 4, 8] {
        let least = |read: f64| sum.max((sum + read) / c as f64);
        let here = if c == cpus { " (this machine)" } else { "" };
        println!(
            "| {c}{here} | {:.2} µs | {:.2}x | {:.2} µs | {:.2}x |",
            least(verified),
            least(verified) / sum,
            least(copy),
            least(copy) / sum
        );
    }
}

/// The I/O engines side by side: a scan with read-ahead and random pins (tmpfs tier, 1/8 in
/// RAM; the pins write), each engine's run alternated with the other's, `reps` times; medians and the ratio.
fn engines_section(data: u64, pins: usize, reps: usize) {
    let page = 64 << 10;
    let pages = (data / page as u64) as usize;
    println!(
        "\n### I/O engines: {} MiB, 64 KiB pages, RAM 1/8, tmpfs tier, median of {reps} alternated runs\n",
        data / MIB
    );
    let engines = [IoBackend::Threads, IoBackend::IoUring];
    let mut scan = [Vec::new(), Vec::new()];
    let mut random = [Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (e, io) in engines.into_iter().enumerate() {
            let s = match TieredStore::<CpuLocal>::builder()
                .page_size(page)
                .ram_budget(data / 8)
                .tmpfs("/dev/shm", 64 << 30)
                .disk(std::env::temp_dir(), 64 << 30)
                .io_threads(2)
                .io(io)
                .build()
            {
                Ok(s) => s,
                Err(err) => {
                    println!("{io:?} unavailable: {err}");
                    return;
                }
            };
            let mut handles = fill_pages(&s, pages);
            s.quiesce();
            s.set_read_ahead(16);
            let _ = scan_store(&s, &handles);
            s.quiesce();
            let start = Instant::now();
            std::hint::black_box(scan_store(&s, &handles));
            scan[e].push(start.elapsed().as_secs_f64());
            s.set_read_ahead(0);
            s.quiesce();
            let mut x = 0x2545_f491_4f6c_dd1du64;
            let start = Instant::now();
            for _ in 0..pins {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x >> 1) as usize % pages;
                // A write pin: the page leaves RAM dirty, so writes and reads both run.
                let mut guard = s.pin_mut(&mut handles[i]).expect("pin");
                guard[0] = guard[0].wrapping_add(1);
            }
            random[e].push(start.elapsed().as_secs_f64() / pins as f64);
        }
    }
    println!("| workload | threads | io_uring | io_uring / threads |");
    println!("|---|---|---|---|");
    let (st, su) = (median(scan[0].clone()), median(scan[1].clone()));
    println!(
        "| scan, read-ahead 16 | {:.1} ms | {:.1} ms | {:.2} |",
        st * 1e3,
        su * 1e3,
        su / st
    );
    let (rt, ru) = (median(random[0].clone()), median(random[1].clone()));
    println!(
        "| random pins | {:.1} µs | {:.1} µs | {:.2} |",
        rt * 1e6,
        ru * 1e6,
        ru / rt
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep it tiny there.
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let (n, runs, scan, random) = match (test_mode, quick) {
        (true, _) => (512, 1, 8 * MIB, 2_000),
        (false, true) => (1024, 5, 64 * MIB, 20_000),
        (false, false) => (2048, 7, 512 * MIB, 100_000),
    };
    let sections = ["gemm", "scan", "bound", "random", "engines"];
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| sections.contains(&a.as_str()))
        .collect();
    let run = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    println!("## Tiered store ({})", if quick { "quick" } else { "full" });
    if run("gemm") {
        gemm_section(n, runs);
    }
    if run("scan") {
        scan_section(scan);
    }
    if run("bound") {
        bound_section(scan);
    }
    if run("random") {
        random_section(scan, random);
    }
    if run("engines") {
        engines_section(scan, random, if test_mode { 1 } else { 3 });
    }
}
