//! Block identity and block state: the word each block carries for provenance and checks.

use core::ptr::NonNull;

use super::slot::{NOT_LOCAL, Slot};
use super::state::UNKNOWN_TRIP;
use crate::sync::AtomicU32;

/// Where one block stands in its life, as recorded in its slot's state table.
///
/// Every block is in exactly one of these states at a time (invariant I1); the state changes
/// only when ownership moves. Read it with [`Pool::block_state`](crate::Pool::block_state).
///
/// ```
/// use umrf::{BlockState, Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
/// let lease = pool.attach_slot(0)?;
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Free));
/// let buf = lease.alloc::<u8>(8)?;
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
/// let cap = buf.into_capability();
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::InFlight));
/// drop(cap);
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Free));
///
/// let frozen = lease.alloc::<u8>(8)?.freeze();
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Frozen));
/// let mapping = frozen.try_thaw(&lease).unwrap().map_for_device::<umrf::coherence::ToDevice>().unwrap();
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::MappedForDevice));
/// drop(mapping.unmap());
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
    /// Read-only, owned by the group of [`Frozen`](crate::Frozen) readers, on any threads; it
    /// goes home when the last reader drops, or becomes a buffer again when the last reader
    /// thaws it.
    Frozen,
    /// Handed to a device by a [`DeviceMapping`](crate::coherence::DeviceMapping): no CPU
    /// access until it is unmapped. A mapping that is forgotten or dropped without `unmap`
    /// leaves its block in this state for good (the device may still be using it).
    MappedForDevice,
    /// Being written to a lower tier by a [`TieredStore`](crate::tiered::TieredStore)'s I/O
    /// worker: the page it held is leaving RAM. The block goes home once the write is done (or
    /// back to the store, whole, if the write failed).
    Spilled,
}

/// The largest slot count a pool may have.
pub(crate) const MAX_SLOTS: usize = 1 << 24;

/// A block state word saved by [`BlockRef::mark`], to put back with [`BlockRef::restore`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum StateMark {
    /// The owner word, as it was.
    Owner(u64),
    /// The remote word, as it was.
    Remote(u64),
}

/// A reference to one block: its slot, its index, and the trip it is on.
///
/// # Invariants
/// 0. `slot` points to a slot of a live pool, and stays valid while the block is out of the
///    pool (PoolInner invariant 2): the pool is freed only after every block is home.
/// 1. `index < slot.blocks()`.
/// 2. `trip` is the trip the block is on (see `state.rs`), or [`UNKNOWN_TRIP`] for a block
///    that never left its home thread, whose trip is in its owner word.
#[derive(Debug)]
pub(crate) struct BlockRef {
    pub(crate) slot: NonNull<Slot>,
    pub(crate) index: u32,
    pub(crate) trip: u32,
}

impl BlockRef {
    /// Another reference to the same block on the same trip. Ownership is not copied: the
    /// caller decides which of the two stands for the block (a buffer giving up its parts, a
    /// reader group sharing one).
    #[inline(always)]
    pub(crate) fn share(&self) -> BlockRef {
        BlockRef {
            slot: self.slot,
            index: self.index,
            trip: self.trip,
        }
    }

