//! One slot: a pre-allocated region of fixed-size blocks, its owner's free list, and its
//! remote-free queue.
//!
//! Accounting, for each slot at any quiescent moment (checked with `debug_assert!`):
//!
//! ```text
//! capacity = fresh_left + local_free + remote_pending + in_use
//! where fresh_left     = blocks - fresh               (never handed out)
//!       local_free     = len + (hot holds a block)    (on the owner's stack or in its hot cell)
//!       remote_pending = pushed - drained             (freed by other threads, not yet drained)
//! ```
//!
//! Local alloc and free are a pop and a push on the owner's free list: no atomic
//! read-modify-write, no fence. The most recently freed block waits in a one-entry hot cell in
//! front of the stack, so a free followed by an allocation (the common pattern of a temporary
//! buffer) passes one block index through memory instead of updating the stack length twice. A remote free is one CAS push onto a Treiber stack of block indices; the owner takes
//! the whole stack with one `swap` when its own list runs dry. Push-only plus take-all has no ABA
//! problem (Treiber 1986; the take-all variant is the one mimalloc uses for its thread-free list).

use core::ptr::NonNull;

use crossbeam_utils::CachePadded;

use super::block::BlockState;
use super::inner::PoolInner;
use super::state::{OwnerWords, Reading, StateTable};
use crate::backing::Region;
use crate::events::{Pending, SlotLog};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering, bump, fence};

/// Bookkeeping bytes per block, outside the block: its owner-stack entry, its remote-queue
/// link (`next`) and its state words ([`StateTable::BYTES_PER_BLOCK`]).
pub(crate) const METADATA_BYTES_PER_BLOCK: usize =
    size_of::<AtomicU32>() + size_of::<AtomicU32>() + StateTable::BYTES_PER_BLOCK;

/// End of a chain in the remote queue; an empty hot cell.
pub(crate) const NO_BLOCK: u32 = u32::MAX;

/// The hot cell of a slot that keeps every free on its stack: never empty, never a block
/// (block indices stay below [`MAX_BLOCKS`]), so a free never puts a block there and a pop
/// never takes one, with no test beyond the one an open cell needs.
const HOT_CLOSED: u32 = u32::MAX - 1;

/// A lease generation that no lease ever has (lease words start at 2 and only grow).
pub(crate) const NOT_LOCAL: u64 = 0;

/// The lease word of a slot never leased: even (free), above [`NOT_LOCAL`].
const FIRST_FREE_WORD: u64 = 2;

/// The side of a slot that only its owner writes.
///
/// `repr(C)`, hot fields first: what a local alloc or free touches (the hot cell, the stack,
/// the allocation and request counters, the lease word its buffers check) shares the first
/// cache line; the counters of the slow paths follow.
#[repr(C)]
struct OwnerSide {
    /// The most recently freed block, or [`NO_BLOCK`]; in front of `stack`. [`HOT_CLOSED`] in
    /// a slot that keeps every free on the stack.
    hot: AtomicU32,
    /// Bits 0..32: the number of entries on `stack`. Bits 32..64: the allocations taken
    /// from the stack, modulo 2^32 (each 2^32 of them is added to `allocations` by a fold:
    /// [`Slot::fold_pops`]). One word, so a pop from the stack updates both with one store.
    /// Written by the owner; read by stats and by the state readings of other threads (a
    /// store that raises the length is a `Release`, after the entries).
    list: AtomicU64,
    /// Free block indices, a stack; `stack[..len]` are valid. Written by the owner only;
    /// atomic so that other threads may read an entry (a block's state: see `state.rs`).
    stack: Box<[AtomicU32]>,
    /// Set once a block was freed onto the stack without its owner word written (an
    /// unrecorded free, see `state.rs`): queries of a state then look for the block there.
    unrecorded: AtomicBool,
    /// Blocks handed out, all time, but for the pops from the stack that `list` counts still.
    allocations: AtomicU64,
    /// Bytes asked for by the allocations, all time, where the caller says
    /// ([`note_requested`](Slot::note_requested): the size-class rows); 0 otherwise.
    requested: AtomicU64,
    /// Even: free. Odd: leased, and the value is that lease's generation.
    lease: AtomicU64,
    /// Blocks `fresh..blocks` were never handed out. Since the owner reuses freed blocks before
    /// fresh ones, this is also the most blocks that were ever out of its hands at once.
    fresh: AtomicU32,
    /// Remote frees taken back by the owner, all time.
    drained: AtomicU64,
    /// Times an allocation found this slot empty.
    exhausted: AtomicU64,
    /// Allocations served by a fallback pool because this slot was empty.
    fallbacks: AtomicU64,
    /// Capabilities this slot's leases refused (`Capability::accept` errors).
    accept_failures: AtomicU64,
    /// A sequence lock over the folds of `list`'s pop count into `allocations`: odd while a
    /// fold runs, and bumped twice by each (see [`Slot::allocations_and_list`]).
    folds: AtomicU64,
}

/// How [`Slot::settle`] treats a block that its words say is owned at home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Owned, if the slot took unrecorded frees, only once the stack does not hold it: exact
    /// for every block (a query).
    Exact,
    /// Owned: exact for every block but those of unrecorded frees, in O(1) (the checked
    /// frees; see `state.rs`).
    Recorded,
}

