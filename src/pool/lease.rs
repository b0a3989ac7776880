//! `LocalPool`: one thread's exclusive lease on one slot, and the allocation fast path.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

use bytemuck::Pod;

use super::inner::{PoolInner, RawPool};
use super::slot::{NOT_LOCAL, Slot};
use super::stats::SlotStats;
use super::{Pool, Taken};
use crate::buffer::SharedBuffer;
use crate::events::Pending;

/// `take_slow`'s name for a block taken through the lease's own slot.
const PRIMARY: u32 = 0;
use crate::error::Error;
use crate::residency::Residency;
use crate::thread_bound::LeaseStaysOnItsThread;

/// A lease on one slot, untyped.
///
/// # Invariants
/// 0. `generation` is the slot's current lease word: this lease holds the slot until `Drop`.
/// 1. `slot` points into the pool counted by `pool`.
pub(crate) struct RawLease {
    slot: NonNull<Slot>,
    generation: u64,
    pool: RawPool,
}

impl RawLease {
    /// Leases slot `index` of `pool`.
    pub(crate) fn take(pool: &RawPool, index: usize) -> Result<RawLease, Error> {
        let inner = pool.inner();
        let slot = inner.slots.get(index).ok_or_else(|| Error::NoSuchSlot {
            pool: inner.name.clone(),
            slot: index,
            slots: inner.slots.len(),
        })?;
        let generation = slot.try_lease().ok_or_else(|| Error::SlotBusy {
            pool: inner.name.clone(),
            slot: index,
        })?;
        Ok(RawLease {
            slot: NonNull::from(slot),
            generation,
            pool: pool.clone(),
        })
    }

    /// Leases the first free slot of `pool`, trying `preferred` first.
    pub(crate) fn take_any(pool: &RawPool, preferred: usize) -> Result<RawLease, Error> {
        let inner = pool.inner();
        let n = inner.slots.len();
        (0..n)
            .map(|i| (preferred + i) % n)
            .find_map(|i| RawLease::take(pool, i).ok())
            .ok_or_else(|| Error::NoFreeSlot {
                pool: inner.name.clone(),
                slots: n,
            })
    }

    /// Leases a free slot that serves CPU `cpu` (the first in index order), else the first free
    /// slot of `pool`.
    pub(crate) fn take_for_cpu(pool: &RawPool, cpu: Option<u32>) -> Result<RawLease, Error> {
        let inner = pool.inner();
        let serving = inner
            .backing
            .iter()
            .enumerate()
            .filter(|(_, backing)| cpu.is_some() && backing.cpu == cpu)
            .map(|(index, _)| index);
        serving
            .chain(0..inner.slots.len())
            .find_map(|index| RawLease::take(pool, index).ok())
            .ok_or_else(|| Error::NoFreeSlot {
                pool: inner.name.clone(),
                slots: inner.slots.len(),
            })
    }

    /// The leased slot, as a pointer (valid while this lease lives, invariant 1).
    pub(crate) fn slot_ptr(&self) -> NonNull<Slot> {
        self.slot
    }

    /// The lease's generation (invariant 0).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The leased slot.
    #[inline(always)]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: invariant 1: the slot lives as long as the pool, which `self.pool` keeps alive.
        unsafe { self.slot.as_ref() }
    }

    /// Pops a block: the owner's stack, else the slow refill.
    #[inline(always)]
    fn pop(&self) -> Option<u32> {
        let slot = self.slot();
        // SAFETY: invariant 0: this lease holds the slot, and a RawLease never leaves the thread
        // that took it (it lives inside a `!Send` LocalPool), so this is the lease thread.
        match unsafe { slot.pop_local() } {
            Some(block) => Some(block),
            // SAFETY: as above.
            None => unsafe { slot.refill() },
        }
    }
}

impl Drop for RawLease {
    fn drop(&mut self) {
        self.slot().release_lease(self.generation);
    }
}

/// One thread's exclusive lease on one slot of a [`Pool`]: the allocation interface.
///
/// `LocalPool` is `!Send` and `!Sync`: the slot's free list is touched by this thread alone,
/// without atomics. Buffers it hands out return to that list when dropped on this thread; from
/// any other thread they return as a remote free.
///
/// If the slot runs out and the pool was built with a fallback pool, the lease takes a slot of
/// the fallback pool (lazily, at the first exhaustion) and serves the allocation from there. It
/// gives that slot back as soon as its own slot serves an allocation again (or when it is
/// dropped), so a small fallback pool serves one overflowing lease after another; fallback
/// blocks still out then go home as remote frees.
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(16).slots(2).build()?;
/// let lease = pool.attach()?;
/// let mut samples = lease.alloc_zeroed::<f32>(1024)?;
/// samples[0] = 1.5;
/// let copy = lease.alloc_from_slice(&samples[..4])?;
/// assert_eq!(&copy[..], &[1.5, 0.0, 0.0, 0.0]);
/// assert_eq!(lease.stats().in_use, 2);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct LocalPool<R: Residency> {
    lease: RawLease,
    fallbacks: Box<[Cell<Option<RawLease>>]>,
    /// Whether any entry of `fallbacks` holds a lease.
    holds_fallback: Cell<bool>,
    _marker: PhantomData<(R, *mut ())>,
}

