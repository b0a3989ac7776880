//! Group 1, `same_slot_pair/<bytes>`: on one pinned thread, allocate a block, write one byte,
//! free it. Every contender's handle goes through `black_box(&mut handle)`, so each is
//! materialised in memory the same way (the buffer, the box, the raw pointer).
//!
//! - `umrf`: `LocalPool::alloc` and the buffer's drop (pop and push on the slot's free list).
//! - `system`, `mimalloc`, `jemalloc`: `alloc` and `dealloc` of the allocator, called directly.
//! - `bumpalo`: `alloc_layout`, then `reset` (a bump allocator cannot free one allocation:
//!   reset is how it gives memory back).
//! - `vec_free_list`: pop and push on a `Vec` of pre-touched blocks: the limit.

use std::alloc::Layout;
use std::hint::black_box;

use bumpalo::Bump;
use umrf::LocalPool;
use umrf::residency::CpuLocal;

use crate::common::{Peer, PeerBox, VecFreeList, umrf_pool};
use crate::measure::{Config, Contender, Row, measure, pin, timed};
use crate::report::{Against, Comparison};

pub const GROUP: &str = "same_slot_pair";
/// Block sizes, with their case names.
pub const CASES: [(usize, &str); 3] = [(64, "64"), (4096, "4096"), (65536, "65536")];

const PEERS: [&str; 4] = ["system", "mimalloc", "jemalloc", "bumpalo"];

/// One umrf pair: allocate, touch, free.
#[inline(always)]
pub fn umrf_pair(lease: &LocalPool<CpuLocal>, bytes: usize) {
    let mut buf = lease.alloc::<u8>(bytes).unwrap();
    buf[0] = 1;
    black_box(&mut buf);
}

/// One pair on the bare free list: the limit.
#[inline(always)]
pub fn vec_free_list_pair(list: &mut VecFreeList) {
    let mut block = list.pop();
    // SAFETY: the block is one of the list's, at least one byte long.
    unsafe { block.write(1) };
    black_box(&mut block);
    list.push(block);
}

/// One pair with a peer allocator.
#[inline(always)]
pub fn peer_pair(peer: Peer, bytes: usize) {
    let mut boxed = PeerBox::new(peer, bytes);
    boxed.bytes_mut()[0] = 1;
    black_box(&mut boxed);
}

pub fn run(config: &Config) -> Vec<Row> {
    pin(0);
    let mut rows = Vec::new();
    for (bytes, case) in CASES {
        let pool = umrf_pool(bytes, 64, 1);
        let lease = pool.attach_slot(0).expect("umrf lease");
        let mut list = VecFreeList::new(bytes, 64);
        let layout = Layout::from_size_align(bytes, 8).expect("layout");
        let mut bump = Bump::with_capacity(4 * bytes);

        let mut contenders = vec![
            Contender::new(case, "umrf", |iters| {
                timed(iters, || umrf_pair(&lease, bytes))
            }),
            Contender::new(case, "vec_free_list", |iters| {
                timed(iters, || vec_free_list_pair(&mut list))
            }),
            Contender::new(case, "bumpalo", |iters| {
                timed(iters, || {
                    let mut block = bump.alloc_layout(layout);
                    // SAFETY: `alloc_layout` returned `bytes` writable bytes.
                    unsafe { block.as_ptr().write(1) };
                    black_box(&mut block);
                    bump.reset();
                })
            }),
        ];
        for peer in Peer::ALL {
            contenders.push(Contender::new(case, peer.name(), move |iters| {
                timed(iters, || peer_pair(peer, bytes))
            }));
        }
        rows.extend(measure(config, GROUP, contenders));
    }
    rows
}

pub fn comparisons() -> Vec<Comparison> {
    let definition =
        "the fastest of system, mimalloc, jemalloc and bumpalo (alloc + reset) in the same case";
    let mut out = Vec::new();
    for (bytes, case) in CASES {
        let all = Comparison::new(GROUP, case)
            .peers(&[case], &PEERS, definition)
            .limit(case, "vec_free_list");
        if bytes != 4096 {
            out.push(all);
            continue;
        }
        out.push(
            all.target(Against::Limit, 2.0, "≤ 2× vec_free_list")
                .target(Against::Peer, 0.5, "≤ 0.5× best peer"),
        );
        // bumpalo cannot free one block, and its pair is faster than the free-list limit
        // itself; the general-purpose allocators are the peers a free-anywhere pool replaces.
        out.push(
            Comparison::new(GROUP, case)
                .variant("general-purpose")
                .peers(
                    &[case],
                    &PEERS[..3],
                    "the fastest general-purpose allocator: system, mimalloc or jemalloc (bumpalo left out: it cannot free one allocation)",
                )
                .limit(case, "vec_free_list")
                .target(Against::Peer, 0.5, "≤ 0.5× best peer"),
        );
    }
    out
}
