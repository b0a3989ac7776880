//! Block identity and block state: the word each block carries for provenance and checks.

use core::ptr::NonNull;

use super::slot::Slot;

/// Where one block stands in its life, as recorded in its slot's state table.
///
/// Every block is in exactly one of these states at a time (invariant I1); the state changes
/// only when ownership moves. Read it with [`Pool::block_state`](crate::Pool::block_state).
///
/// ```
/// use umrf::{BlockState, Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(2).slots(1).build()?;
/// let lease = pool.attach_slot(0)?;
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Free));
/// let buf = lease.alloc::<u8>(8)?;
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
/// let cap = buf.into_capability();
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::InFlight));
/// drop(cap);
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Free));
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockState {
    /// In its slot: on the owner's free list, never used yet, or queued as a remote free.
    Free,
    /// Owned by a [`SharedBuffer`](crate::SharedBuffer) on the thread that leases slot `slot`.
    Owned {
        /// The slot of the owning lease (for a fallback pool's block: the primary slot of the
        /// lease that took or accepted it).
        slot: usize,
    },
    /// Inside a [`Capability`](crate::Capability): owned by whoever holds the message.
    InFlight,
}

const TAG_MASK: u32 = 0xff;
const TAG_FREE: u32 = 0;
const TAG_OWNED: u32 = 1;
const TAG_IN_FLIGHT: u32 = 2;

/// The largest slot index a state word can name (24 bits).
pub(crate) const MAX_SLOTS: usize = 1 << 24;

impl BlockState {
    /// The packed form stored in a slot's state table: a tag byte, then the slot in 24 bits.
    #[inline(always)]
    pub(crate) const fn encode(self) -> u32 {
        match self {
            BlockState::Free => TAG_FREE,
            BlockState::Owned { slot } => TAG_OWNED | ((slot as u32) << 8),
            BlockState::InFlight => TAG_IN_FLIGHT,
        }
    }

    /// Unpacks a state word; `None` for a word no version of umrf writes.
    pub(crate) const fn decode(word: u32) -> Option<BlockState> {
        match word & TAG_MASK {
            TAG_FREE => Some(BlockState::Free),
            TAG_OWNED => Some(BlockState::Owned {
                slot: (word >> 8) as usize,
            }),
            TAG_IN_FLIGHT => Some(BlockState::InFlight),
            _ => None,
        }
    }
}

/// A reference to one block: its slot and index. Owned by exactly one owner type at a time.
///
/// # Invariants
/// 0. `slot` points to a slot of a live pool, and stays valid while the block is out of the
///    pool (PoolInner invariant 2): the pool is freed only after every block is home.
/// 1. `index < slot.blocks()`.
#[derive(Debug)]
pub(crate) struct BlockRef {
    pub(crate) slot: NonNull<Slot>,
    pub(crate) index: u32,
}

impl BlockRef {
    /// The slot the block belongs to (its home).
    #[inline(always)]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: invariant 0: the slot outlives every block that is out of it, and `self`
        // stands for such a block.
        unsafe { self.slot.as_ref() }
    }

    /// Records the block's new state.
    #[inline(always)]
    pub(crate) fn set_state(&self, state: BlockState) {
        self.slot().set_state(self.index, state);
    }

    /// Returns the block home: onto the local free list when `local_gen` is the live lease of
    /// the home slot on this thread, else as a remote free (a lock-free push).
    ///
    /// # Safety
    /// 1. The caller owns the block and gives it up: nothing uses the block after this call.
    /// 2. `local_gen` is either [`NOT_LOCAL`](super::slot::NOT_LOCAL) or a lease generation of the
    ///    home slot that was taken on the calling thread.
    #[inline]
    pub(crate) unsafe fn release(&self, local_gen: u64) {
        let slot = self.slot();
        if slot.holds_lease(local_gen) {
            // SAFETY: promise 2 plus `holds_lease`: the lease `local_gen` is still current, and
            // it was taken on this thread, so this thread holds it (Slot invariant 2); promise 1
            // gives the block up.
            unsafe { slot.push_local(self.index) }
        } else {
            // SAFETY: invariant 0 (the slot is live while this block is out) and promise 1.
            unsafe { Slot::free_remote(self.slot, self.index) }
        }
    }
}