// SAFETY: no type implements `LeaseStaysOnItsThread` (it is private and has no impl), so this
// impl never applies: `LocalPool` is `!Send` (Slot invariant 2 relies on it). It exists so that
// the compiler's error names the lease and the remedy (see `thread_bound`).
unsafe impl<R: Residency> Send for LocalPool<R> where LocalPool<R>: LeaseStaysOnItsThread {}
// SAFETY: as for `Send`: never applies, so `LocalPool` is `!Sync`.
unsafe impl<R: Residency> Sync for LocalPool<R> where LocalPool<R>: LeaseStaysOnItsThread {}

impl<R: Residency> LocalPool<R> {
    pub(crate) fn new(lease: RawLease) -> Self {
        let mut depth = 0;
        let mut next = lease.pool.inner().fallback.as_ref();
        while let Some(pool) = next {
            depth += 1;
            next = pool.inner().fallback.as_ref();
        }
        let fallbacks = (0..depth).map(|_| Cell::new(None)).collect();
        LocalPool {
            lease,
            fallbacks,
            holds_fallback: Cell::new(false),
            _marker: PhantomData,
        }
    }

    /// Allocates a block for `len` elements of `T`. The contents are unspecified but
    /// initialised: zero for a block never used, else what its previous owner left there (use
    /// [`alloc_zeroed`](Self::alloc_zeroed) to clear them).
    ///
    /// # Errors
    /// [`Error::ZeroLength`], [`Error::ZeroSizedElement`], [`Error::TooLarge`],
    /// [`Error::Misaligned`] for a request the pool's blocks cannot hold, and
    /// [`Error::Exhausted`] when this slot (and every fallback pool) has no free block.
    ///
    /// ```
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(1024).blocks_per_slot(4).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let buf = lease.alloc::<u64>(128)?;
    /// assert_eq!(buf.len(), 128);
    /// assert!(matches!(lease.alloc::<u64>(129), Err(Error::TooLarge { requested: 1032, .. })));
    /// assert!(matches!(lease.alloc::<u64>(0), Err(Error::ZeroLength)));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline(always)]
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<SharedBuffer<T, R>, Error> {
        // Every failure below is built inline, and the slow path returns a small value: no
        // call on this path writes into the returned `Result`, so it stays in registers.
        let inner = self.lease.pool.inner();
        let size = size_of::<T>();
        if size == 0
            || len == 0
            || align_of::<T>() > inner.block_align
            || len > inner.block_size / size
        {
            return Err(request_error::<T>(inner, len));
        }
        // SAFETY: this lease holds the slot (RawLease invariant 0) on this thread (LocalPool is
        // !Send), so the owner side is ours (Slot invariant 2).
        let taken = match unsafe { self.lease.slot().pop_local() } {
            Some(block) => {
                if self.holds_fallback.get() {
                    self.release_fallbacks();
                }
                Taken {
                    slot: self.lease.slot,
                    block,
                    local_gen: self.lease.generation,
                }
            }
            None => match self.take_slow() {
                Some((PRIMARY, block)) => Taken {
                    slot: self.lease.slot,
                    block,
                    local_gen: self.lease.generation,
                },
                Some((fallback, block)) => {
                    let (slot, local_gen) = self.fallback_lease(fallback);
                    // SAFETY: a block for this lease alone, of a fallback `Pool<R>` whose blocks
                    // the builder checked are as large and aligned as this pool's, where the
                    // check above proved `len` `T`s fit.
                    let buffer = unsafe { SharedBuffer::from_block(slot, block, len, local_gen) };
                    // Only now, with the block owned: a subscriber that panics unwinds
                    // through `buffer`, which takes the block home.
                    self.fallback_served(fallback, slot);
                    return Ok(buffer);
                }
                None => return Err(exhausted_error(inner, self.lease.slot())),
            },
        };
        let Taken {
            slot,
            block,
            local_gen,
        } = taken;
        // SAFETY: a block for this lease alone, of this pool or a fallback `Pool<R>`; `len` `T`s
        // fit in this pool's blocks (checked above), and the builder refused fallback pools
        // with smaller or less aligned blocks, so they fit there too.
        let buffer = unsafe { SharedBuffer::from_block(slot, block, len, local_gen) };
        Ok(buffer)
    }

