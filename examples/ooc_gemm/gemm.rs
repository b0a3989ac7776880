//! Out-of-core GEMM over a tiered store: C = A × B in f32, each matrix cut into square tiles,
//! one tile per page; tile products by `matrixmultiply::sgemm` (chosen by measured speed
//! against `gemm` and `faer` on these tile sizes: `benches/gemm-kernels/`, table in
//! docs/PERFORMANCE.md). Shared by the example
//! (`examples/ooc_gemm/main.rs`) and the benchmark (`benches/tiered.rs`).

use std::time::{Duration, Instant};

use umrf::residency::CpuLocal;
use umrf::tiered::{Tiered, TieredError, TieredStore};

/// One matrix of `tiles × tiles` square tiles of `tile × tile` f32s, row-major inside a tile.
pub struct TiledMatrix {
    pub tiles: usize,
    pub tile: usize,
    pub pages: Vec<Tiered<f32, CpuLocal>>,
}

/// A value of the test matrices: a hash of (seed, row, column) mapped to [-1, 1).
pub fn element(seed: u64, row: usize, col: usize) -> f32 {
    let mut x = seed ^ ((row as u64) << 32 | col as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 29;
    ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
}

impl TiledMatrix {
    /// A matrix whose element (r, c) is `element(seed, r, c)`, or zero for `seed == None`.
    pub fn generate(
        store: &TieredStore<CpuLocal>,
        tiles: usize,
        tile: usize,
        seed: Option<u64>,
    ) -> Result<TiledMatrix, TieredError> {
        let mut pages = Vec::with_capacity(tiles * tiles);
        for t in 0..tiles * tiles {
            let mut page = store.alloc::<f32>()?;
            if let Some(seed) = seed {
                let (ti, tj) = (t / tiles, t % tiles);
                let mut data = store.pin_mut(&mut page)?;
                for r in 0..tile {
                    for c in 0..tile {
                        data[r * tile + c] = element(seed, ti * tile + r, tj * tile + c);
                    }
                }
            }
            pages.push(page);
        }
        Ok(TiledMatrix { tiles, tile, pages })
    }

    /// The tile at tile row `i`, tile column `j`.
    pub fn at(&self, i: usize, j: usize) -> &Tiered<f32, CpuLocal> {
        &self.pages[i * self.tiles + j]
    }

    /// The whole matrix, row-major (for checks on sizes that fit in memory).
    pub fn to_dense(&self, store: &TieredStore<CpuLocal>) -> Result<Vec<f32>, TieredError> {
        let n = self.tiles * self.tile;
        let mut out = vec![0.0; n * n];
        for i in 0..self.tiles {
            for j in 0..self.tiles {
                let data = store.pin(self.at(i, j))?;
                for r in 0..self.tile {
                    let row = (i * self.tile + r) * n + j * self.tile;
                    out[row..row + self.tile]
                        .copy_from_slice(&data[r * self.tile..(r + 1) * self.tile]);
                }
            }
        }
        Ok(out)
    }

    /// The sums of the matrix's columns (f64), streamed tile by tile.
    pub fn column_sums(&self, store: &TieredStore<CpuLocal>) -> Result<Vec<f64>, TieredError> {
        let mut sums = vec![0.0f64; self.tiles * self.tile];
        for i in 0..self.tiles {
            for j in 0..self.tiles {
                let data = store.pin(self.at(i, j))?;
                for r in 0..self.tile {
                    for c in 0..self.tile {
                        sums[j * self.tile + c] += f64::from(data[r * self.tile + c]);
                    }
                }
            }
        }
        Ok(sums)
    }

    /// `v × self` for a row vector `v` (f64), streamed tile by tile.
    pub fn left_multiply(
        &self,
        store: &TieredStore<CpuLocal>,
        v: &[f64],
    ) -> Result<Vec<f64>, TieredError> {
        let mut out = vec![0.0f64; self.tiles * self.tile];
        for i in 0..self.tiles {
            for j in 0..self.tiles {
                let data = store.pin(self.at(i, j))?;
                for r in 0..self.tile {
                    let w = v[i * self.tile + r];
                    for c in 0..self.tile {
                        out[j * self.tile + c] += w * f64::from(data[r * self.tile + c]);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `c += a × b` for three `n × n` row-major tiles.
pub fn tile_product(a: &[f32], b: &[f32], c: &mut [f32], n: usize) {
    assert!(a.len() >= n * n && b.len() >= n * n && c.len() >= n * n);
    // SAFETY: the three slices hold n × n f32s each (asserted); the strides (n, 1) address
    // exactly those elements; `c` is a distinct `&mut` slice, so it aliases neither input.
    unsafe {
        matrixmultiply::sgemm(
            n,
            n,
            n,
            1.0,
            a.as_ptr(),
            n as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            1.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// How many steps ahead the tiles are prefetched.
pub const PREFETCH_STEPS: usize = 2;

/// What one multiplication did.
pub struct Run {
    pub elapsed: Duration,
    pub gflops: f64,
}

/// C = A × B, tile by tile: for each C tile (i, j), the sum over k of A(i, k) × B(k, j), with
/// the next pair of tiles prefetched while the current one computes. `progress` is called
/// after each C tile with (done, total).
pub fn multiply(
    store: &TieredStore<CpuLocal>,
    a: &TiledMatrix,
    b: &TiledMatrix,
    c: &mut TiledMatrix,
    mut progress: impl FnMut(usize, usize),
) -> Result<Run, TieredError> {
    let (nt, t) = (a.tiles, a.tile);
    let start = Instant::now();
    let order: Vec<(usize, usize, usize)> = (0..nt)
        .flat_map(|i| (0..nt).flat_map(move |j| (0..nt).map(move |k| (i, j, k))))
        .collect();
    for (step, &(i, j, k)) in order.iter().enumerate() {
        for &(ni, nj, nk) in order.iter().skip(step + 1).take(PREFETCH_STEPS) {
            store.prefetch([a.at(ni, nk), b.at(nk, nj), c.at(ni, nj)])?;
        }
        let (ta, tb) = (store.pin(a.at(i, k))?, store.pin(b.at(k, j))?);
        let mut tc = store.pin_mut(&mut c.pages[i * nt + j])?;
        tile_product(&ta, &tb, &mut tc, t);
        if k + 1 == nt {
            progress(i * nt + j + 1, nt * nt);
        }
    }
    let elapsed = start.elapsed();
    let n = (nt * t) as f64;
    Ok(Run {
        elapsed,
        gflops: 2.0 * n * n * n / elapsed.as_secs_f64() / 1e9,
    })
}

/// The largest relative difference between C's column sums and (column sums of A) × B: the
/// column-checksum test of Huang and Abraham (1984), O(n²) for an O(n³) product.
pub fn checksum_error(
    store: &TieredStore<CpuLocal>,
    a: &TiledMatrix,
    b: &TiledMatrix,
    c: &TiledMatrix,
) -> Result<f64, TieredError> {
    let expected = b.left_multiply(store, &a.column_sums(store)?)?;
    let found = c.column_sums(store)?;
    let scale = expected.iter().map(|x| x.abs()).fold(1.0, f64::max);
    Ok(expected
        .iter()
        .zip(&found)
        .map(|(e, f)| (e - f).abs() / scale)
        .fold(0.0, f64::max))
}
