//! `c += a × b` on square row-major f32 tiles by `matrixmultiply`, `gemm` and `faer`, timed
//! side by side: the kernels the out-of-core GEMM of `examples/ooc_gemm` could call per tile.
//!
//! ```text
//! cargo run --release --manifest-path benches/gemm-kernels/Cargo.toml -- --threads 1
//! cargo run --release --manifest-path benches/gemm-kernels/Cargo.toml -- --threads 2
//! ```
//!
//! Each round times every kernel once per tile size (a sample: enough products for about
//! 50 ms), the order rotated every round so that all kernels share the same stretch of machine
//! time; the table gives the median GFLOPS over the rounds and the median of the per-round
//! ratios to `matrixmultiply`. Before timing, each kernel's product is checked against a plain
//! triple loop in f64.

use std::time::Instant;

type Kernel = fn(&[f32], &[f32], &mut [f32], usize, usize);

/// `matrixmultiply::sgemm`; its thread count is `MATMUL_NUM_THREADS`, set by `main`.
fn matrixmultiply_kernel(a: &[f32], b: &[f32], c: &mut [f32], n: usize, _threads: usize) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
    let s = n as isize;
    // SAFETY: the three slices hold n × n f32s each (asserted); the strides (n, 1) address
    // exactly those elements; `c` is a distinct `&mut` slice, so it aliases neither input.
    unsafe {
        matrixmultiply::sgemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            s,
            1,
            b.as_ptr(),
            s,
            1,
            1.0,
            c.as_mut_ptr(),
            s,
            1,
        );
    }
}

/// `gemm::gemm` (dst = alpha·dst + beta·lhs·rhs, here alpha = beta = 1).
fn gemm_kernel(a: &[f32], b: &[f32], c: &mut [f32], n: usize, threads: usize) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
    let s = n as isize;
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three slices hold n × n f32s each (asserted); column stride 1, row stride n
    // address exactly those elements; `c` is a distinct `&mut` slice, aliasing neither input.
    unsafe {
        gemm::gemm(
            n,
            n,
            n,
            c.as_mut_ptr(),
            1,
            s,
            true,
            a.as_ptr(),
            1,
            s,
            b.as_ptr(),
            1,
            s,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `faer::linalg::matmul::matmul` with `Accum::Add`.
fn faer_kernel(a: &[f32], b: &[f32], c: &mut [f32], n: usize, threads: usize) {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    let lhs = MatRef::from_row_major_slice(a, n, n);
    let rhs = MatRef::from_row_major_slice(b, n, n);
    let dst = MatMut::from_row_major_slice_mut(c, n, n);
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    matmul(dst, Accum::Add, lhs, rhs, 1.0f32, par);
}

const KERNELS: [(&str, Kernel); 3] = [
    ("matrixmultiply 0.3", matrixmultiply_kernel),
    ("gemm 0.19", gemm_kernel),
    ("faer 0.24", faer_kernel),
];

fn element(seed: u64, i: usize) -> f32 {
    let mut x = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}

/// Panics unless `kernel` computes `c += a × b` to within f32 rounding.
fn check(name: &str, kernel: Kernel, n: usize, threads: usize) {
    let a: Vec<f32> = (0..n * n).map(|i| element(1, i)).collect();
    let b: Vec<f32> = (0..n * n).map(|i| element(2, i)).collect();
    let c0: Vec<f32> = (0..n * n).map(|i| element(3, i)).collect();
    let mut c = c0.clone();
    kernel(&a, &b, &mut c, n, threads);
    let mut worst = 0.0f64;
    for r in 0..n {
        for col in 0..n {
            let want = f64::from(c0[r * n + col])
                + (0..n)
                    .map(|k| f64::from(a[r * n + k]) * f64::from(b[k * n + col]))
                    .sum::<f64>();
            worst = worst.max((want - f64::from(c[r * n + col])).abs());
        }
    }
    let bound = 1e-5 * n as f64;
    assert!(
        worst <= bound,
        "{name}: n = {n}: max error {worst} > {bound}"
    );
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let mut threads = 1;
    let mut rounds = 11;
    let mut sizes = vec![128, 256, 512];
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--threads" => threads = value().parse().expect("--threads N"),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--sizes" => {
                sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("--sizes N,N,..."))
                    .collect()
            }
            other => panic!("unknown flag {other} (--threads N, --rounds N, --sizes N,N)"),
        }
    }
    // SAFETY: no other thread runs yet (matrixmultiply reads the variable on its first call,
    // below, and rayon's pool starts later), so nothing reads the environment concurrently.
    unsafe { std::env::set_var("MATMUL_NUM_THREADS", threads.to_string()) };
    for (name, kernel) in KERNELS {
        check(name, kernel, 96, threads);
    }
    println!("| tile | threads | kernel | GFLOPS (median of {rounds}) | vs matrixmultiply |");
    println!("|---|---|---|---|---|");
    for &n in &sizes {
        let a: Vec<f32> = (0..n * n).map(|i| element(1, i)).collect();
        let b: Vec<f32> = (0..n * n).map(|i| element(2, i)).collect();
        let mut c = vec![0.0f32; n * n];
        let flops = 2.0 * (n * n * n) as f64;
        // Calibrate (and warm up) on the first kernel: products per ~50 ms sample.
        let start = Instant::now();
        let mut warm = 0usize;
        while start.elapsed().as_secs_f64() < 0.05 {
            for (_, kernel) in KERNELS {
                kernel(&a, &b, &mut c, n, threads);
            }
            warm += 1;
        }
        let reps = warm.max(1);
        let mut gflops = vec![Vec::new(); KERNELS.len()];
        let mut ratios = vec![Vec::new(); KERNELS.len()];
        for round in 0..rounds {
            let mut sample = [0.0f64; KERNELS.len()];
            for offset in 0..KERNELS.len() {
                let k = (round + offset) % KERNELS.len();
                let kernel = KERNELS[k].1;
                let start = Instant::now();
                for _ in 0..reps {
                    kernel(&a, &b, &mut c, n, threads);
                }
                sample[k] = flops * reps as f64 / start.elapsed().as_secs_f64() / 1e9;
            }
            for k in 0..KERNELS.len() {
                gflops[k].push(sample[k]);
                ratios[k].push(sample[k] / sample[0]);
            }
        }
        std::hint::black_box(&c);
        for (k, (name, _)) in KERNELS.iter().enumerate() {
            println!(
                "| {n} | {threads} | {name} | {:.1} | {:.2}x |",
                median(gflops[k].clone()),
                median(ratios[k].clone())
            );
        }
    }
}