    /// Allocates a block for `len` elements of `T`, all zero.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let mut buf = lease.alloc::<u32>(64)?;
    /// buf.fill(7);
    /// drop(buf);
    /// let again = lease.alloc_zeroed::<u32>(64)?; // the same block, cleared
    /// assert!(again.iter().all(|&x| x == 0));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline(always)]
    pub fn alloc_zeroed<T: Pod>(&self, len: usize) -> Result<SharedBuffer<T, R>, Error> {
        let mut buf = self.alloc::<T>(len)?;
        buf.as_bytes_mut().fill(0);
        Ok(buf)
    }

    /// Allocates a block and copies `data` into it.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc) with `len = data.len()`.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let buf = lease.alloc_from_slice(&[1u16, 2, 3])?;
    /// assert_eq!(&*buf, &[1, 2, 3]);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline(always)]
    pub fn alloc_from_slice<T: Pod>(&self, data: &[T]) -> Result<SharedBuffer<T, R>, Error> {
        let mut buf = self.alloc::<T>(data.len())?;
        buf.copy_from_slice(data);
        Ok(buf)
    }

    /// The index of the leased slot.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(3).build()?;
    /// assert_eq!(pool.attach_slot(2)?.slot(), 2);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn slot(&self) -> usize {
        self.lease.slot().index()
    }

    /// A handle to the pool this lease belongs to.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// assert_eq!(lease.pool().id(), pool.id());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn pool(&self) -> Pool<R> {
        Pool::from_raw(self.lease.pool.clone())
    }

    /// The counters of the leased slot.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(4).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let _a = lease.alloc::<u8>(1)?;
    /// assert_eq!(lease.stats().allocations, 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn stats(&self) -> SlotStats {
        SlotStats::of(self.lease.pool.inner(), self.lease.slot())
    }

    /// A block for this thread when the slot's own stack is empty: a never-used block or the
    /// remote frees, else (after counting the exhaustion) each fallback pool in turn.
    ///
    /// Returns which lease took it ([`PRIMARY`], or `1 + i` for the `i`-th fallback lease) and
    /// the block: a register-sized value, so the caller's `Result` stays out of memory.
    ///
    /// `tracing` subscribers, which may panic, run here only while no block is held and every
    /// fallback lease is back in its cell; a block served by a fallback pool is counted and
    /// traced by [`fallback_served`](Self::fallback_served), once the buffer owns it.
    /// Event sinks (whose panics are caught, never unwinding here) run after each state change
    /// is complete: a refill records its block as allocated, in the slot and in the log,
    /// before its sinks run.
    #[cold]
    #[inline(never)]
    fn take_slow(&self) -> Option<(u32, u32)> {
        if let Some(block) = self.lease.pop() {
            if self.holds_fallback.get() {
                self.release_fallbacks();
            }
            return Some((PRIMARY, block));
        }
        let home = self.lease.slot();
        home.note_exhausted().publish();
        let inner = self.lease.pool.inner();
        tracing::debug!(
            target: "umrf::pool",
            pool = %inner.name,
            residency = %inner.residency_label,
            slot = home.index(),
            capacity = inner.blocks_per_slot,
            fallbacks = self.fallbacks.len(),
            "slot exhausted"
        );
        let mut next = inner.fallback.as_ref();
        for (which, cell) in (1u32..).zip(self.fallbacks.iter()) {
            let pool = next?;
            let lease = match cell.take() {
                Some(lease) => Some(lease),
                None => RawLease::take_any(pool, home.index()).ok(),
            };
            if let Some(lease) = lease {
                let block = lease.pop();
                let exhausted = if block.is_none() {
                    lease.slot().note_exhausted()
                } else {
                    Pending::none()
                };
                cell.set(Some(lease));
                exhausted.publish();
                self.holds_fallback.set(true);
                if let Some(block) = block {
                    return Some((which, block));
                }
            }
            next = pool.inner().fallback.as_ref();
        }
        None
    }

    /// Counts, logs and traces an allocation that fallback lease `which` (as numbered by
    /// `take_slow`) served from `slot`: called once the caller's buffer owns the block, so a
    /// subscriber or sink that panics here unwinds through that buffer and strands nothing.
    /// Returns nothing, so the caller's `Result` stays out of memory (ARCHITECTURE,
    /// performance rule 1).
    #[cold]
    #[inline(never)]
    fn fallback_served(&self, which: u32, slot: NonNull<Slot>) {
        // SAFETY: `slot` is the fallback lease's slot, live while that lease (kept in its
        // cell) holds the pool.
        let served_by = unsafe { slot.as_ref() }.index();
        let home = self.lease.slot();
        home.note_fallback(served_by).publish();
        let inner = self.lease.pool.inner();
        let mut chain = core::iter::successors(inner.fallback.as_ref(), |pool| {
            pool.inner().fallback.as_ref()
        });
        let fallback = chain.nth(which as usize - 1);
        tracing::debug!(
            target: "umrf::pool",
            pool = %inner.name,
            slot = home.index(),
            fallback = %fallback.map_or("", |pool| pool.inner().name.as_str()),
            fallback_slot = served_by,
            "allocation served by the fallback pool"
        );
    }

    /// Gives back every fallback slot this lease holds, now that its own slot has a block
    /// again: other leases may overflow into them. Blocks still out from them go home as
    /// remote frees (their lease generation is no longer the slot's).
    #[cold]
    #[inline(never)]
    fn release_fallbacks(&self) {
        for cell in self.fallbacks.iter() {
            drop(cell.take());
        }
        self.holds_fallback.set(false);
    }

    /// The slot and generation of fallback lease `which` (as numbered by `take_slow`), which
    /// exists: `take_slow` just served a block through it.
    #[cold]
    #[inline(never)]
    fn fallback_lease(&self, which: u32) -> (NonNull<Slot>, u64) {
        let cell = &self.fallbacks[which as usize - 1];
        let lease = cell
            .take()
            .expect("take_slow served a block through this fallback lease");
        let parts = (lease.slot, lease.generation);
        cell.set(Some(lease));
        parts
    }

    /// How a block of `slot` is owned once accepted by this lease: `Some((local generation,
    /// owner slot))` if the block's pool is this lease's pool or one of its fallbacks.
    #[inline]
    pub(crate) fn adopt(&self, slot: NonNull<Slot>) -> Option<(u64, usize)> {
        let owner = self.lease.slot().index();
        if slot == self.lease.slot {
            return Some((self.lease.generation, owner));
        }
        // SAFETY: the caller owns a block of `slot`, which keeps the slot alive
        // (PoolInner invariant 2).
        let pool: NonNull<PoolInner> = unsafe { slot.as_ref() }.pool();
        if self.lease.pool.same_pool(pool) {
            return Some((NOT_LOCAL, owner));
        }
        self.adopt_from_fallback(slot, pool)
            .map(|local| (local, owner))
    }

    /// `adopt` for a block of one of the fallback pools: its local generation, if any.
    #[cold]
    #[inline(never)]
    fn adopt_from_fallback(&self, slot: NonNull<Slot>, pool: NonNull<PoolInner>) -> Option<u64> {
        let mut next = self.lease.pool.inner().fallback.as_ref();
        for cell in self.fallbacks.iter() {
            let fallback = next?;
            let lease = cell.take();
            let local = lease
                .as_ref()
                .filter(|l| l.slot == slot)
                .map_or(NOT_LOCAL, |l| l.generation);
            cell.set(lease);
            if fallback.same_pool(pool) {
                return Some(local);
            }
            next = fallback.inner().fallback.as_ref();
        }
        None
    }

    /// Counts a capability this lease refused.
    #[cold]
    #[inline(never)]
    pub(crate) fn note_accept_failure(&self) {
        // SAFETY: this lease holds the slot on this thread (RawLease invariant 0; LocalPool is
        // !Send).
        unsafe { self.lease.slot().note_accept_failure() }
    }

    /// The pool this lease allocates from, untyped.
    pub(crate) fn raw_pool(&self) -> &RawPool {
        &self.lease.pool
    }
}

