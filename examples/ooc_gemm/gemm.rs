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

/// How many steps ahead the tiles are prefetched by default. Two steps suffice when the I/O
/// has a core to itself; with other work on every core a read can wait in the run queue for
/// longer than a tile product, and a deeper window gives it that slack (benches/tiered.rs
/// measures both, docs/PERFORMANCE.md "Tiered memory").
pub const PREFETCH_STEPS: usize = 8;

/// The most steps ahead that `store`'s RAM holds with room to spare: each step brings at most
/// three tiles (A, B and C), the current step pins three, and half of RAM stays for the
/// blocks of C and the replacement policy. Prefetched pages are kept until pinned, so a window
/// deeper than RAM would only crowd out the tiles in use.
pub fn max_prefetch_steps(store: &TieredStore<CpuLocal>) -> usize {
    (ram_pages(store) / 2).saturating_sub(3) / 3
}

fn ram_pages(store: &TieredStore<CpuLocal>) -> usize {
    (store.ram_limit() / store.page_size() as u64) as usize
}

/// The side, in tiles, of the square blocks of C the product walks: 1 (C tile by C tile, the
/// order that keeps one C tile in the CPU's cache for all its k) when the three matrices fit
/// in RAM; else the largest `b ≤ tiles` whose `b × b` C tiles, plus the `2b` A and B tiles of
/// one k, plus the prefetch window's `3 × window + 3`, fit in RAM (at least 1). Each A and B
/// tile is then read from its tier once per block of C, not once per C tile: `b` times less.
pub fn block_tiles(store: &TieredStore<CpuLocal>, tiles: usize, window: usize) -> usize {
    if 3 * tiles * tiles <= ram_pages(store) {
        return 1;
    }
    let room = ram_pages(store).saturating_sub(3 * window + 3);
    (1..=tiles)
        .rev()
        .find(|b| b * b + 2 * b <= room)
        .unwrap_or(1)
}

/// The order of the tile products: for each `b × b` block of C (row-major), for each k, the
/// products into the block's tiles, row by row. Each C tile still sums its k in order 0, 1, …,
/// so the result is the same whatever `b`.
fn steps(tiles: usize, b: usize) -> Vec<(usize, usize, usize)> {
    let blocks = |n: usize| (0..n).step_by(b).map(move |s| s..(s + b).min(n));
    let mut order = Vec::with_capacity(tiles * tiles * tiles);
    for rows in blocks(tiles) {
        for cols in blocks(tiles) {
            for k in 0..tiles {
                for i in rows.clone() {
                    order.extend(cols.clone().map(|j| (i, j, k)));
                }
            }
        }
    }
    order
}

/// What one multiplication did.
pub struct Run {
    pub elapsed: Duration,
    pub gflops: f64,
    /// The prefetch window used: the one asked for, capped by [`max_prefetch_steps`].
    pub prefetch_steps: usize,
    /// The side of the blocks of C ([`block_tiles`]).
    pub block_tiles: usize,
}

/// C = A × B, tile by tile, in blocks of C that RAM holds ([`block_tiles`]): each C tile
/// (i, j) gets the sum over k of A(i, k) × B(k, j). Before each tile product the tiles of the
/// next `prefetch_steps` steps are prefetched (pages in flight or in RAM already are only
/// marked as about to be used, so each read starts once, as early as the window allows); the
/// window is capped by [`max_prefetch_steps`]. `block` overrides [`block_tiles`] (`Some(1)`:
/// C tile by C tile). `progress` is called after each C tile is done with (done, total).
pub fn multiply(
    store: &TieredStore<CpuLocal>,
    a: &TiledMatrix,
    b: &TiledMatrix,
    c: &mut TiledMatrix,
    prefetch_steps: usize,
    block: Option<usize>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Run, TieredError> {
    let (nt, t) = (a.tiles, a.tile);
    let window = prefetch_steps.min(max_prefetch_steps(store));
    let block = block
        .unwrap_or_else(|| block_tiles(store, nt, window))
        .clamp(1, nt.max(1));
    let start = Instant::now();
    let order = steps(nt, block);
    let mut done = 0;
    for (step, &(i, j, k)) in order.iter().enumerate() {
        for &(ni, nj, nk) in order.iter().skip(step + 1).take(window) {
            store.prefetch([a.at(ni, nk), b.at(nk, nj), c.at(ni, nj)])?;
        }
        let (ta, tb) = (store.pin(a.at(i, k))?, store.pin(b.at(k, j))?);
        let mut tc = store.pin_mut(&mut c.pages[i * nt + j])?;
        tile_product(&ta, &tb, &mut tc, t);
        if k + 1 == nt {
            done += 1;
            progress(done, nt * nt);
        }
    }
    let elapsed = start.elapsed();
    let n = (nt * t) as f64;
    Ok(Run {
        elapsed,
        gflops: 2.0 * n * n * n / elapsed.as_secs_f64() / 1e9,
        prefetch_steps: window,
        block_tiles: block,
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
