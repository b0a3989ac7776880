//! Block states, kept by writer, so a block handed between two cores never bounces a cache
//! line between them just to record where it is.
//!
//! Each block has two words:
//!
//! - the **owner word**, written only by the thread that leases the block's home slot:
//!   `place (32 bits) << 32 | trip (24 bits) << 8 | tag`, where `place` is meaningful only
//!   with the tag `Free` (see below);
//! - the **remote word**, written only by other threads holding the block:
//!   `slot (32 bits) << 32 | trip (24 bits) << 8 | tag`.
//!
//! A *trip* numbers one journey of the block away from its home slot. The owner bumps it when
//! the block departs (a capability made, or a buffer frozen, on the home thread) and again when
//! it comes back (a remote free drained, a capability accepted or a frozen block thawed at home). Remote threads record the trip they
//! hold the block on. So the current state is the remote word's when its trip equals the owner
//! word's (a journey in progress, recorded by whoever holds the block), and the owner word's
//! otherwise (the remote word then describes an older journey). A reader may see a block that
//! changes hands during the read on either side of the change. Trips wrap around after
//! 2^24 - 1 departures and returns (about 8.4 million round trips); when they do, the owner
//! resets the remote word, so a journey recorded a lap earlier never passes for the current one.
//!
//! Tags: `Free`, `Owned`, `InFlight`, `Frozen`, `MappedForDevice`. How each ownership pattern
//! moves the words:
//!
//! | change | on the home thread (holding the home lease) | elsewhere |
//! |---|---|---|
//! | capability made | owner: new trip, `InFlight` | remote: current trip, `InFlight` |
//! | buffer frozen | owner: new trip, `Frozen` | remote: current trip, `Frozen` |
//! | capability accepted, frozen block thawed | owner: new trip, `Owned` | remote: the trip, `Owned` |
//! | mapped for a device | owner: same trip, `MappedForDevice` | remote: current trip, `MappedForDevice` |
//! | device mapping ended | owner: the word saved at mapping | remote: the word saved at mapping |
//! | freed | owner: same trip, `Free` (local push) | remote: the trip, `Free` (remote push) |
//!
//! A frozen block travels like a capability (many readers, on any threads, hold it on one trip;
//! the last one frees or thaws it). A device mapping never leaves its thread (it is `!Send`), so
//! it writes the word that holds the block's state now and puts the saved word back at the end:
//! the trips do not move, and the rule above still reads the right word during and after.
//!
//! **Free blocks on the owner's stack.** The home thread's allocation from its stack writes no
//! state at all: the free that pushed the block wrote its owner word as `Free` with the stack
//! position it took (`place = position + 1`), and the block stays free exactly while the stack
//! still holds it there (the position is below the stack's length and its entry is this
//! block: a sparse-set test, Briggs and Torczon 1993). A `Free` owner word with `place` 0 is
//! free outright (a fresh block, or one in the hot cell or parked by a logging slot, which are
//! written `Owned` again when they are handed out). So the owner word is read with its slot's
//! stack at hand: [`Reading::FreeAt`] is what the table alone can say.
//!
//! **Unrecorded frees.** The size-class rows' trusted frees (the Rust allocator interfaces,
//! whose callers promise that the block is theirs and live) push the block on the stack and
//! write no state word either, so a block freed that way may read as owned at home
//! ([`Reading::AtHome`], or a `FreeAt` of an older position). Its slot notes that it took such
//! frees, and a query of a block's state on that slot ([`Slot::state`](super::slot::Slot::state))
//! looks for the block on the stack before it answers "owned". The checked frees do not: a
//! block freed by a trusted free and then by a checked one is a double free that the check
//! misses, as the trusted free's caller promised it would never happen. Every free that is
//! not a trusted row free records its block, so with checked frees alone (the C `free`) the
//! words are exact.
//!
//! Each block also has a **reader count**, in a table of its own: the number of live
//! [`Frozen`](crate::Frozen) handles of a frozen block. Readers on many cores clone and drop
//! handles by atomic read-modify-writes on that word alone, never on the slot's owner line or
//! the state words (counts of neighbouring blocks share a cache line: clones and drops of
//! different frozen blocks may contend, reads of the data never do). It is meaningful only
//! while the block is frozen.