    /// The slot the block belongs to (its home).
    #[inline(always)]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: invariant 0: the slot outlives every block that is out of it, and `self`
        // stands for such a block.
        unsafe { self.slot.as_ref() }
    }

    /// The trip the block is on.
    fn current_trip(&self) -> u32 {
        if self.trip == UNKNOWN_TRIP {
            self.slot().states().trip(self.index)
        } else {
            self.trip
        }
    }

    /// Whether `local_gen` is the live lease of the home slot, held by this thread.
    ///
    /// A block that never had a local lease skips reading the lease word, which shares a cache
    /// line with the owner's hot counters on another core.
    #[inline(always)]
    pub(crate) fn is_home(&self, local_gen: u64) -> bool {
        local_gen != NOT_LOCAL && self.slot().holds_lease(local_gen)
    }

    /// Records that the block leaves as a capability; returns the trip it travels on.
    ///
    /// `local_gen` is as in [`release`](Self::release).
    pub(crate) fn depart(&self, local_gen: u64) -> u32 {
        self.depart_as(local_gen, BlockState::InFlight)
    }

    /// Records that the block leaves its buffer as `state` (`InFlight` for a capability,
    /// `Frozen` for a group of readers) and may travel to other threads; returns the trip it
    /// travels on.
    ///
    /// `local_gen` is as in [`release`](Self::release).
    #[inline]
    pub(crate) fn depart_as(&self, local_gen: u64, state: BlockState) -> u32 {
        let states = self.slot().states();
        let trip = if self.is_home(local_gen) {
            states.depart_as(self.index, state)
        } else {
            let trip = self.current_trip();
            states.record_remote(self.index, trip, state);
            trip
        };
        if let Some(log) = self.slot().log() {
            // After the state change: a sink that drops the lease cannot race the owner word.
            log.sent(self.index, state).publish();
        }
        trip
    }

    /// Records `state` for a block that stays with its holder on this thread (a device
    /// mapping); [`restore`](Self::restore) with the result puts the previous state back.
    ///
    /// `local_gen` is as in [`release`](Self::release). The state goes into the word that
    /// holds the block's state now: the owner word for a block held by its home lease, else
    /// the remote word on the block's current trip (see `state.rs`).
    pub(crate) fn mark(&self, local_gen: u64, state: BlockState) -> StateMark {
        let states = self.slot().states();
        if self.is_home(local_gen) {
            StateMark::Owner(states.swap_owner(self.index, state))
        } else {
            let trip = self.current_trip();
            StateMark::Remote(states.swap_remote(self.index, trip, state))
        }
    }

    /// Puts back the state that [`mark`](Self::mark) replaced.
    pub(crate) fn restore(&self, mark: StateMark) {
        let states = self.slot().states();
        match mark {
            StateMark::Owner(word) => states.restore_owner(self.index, word),
            StateMark::Remote(word) => states.restore_remote(self.index, word),
        }
    }

    /// The block's reader count (meaningful while it is frozen; see `state.rs`).
    #[inline(always)]
    pub(crate) fn readers(&self) -> &AtomicU32 {
        self.slot().states().readers(self.index)
    }

    /// Records that the block arrived at the lease of slot `owner`; `at_home` when that lease
    /// holds the block's home slot. Returns the trip the buffer holds it on.
    pub(crate) fn arrive(&self, at_home: bool, owner: usize) -> u32 {
        let states = self.slot().states();
        let trip = if at_home {
            states.returned_owned(self.index);
            UNKNOWN_TRIP
        } else {
            states.record_remote(self.index, self.trip, BlockState::Owned { slot: owner });
            self.trip
        };
        if let Some(log) = self.slot().log() {
            // At home the home slot's lease owns it, as the block's state says. After the
            // state change: a sink that drops the lease cannot race the owner word.
            let holder = if at_home { self.slot().index() } else { owner };
            log.accepted(self.index, holder).publish();
        }
        trip
    }

    /// Returns the block home: onto the local free list when `local_gen` is the live lease of
    /// the home slot on this thread, else as a remote free (a lock-free push).
    ///
    /// # Safety
    /// 1. The caller owns the block and gives it up: nothing uses the block after this call.
    /// 2. `local_gen` is either [`NOT_LOCAL`] or a lease generation of the home slot that was
    ///    taken on the calling thread.
    #[inline]
    pub(crate) unsafe fn release(&self, local_gen: u64) {
        if self.is_home(local_gen) {
            // SAFETY: promise 2 plus `is_home`: the lease `local_gen` is still current, and it
            // was taken on this thread, so this thread holds it (Slot invariant 2); promise 1
            // gives the block up.
            let pushed = unsafe { self.slot().push_local(self.index) };
            if !pushed {
                // SAFETY: as above, for a logging slot: the same promises; invariant 0 keeps
                // the slot alive until the block is freed.
                unsafe { Slot::free_local_logged(self.slot, self.index) }
            }
        } else {
            // SAFETY: promise 1.
            unsafe { self.release_remote() }
        }
    }

    /// Returns the block home from away: one lock-free push onto its home slot's queue.
    ///
    /// # Safety
    /// The caller owns the block and gives it up: nothing uses the block after this call.
    pub(crate) unsafe fn release_remote(&self) {
        let trip = self.current_trip();
        // SAFETY: invariant 0 (the slot is live while this block is out) and the caller's
        // promise.
        unsafe { Slot::free_remote(self.slot, self.index, trip) }
    }
}
