//! Group 2, `batch/<bytes>`: on one pinned thread, allocate 1000 blocks (writing one byte of
//! each), then free them all, in allocation order; reported per block.
//!
//! - `umrf`: 1000 `LocalPool::alloc`s into a reused `Vec`, then `clear` (the buffers' drops).
//! - `system`, `mimalloc`, `jemalloc`: 1000 allocations, then 1000 frees.
//! - `bumpalo`: 1000 `alloc_layout`s, then one `reset`: its way of freeing them all.
//! - `vec_free_list`: 1000 pops, then 1000 pushes over pre-touched blocks: the limit.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use bumpalo::Bump;
use umrf::SharedBuffer;
use umrf::residency::CpuLocal;

use crate::common::{Peer, PeerBox, VecFreeList, umrf_pool};
use crate::measure::{Config, Contender, Row, measure, pin, timed};
use crate::report::Comparison;
use crate::same_slot::CASES;

pub const GROUP: &str = "batch";
const BATCH: usize = 1000;

pub fn run(config: &Config) -> Vec<Row> {
    pin(0);
    let mut rows = Vec::new();
    for (bytes, case) in CASES {
        let pool = umrf_pool(bytes, BATCH, 1);
        let lease = pool.attach_slot(0).expect("umrf lease");
        let mut buffers: Vec<SharedBuffer<u8, CpuLocal>> = Vec::with_capacity(BATCH);
        let mut list = VecFreeList::new(bytes, BATCH);
        let mut blocks: Vec<*mut u8> = Vec::with_capacity(BATCH);
        let layout = Layout::from_size_align(bytes, 8).expect("layout");
        let mut bump = Bump::with_capacity(BATCH * bytes + 4096);
        let mut bumped: Vec<NonNull<u8>> = Vec::with_capacity(BATCH);

        let mut contenders = vec![
            Contender::new(case, "umrf", |iters| {
                timed(iters, || {
                    for _ in 0..BATCH {
                        let mut buf = lease.alloc::<u8>(bytes).unwrap();
                        buf[0] = 1;
                        buffers.push(buf);
                    }
                    black_box(&mut buffers);
                    buffers.clear();
                })
            })
            .per_iter(BATCH as u64),
            Contender::new(case, "vec_free_list", |iters| {
                timed(iters, || {
                    for _ in 0..BATCH {
                        let block = list.pop();
                        // SAFETY: the block is one of the list's, `bytes` long.
                        unsafe { block.write(1) };
                        blocks.push(block);
                    }
                    black_box(&mut blocks);
                    for block in blocks.drain(..) {
                        list.push(block);
                    }
                })
            })
            .per_iter(BATCH as u64),
            Contender::new(case, "bumpalo", |iters| {
                timed(iters, || {
                    for _ in 0..BATCH {
                        let block = bump.alloc_layout(layout);
                        // SAFETY: `alloc_layout` returned `bytes` writable bytes.
                        unsafe { block.as_ptr().write(1) };
                        bumped.push(block);
                    }
                    black_box(&mut bumped);
                    bumped.clear();
                    bump.reset();
                })
            })
            .per_iter(BATCH as u64),
        ];
        for peer in Peer::ALL {
            let mut boxes: Vec<PeerBox> = Vec::with_capacity(BATCH);
            contenders.push(
                Contender::new(case, peer.name(), move |iters| {
                    timed(iters, || {
                        for _ in 0..BATCH {
                            let mut boxed = PeerBox::new(peer, bytes);
                            boxed.bytes_mut()[0] = 1;
                            boxes.push(boxed);
                        }
                        black_box(&mut boxes);
                        boxes.clear();
                    })
                })
                .per_iter(BATCH as u64),
            );
        }
        rows.extend(measure(config, GROUP, contenders));
    }
    rows
}

pub fn comparisons() -> Vec<Comparison> {
    CASES
        .iter()
        .map(|&(_, case)| {
            Comparison::new(GROUP, case)
                .peers(
                    &[case],
                    &["system", "mimalloc", "jemalloc", "bumpalo"],
                    "the fastest of system, mimalloc, jemalloc and bumpalo (1000 allocs + one reset) in the same case",
                )
                .limit(case, "vec_free_list")
        })
        .collect()
}