use core::ptr::NonNull;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

use super::block::BlockState;

const TAG_MASK: u64 = 0xff;
const TAG_FREE: u64 = 0;
const TAG_OWNED: u64 = 1;
const TAG_IN_FLIGHT: u64 = 2;
const TAG_FROZEN: u64 = 3;
const TAG_MAPPED: u64 = 4;
const TAG_SPILLED: u64 = 5;
const TRIP_SHIFT: u32 = 8;
const TRIP_MASK: u32 = 0xff_ffff;
const SLOT_SHIFT: u32 = 32;
/// The trip bits of an owner word.
const TRIP_BITS: u64 = (TRIP_MASK as u64) << TRIP_SHIFT;
/// Where an owner word keeps a free block's place on the owner's stack.
const PLACE_SHIFT: u32 = 32;

/// A trip no owner word starts with: the remote word of a block never touched remotely.
const NO_TRIP: u32 = TRIP_MASK;

/// The remote word of a block no other thread holds on any trip the owner word can have now.
const fn never_remote() -> u64 {
    ((NO_TRIP as u64) << TRIP_SHIFT) | TAG_FREE
}

/// The last trip of a lap: the next one wraps around to 0.
#[cfg(test)]
pub(crate) const LAST_TRIP: u32 = NO_TRIP - 1;

/// Remote words are stored XORed with this, so the all-zero word of a fresh table reads as
/// [`NO_TRIP`] `Free` (saved words are restored as stored, so `swap_remote` and
/// `restore_remote` need no translation).
const REMOTE_BIAS: u64 = (NO_TRIP as u64) << TRIP_SHIFT;

/// A trip that a block's holder does not know yet: its buffer was allocated on the home thread
/// and never left it, so the trip is in the owner word.
pub(crate) const UNKNOWN_TRIP: u32 = u32::MAX;

/// The state of one tag with the slot it names.
fn decode(tag: u64, slot: usize) -> Option<BlockState> {
    match tag {
        TAG_FREE => Some(BlockState::Free),
        TAG_OWNED => Some(BlockState::Owned { slot }),
        TAG_IN_FLIGHT => Some(BlockState::InFlight),
        TAG_FROZEN => Some(BlockState::Frozen),
        TAG_MAPPED => Some(BlockState::MappedForDevice),
        TAG_SPILLED => Some(BlockState::Spilled),
        _ => None,
    }
}

/// The tag of a state, with the slot it names (0 for states that name none).
#[inline(always)]
fn encode(state: BlockState) -> (u64, u64) {
    match state {
        BlockState::Free => (TAG_FREE, 0),
        BlockState::Owned { slot } => (TAG_OWNED, slot as u64),
        BlockState::InFlight => (TAG_IN_FLIGHT, 0),
        BlockState::Frozen => (TAG_FROZEN, 0),
        BlockState::MappedForDevice => (TAG_MAPPED, 0),
        BlockState::Spilled => (TAG_SPILLED, 0),
    }
}

/// What a block's state words say, before its slot's stack is consulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The state.
    State(BlockState),
    /// Free if the owner's stack holds the block at this position now (below its length);
    /// else owned at home (it was handed out from there since, with no write of its words).
    FreeAt(u32),
    /// Owned at home, by the owner word; unless an unrecorded free (see the module docs) put
    /// the block on the owner's stack since.
    AtHome,
}

/// The two state words of every block of one slot.
///
/// # Invariants
/// 0. `owner.len() == remote.len()` = the slot's block count.
/// 4. An owner word's place (bits 32..64) is 0 unless its tag is `Free`; a `Free` word with
///    place `p > 0` was written by the free that pushed the block at position `p - 1` of its
///    slot's stack (see the module docs).
/// 1. Owner words change only on the thread holding the home slot's lease, or on a thread that
///    holds the block while no lease can touch it (the block is out of the slot).
/// 2. For a block on its home slot's free list, or owned at home, the remote word's trip
///    differs from the owner word's (every return home bumps the owner's trip, and when the
///    trips wrap around the remote word is reset, so an old trip never matches again).
/// 3. `readers.len()` = the slot's block count; `readers[i]` is the number of live `Frozen`
///    handles of block `i` while it is frozen, and means nothing otherwise.
pub(crate) struct StateTable {
    owner: Box<[AtomicU64]>,
    remote: Box<[AtomicU64]>,
    readers: Box<[AtomicU32]>,
}

