//! The untyped pool: its slots, its handle count, and the protocol that keeps its memory alive
//! until every block is home, even after the last handle is dropped.

use core::ptr::NonNull;

use super::slot::Slot;
use crate::backing::BackingInfo;
use crate::error::PoolName;
use crate::events::PoolLog;
use crate::sync::{Arc, AtomicUsize, Ordering, fence};

/// Everything a pool owns.
///
/// # Invariants
/// 0. Allocated by [`PoolInner::create`] as a `Box` and freed exactly once, by
///    [`PoolInner::slot_home`] when `pending` reaches zero.
/// 1. `handles` counts the [`RawPool`] handles (every `Pool<R>` and every lease holds one).
///    When it reaches zero the pool is *orphaned*: no lease exists and none can be made, so
///    blocks still out can only come home by remote frees.
/// 2. `pending` starts at `slots.len() + 1`: one count per slot, taken away when that slot has
///    every block home after the orphaning, and one for the orphaning itself. So the pool, its
///    slots and their regions are freed only after the orphaning finished and every block that
///    was out has come home. Outstanding buffers therefore never see their memory unmapped.
/// 3. Every field but the two counters is read-only after `create`.
/// 4. If `registered`, the pool's slots are in the provenance registry from the end of `create`
///    until just before the pool is freed (`slot_home`), and not otherwise; if not, never.
pub(crate) struct PoolInner {
    pub(crate) id: u64,
    pub(crate) name: PoolName,
    pub(crate) residency: &'static str,
    pub(crate) residency_label: String,
    pub(crate) block_size: usize,
    pub(crate) block_align: usize,
    pub(crate) blocks_per_slot: u32,
    pub(crate) slots: Box<[Slot]>,
    pub(crate) backing: Box<[BackingInfo]>,
    pub(crate) fallback: Option<RawPool>,
    pub(crate) log: Option<Arc<PoolLog>>,
    /// Whether the slots are in the provenance registry (invariant 4).
    registered: bool,
    handles: AtomicUsize,
    pending: AtomicUsize,
}

/// The description of a pool, before its slots are shared.
pub(crate) struct PoolParts {
    pub(crate) id: u64,
    pub(crate) name: PoolName,
    pub(crate) residency: &'static str,
    pub(crate) residency_label: String,
    pub(crate) block_size: usize,
    pub(crate) block_align: usize,
    pub(crate) blocks_per_slot: u32,
    pub(crate) slots: Vec<Slot>,
    pub(crate) fallback: Option<RawPool>,
    pub(crate) log: Option<Arc<PoolLog>>,
    /// Register the slots in the provenance registry (every pool but the global allocator's,
    /// which finds its blocks through its own page map and must never take the registry's
    /// lock from inside an allocation).
    pub(crate) register: bool,
}

impl PoolInner {
    /// Puts the pool on the heap, links each slot to it, and returns the first handle.
    pub(crate) fn create(parts: PoolParts) -> RawPool {
        let backing: Box<[BackingInfo]> = parts
            .slots
            .iter()
            .map(|s| s.region().info().clone())
            .collect();
        let pending = AtomicUsize::new(parts.slots.len() + 1);
        let inner = Box::new(PoolInner {
            id: parts.id,
            name: parts.name,
            residency: parts.residency,
            residency_label: parts.residency_label,
            block_size: parts.block_size,
            block_align: parts.block_align,
            blocks_per_slot: parts.blocks_per_slot,
            slots: parts.slots.into_boxed_slice(),
            backing,
            fallback: parts.fallback,
            log: parts.log,
            registered: parts.register,
            handles: AtomicUsize::new(1),
            pending,
        });
        let raw = NonNull::from(Box::leak(inner));
        // SAFETY: `raw` is the only pointer to the fresh allocation; nothing is shared yet, so
        // this unique access cannot race. It links each slot back (Slot invariant 5).
        let slots = unsafe { &mut (*raw.as_ptr()).slots };
        for slot in slots.iter_mut() {
            slot.set_pool(raw);
        }
        if parts.register {
            // SAFETY: the pool is on the heap and linked; it stays live until `slot_home` frees
            // it, which unregisters it first (invariant 4).
            unsafe { crate::provenance::register(raw) };
        }
        RawPool { inner: raw }
    }