/// The error for a request the pool's blocks cannot hold (built inline: see `alloc`).
#[inline(always)]
fn request_error<T>(inner: &PoolInner, len: usize) -> Error {
    let type_name = core::any::type_name::<T>();
    if size_of::<T>() == 0 {
        Error::ZeroSizedElement { type_name }
    } else if len == 0 {
        Error::ZeroLength
    } else if align_of::<T>() > inner.block_align {
        Error::Misaligned {
            type_name,
            align: align_of::<T>(),
            block_align: inner.block_align,
            pool: inner.name.clone(),
        }
    } else {
        Error::TooLarge {
            requested: len.saturating_mul(size_of::<T>()),
            block_size: inner.block_size,
            pool: inner.name.clone(),
        }
    }
}

/// The error for a slot with no block left, nor any in its fallback pools.
#[inline(always)]
fn exhausted_error(inner: &PoolInner, slot: &Slot) -> Error {
    Error::Exhausted {
        pool: inner.name.clone(),
        residency: inner.residency,
        slot: slot.index(),
        capacity: inner.blocks_per_slot as usize,
    }
}

impl<R: Residency> fmt::Debug for LocalPool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lease.pool.inner();
        f.debug_struct("LocalPool")
            .field("pool", &inner.name)
            .field("residency", &inner.residency_label)
            .field("slot", &self.slot())
            .finish_non_exhaustive()
    }
}