/// The owner words of one [`StateTable`], as a bare pointer: what the home thread's local
/// alloc and free write, kept by a lease next to its other hot data so that those paths read
/// no field of the slot (the table's boxes live in the slot's read-only part, a cache line of
/// its own).
///
/// # Invariants
/// 0. `base` points to the first owner word of a table (made by
///    [`StateTable::owner_words`]); the words stay where they are while the table lives (they
///    are boxed, and a table never gives its boxes up).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnerWords {
    base: NonNull<AtomicU64>,
}

impl OwnerWords {
    /// The owner word of `block`, without a bounds check.
    ///
    /// # Safety
    /// The table these words came from is live, and `block` < its block count.
    #[inline(always)]
    unsafe fn word<'a>(self, block: u32) -> &'a AtomicU64 {
        // SAFETY: invariant 0 and the caller's promises: the word is inside the live table.
        let word = unsafe { self.base.add(block as usize) };
        // SAFETY: as above: a live, aligned atomic of the table, shared (never `&mut`).
        unsafe { word.as_ref() }
    }

    /// Sets the owner word to `tag` with `place`, keeping its trip.
    ///
    /// # Safety
    /// As [`word`](Self::word), on the thread allowed to write it (`StateTable` invariant 1).
    #[inline(always)]
    unsafe fn set_tag(self, block: u32, tag: u64, place: u64) {
        // SAFETY: caller's promise.
        let word = unsafe { self.word(block) };
        let trip = word.load(Ordering::Relaxed) & TRIP_BITS;
        word.store(trip | tag | (place << PLACE_SHIFT), Ordering::Relaxed);
    }

    /// The home thread hands `block` out from its hot cell, its fresh range or its parked
    /// blocks: owned at home. (A block taken from the stack needs no write: see the module
    /// docs.) Those blocks are free outright (tag `Free`, place 0), so one `or` sets the tag.
    ///
    /// # Safety
    /// As [`set_tag`](Self::set_tag), and `block`'s owner word is `Free` with place 0.
    #[inline(always)]
    pub(crate) unsafe fn owned_at_home(self, block: u32) {
        // SAFETY: caller's promise.
        let word = unsafe { self.word(block) };
        let free = word.load(Ordering::Relaxed);
        debug_assert_eq!(free & !TRIP_BITS, TAG_FREE, "not free outright");
        word.store(free | TAG_OWNED, Ordering::Relaxed);
    }

    /// What `block`'s two words say (its home slot being `home`), by the rule of
    /// [`StateTable::state`]; `None` for words
    /// that hold no state. A free owner word settles it alone (a block whose owner word is
    /// free is at home, and its remote trip differs: `StateTable` invariant 2), so a double
    /// free on the home thread reads one word and, for a block from the stack, its stack entry.
    ///
    /// # Safety
    /// As [`word`](Self::word), and `remote` are the remote words of the same table.
    #[inline(always)]
    pub(crate) unsafe fn reading(
        self,
        remote: RemoteWords,
        block: u32,
        home: usize,
    ) -> Option<Reading> {
        // SAFETY: caller's promise.
        let owner = unsafe { self.word(block) }.load(Ordering::Relaxed);
        if owner & TAG_MASK == TAG_FREE {
            return Some(free_reading(owner));
        }
        // SAFETY: caller's promise: the remote words of the same live table, `block` in range.
        let remote = unsafe { remote.load(block) };
        StateTable::read(owner, remote, home)
    }

    /// The home thread takes `block` back into its hot cell, or parks it: free outright.
    ///
    /// # Safety
    /// As [`set_tag`](Self::set_tag).
    #[inline(always)]
    pub(crate) unsafe fn free_at_home(self, block: u32) {
        // SAFETY: caller's promise.
        unsafe { self.set_tag(block, TAG_FREE, 0) }
    }

