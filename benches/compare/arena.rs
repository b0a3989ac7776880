//! Group 5, `arena/<bytes>`: bump allocation with a reset every 1024 allocations, on one
//! pinned thread, per allocation (the reset's cost amortised over its 1024 allocations).
//!
//! - `umrf`: [`umrf::Arena::alloc`] of `bytes` bytes in an arena on a pool block, touch one
//!   byte; `reset` after every 1024.
//! - `bumpalo`: `Bump::alloc_layout` of the same size, touch one byte; `reset` after every
//!   1024. Its chunk is allocated up front (`Bump::with_capacity`) like the arena's block, so
//!   neither calls the system allocator while measured.

use std::alloc::Layout;
use std::hint::black_box;

use bumpalo::Bump;
use umrf::Arena;

use crate::common::one_block_lease;
use crate::measure::{Config, Contender, Row, measure, pin, timed};
use crate::report::{Against, Comparison};

pub const GROUP: &str = "arena";
/// Allocation sizes, with their case names.
pub const CASES: [(usize, &str); 2] = [(64, "64"), (4096, "4096")];
/// Allocations between two resets.
const RESET_EVERY: u32 = 1024;

pub fn run(config: &Config) -> Vec<Row> {
    pin(0);
    let mut rows = Vec::new();
    for (bytes, case) in CASES {
        let capacity = RESET_EVERY as usize * bytes;
        let lease = one_block_lease(capacity);
        let mut arena = Arena::new_in(&lease, capacity).expect("an arena of one block");
        let mut bump = Bump::with_capacity(capacity);
        let layout = Layout::from_size_align(bytes, 1).expect("layout");
        let (mut umrf_count, mut bump_count) = (0u32, 0u32);
        let contenders = vec![
            Contender::new(case, "umrf", |iters| {
                timed(iters, || {
                    let block = arena.alloc::<u8>(bytes).unwrap();
                    block[0] = 1;
                    black_box(block);
                    umrf_count += 1;
                    if umrf_count == RESET_EVERY {
                        arena.reset();
                        umrf_count = 0;
                    }
                })
            }),
            Contender::new(case, "bumpalo", |iters| {
                timed(iters, || {
                    let mut block = bump.alloc_layout(layout);
                    // SAFETY: `alloc_layout` returned `bytes` (at least one) writable bytes.
                    unsafe { block.as_ptr().write(1) };
                    black_box(&mut block);
                    bump_count += 1;
                    if bump_count == RESET_EVERY {
                        bump.reset();
                        bump_count = 0;
                    }
                })
            }),
        ];
        rows.extend(measure(config, GROUP, contenders));
    }
    rows
}

pub fn comparisons() -> Vec<Comparison> {
    CASES
        .iter()
        .map(|&(bytes, case)| {
            let comparison = Comparison::new(GROUP, case).peers(
                &[case],
                &["bumpalo"],
                "bumpalo (`alloc_layout`, reset every 1024) in the same case",
            );
            if bytes == 64 {
                comparison.target(Against::Peer, 1.2, "≤ 1.2× bumpalo")
            } else {
                comparison
            }
        })
        .collect()
}
