//! The process-wide registry of pool regions: which address range belongs to which slot.
//!
//! A sorted `Vec` of block spans behind a reader-writer lock. Pools insert their slots when they
//! are created and remove them just before their memory is freed; lookups hold the read lock
//! while they read a slot, so a lookup never races with the free (see [`Registry`]'s
//! invariants). Neither the insert nor the removal is on an allocation path.

use core::ptr::NonNull;
use std::sync::PoisonError;

use crate::pool::{PoolInner, Slot};
use crate::sync::StaticRwLock;

/// The blocks of one slot: `start..end`, and the slot they belong to.
struct Entry {
    start: usize,
    end: usize,
    slot: NonNull<Slot>,
    pool: NonNull<PoolInner>,
}

/// Every live slot's block span, sorted by start address.
///
/// # Invariants
/// 0. `entries` is sorted by `start`, and the spans do not overlap (each is inside its own
///    mapping).
/// 1. An entry is present only while its pool is live: [`register`] inserts it after the pool
///    is on the heap and linked, and [`unregister`] removes it, under the write lock, before
///    the pool is freed. So a thread that holds the read lock may dereference any entry's
///    `slot` and `pool`.
struct Registry {
    entries: Vec<Entry>,
}

// SAFETY: the pointers are only dereferenced under the lock, while the pool is live
// (invariant 1); slots and pools are `Sync` (their shared state is atomic or read-only).
unsafe impl Send for Registry {}
// SAFETY: as for Send: `&Registry` only gives lookups under the read lock.
unsafe impl Sync for Registry {}

static REGISTRY: StaticRwLock<Registry> = StaticRwLock::new(Registry {
    entries: Vec::new(),
});

/// Inserts every slot of `pool`.
///
/// # Safety
/// `pool` points to a live, fully linked `PoolInner` that stays live until [`unregister`] is
/// called for it.
pub(crate) unsafe fn register(pool: NonNull<PoolInner>) {
    // SAFETY: caller's promise: the pool is live.
    let inner = unsafe { pool.as_ref() };
    let span = inner.block_size * inner.blocks_per_slot as usize;
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    for slot in inner.slots.iter() {
        let start = slot.block_ptr(0).as_ptr().addr();
        let at = registry.entries.partition_point(|e| e.start < start);
        debug_assert!(
            registry
                .entries
                .get(at)
                .is_none_or(|e| e.start >= start + span),
            "pool regions overlap"
        );
        registry.entries.insert(
            at,
            Entry {
                start,
                end: start + span,
                slot: NonNull::from(slot),
                pool,
            },
        );
    }
}

/// Removes every slot of `pool`; returns when no lookup reads the pool any more.
pub(crate) fn unregister(pool: NonNull<PoolInner>) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    registry.entries.retain(|e| e.pool != pool);
}

/// The slot whose blocks contain `addr`, and the block's index, passed to `read` under the
/// read lock (so the pool cannot be freed while `read` runs).
pub(crate) fn with_slot_at<T>(
    addr: usize,
    read: impl FnOnce(&Slot, &PoolInner, usize) -> T,
) -> Option<T> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let at = registry.entries.partition_point(|e| e.start <= addr);
    let entry = registry.entries[..at].last()?;
    if addr >= entry.end {
        return None;
    }
    // SAFETY: invariant 1: the entry is registered and the read lock is held, so the pool and
    // its slot are live until the guard drops, after `read` returns.
    let slot = unsafe { entry.slot.as_ref() };
    // SAFETY: as above.
    let pool = unsafe { entry.pool.as_ref() };
    Some(read(slot, pool, addr - entry.start))
}

/// Runs `visit` on every registered slot, in address order, under the read lock.
pub(crate) fn for_each_slot(mut visit: impl FnMut(&Slot, &PoolInner, usize, usize)) {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    for entry in &registry.entries {
        // SAFETY: invariant 1, under the read lock, as in `with_slot_at`.
        let slot = unsafe { entry.slot.as_ref() };
        // SAFETY: as above.
        let pool = unsafe { entry.pool.as_ref() };
        visit(slot, pool, entry.start, entry.end);
    }
}