    /// The home thread pushes `block` at `position` of its stack: free while it stays there.
    ///
    /// # Safety
    /// As [`set_tag`](Self::set_tag).
    #[inline(always)]
    pub(crate) unsafe fn free_on_stack(self, block: u32, position: u32) {
        // SAFETY: caller's promise.
        unsafe { self.set_tag(block, TAG_FREE, u64::from(position) + 1) }
    }
}

/// The reading of a `Free` owner word: free outright (place 0), or free while the stack holds
/// the block at its position.
#[inline(always)]
fn free_reading(owner: u64) -> Reading {
    match (owner >> PLACE_SHIFT) as u32 {
        0 => Reading::State(BlockState::Free),
        place => Reading::FreeAt(place - 1),
    }
}

/// The remote words of one [`StateTable`], as a bare pointer, kept by a lease holder beside its
/// [`OwnerWords`] for the checked frees that read a block's state.
///
/// # Invariants
/// 0. `base` points to the first remote word of a table (made by
///    [`StateTable::remote_words`]); the words stay where they are while the table lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RemoteWords {
    base: NonNull<AtomicU64>,
}

impl RemoteWords {
    /// The remote word of `block`, with [`REMOTE_BIAS`] taken off.
    ///
    /// # Safety
    /// The table these words came from is live, and `block` < its block count.
    #[inline(always)]
    unsafe fn load(self, block: u32) -> u64 {
        // SAFETY: invariant 0 and the caller's promises: the word is inside the live table.
        let word = unsafe { self.base.add(block as usize) };
        // SAFETY: as above: a live, aligned atomic of the table, shared (never `&mut`).
        unsafe { word.as_ref() }.load(Ordering::Relaxed) ^ REMOTE_BIAS
    }
}

/// Whether a block is on a journey, from its owner word and its (unbiased) remote word: then
/// the remote word holds its state (the trips are equal), else the owner word does.
#[inline(always)]
fn on_journey(owner: u64, remote: u64) -> bool {
    let owner_trip = (owner >> TRIP_SHIFT) & u64::from(TRIP_MASK);
    let remote_trip = (remote >> TRIP_SHIFT) & u64::from(TRIP_MASK);
    owner_trip == remote_trip
}

impl StateTable {
    /// Bytes of this table per block: the owner word, the remote word and the reader count.
    pub(crate) const BYTES_PER_BLOCK: usize =
        size_of::<AtomicU64>() + size_of::<AtomicU64>() + size_of::<AtomicU32>();

    /// Every block free, on trip 0, never seen remotely. The tables start as zeroed memory
    /// (committed only where written): an owner word of 0 is trip 0 `Free`, and a stored
    /// remote word of 0 is [`NO_TRIP`] `Free` (see [`REMOTE_BIAS`]).
    pub(crate) fn new(blocks: u32) -> Self {
        const { assert!(TAG_FREE == 0) };
        StateTable {
            owner: crate::sync::zeroed_u64s(blocks as usize),
            remote: crate::sync::zeroed_u64s(blocks as usize),
            readers: crate::sync::zeroed_u32s(blocks as usize),
        }
    }

    /// The reader count of `block` (invariant 3).
    #[inline(always)]
    pub(crate) fn readers(&self, block: u32) -> &AtomicU32 {
        &self.readers[block as usize]
    }

    /// The owner words, as the pointer a lease holder's fast paths keep (see [`OwnerWords`]).
    #[inline(always)]
    pub(crate) fn owner_words(&self) -> OwnerWords {
        OwnerWords {
            base: NonNull::from(&*self.owner).cast(),
        }
    }

    /// The remote words, as the pointer a lease holder's checked frees keep (see
    /// [`RemoteWords`]).
    #[inline(always)]
    pub(crate) fn remote_words(&self) -> RemoteWords {
        RemoteWords {
            base: NonNull::from(&*self.remote).cast(),
        }
    }

    /// The home thread parks `block` (a logging slot's free): free outright.
    ///
    /// # Safety
    /// `block` is in range.
    #[inline(always)]
    pub(crate) unsafe fn free_at_home(&self, block: u32) {
        debug_assert!((block as usize) < self.owner.len());
        // SAFETY: the words are this live table's; caller's promise for the range.
        unsafe { self.owner_words().free_at_home(block) }
    }