    /// One slot of the pool now has every block home after the orphaning (or the orphaning
    /// itself finished): the last of these frees the pool.
    ///
    /// # Safety
    /// 1. `pool` points to a live `PoolInner`.
    /// 2. Called once per slot after that slot's last block came home post-orphaning, and once
    ///    by the orphaning thread when it is done (invariant 2); never otherwise.
    pub(crate) unsafe fn slot_home(pool: NonNull<PoolInner>) {
        // SAFETY: promise 1; the reference ends at the decrement, before any free below.
        let last = unsafe { pool.as_ref() }
            .pending
            .fetch_sub(1, Ordering::AcqRel)
            == 1;
        if last {
            // Invariant 4: no provenance lookup may reach the pool once it is freed; this waits
            // for lookups in progress.
            // SAFETY: promise 1: the pool is live until the free below.
            if unsafe { pool.as_ref() }.registered {
                crate::provenance::unregister(pool);
            }
            // SAFETY: invariant 0 and promise 2: every count is gone, so no slot, lease, handle
            // or block refers to the pool any more, and this is the only call that sees zero.
            let inner = unsafe { Box::from_raw(pool.as_ptr()) };
            drop(inner);
        }
    }

    /// Runs when the last handle is gone: each slot learns that no lease will come back.
    ///
    /// # Safety
    /// Called once, by the thread whose handle drop took `handles` to zero, after an `Acquire`
    /// fence (so every lease's writes are visible). `pool` points to the live pool.
    unsafe fn orphan(pool: NonNull<PoolInner>) {
        // SAFETY: the orphaning's own `pending` count (invariant 2) keeps the pool alive until
        // the `slot_home` call at the end of this function.
        let this = unsafe { pool.as_ref() };
        for slot in this.slots.iter() {
            // SAFETY: called once per slot, by the orphaning thread, after every lease ended.
            if unsafe { slot.orphan() } {
                // SAFETY: this slot is home; one call for it. The pool stays alive: the
                // orphaning's own count is still held.
                unsafe { PoolInner::slot_home(pool) }
            }
        }
        // SAFETY: the orphaning's own count, given back once.
        unsafe { PoolInner::slot_home(pool) }
    }
}

/// An untyped, counted handle to a pool.
///
/// # Invariants
/// 0. `inner` points to a live `PoolInner` whose `handles` count includes this handle.
pub(crate) struct RawPool {
    inner: NonNull<PoolInner>,
}

// SAFETY: a handle only reads the pool's immutable fields and its atomic counters
// (PoolInner invariant 3); the pool is freed by the last of many threads, through atomics.
unsafe impl Send for RawPool {}
// SAFETY: as for Send: `&RawPool` allows the same reads.
unsafe impl Sync for RawPool {}

impl RawPool {
    /// The pool this handle counts in.
    #[inline(always)]
    pub(crate) fn inner(&self) -> &PoolInner {
        // SAFETY: invariant 0: the handle keeps the pool alive.
        unsafe { self.inner.as_ref() }
    }

    /// Whether two handles count in the same pool.
    pub(crate) fn same_pool(&self, other: NonNull<PoolInner>) -> bool {
        self.inner == other
    }
}

impl Clone for RawPool {
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: the new handle comes from an existing one, which keeps
        // the pool alive while the count goes up.
        self.inner().handles.fetch_add(1, Ordering::Relaxed);
        RawPool { inner: self.inner }
    }
}

impl Drop for RawPool {
    fn drop(&mut self) {
        if self.inner().handles.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Pairs with every other handle's Release decrement, as in `Arc::drop`.
        fence(Ordering::Acquire);
        // SAFETY: this thread took `handles` to zero, once, after the Acquire fence.
        unsafe { PoolInner::orphan(self.inner) }
    }
}

/// Under loom only: the pool's memory goes only when every block is home.
///
/// A check the model runs in every explored execution, independent of the counts the orphan
/// protocol itself uses: each block's state word must say `Free` when the pool is freed. Each
/// free is noted ("pool freed"), so a model can assert that its pool was freed exactly once,
/// and by whom.
#[cfg(umrf_loom)]
impl Drop for PoolInner {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            for block in 0..slot.blocks() {
                assert_eq!(
                    slot.state(block),
                    Some(super::BlockState::Free),
                    "slot {} block {block} is not home when its pool is freed",
                    slot.index()
                );
            }
        }
        crate::sync::loom_events::note("pool freed");
    }
}