/// The length field of [`OwnerSide::list`].
const LEN_MASK: u64 = u32::MAX as u64;
/// A pop from the stack, added to [`OwnerSide::list`]: the length down by one, the pop count
/// up by one (a borrow from the pop count that the `+ 2^32` pays back: the length is at least
/// 1). The sum overflows exactly when the pop count wraps.
const POP: u64 = (1 << 32) - 1;

/// The side of a slot that other threads write: one word, so a remote free is one CAS.
///
/// ```text
/// bit 63      orphaned: the pool has no handle left (set once)
/// bits 32..63 push count, modulo 2^31 (before orphaning: remote frees so far; after: minus
///             the number still to come, so the push that brings it to 0 was the last)
/// bits 0..32  top of the remote-free stack, a block index, or NO_BLOCK
/// ```
struct RemoteSide {
    word: AtomicU64,
}

const HEAD_MASK: u64 = NO_BLOCK as u64;
const COUNT_SHIFT: u32 = 32;
const COUNT_MODULUS: u64 = 1 << 31;
const ORPHANED: u64 = 1 << 63;

/// The most blocks a slot may have: the push count must tell them all apart.
pub(crate) const MAX_BLOCKS: usize = COUNT_MODULUS as usize - 1;

/// The remote-free stack's top block.
#[inline(always)]
fn head_of(word: u64) -> u32 {
    (word & HEAD_MASK) as u32
}

/// The push count (modulo 2^31).
#[inline(always)]
fn count_of(word: u64) -> u64 {
    (word >> COUNT_SHIFT) & (COUNT_MODULUS - 1)
}

/// One pre-allocated region of `blocks` fixed-size blocks, leased by at most one thread.
///
/// # Invariants
/// 0. `base` is the start of `blocks * block_size` bytes inside `region`; block `i` spans
///    `base + i * block_size ..+ block_size`; blocks never overlap and are `block_align`-aligned.
/// 1. Each block is in exactly one place: in the owner's hot cell, on the owner's stack, in the
///    fresh range, in the remote queue, or out with exactly one owner (I1). Its state words
///    say which, read with the stack for a block that a free pushed there (`state.rs`).
/// 2. `hot`, the writes to `stack`, and the writes to the owner-side counters, happen only on the thread that holds
///    the lease (lease word odd). A lease is taken by a CAS with `Acquire` and given back by a
///    `Release` store, so each new owner sees everything the previous one wrote.
/// 3. `next[i]` is meaningful only while block `i` is in the remote queue.
/// 4. Once the pool is orphaned, the owner side is never touched again.
/// 5. `pool` points to the `PoolInner` that contains this slot (set once, before sharing).
/// 6. `log` is set once, before sharing, and read-only after: `Some` only for pools built with
///    ownership logging. It sits with the other read-only fields that block operations read, so
///    a pool without logging pays one test of a pointer already in cache where it is checked
///    (never on the allocation fast path). A logging slot never uses `hot` and keeps `len` at
///    0: its free blocks are "parked" on `stack[..log.parked()]` (see `park`).
/// 7. No code from outside the crate runs inside a `Slot` method while the owner side or a
///    block's state is half updated: logging methods return their event as a
///    [`Pending`], and the sinks run once the change is complete (for a local or remote free,
///    once the function's reference to the slot has ended: see `free_local_logged`).
pub(crate) struct Slot {
    own: CachePadded<OwnerSide>,
    remote: CachePadded<RemoteSide>,
    index: u32,
    blocks: u32,
    block_size: usize,
    base: NonNull<u8>,
    log: Option<Box<SlotLog>>,
    next: Box<[AtomicU32]>,
    states: StateTable,
    pool: NonNull<PoolInner>,
    region: Region,
}

// SAFETY: the owner side is only touched under the lease protocol (invariant 2), the remote side
// only through atomics, and the rest is read-only after construction. The raw pointers are to the
// region (owned by this slot) and to the containing pool (invariant 5).
unsafe impl Send for Slot {}
// SAFETY: as for Send: shared access is either atomic or confined to the lease holder.
unsafe impl Sync for Slot {}

impl Slot {
    /// A slot over `region`, every block fresh.
    pub(crate) fn new(index: usize, blocks: u32, block_size: usize, region: Region) -> Slot {
        debug_assert!(blocks as usize * block_size <= region.info().bytes);
        Slot {
            own: CachePadded::new(OwnerSide {
                hot: AtomicU32::new(NO_BLOCK),
                list: AtomicU64::new(0),
                stack: crate::sync::zeroed_u32s(blocks as usize),
                unrecorded: AtomicBool::new(false),
                allocations: AtomicU64::new(0),
                requested: AtomicU64::new(0),
                lease: AtomicU64::new(FIRST_FREE_WORD),
                fresh: AtomicU32::new(0),
                drained: AtomicU64::new(0),
                exhausted: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
                accept_failures: AtomicU64::new(0),
                folds: AtomicU64::new(0),
            }),
            remote: CachePadded::new(RemoteSide {
                word: AtomicU64::new(HEAD_MASK),
            }),
            index: index as u32,
            blocks,
            block_size,
            base: region.base(),
            // Meaningful only while a block is queued (invariant 3): zeroed, committed on use.
            next: crate::sync::zeroed_u32s(blocks as usize),
            states: StateTable::new(blocks),
            pool: NonNull::dangling(),
            log: None,
            region,
        }
    }