    /// Starts a new trip with the owner word set to `tag`; returns the new trip.
    ///
    /// Runs on the home thread while it alone holds the block (it is departing from home, or
    /// just came back), so no other thread writes the block's remote word meanwhile.
    fn next_trip(&self, block: u32, tag: u64) -> u32 {
        self.next_trip_at(block, tag, 0)
    }

    /// [`next_trip`](Self::next_trip) with the owner word's place (invariant 4).
    fn next_trip_at(&self, block: u32, tag: u64, place: u64) -> u32 {
        let word = &self.owner[block as usize];
        let trip = ((word.load(Ordering::Relaxed) >> TRIP_SHIFT) as u32 + 1) & TRIP_MASK;
        // The trip that marks "never seen remotely" is skipped, so it never matches (inv. 2).
        let trip = if trip == NO_TRIP {
            self.wrap_trips(block)
        } else {
            trip
        };
        // Release: a reader on another thread that sees this word (an `Acquire` in `state`)
        // sees what the home thread did before it; for a drained block, the stack's length
        // and entry that its place names (`Slot::drain_remote`).
        word.store(
            (u64::from(trip) << TRIP_SHIFT) | tag | (place << PLACE_SHIFT),
            Ordering::Release,
        );
        trip
    }

    /// The trips of `block` wrap around to 0: its remote word may hold any earlier trip, which
    /// the owner's trips are about to pass again, so it is reset to "never seen remotely"
    /// (invariant 2 holds across the wrap; within one lap trips only grow). Returns trip 0.
    #[cold]
    #[inline(never)]
    fn wrap_trips(&self, block: u32) -> u32 {
        self.remote[block as usize].store(never_remote() ^ REMOTE_BIAS, Ordering::Relaxed);
        0
    }

    /// The home thread sends `block` away as `state` (`InFlight` or `Frozen`): a new trip
    /// begins.
    #[inline]
    pub(crate) fn depart_as(&self, block: u32, state: BlockState) -> u32 {
        self.next_trip(block, encode(state).0)
    }

    /// The home thread records `state` for `block` in its owner word without starting a trip;
    /// returns the word it replaced, for [`restore_owner`](Self::restore_owner).
    pub(crate) fn swap_owner(&self, block: u32, state: BlockState) -> u64 {
        let word = &self.owner[block as usize];
        let old = word.load(Ordering::Relaxed);
        word.store((old & TRIP_BITS) | encode(state).0, Ordering::Relaxed);
        old
    }

    /// Puts back an owner word saved by [`swap_owner`](Self::swap_owner).
    pub(crate) fn restore_owner(&self, block: u32, saved: u64) {
        self.owner[block as usize].store(saved, Ordering::Relaxed);
    }

    /// A thread away from home records `state` for `block` on trip `trip`; returns the word it
    /// replaced, for [`restore_remote`](Self::restore_remote).
    pub(crate) fn swap_remote(&self, block: u32, trip: u32, state: BlockState) -> u64 {
        let old = self.remote[block as usize].load(Ordering::Relaxed);
        self.record_remote(block, trip, state);
        old
    }

    /// Puts back a remote word saved by [`swap_remote`](Self::swap_remote).
    pub(crate) fn restore_remote(&self, block: u32, saved: u64) {
        self.remote[block as usize].store(saved, Ordering::Relaxed);
    }

    /// `block` came home from a trip: accepted by the home slot's lease.
    pub(crate) fn returned_owned(&self, block: u32) {
        self.next_trip(block, TAG_OWNED);
    }

    /// `block` came home from a trip: drained from the remote-free queue onto the owner's
    /// stack at `position`, or parked (`None`: a logging slot's drain).
    pub(crate) fn returned_free(&self, block: u32, position: Option<u32>) {
        let place = position.map_or(0, |p| u64::from(p) + 1);
        self.next_trip_at(block, TAG_FREE, place);
    }

    /// The trip `block` is on, from the owner word (for a buffer that never left home).
    pub(crate) fn trip(&self, block: u32) -> u32 {
        ((self.owner[block as usize].load(Ordering::Relaxed) >> TRIP_SHIFT) as u32) & TRIP_MASK
    }

