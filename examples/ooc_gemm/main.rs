//! Out-of-core GEMM: C = A × B in f32 with matrices several times larger than the RAM the
//! store may use, tiled on the pages of a `umrf::tiered::TieredStore` (RAM, then tmpfs, then
//! disk), tile products by `matrixmultiply`, the next tiles prefetched while the current ones
//! compute.
//!
//! ```text
//! cargo run --release --example ooc_gemm                       # n = 1024, checked in memory
//! cargo run --release --example ooc_gemm -- --n 16384 --ram-mib 768   # 3 GiB of matrices
//! ```
//!
//! Flags: `--n N` (matrix order, a multiple of the tile), `--tile T` (default 256),
//! `--ram-mib M` (RAM budget; default a quarter of the three matrices), `--tmpfs DIR`,
//! `--tmpfs-mib M`, `--disk DIR`, `--io-threads K`, `--prefetch S` (steps prefetched ahead,
//! default 8, capped by what RAM holds), `--io threads|io_uring|auto` (the I/O engine, default
//! auto: the ring where the kernel allows it), `--block B` (the side of the blocks of C, in tiles; default what
//! RAM holds, see `gemm::block_tiles`), `--check` / `--no-check` (compare with an in-memory
//! product; on by default for n ≤ 2048). Every run also checks C by column
//! checksums (Huang–Abraham), which needs only O(n²) work.

#[path = "gemm.rs"]
mod gemm;

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use umrf::residency::CpuLocal;
use umrf::tiered::{IoBackend, TieredStore};

struct Options {
    n: usize,
    tile: usize,
    ram_mib: Option<u64>,
    tmpfs: String,
    tmpfs_mib: u64,
    disk: String,
    io_threads: usize,
    prefetch: usize,
    io: IoBackend,
    block: Option<usize>,
    check: Option<bool>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        n: 1024,
        tile: 256,
        ram_mib: None,
        tmpfs: "/dev/shm".into(),
        tmpfs_mib: 16 << 10,
        disk: std::env::temp_dir().display().to_string(),
        io_threads: 2,
        prefetch: gemm::PREFETCH_STEPS,
        io: IoBackend::Auto,
        block: None,
        check: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--n" => o.n = number(value()?)? as usize,
            "--tile" => o.tile = number(value()?)? as usize,
            "--ram-mib" => o.ram_mib = Some(number(value()?)?),
            "--tmpfs" => o.tmpfs = value()?,
            "--tmpfs-mib" => o.tmpfs_mib = number(value()?)?,
            "--disk" => o.disk = value()?,
            "--io-threads" => o.io_threads = number(value()?)? as usize,
            "--prefetch" => o.prefetch = number(value()?)? as usize,
            "--block" => o.block = Some(number(value()?)? as usize),
            "--io" => {
                o.io = match value()?.as_str() {
                    "threads" => IoBackend::Threads,
                    "io_uring" => IoBackend::IoUring,
                    "auto" => IoBackend::Auto,
                    other => return Err(format!("--io {other}: threads, io_uring or auto")),
                }
            }
            "--check" => o.check = Some(true),
            "--no-check" => o.check = Some(false),
            other => return Err(format!("unknown flag {other} (see the example's docs)")),
        }
    }
    if o.tile == 0 || o.n == 0 || !o.n.is_multiple_of(o.tile) {
        return Err(format!(
            "--n {} must be a positive multiple of --tile {}",
            o.n, o.tile
        ));
    }
    Ok(o)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ooc_gemm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse()?;
    let (nt, t) = (o.n / o.tile, o.tile);
    let page = t * t * 4;
    let data = 3 * (o.n * o.n * 4) as u64;
    let budget = o.ram_mib.map_or(data / 4, |m| m << 20).max(3 * page as u64);
    println!(
        "C = A x B, n = {}, {}x{} tiles of {} KiB: {:.1} MiB of matrices, RAM budget {:.1} MiB ({:.1}x)",
        o.n,
        nt,
        nt,
        page >> 10,
        data as f64 / (1 << 20) as f64,
        budget as f64 / (1 << 20) as f64,
        data as f64 / budget as f64
    );
    let store = TieredStore::<CpuLocal>::builder()
        .name("ooc_gemm")
        .page_size(page)
        .ram_budget(budget)
        .tmpfs(&o.tmpfs, o.tmpfs_mib << 20)
        .disk(&o.disk, u64::MAX / 2)
        .io_threads(o.io_threads)
        .io(o.io)
        .build()?;
    let a = gemm::TiledMatrix::generate(&store, nt, t, Some(1))?;
    let b = gemm::TiledMatrix::generate(&store, nt, t, Some(2))?;
    let mut c = gemm::TiledMatrix::generate(&store, nt, t, None)?;
    let mut last = Instant::now();
    let started = Instant::now();
    let run = gemm::multiply(
        &store,
        &a,
        &b,
        &mut c,
        o.prefetch,
        o.block,
        |done, total| {
            if last.elapsed().as_secs_f64() >= 1.0 || done == total {
                last = Instant::now();
                let flops = 2.0 * (done * t * t) as f64 * o.n as f64;
                eprint!(
                    "\r  C tiles {done}/{total} ({:.0}%), {:.1} GFLOPS",
                    100.0 * done as f64 / total as f64,
                    flops / started.elapsed().as_secs_f64() / 1e9
                );
                let _ = std::io::stderr().flush();
            }
        },
    )?;
    eprintln!();
    let s = store.stats();
    println!(
        "{:.2} s, {:.1} GFLOPS, prefetch window {} steps, C blocks of {}x{} tiles; hit rate {:.3}, prefetch hit rate {:.3}; spilled {} to tmpfs, {} to disk; read {:.1} MiB",
        run.elapsed.as_secs_f64(),
        run.gflops,
        run.prefetch_steps,
        run.block_tiles,
        run.block_tiles,
        s.hit_rate(),
        s.prefetch_hit_rate(),
        s.tmpfs.spills,
        s.disk.spills,
        (s.tmpfs.read_bytes + s.disk.read_bytes) as f64 / (1 << 20) as f64
    );
    println!(
        "prefetches: {} issued, {} hits, {} late, {} dropped; {} misses",
        s.prefetch_issued, s.prefetch_hits, s.prefetch_late, s.prefetch_dropped, s.misses
    );
    let error = gemm::checksum_error(&store, &a, &b, &c)?;
    println!("column checksums: max relative error {error:.2e}");
    if error > 1e-4 {
        return Err(format!("column checksums disagree ({error:.2e})").into());
    }
    if o.check.unwrap_or(o.n <= 2048) {
        let (da, db, dc) = (
            a.to_dense(&store)?,
            b.to_dense(&store)?,
            c.to_dense(&store)?,
        );
        let mut expected = vec![0.0f32; o.n * o.n];
        gemm::tile_product(&da, &db, &mut expected, o.n);
        let worst = expected
            .iter()
            .zip(&dc)
            .map(|(e, f)| (e - f).abs() / e.abs().max(1.0))
            .fold(0.0f32, f32::max);
        println!("in-memory product: max relative difference {worst:.2e}");
        if worst > 1e-3 {
            return Err(format!("C differs from the in-memory product ({worst:.2e})").into());
        }
    }
    Ok(())
}