    /// Sets the back pointer to the containing pool (invariant 5); called once, before sharing.
    pub(crate) fn set_pool(&mut self, pool: NonNull<PoolInner>) {
        self.pool = pool;
    }

    /// Keeps every local free on the stack, never in the hot cell (size-class pools, whose
    /// rows' allocations look on the stack alone: [`pop_top`](Self::pop_top)); called before
    /// sharing.
    pub(crate) fn keep_frees_on_the_stack(&mut self) {
        self.own.hot = AtomicU32::new(HOT_CLOSED);
    }

    /// Whether the hot cell holds a block.
    fn hot_holds_a_block(&self) -> bool {
        self.own.hot.load(Ordering::Relaxed) < HOT_CLOSED
    }

    /// Gives the slot its ownership log (invariant 6); called once, before sharing.
    pub(crate) fn set_log(&mut self, log: Box<SlotLog>) {
        self.log = Some(log);
    }

    /// The slot's ownership log, if its pool records one.
    #[inline(always)]
    pub(crate) fn log(&self) -> Option<&SlotLog> {
        self.log.as_deref()
    }

    /// The containing pool.
    #[inline(always)]
    pub(crate) fn pool(&self) -> NonNull<PoolInner> {
        self.pool
    }

    /// This slot's index in its pool.
    #[inline(always)]
    pub(crate) fn index(&self) -> usize {
        self.index as usize
    }

    /// Blocks in this slot.
    pub(crate) fn blocks(&self) -> u32 {
        self.blocks
    }

    /// The region behind this slot.
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Address of block `index`, derived from the region base (keeps its provenance).
    #[inline(always)]
    pub(crate) fn block_ptr(&self, index: u32) -> NonNull<u8> {
        debug_assert!(index < self.blocks);
        // SAFETY: invariant 0: `index < blocks`, so the offset stays inside the region.
        unsafe { self.base.add(index as usize * self.block_size) }
    }

    /// The blocks' state words.
    #[inline(always)]
    pub(crate) fn states(&self) -> &StateTable {
        &self.states
    }

    /// A block's current state, or `None` if there is no such block. Exact for every block,
    /// unrecorded frees included: where the slot took some, a block that reads as owned at
    /// home is looked for on the owner's stack (a scan of its entries: a query, not a hot path).
    #[inline]
    pub(crate) fn state(&self, index: u32) -> Option<BlockState> {
        let reading = self.states.state(index, self.index())?;
        Some(self.settle(index, reading, Settle::Exact))
    }

    /// [`state`](Self::state), read by a thread that will free the block away from home if it
    /// is out (see [`StateTable::state_before_remote_free`]): the checked free's reading, in
    /// O(1) (see [`Settle::Recorded`]).
    #[inline]
    pub(crate) fn state_before_remote_free(&self, index: u32) -> Option<BlockState> {
        let reading = self.states.state_before_remote_free(index, self.index())?;
        Some(self.settle(index, reading, Settle::Recorded))
    }

    /// The state that a reading of `block`'s words means, with the owner's stack consulted
    /// for a block pushed there (see `state.rs`): free while the stack holds it at its
    /// position, owned at home once it was handed out from there.
    ///
    /// From another thread the answer is as of some moment of the call: the length is read
    /// with `Acquire`, so an entry below it is the one written before that length was stored.
    #[inline]
    pub(crate) fn settle(&self, block: u32, reading: Reading, settle: Settle) -> BlockState {
        let owned = BlockState::Owned { slot: self.index() };
        let at_home = match reading {
            Reading::State(state) => return state,
            Reading::FreeAt(position) => {
                let len = self.len(Ordering::Acquire);
                let held = position < len
                    && self
                        .own
                        .stack
                        .get(position as usize)
                        .is_some_and(|entry| entry.load(Ordering::Relaxed) == block);
                if held {
                    return BlockState::Free;
                }
                owned
            }
            Reading::AtHome => owned,
        };
        if settle == Settle::Exact && self.own.unrecorded.load(Ordering::Relaxed) {
            let len = self.len(Ordering::Acquire) as usize;
            let stack = &self.own.stack[..len.min(self.own.stack.len())];
            if stack
                .iter()
                .any(|entry| entry.load(Ordering::Relaxed) == block)
            {
                return BlockState::Free;
            }
        }
        at_home
    }

    // ----- leasing ---------------------------------------------------------------------------

    /// Takes the lease if the slot is free; returns the new lease generation.
    pub(crate) fn try_lease(&self) -> Option<u64> {
        let word = self.own.lease.load(Ordering::Relaxed);
        if word & 1 == 1 {
            return None;
        }
        self.own
            .lease
            .compare_exchange(word, word + 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| word + 1)
    }

    /// Gives the lease `generation` back.
    pub(crate) fn release_lease(&self, generation: u64) {
        debug_assert_eq!(self.own.lease.load(Ordering::Relaxed), generation);
        self.own.lease.store(generation + 1, Ordering::Release);
    }