    /// A thread away from home records what it does with `block` on trip `trip`.
    pub(crate) fn record_remote(&self, block: u32, trip: u32, state: BlockState) {
        let (tag, slot) = encode(state);
        let word = (slot << SLOT_SHIFT) | (u64::from(trip & TRIP_MASK) << TRIP_SHIFT) | tag;
        self.remote[block as usize].store(word ^ REMOTE_BIAS, Ordering::Relaxed);
    }

    /// What the words of `block`, whose home slot is `home`, say of its state; `None` if out
    /// of range (or for words that hold no state).
    #[inline]
    pub(crate) fn state(&self, block: u32, home: usize) -> Option<Reading> {
        // Acquire: see `next_trip_at`.
        let owner = self.owner.get(block as usize)?.load(Ordering::Acquire);
        let remote = self.remote.get(block as usize)?.load(Ordering::Relaxed) ^ REMOTE_BIAS;
        Self::read(owner, remote, home)
    }

    /// [`state`](Self::state) for a thread that frees `block` away from home if it is out: it
    /// reads the remote word by a compare-exchange that changes nothing (0 for 0), a write
    /// access. The free writes that word next, and a first touch of its page that is a read
    /// would map the kernel's shared zero page, which that write must then replace (a
    /// copy-on-write fault, and a flush of the mapping on every CPU the process runs on); a
    /// write access gets a page of its own at once, and the line in the state the free's write
    /// needs. (An idempotent `fetch_or(0)` would not do: compilers lower it to a fence and a
    /// load.)
    pub(crate) fn state_before_remote_free(&self, block: u32, home: usize) -> Option<Reading> {
        // Acquire: see `next_trip_at`.
        let owner = self.owner.get(block as usize)?.load(Ordering::Acquire);
        let word = self.remote.get(block as usize)?;
        let stored = match word.compare_exchange(0, 0, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(unchanged) | Err(unchanged) => unchanged,
        };
        Self::read(owner, stored ^ REMOTE_BIAS, home)
    }

    /// The state that an owner word and an (unbiased) remote word of a block of slot `home`
    /// record.
    #[inline(always)]
    fn read(owner: u64, remote: u64, home: usize) -> Option<Reading> {
        if on_journey(owner, remote) {
            decode(remote & TAG_MASK, (remote >> SLOT_SHIFT) as usize).map(Reading::State)
        } else if owner & TAG_MASK == TAG_FREE {
            Some(free_reading(owner))
        } else if owner & TAG_MASK == TAG_OWNED {
            Some(Reading::AtHome)
        } else {
            decode(owner & TAG_MASK, home).map(Reading::State)
        }
    }

