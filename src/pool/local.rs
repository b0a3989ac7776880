//! `LocalHandle`: what a lease holder's local alloc and free read of its slot, copied once.
//!
//! A lease that serves many slots at once (a size-class row holds one per class) keeps one
//! handle per slot next to its other hot data. A local alloc through the handle then touches
//! the slot's owner line (the stack's length and pop count, one word; the counters) and the
//! stack entry; a free, those and, when recorded, the block's owner word (see `state.rs`). No
//! field of the slot's read-only part (its log and its state table live on a line of their
//! own).

use core::ptr::NonNull;

use super::block::BlockState;
use super::slot::{Settle, Slot};
use super::state::{OwnerWords, RemoteWords};

/// A lease holder's handle on its slot's owner side.
///
/// # Invariants
/// 0. While a handle is used, the thread using it holds the lease on `slot` (Slot invariant 2),
///    so the slot is live; a handle is `!Send` and is made by that thread.
/// 1. `words` and `remote` are the slot's owner and remote words.
/// 2. The slot does not log ownership (its log is set once before sharing: Slot invariant 6),
///    so its local frees are plain pushes.
#[derive(Clone, Copy)]
pub(crate) struct LocalHandle {
    slot: NonNull<Slot>,
    words: OwnerWords,
    remote: RemoteWords,
}

impl LocalHandle {
    /// The handle on `slot`; `None` if the slot logs ownership (its frees must call the
    /// sinks: [`Slot::free_local_logged`]).
    ///
    /// # Safety
    /// The calling thread holds `slot`'s lease, and uses the handle only while it holds it
    /// (invariant 0).
    pub(crate) unsafe fn new(slot: NonNull<Slot>) -> Option<LocalHandle> {
        // SAFETY: caller's promise: the leased slot is live.
        let this = unsafe { slot.as_ref() };
        this.log().is_none().then(|| LocalHandle {
            slot,
            words: this.states().owner_words(),
            remote: this.states().remote_words(),
        })
    }

    /// The slot.
    #[inline(always)]
    pub(crate) fn slot(&self) -> NonNull<Slot> {
        self.slot
    }

    /// The slot, borrowed.
    ///
    /// # Safety
    /// The calling thread still holds the slot's lease (invariant 0).
    #[inline(always)]
    unsafe fn leased(&self) -> &Slot {
        // SAFETY: caller's promise: the slot is leased by this thread, so it is live.
        unsafe { self.slot.as_ref() }
    }

    /// A block from the top of the slot's stack (see [`Slot::pop_top`]), counted as an
    /// allocation; `None` when the stack is empty (then [`pop_hot`](Self::pop_hot), and the
    /// slot's refill).
    ///
    /// # Safety
    /// The calling thread still holds the slot's lease (invariant 0).
    #[inline(always)]
    pub(crate) unsafe fn pop(&self) -> Option<u32> {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promise: the slot is leased by this thread.
        unsafe { slot.pop_top() }
    }

    /// The block in the slot's hot cell (a buffer's drop may put one there), counted as an
    /// allocation, its state `Owned`.
    ///
    /// # Safety
    /// As [`pop`](Self::pop).
    pub(crate) unsafe fn pop_hot(&self) -> Option<u32> {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promise: the slot is leased by this thread; the words are its own
        // (invariant 1).
        unsafe { slot.pop_hot(self.words) }
    }

    /// [`Slot::push_local`] on the slot, onto its stack (see [`Slot::push_stack`]).
    ///
    /// # Safety
    /// The calling thread still holds the slot's lease (invariant 0); `block` is out of the
    /// slot, and the caller gives it up.
    #[inline(always)]
    pub(crate) unsafe fn push(&self, block: u32) {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promises; the slot does not log (invariant 2) and the words are
        // its own (invariant 1).
        unsafe { slot.push_stack(block, self.words) };
    }

    /// An unrecorded free (see `state.rs`): [`push`](Self::push) without the write of the
    /// block's owner word, for the trusted frees of the size-class rows.
    ///
    /// # Safety
    /// As [`push`](Self::push), and the block is owned at home (never sent on a trip).
    #[inline(always)]
    pub(crate) unsafe fn push_unrecorded(&self, block: u32) {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promises; the slot does not log (invariant 2).
        unsafe { slot.push_unrecorded(block) };
    }

    /// Whether block `block` of the slot is free now (see [`OwnerWords::reading`] and
    /// [`Slot::settle`]); `None` for words that hold no state.
    ///
    /// # Safety
    /// The calling thread still holds the slot's lease (invariant 0), and `block` is one of
    /// the slot's.
    #[inline(always)]
    pub(crate) unsafe fn is_free(&self, block: u32) -> Option<bool> {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promises: the slot is live, so are its words (invariant 1), and
        // `block` is in range.
        let reading = unsafe { self.words.reading(self.remote, block, slot.index()) }?;
        Some(slot.settle(block, reading, Settle::Recorded) == BlockState::Free)
    }

    /// [`Slot::note_requested`] on the slot.
    ///
    /// # Safety
    /// As [`pop`](Self::pop).
    #[inline(always)]
    pub(crate) unsafe fn note_requested(&self, bytes: usize) {
        // SAFETY: caller's promise.
        let slot = unsafe { self.leased() };
        // SAFETY: caller's promise: the slot is leased by this thread.
        unsafe { slot.note_requested(bytes) }
    }
}