    /// Whether lease `generation` is the current lease.
    ///
    /// A `Relaxed` load suffices: the caller asks about a lease taken on its own thread, and
    /// the only writes that could change the answer are that thread's own release (which it
    /// always sees) or attaches that happen after it (which can only make the answer `false`).
    #[inline(always)]
    pub(crate) fn holds_lease(&self, generation: u64) -> bool {
        self.own.lease.load(Ordering::Relaxed) == generation
    }

    /// Whether some thread leases this slot now.
    pub(crate) fn is_leased(&self) -> bool {
        self.own.lease.load(Ordering::Relaxed) & 1 == 1
    }

    // ----- owner side ------------------------------------------------------------------------

    /// Pops a free block from the owner's stack.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    #[inline]
    pub(crate) unsafe fn pop_local(&self) -> Option<u32> {
        // SAFETY: caller's promise; the words are this slot's.
        unsafe { self.pop_with(self.states.owner_words()) }
    }

    /// [`pop_local`](Self::pop_local) with the slot's owner words given: the hot cell first,
    /// then the stack.
    ///
    /// # Safety
    /// As [`pop_local`](Self::pop_local), and `words` are this slot's
    /// (`self.states.owner_words()`).
    #[inline(always)]
    unsafe fn pop_with(&self, words: OwnerWords) -> Option<u32> {
        // SAFETY: caller's promises, passed on.
        match unsafe { self.pop_hot(words) } {
            Some(block) => Some(block),
            // SAFETY: caller's promise (invariant 2).
            None => unsafe { self.pop_top() },
        }
    }

    /// Takes the block in the hot cell, if any, counted as an allocation, its state `Owned`
    /// (a block in the hot cell is free outright: its word must say it is not any more). The
    /// slow path of a lease that pops through [`pop_top`](Self::pop_top).
    ///
    /// # Safety
    /// As [`pop_with`](Self::pop_with).
    #[inline(always)]
    pub(super) unsafe fn pop_hot(&self, words: OwnerWords) -> Option<u32> {
        let hot = self.own.hot.load(Ordering::Relaxed);
        if hot >= HOT_CLOSED {
            return None;
        }
        self.own.hot.store(NO_BLOCK, Ordering::Relaxed);
        // SAFETY: caller's promise for `words`; the block came from the owner's side.
        unsafe { self.note_alloc_with(hot, words) };
        Some(hot)
    }

    /// Pops the top of the owner's stack, if any, counted as an allocation. Its state words
    /// are left as they are: the block stops being free by leaving the stack (see `state.rs`).
    /// A lease that frees through [`push_stack`](Self::push_stack) pops here alone (the hot
    /// cell is its slow path's: [`pop_hot`](Self::pop_hot)), so its frees and allocations take
    /// the same branch every time while the stack holds blocks; and nothing else is on this
    /// path, not even a cold call, which would cost an inlined caller its registers.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    #[inline(always)]
    pub(super) unsafe fn pop_top(&self) -> Option<u32> {
        let list = self.own.list.load(Ordering::Relaxed);
        let len = list as u32;
        if len == 0 {
            return None;
        }
        let top = len - 1;
        debug_assert!((top as usize) < self.own.stack.len());
        // SAFETY: invariant 1: the blocks on the owner's side number at most `blocks`, the
        // stack's length, so `top < len <= blocks`.
        let block = unsafe { self.own.stack.get_unchecked(top as usize) }.load(Ordering::Relaxed);
        // The length down and the pop counted, in one store.
        match list.overflowing_add(POP) {
            (next, false) => self.own.list.store(next, Ordering::Relaxed),
            (next, true) => {
                core::hint::cold_path();
                self.fold_pops(next);
            }
        }
        Some(block)
    }