    /// Moves the trips of `block` to `trip` (at most [`LAST_TRIP`]), keeping its tag: lets tests
    /// reach the wrap without millions of round trips first.
    #[cfg(test)]
    pub(crate) fn start_trips_at(&self, block: u32, trip: u32) {
        let word = &self.owner[block as usize];
        let rest = word.load(Ordering::Relaxed) & !TRIP_BITS;
        word.store(
            (u64::from(trip & TRIP_MASK) << TRIP_SHIFT) | rest,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{NO_TRIP, Reading, StateTable};
    use crate::pool::BlockState;

    const HOME: usize = 0;

    /// The state the table alone settles for block 0 (no stack position to consult).
    fn settled(table: &StateTable) -> Option<BlockState> {
        match table.state(0, HOME)? {
            Reading::State(state) => Some(state),
            Reading::AtHome => Some(BlockState::Owned { slot: HOME }),
            Reading::FreeAt(position) => panic!("free at stack position {position}"),
        }
    }

    /// Block 0 makes one journey to slot 1 and is freed there, so its remote word keeps that
    /// journey's trip; it is then allocated at home again.
    fn freed_remotely_once() -> (StateTable, u32) {
        let table = StateTable::new(1);
        let trip = table.depart_as(0, BlockState::InFlight);
        table.record_remote(0, trip, BlockState::Owned { slot: 1 });
        table.record_remote(0, trip, BlockState::Free);
        table.returned_free(0, None);
        // SAFETY: the table is live and block 0 is in range (the table has one block).
        unsafe { table.owner_words().owned_at_home(0) };
        assert_eq!(settled(&table), Some(BlockState::Owned { slot: HOME }));
        (table, trip)
    }

    /// One capability made and accepted at home (the remote word is not touched), checking the
    /// state on the way out and back.
    fn round_trip_at_home(table: &StateTable) {
        table.depart_as(0, BlockState::InFlight);
        assert_eq!(settled(table), Some(BlockState::InFlight));
        table.returned_owned(0);
        assert_eq!(settled(table), Some(BlockState::Owned { slot: HOME }));
    }

    /// `OwnerWords::reading` (the checked free's reading) and `state_before_remote_free` (the
    /// remote checked free's) against `state` (the full reading); the latter changes nothing.
    fn assert_free_agrees(table: &StateTable, step: &str) {
        // SAFETY: the table is live and block 0 is in range (the table has one block).
        let reading = unsafe { table.owner_words().reading(table.remote_words(), 0, HOME) };
        let state = table.state(0, HOME);
        assert_eq!(reading, state, "{step}");
        assert_eq!(table.state_before_remote_free(0, HOME), state, "{step}");
        assert_eq!(
            table.state(0, HOME),
            state,
            "{step}: the reading changed the state"
        );
    }

    #[test]
    fn the_checked_free_reads_the_state_as_the_full_reading_does() {
        let table = StateTable::new(1);
        assert_free_agrees(&table, "fresh");
        // SAFETY: the table is live, block 0 is in range and free.
        unsafe { table.owner_words().owned_at_home(0) };
        assert_free_agrees(&table, "owned at home");
        // SAFETY: as above; the block is out.
        unsafe { table.owner_words().free_at_home(0) };
        assert_free_agrees(&table, "freed at home");
        assert_eq!(settled(&table), Some(BlockState::Free));
        // SAFETY: as above; the block is free (handed out from the hot cell).
        unsafe { table.owner_words().owned_at_home(0) };
        // SAFETY: as above; the block is out (freed onto the stack at position 3).
        unsafe { table.owner_words().free_on_stack(0, 3) };
        assert_free_agrees(&table, "freed onto the stack");
        assert_eq!(table.state(0, HOME), Some(Reading::FreeAt(3)));
        // Handed out from the stack (no write), then mapped: the saved word comes back.
        let saved = table.swap_owner(0, BlockState::MappedForDevice);
        assert_eq!(settled(&table), Some(BlockState::MappedForDevice));
        table.restore_owner(0, saved);
        assert_eq!(table.state(0, HOME), Some(Reading::FreeAt(3)));
        // A departure from there starts a trip with no stack position.
        let trip = table.depart_as(0, BlockState::InFlight);
        assert_eq!(settled(&table), Some(BlockState::InFlight));
        table.record_remote(0, trip, BlockState::Free);
        assert_free_agrees(&table, "freed away after a pop from the stack");
        table.returned_free(0, Some(5));
        assert_eq!(table.state(0, HOME), Some(Reading::FreeAt(5)));
        assert_free_agrees(&table, "drained onto the stack");
        // Handed out from the stack (no write), freed into the hot cell, handed out again.
        // SAFETY: as above; the block is out.
        unsafe { table.owner_words().free_at_home(0) };
        // SAFETY: as above; the block is free outright.
        unsafe { table.owner_words().owned_at_home(0) };
        // A remote free of a block that never left on a trip: recorded on the owner's trip.
        let trip = table.trip(0);
        table.record_remote(0, trip, BlockState::Free);
        assert_free_agrees(&table, "freed remotely, queued");
        table.returned_free(0, None);
        assert_free_agrees(&table, "drained home");
        for state in [BlockState::InFlight, BlockState::Frozen] {
            // SAFETY: as above; the block is free.
            unsafe { table.owner_words().owned_at_home(0) };
            let trip = table.depart_as(0, state);
            assert_free_agrees(&table, "departed");
            table.record_remote(0, trip, BlockState::Owned { slot: 1 });
            assert_free_agrees(&table, "owned away");
            table.record_remote(0, trip, BlockState::Free);
            assert_free_agrees(&table, "freed away");
            table.returned_free(0, None);
            assert_free_agrees(&table, "home again");
        }
        // SAFETY: as above; the block is free.
        unsafe { table.owner_words().owned_at_home(0) };
        let saved = table.swap_owner(0, BlockState::MappedForDevice);
        assert_free_agrees(&table, "mapped");
        table.restore_owner(0, saved);
        assert_free_agrees(&table, "unmapped");
    }

    #[test]
    fn an_old_remote_trip_never_matches_after_the_trips_wrap() {
        let (table, remote_trip) = freed_remotely_once();
        table.start_trips_at(0, super::LAST_TRIP - 4);
        // Past the wrap and beyond the trip the remote word was written on.
        for _ in 0..(remote_trip + 8) {
            round_trip_at_home(&table);
        }
        assert!(table.trip(0) > remote_trip, "the trips wrapped");
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "16.7 million trips: the hook-started test above covers Miri"
    )]
    fn a_full_lap_of_trips_keeps_the_state_true() {
        let (table, remote_trip) = freed_remotely_once();
        let lap = NO_TRIP; // trips take the values 0..NO_TRIP
        let start = table.trip(0);
        let mut trips = 0u32;
        // Every trip value once more, and past the remote word's, with no hook.
        while trips < lap + 4 {
            round_trip_at_home(&table);
            trips += 2;
        }
        assert_eq!(table.trip(0), (start + trips) % lap);
        assert!(table.trip(0) > remote_trip);
    }

    /// Minor page faults taken by the calling thread so far.
    #[cfg(all(target_os = "linux", not(miri)))]
    fn minor_faults() -> libc::c_long {
        // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
        let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage`.
        let done = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        assert_eq!(done, 0, "getrusage");
        usage.ru_minflt
    }

    /// Asks the kernel to back the whole pages inside `len` bytes at `start` with small pages.
    #[cfg(all(target_os = "linux", not(miri)))]
    fn small_pages(start: *const u8, len: usize) {
        let page = crate::backing::os::page_size();
        let first = start.addr().next_multiple_of(page);
        let end = (start.addr() + len) / page * page;
        // SAFETY: the range lies inside a live allocation of this test (whole pages of it), and
        // the advice changes how its pages are backed, not their contents.
        let done = unsafe {
            libc::madvise(
                start.with_addr(first).cast_mut().cast(),
                end - first,
                libc::MADV_NOHUGEPAGE,
            )
        };
        assert_eq!(done, 0, "madvise");
    }

    /// A remote free that reads the block's remote word on a page nothing touched yet, then
    /// writes it: the plain reading maps the kernel's zero page and the write replaces it (two
    /// faults, the second a copy-on-write with a flush of the mapping on every CPU); the free's
    /// own reading takes one fault that gives the page at once.
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn the_remote_free_reading_touches_a_fresh_page_once() {
        // 8 Mi blocks: 64 MiB of remote words, above the system allocator's largest threshold
        // for fresh mappings, so every page of the tables starts untouched. One free every
        // 1024 blocks: a fresh page of owner words and of remote words each time.
        const BLOCKS: u32 = 8 << 20;
        const STRIDE: u32 = 1024;
        const FREES: u32 = 64;
        let faults = |reading: fn(&StateTable, u32) -> Option<Reading>| {
            let table = StateTable::new(BLOCKS);
            // Pages of 4 KiB whatever the machine's transparent huge page setting: a huge
            // page would serve many frees with one fault, and the counts would say nothing.
            small_pages(table.owner.as_ptr().cast(), size_of_val(&*table.owner));
            small_pages(table.remote.as_ptr().cast(), size_of_val(&*table.remote));
            let before = minor_faults();
            for k in 0..FREES {
                let block = k * STRIDE;
                assert_eq!(
                    reading(&table, block),
                    Some(Reading::State(BlockState::Free))
                );
                table.record_remote(block, 0, BlockState::Free);
            }
            minor_faults() - before
        };
        let plain = faults(|t, b| t.state(b, HOME));
        let before_free = faults(|t, b| t.state_before_remote_free(b, HOME));
        // Three faults per free against two (the owner word's page is read in both); a
        // quarter off is the margin for the tables' own set-up.
        assert!(
            before_free * 4 <= plain * 3,
            "{before_free} faults for the free's reading, {plain} for the plain one"
        );
    }
}
