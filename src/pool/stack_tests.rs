//! Free blocks on the owner's stack (see `state.rs`): the state that a pop from the stack
//! leaves unwritten, the unrecorded frees of the size-class rows, and the fold of the pop
//! count into the allocations of all time.

use super::slot::Slot;
use super::{BlockState, LocalPool, Pool};
use crate::residency::CpuLocal;

/// A pool of one slot of `blocks` blocks, and the lease on it (which this thread then holds,
/// so the test may work the slot's owner side through [`Owner`]).
fn leased(blocks: usize) -> (Pool<CpuLocal>, LocalPool<CpuLocal>) {
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(blocks)
        .slots(1)
        .build()
        .unwrap();
    let lease = pool.attach_slot(0).unwrap();
    (pool, lease)
}

/// The owner side of slot 0 of a pool whose lease this thread holds (`leased`); each test
/// pushes only blocks that are out, raw and never sent away, and pushes back every block it
/// has out before the pool goes.
struct Owner<'a>(&'a Slot);

impl Owner<'_> {
    fn of(pool: &Pool<CpuLocal>) -> Owner<'_> {
        Owner(&pool.raw().inner().slots[0])
    }

    /// `n` fresh blocks, handed out raw.
    fn fresh(&self, n: usize) -> Vec<u32> {
        // SAFETY: this thread holds the slot's lease (the type's contract).
        (0..n)
            .map(|_| unsafe { self.0.refill() }.unwrap())
            .collect()
    }

    /// A recorded free onto the stack.
    fn push(&self, block: u32) {
        let words = self.0.states().owner_words();
        // SAFETY: the lease is this thread's; the block is out (the type's contract), and the
        // words are the slot's.
        unsafe { self.0.push_stack(block, words) }
    }

    /// An unrecorded free onto the stack.
    fn push_unrecorded(&self, block: u32) {
        // SAFETY: as in `push`; the block never left home.
        unsafe { self.0.push_unrecorded(block) }
    }

    /// A pop from the stack.
    fn pop(&self) -> Option<u32> {
        // SAFETY: this thread holds the slot's lease.
        unsafe { self.0.pop_top() }
    }

    fn state(&self, block: u32) -> Option<BlockState> {
        self.0.state(block)
    }
}

const OWNED: Option<BlockState> = Some(BlockState::Owned { slot: 0 });
const FREE: Option<BlockState> = Some(BlockState::Free);

#[test]
fn a_block_is_free_exactly_while_the_stack_holds_it() {
    let (pool, _lease) = leased(4);
    let owner = Owner::of(&pool);
    let b = owner.fresh(3);
    assert_eq!(owner.state(b[0]), OWNED);
    owner.push(b[0]); // position 0
    assert_eq!((owner.state(b[0]), owner.state(b[1])), (FREE, OWNED));
    assert_eq!(owner.pop(), Some(b[0])); // no write: it reads owned by leaving
    assert_eq!(owner.state(b[0]), OWNED);
    owner.push(b[1]); // position 0 again: b[0]'s old place
    assert_eq!((owner.state(b[0]), owner.state(b[1])), (OWNED, FREE));
    owner.push(b[0]); // position 1
    owner.push(b[2]); // position 2
    assert_eq!(owner.state(b[0]), FREE);
    assert_eq!(owner.pop(), Some(b[2]));
    assert_eq!(owner.pop(), Some(b[0]));
    // b[0]'s word still names position 1, now above the length.
    let states = (owner.state(b[0]), owner.state(b[1]), owner.state(b[2]));
    assert_eq!(states, (OWNED, FREE, OWNED));
    // The checked free's reading agrees while every free is recorded.
    assert_eq!(owner.0.state_before_remote_free(b[0]), OWNED);
    assert_eq!(owner.0.state_before_remote_free(b[1]), FREE);
    owner.push(b[0]);
    owner.push(b[2]);
    let counters = owner.0.counters();
    assert_eq!((counters.allocations, counters.len), (6, 3)); // 3 fresh, 3 pops
}

#[test]
fn an_unrecorded_free_reads_free_to_a_query_and_is_handed_out_again() {
    let (pool, _lease) = leased(4);
    let owner = Owner::of(&pool);
    let b = owner.fresh(2);
    owner.push(b[0]);
    assert_eq!(owner.pop(), Some(b[0])); // its word names position 0
    owner.push_unrecorded(b[1]); // position 0, its word unwritten (owned, from `refill`)
    owner.push_unrecorded(b[0]); // position 1, its word naming position 0
    // A query finds both on the stack; the checked free's O(1) reading does not (the trusted
    // free promised there would be no second free to check).
    assert_eq!((owner.state(b[0]), owner.state(b[1])), (FREE, FREE));
    assert_eq!(owner.0.state_before_remote_free(b[1]), OWNED);
    assert_eq!(owner.pop(), Some(b[0]));
    assert_eq!((owner.state(b[0]), owner.state(b[1])), (OWNED, FREE));
    owner.push_unrecorded(b[0]);
    let counters = owner.0.counters();
    assert_eq!((counters.allocations, counters.len), (4, 2));
}

#[test]
fn the_pop_count_folds_into_the_allocations_without_losing_one() {
    let (pool, _lease) = leased(2);
    let owner = Owner::of(&pool);
    let b = owner.fresh(1)[0];
    owner.0.start_pops_at(u32::MAX - 2);
    assert_eq!(owner.0.counters().allocations, 1);
    for round in 1..=6u64 {
        owner.push(b);
        assert_eq!(owner.pop(), Some(b));
        // Across the wrap of the 32-bit count (at the third pop) and past it.
        assert_eq!(owner.0.counters().allocations, 1 + round, "round {round}");
    }
    owner.push(b);
    assert_eq!(owner.0.counters().len, 1);
}