    /// Stores `list` after a pop that wrapped its pop count, and adds the 2^32 pops it lost to
    /// `allocations`, inside the fold lock so that readers never see one without the other.
    /// Owner only (invariant 2). Inlined in its cold branch: a call on the pop's path would
    /// cost the inlined caller registers around it.
    #[inline(always)]
    fn fold_pops(&self, list: u64) {
        let folds = self.own.folds.load(Ordering::Relaxed);
        self.own.folds.store(folds + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let allocations = self.own.allocations.load(Ordering::Relaxed);
        self.own
            .allocations
            .store(allocations.wrapping_add(1 << 32), Ordering::Relaxed);
        self.own.list.store(list, Ordering::Relaxed);
        self.own.folds.store(folds + 2, Ordering::Release);
    }

    /// `allocations` and `list`, read together: the allocations of all time are
    /// `allocations + (list >> 32)`. A sequence-lock read (Boehm, "Can seqlocks get along with
    /// programming language memory models?", 2012): the values are from between two folds.
    fn allocations_and_list(&self) -> (u64, u64) {
        let mut backoff = crate::sync::Backoff::default();
        loop {
            let folds = self.own.folds.load(Ordering::Acquire);
            if folds & 1 == 0 {
                let allocations = self.own.allocations.load(Ordering::Relaxed);
                let list = self.own.list.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.own.folds.load(Ordering::Relaxed) == folds {
                    return (allocations.wrapping_add(list >> 32), list);
                }
            }
            backoff.snooze();
        }
    }

    /// Moves the pop count of `list` to `pops` (its modulus 2^32 wraps at the next pops), the
    /// allocations of all time kept: lets tests reach the fold without 2^32 pops first.
    /// Owner only (invariant 2).
    #[cfg(any(test, umrf_loom))]
    pub(crate) fn start_pops_at(&self, pops: u32) {
        let (allocations, list) = self.allocations_and_list();
        self.own
            .allocations
            .store(allocations.wrapping_sub(u64::from(pops)), Ordering::Relaxed);
        self.own.list.store(
            (list & LEN_MASK) | (u64::from(pops) << 32),
            Ordering::Relaxed,
        );
    }

    /// The stack's length (the owner's own reads are `Relaxed`; other threads', `Acquire`).
    #[inline(always)]
    fn len(&self, order: Ordering) -> u32 {
        (self.own.list.load(order) & LEN_MASK) as u32
    }

    /// Pushes `block` on the owner's stack, its owner word `Free` at its position.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2), `block` is one of the
    /// slot's and out of it (so the stack, of `blocks` entries, has room: the free blocks on
    /// the owner's side are fewer than `blocks`), and `words` are the slot's.
    #[inline(always)]
    unsafe fn put_top(&self, block: u32, words: OwnerWords) {
        let list = self.own.list.load(Ordering::Relaxed);
        // SAFETY: caller's promise: the block is one of this slot's, so its index is in range;
        // the words are this (live) slot's.
        unsafe { words.free_on_stack(block, list as u32) };
        // SAFETY: caller's promises, passed on; `list` is the slot's.
        unsafe { self.put_at(block, list) }
    }

    /// An unrecorded free (see `state.rs`): pushes `block` on the owner's stack and writes no
    /// state word; the slot is marked as taking such frees before the first (its owner line
    /// is at hand: the mark costs a test of a word already read).
    ///
    /// # Safety
    /// As [`put_top`](Self::put_top), and `block` is out and owned at home (not on a trip: its
    /// remote word does not hold its state), as the trusted frees of the size-class rows
    /// promise.
    #[inline(always)]
    pub(super) unsafe fn push_unrecorded(&self, block: u32) {
        debug_assert!(self.log.is_none() && block < self.blocks);
        if !self.own.unrecorded.load(Ordering::Relaxed) {
            // Once per slot. No call: a call on this path would cost the inlined caller
            // registers around it.
            core::hint::cold_path();
            self.own.unrecorded.store(true, Ordering::Relaxed);
        }
        debug_assert!(matches!(
            self.states.state(block, self.index()),
            Some(Reading::AtHome | Reading::FreeAt(_))
        ));
        // SAFETY: caller's promises, passed on; the word read is the slot's.
        unsafe { self.put_at(block, self.own.list.load(Ordering::Relaxed)) }
    }

    /// Puts `block` on the top of the owner's stack and raises its length, from `list`, the
    /// value of [`OwnerSide::list`].
    ///
    /// # Safety
    /// As [`put_top`](Self::put_top), and `list` is the slot's current list word.
    #[inline(always)]
    unsafe fn put_at(&self, block: u32, list: u64) {
        let len = list as u32;
        debug_assert!((len as usize) < self.own.stack.len());
        // SAFETY: caller's promise: `block` is out of the slot, so the free blocks on the
        // owner's side are fewer than `blocks`, the stack's length (invariant 1).
        unsafe { self.own.stack.get_unchecked(len as usize) }.store(block, Ordering::Relaxed);
        // Release: a reader that sees the new length sees the entry (`settle`). The length is
        // below 2^31 (`MAX_BLOCKS`): no carry into the pop count.
        self.own.list.store(list + 1, Ordering::Release);
    }

    /// Pushes a block given up on the owner's thread, unless the slot logs: then it returns
    /// `false` and does nothing, and the caller frees through
    /// [`free_local_logged`](Self::free_local_logged), which publishes the event once no
    /// reference into the pool is live.
    ///
    /// # Safety
    /// 1. The calling thread holds this slot's lease (invariant 2).
    /// 2. `block` is out of the pool and the caller gives it up.
    #[inline]
    #[must_use = "a logging slot leaves the block to `free_local_logged`"]
    pub(crate) unsafe fn push_local(&self, block: u32) -> bool {
        if self.log.is_some() {
            return false;
        }
        // SAFETY: caller's promises; the words are this slot's.
        unsafe { self.push_unlogged(block, self.states.owner_words()) };
        true
    }

    /// [`push_local`](Self::push_local) for a slot that does not log, with its owner words
    /// given: into the hot cell if it is empty, else onto the stack.
    ///
    /// # Safety
    /// As [`push_local`](Self::push_local); the slot does not log, and `words` are its own.
    #[inline(always)]
    unsafe fn push_unlogged(&self, block: u32, words: OwnerWords) {
        debug_assert!(self.log.is_none() && block < self.blocks);
        if self.own.hot.load(Ordering::Relaxed) == NO_BLOCK {
            // SAFETY: caller's promise 2: the block is one of this slot's, so its index is in
            // range; the words are this (live) slot's.
            unsafe { words.free_at_home(block) };
            self.own.hot.store(block, Ordering::Relaxed);
            return;
        }
        // SAFETY: caller's promises 1 and 2.
        unsafe { self.put_top(block, words) }
    }

    /// The free of a lease that allocates through
    /// [`pop_top`](Self::pop_top): onto the stack, never into the hot cell.
    ///
    /// # Safety
    /// As [`push_unlogged`](Self::push_unlogged).
    #[inline(always)]
    pub(super) unsafe fn push_stack(&self, block: u32, words: OwnerWords) {
        debug_assert!(self.log.is_none() && block < self.blocks);
        // SAFETY: caller's promises 1 and 2; the words are this slot's.
        unsafe { self.put_top(block, words) }
    }

    /// Counts `bytes` asked for by an allocation of this slot (the size-class rows, which
    /// know the request behind each block).
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    #[inline(always)]
    pub(crate) unsafe fn note_requested(&self, bytes: usize) {
        let requested = self.own.requested.load(Ordering::Relaxed);
        self.own
            .requested
            .store(requested.wrapping_add(bytes as u64), Ordering::Relaxed);
    }

    /// `push_local` for a logging slot: parks the block, then gives the event to the sinks,
    /// once the reference to the slot has ended (a sink may drop the lease and the pool's last
    /// handle, which releases the pool's memory; the event keeps the log alive).
    ///
    /// # Safety
    /// As [`push_local`](Self::push_local), with `slot` pointing to the slot.
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn free_local_logged(slot: NonNull<Slot>, block: u32) {
        let event = {
            // SAFETY: the caller owns a block of this slot, which keeps it alive (PoolInner
            // invariant 2); the reference ends with this block, before the sinks run.
            let this = unsafe { slot.as_ref() };
            // SAFETY: caller's promise 2: the block is one of this slot's.
            unsafe { this.states.free_at_home(block) };
            match this.log() {
                // SAFETY: caller's promise 1, passed on.
                Some(log) => unsafe { this.park(log, block) },
                None => Pending::none(),
            }
        };
        event.publish();
    }

    /// Bookkeeping of one allocation from the hot cell, the fresh range or the parked blocks:
    /// the count and the block's state (a pop from the stack counts itself and writes no
    /// state: [`pop_top`](Self::pop_top)).
    #[inline(always)]
    fn note_alloc(&self, block: u32) {
        // SAFETY: `block` came from this slot's hot cell, stack or fresh range, which hold only
        // indices below `blocks` (invariant 1); the words are this slot's.
        unsafe { self.note_alloc_with(block, self.states.owner_words()) }
    }

    /// [`note_alloc`](Self::note_alloc) with the slot's owner words given.
    ///
    /// # Safety
    /// `block` < `blocks`, and `words` are this slot's.
    #[inline(always)]
    unsafe fn note_alloc_with(&self, block: u32, words: OwnerWords) {
        debug_assert!(block < self.blocks);
        bump(&self.own.allocations);
        // SAFETY: caller's promises: in range, in this live slot's table.
        unsafe { words.owned_at_home(block) };
    }

    // ----- owner side of a logging slot ------------------------------------------------------
    //
    // A slot whose pool logs ownership keeps its hot cell empty and its stack length at 0, so
    // `pop_local` always misses and every allocation takes the cold `refill`, which logs it:
    // pools without logging pay nothing for logging on the allocation path. Its free blocks
    // are parked on the same stack storage, counted by the log (`SlotLog::parked`).

    /// Frees `block` onto a logging slot's parked stack, and logs it; the event is for
    /// [`free_local_logged`](Self::free_local_logged) to publish.
    ///
    /// # Safety
    /// As [`push_local`](Self::push_local).
    unsafe fn park(&self, log: &SlotLog, block: u32) -> Pending {
        let event = log.freed_local(block);
        let parked = log.parked();
        self.own.stack[parked as usize].store(block, Ordering::Relaxed);
        log.set_parked(parked + 1);
        event
    }

    /// `refill` for a logging slot: a parked block, else a fresh one, else the remote frees.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    unsafe fn refill_logged(&self, log: &SlotLog) -> Option<u32> {
        let mut parked = log.parked();
        if parked == 0 {
            let fresh = self.own.fresh.load(Ordering::Relaxed);
            if fresh < self.blocks {
                self.own.fresh.store(fresh + 1, Ordering::Relaxed);
                self.note_alloc(fresh);
                log.allocate(fresh).publish();
                return Some(fresh);
            }
            // SAFETY: caller's promise, passed on. The drained blocks land at the bottom of the
            // stack (the length is 0 on a logging slot); they become parked blocks.
            parked = unsafe { self.drain_remote() };
            let list = self.own.list.load(Ordering::Relaxed);
            self.own.list.store(list & !LEN_MASK, Ordering::Relaxed);
            if parked == 0 {
                return None;
            }
        }
        let block = self.own.stack[parked as usize - 1].load(Ordering::Relaxed);
        log.set_parked(parked - 1);
        self.note_alloc(block);
        // The stack and the counters are settled before the sinks run.
        log.allocate(block).publish();
        Some(block)
    }

    /// Free blocks parked by a logging slot (0 for other slots).
    fn parked(&self) -> u64 {
        self.log().map_or(0, |log| u64::from(log.parked()))
    }

    /// The slow path of an allocation: a never-used block, else everything other threads freed.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn refill(&self) -> Option<u32> {
        if let Some(log) = self.log() {
            // SAFETY: caller's promise, passed on.
            return unsafe { self.refill_logged(log) };
        }
        let fresh = self.own.fresh.load(Ordering::Relaxed);
        if fresh < self.blocks {
            self.own.fresh.store(fresh + 1, Ordering::Relaxed);
            self.note_alloc(fresh);
            return Some(fresh);
        }
        // SAFETY: caller's promise, passed on.
        if unsafe { self.drain_remote() } == 0 {
            return None;
        }
        // SAFETY: caller's promise, passed on.
        unsafe { self.pop_local() }
    }

    /// Takes every remote free in one atomic step and moves it onto the owner's stack.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    pub(crate) unsafe fn drain_remote(&self) -> u32 {
        if head_of(self.remote.word.load(Ordering::Relaxed)) == NO_BLOCK {
            return 0;
        }
        // Setting every head bit empties the stack and keeps the count and the flag. Acquire
        // pairs with the Release of every push's CAS (one release sequence on the word), so
        // each pushed block's `next` link is visible below.
        let mut head = head_of(self.remote.word.fetch_or(HEAD_MASK, Ordering::Acquire));
        let list = self.own.list.load(Ordering::Relaxed);
        let len = list as u32;
        // A logging slot's drained blocks become parked ones, free outright (its length stays
        // 0: see `refill_logged`); the others are free at their stack positions.
        let parks = self.log.is_some();
        let mut taken = 0u32;
        while head != NO_BLOCK {
            self.own.stack[(len + taken) as usize].store(head, Ordering::Relaxed);
            taken += 1;
            head = self.next[head as usize].load(Ordering::Relaxed);
        }
        // Release: a reader that sees the new length sees the entries (`settle`).
        self.own
            .list
            .store(list + u64::from(taken), Ordering::Release);
        // The owner words last, each a `Release` after the length: a block read free from its
        // remote word until now must never read owned in between (a checked free from another
        // thread would take a double free for a first one), and a reader that sees the new
        // word sees the length and the entry that make its position true.
        for position in len..len + taken {
            let block = self.own.stack[position as usize].load(Ordering::Relaxed);
            self.states
                .returned_free(block, (!parks).then_some(position));
        }
        let drained = self.own.drained.load(Ordering::Relaxed) + u64::from(taken);
        self.own.drained.store(drained, Ordering::Relaxed);
        taken
    }

    /// Counts an allocation that found this slot empty; the event is for the caller to
    /// publish once its own state is settled.
    pub(crate) fn note_exhausted(&self) -> Pending {
        bump(&self.own.exhausted);
        self.log().map_or_else(Pending::none, SlotLog::exhausted)
    }

    /// Counts an allocation that slot `fallback_slot` of a fallback pool served for this slot;
    /// the event is for the caller to publish once its own state is settled.
    pub(crate) fn note_fallback(&self, fallback_slot: usize) -> Pending {
        bump(&self.own.fallbacks);
        self.log()
            .map_or_else(Pending::none, |log| log.fallback_used(fallback_slot))
    }

    /// Counts a capability refused by this slot's lease.
    ///
    /// # Safety
    /// The calling thread holds this slot's lease (invariant 2).
    pub(crate) unsafe fn note_accept_failure(&self) {
        bump(&self.own.accept_failures);
    }

    // ----- any thread ------------------------------------------------------------------------

    /// Returns a block to its home slot from any thread: one lock-free push.
    ///
    /// If the pool has been orphaned and this push brings its slot's last block home, it tells
    /// the pool, which frees itself once every slot is home.
    ///
    /// # Safety
    /// 1. `slot` points to a live slot (true while any of its blocks is out: PoolInner
    ///    invariant 2).
    /// 2. `block` belongs to it, is out of the pool, and the caller gives it up; `trip` is the
    ///    trip it is on.
    pub(crate) unsafe fn free_remote(slot: NonNull<Slot>, block: u32, trip: u32) {
        // SAFETY: promise 1; the reference ends with this statement.
        if unsafe { slot.as_ref() }.log.is_some() {
            // SAFETY: the caller's promises, passed on.
            return unsafe { Slot::free_remote_logged(slot, block, trip) };
        }
        // SAFETY: the caller's promises, passed on.
        unsafe { Slot::push_remote(slot, block, trip) }
    }

    /// `free_remote` for a logging slot: the free is recorded before the push (whose Release
    /// hands the log's record to the drainer), and given to the sinks only after it, and after
    /// the pool is told: a sink may find the pool released (the event keeps the log alive).
    ///
    /// # Safety
    /// As [`free_remote`](Self::free_remote).
    #[cold]
    #[inline(never)]
    unsafe fn free_remote_logged(slot: NonNull<Slot>, block: u32, trip: u32) {
        // SAFETY: promise 1; the reference ends with this statement, before the push.
        let event = unsafe { slot.as_ref() }
            .log()
            .map_or_else(Pending::none, |log| log.freed_remote(block));
        // SAFETY: the caller's promises, passed on.
        unsafe { Slot::push_remote(slot, block, trip) };
        event.publish();
    }

    /// The push of [`free_remote`](Self::free_remote), and the pool's release if it brought
    /// an orphaned pool's last block home.
    ///
    /// # Safety
    /// As [`free_remote`](Self::free_remote).
    #[inline]
    unsafe fn push_remote(slot: NonNull<Slot>, block: u32, trip: u32) {
        let last = {
            // SAFETY: promise 1. The reference ends before the pool can be freed: nothing frees
            // it while this block is not yet counted home, and it is counted by the CAS below,
            // after which only the thread that brought the count to zero touches the pool.
            let this = unsafe { slot.as_ref() };
            this.states.record_remote(block, trip, BlockState::Free);
            let mut word = this.remote.word.load(Ordering::Relaxed);
            loop {
                this.next[block as usize].store(head_of(word), Ordering::Relaxed);
                let count = (count_of(word) + 1) % COUNT_MODULUS;
                let new = (word & ORPHANED) | (count << COUNT_SHIFT) | u64::from(block);
                match this.remote.word.compare_exchange_weak(
                    word,
                    new,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break word & ORPHANED != 0 && count == 0,
                    Err(now) => word = now,
                }
            }
        };
        if last {
            // SAFETY: promise 1 and invariant 5: the pool is live (this slot was not yet home),
            // and this thread brought the slot's last block home after the orphaning.
            let pool = unsafe { slot.as_ref() }.pool();
            // SAFETY: the slot is home; `PoolInner::slot_home` is called once per slot.
            unsafe { PoolInner::slot_home(pool) }
        }
    }

    /// Marks the slot orphaned (no lease exists or will exist) and reports whether every block
    /// is already home. Otherwise, the remote push that brings the last block home reports it.
    ///
    /// # Safety
    /// Called once, by the thread that dropped the pool's last handle (so no lease exists and
    /// every owner-side write happened before this call).
    pub(crate) unsafe fn orphan(&self) -> bool {
        let fresh = u64::from(self.own.fresh.load(Ordering::Relaxed));
        let free_local = u64::from(self.len(Ordering::Relaxed))
            + u64::from(self.hot_holds_a_block())
            + self.parked();
        let drained = self.own.drained.load(Ordering::Relaxed);
        // Every block neither free on the owner's side nor fresh comes home by a remote push,
        // some of them already pushed: the total number of pushes there will ever be.
        let total_pushes = fresh - free_local + drained;
        let mut word = self.remote.word.load(Ordering::Acquire);
        loop {
            // Fewer than 2^31 blocks are out (MAX_BLOCKS), so the count modulo 2^31 suffices.
            let still_out =
                (total_pushes % COUNT_MODULUS + COUNT_MODULUS - count_of(word)) % COUNT_MODULUS;
            debug_assert!(
                still_out <= u64::from(self.blocks),
                "slot {}: more frees than blocks out",
                self.index
            );
            if still_out == 0 {
                return true;
            }
            let count = COUNT_MODULUS - still_out;
            let new = ORPHANED | (count << COUNT_SHIFT) | (word & HEAD_MASK);
            match self
                .remote
                .word
                .compare_exchange(word, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return false,
                Err(now) => {
                    // A remote free landed between the load and the CAS: count again.
                    #[cfg(umrf_loom)]
                    crate::sync::loom_events::note("orphan CAS retried");
                    word = now;
                }
            }
        }
    }

    // ----- stats -----------------------------------------------------------------------------

    /// A snapshot of the counters (see the module docs for the accounting).
    pub(crate) fn counters(&self) -> SlotCounters {
        let relaxed = Ordering::Relaxed;
        let (allocations, list) = self.allocations_and_list();
        SlotCounters {
            blocks: u64::from(self.blocks),
            fresh: u64::from(self.own.fresh.load(relaxed)),
            len: (list & LEN_MASK) + u64::from(self.hot_holds_a_block()) + self.parked(),

            allocations,
            requested: self.own.requested.load(relaxed),
            drained: self.own.drained.load(relaxed),
            pushed: {
                // Remote frees so far: those drained, plus those pending (count modulo 2^31).
                let drained = self.own.drained.load(relaxed);
                let count = count_of(self.remote.word.load(relaxed));
                drained + (count + COUNT_MODULUS - drained % COUNT_MODULUS) % COUNT_MODULUS
            },
            exhausted: self.own.exhausted.load(relaxed),
            fallbacks: self.own.fallbacks.load(relaxed),
            accept_failures: self.own.accept_failures.load(relaxed),
            leased: self.is_leased(),
        }
    }
}

/// Raw counters of one slot, read without stopping its owner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotCounters {
    pub blocks: u64,
    pub fresh: u64,
    /// Free blocks on the owner's side: the stack plus the hot cell.
    pub len: u64,

    pub allocations: u64,
    /// Bytes asked for by the allocations, where the caller counts them (0 otherwise).
    pub requested: u64,
    pub drained: u64,
    pub pushed: u64,
    pub exhausted: u64,
    pub fallbacks: u64,
    pub accept_failures: u64,
    pub leased: bool,
}
