//! The pool: per-core slots of pre-allocated, fixed-size blocks.
//!
//! A [`Pool<R>`] is a set of slots, each a region of `blocks_per_slot` blocks of `block_size`
//! bytes obtained at build time with residency `R`'s strategy. A thread leases one slot as a
//! [`LocalPool<R>`] and allocates from it without locks or atomics; blocks freed elsewhere come
//! home through the slot's lock-free remote-free queue. Nothing here calls the global allocator
//! after `build` (invariant I5).

mod block;
mod build;
mod inner;
mod lease;
mod local;
mod slot;
#[cfg(test)]
mod stack_tests;
mod state;
mod stats;
#[cfg(test)]
mod wrap_tests;

#[cfg(all(test, umrf_loom))]
mod loom_tests;

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

pub use block::BlockState;
pub(crate) use block::{BlockRef, StateMark};
pub(crate) use inner::{PoolInner, RawPool};
pub use lease::LocalPool;
pub(crate) use local::LocalHandle;
pub(crate) use slot::{NOT_LOCAL, Slot};
pub(crate) use state::UNKNOWN_TRIP;
pub use stats::{PoolStats, SlotStats};

use crate::backing::{self, BackingInfo};
use crate::error::{Error, PoolName};
use crate::events::OwnershipLog;
use crate::residency::{self, Residency};
pub(crate) use build::{Identity, Settings, backing_setters, build_raw, settings_setters};
pub(crate) use lease::RawLease;

/// Block sizes are rounded up to a multiple of this (one cache line on x86-64 and most Arm
/// cores), so there the data of blocks owned by different cores never share a line. CPUs with
/// 128-byte lines (Apple M-series, POWER) need a `block_size` that is a multiple of 128 for
/// that. The blocks' bookkeeping (state words, free-list links) is packed: neighbouring blocks'
/// entries share lines.
pub const BLOCK_GRANULE: usize = 64;

/// The most alignment a block can have, whatever its size: the page size (regions start on a
/// page, and a block is aligned to the largest power of two dividing its size, up to that).
pub(crate) fn max_block_align() -> usize {
    backing::os::page_size()
}

/// A block handed to a lease: where it is, and the lease's generation if the block is local.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) slot: NonNull<Slot>,
    pub(crate) block: u32,
    pub(crate) local_gen: u64,
}

/// What an allocation does when its slot has no free block.
///
/// ```
/// use umrf::{Exhaustion, Pool, residency::CpuLocal};
/// let spare = Pool::<CpuLocal>::builder().name("spare").block_size(64).blocks_per_slot(4).slots(1).build()?;
/// let main = Pool::<CpuLocal>::builder()
///     .block_size(64)
///     .blocks_per_slot(1)
///     .slots(1)
///     .exhaustion(Exhaustion::Fallback(spare.clone()))
///     .build()?;
/// let lease = main.attach()?;
/// let a = lease.alloc::<u8>(1)?; // from main
/// let b = lease.alloc::<u8>(1)?; // main is empty: from spare
/// assert_eq!(main.stats().fallback_allocations(), 1);
/// assert_eq!(spare.stats().in_use(), 1);
/// # drop((a, b));
/// # Ok::<(), umrf::Error>(())
/// ```
pub enum Exhaustion<R: Residency> {
    /// Return [`Error::Exhausted`].
    Fail,
    /// Allocate from another pool of the same residency; fail only if it is exhausted too.
    Fallback(Pool<R>),
}

impl<R: Residency> fmt::Debug for Exhaustion<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exhaustion::Fail => f.write_str("Fail"),
            Exhaustion::Fallback(pool) => f.debug_tuple("Fallback").field(&pool.name()).finish(),
        }
    }
}

/// Configures and builds a [`Pool`]. Made by [`Pool::builder`].
///
/// Defaults: 4096-byte blocks, 1024 blocks per slot, one slot per online CPU (slot `i` serving
/// the `i`-th online CPU), every page faulted in at build, [`Exhaustion::Fail`], the machine's
/// topology detected at build, [`CxlFallback::Fail`](crate::backing::CxlFallback::Fail),
/// [`HugePageMode::Auto`](crate::backing::HugePageMode::Auto).
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder()
///     .name("frames")
///     .block_size(64 << 10)
///     .blocks_per_slot(32)
///     .cpus([0, 0]) // two slots, both for CPU 0
///     .build()?;
/// assert_eq!(pool.slots(), 2);
/// assert_eq!(pool.backing()[1].cpu, Some(0));
/// # Ok::<(), umrf::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder<R: Residency> {
    settings: Settings,
    exhaustion: Exhaustion<R>,
}

impl<R: Residency> fmt::Debug for PoolBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("residency", &R::NAME)
            .field("settings", &self.settings)
            .field("exhaustion", &self.exhaustion)
            .finish()
    }
}

impl<R: Residency> PoolBuilder<R> {
    settings_setters!();

    /// What an allocation does when its slot is empty. Default [`Exhaustion::Fail`].
    pub fn exhaustion(mut self, policy: Exhaustion<R>) -> Self {
        self.exhaustion = policy;
        self
    }

    /// Reserves every slot's memory, placed as residency `R` asks, and returns the pool.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero or out-of-range setting,
    /// [`Error::CpuUnavailable`] for a CPU in [`cpus`](Self::cpus) that is not online,
    /// [`Error::Backing`] when the operating system refuses the memory, and the placement
    /// errors of the residency: [`Error::NodeAbsent`] and [`Error::Misplaced`]
    /// (`NumaNode<N>`), [`Error::NoCxlNode`] (`Cxl`), [`Error::HugePagesUnavailable`]
    /// (`Hugepage` with a strict [`HugePageMode`](crate::backing::HugePageMode)),
    /// [`Error::MemlockLimit`] and [`Error::CudaUnavailable`] (`GpuPinned`). Nothing is
    /// leaked on failure: regions already made are returned.
    ///
    /// ```
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let err = Pool::<CpuLocal>::builder().block_size(0).build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidConfig { .. }));
    /// assert!(err.to_string().contains("block_size"));
    /// ```
    pub fn build(self) -> Result<Pool<R>, Error> {
        let identity = Identity {
            strategy: R::STRATEGY,
            residency: R::NAME,
            label: residency::describe::<R>(),
        };
        let fallback = match self.exhaustion {
            Exhaustion::Fail => None,
            Exhaustion::Fallback(pool) => Some(pool.raw),
        };
        build_raw(self.settings, identity, fallback).map(Pool::from_raw)
    }
}

/// Validated block geometry.
struct Geometry {
    block_size: usize,
    block_align: usize,
    blocks: u32,
    slots: usize,
    slot_bytes: usize,
}

impl Geometry {
    fn check(
        block_size: usize,
        blocks: usize,
        slots: Option<usize>,
        granule: usize,
    ) -> Result<Geometry, Error> {
        let invalid = |reason: String| Error::InvalidConfig { reason };
        if block_size == 0 {
            return Err(invalid(
                "block_size is 0: give the bytes each block holds (at least 1)".into(),
            ));
        }
        let block_size = block_size
            .checked_next_multiple_of(granule)
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or_else(|| {
                invalid(format!(
                    "block_size {block_size} is too large for this machine"
                ))
            })?;
        if blocks == 0 {
            return Err(invalid(
                "blocks_per_slot is 0: each slot needs at least one block".into(),
            ));
        }
        if blocks > slot::MAX_BLOCKS {
            return Err(invalid(format!(
                "blocks_per_slot {blocks} is too large: at most {}",
                slot::MAX_BLOCKS
            )));
        }
        let slots = slots.unwrap_or_else(backing::os::online_cpus);
        if slots == 0 {
            return Err(invalid("slots is 0: a pool needs at least one slot".into()));
        }
        if slots > block::MAX_SLOTS {
            return Err(invalid(format!(
                "slots {slots} is too many: at most {}",
                block::MAX_SLOTS
            )));
        }
        let slot_bytes = block_size
            .checked_mul(blocks)
            .filter(|&b| b.checked_mul(slots).is_some_and(|total| total <= isize::MAX as usize))
            .ok_or_else(|| {
                invalid(format!("{slots} slots x {blocks} blocks x {block_size} bytes overflows the address space"))
            })?;
        let block_align = (1usize << block_size.trailing_zeros()).min(max_block_align());
        Ok(Geometry {
            block_size,
            block_align,
            blocks: blocks as u32,
            slots,
            slot_bytes,
        })
    }
}

/// A pool of fixed-size blocks with residency `R`, split into per-core slots.
///
/// Cheap to clone and to share between threads (it is a counted handle). Buffers stay valid
/// when every handle is dropped: the pool's memory is released when the last outstanding block
/// comes home.
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(64).slots(2).build()?;
/// let worker_pool = pool.clone();
/// std::thread::spawn(move || {
///     let lease = worker_pool.attach().unwrap();
///     let buf = lease.alloc_zeroed::<u8>(4096).unwrap();
///     assert_eq!(buf.len(), 4096);
/// })
/// .join()
/// .unwrap();
/// assert_eq!(pool.stats().allocations(), 1);
/// assert_eq!(pool.stats().in_use(), 0);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct Pool<R: Residency> {
    raw: RawPool,
    _residency: PhantomData<fn() -> R>,
}

impl<R: Residency> Pool<R> {
    /// A builder with the defaults (see [`PoolBuilder`]).
    pub fn builder() -> PoolBuilder<R> {
        PoolBuilder {
            settings: Settings::default(),
            exhaustion: Exhaustion::Fail,
        }
    }

    /// The untyped handle.
    pub(crate) fn raw(&self) -> &RawPool {
        &self.raw
    }

    pub(crate) fn from_raw(raw: RawPool) -> Self {
        Pool {
            raw,
            _residency: PhantomData,
        }
    }

    /// The untyped handle (for [`AnyPool`](crate::placement::AnyPool)).
    pub(crate) fn into_raw(self) -> RawPool {
        self.raw
    }

    /// Leases a slot for this thread: a free slot that serves the CPU the thread runs on now
    /// (`sched_getcpu(3)`; see [`PoolBuilder::cpus`] for which CPU each slot serves), else the
    /// first free slot. The thread may move to another CPU afterwards unless it is pinned
    /// ([`cores::pin_current_thread`](crate::cores::pin_current_thread), or a
    /// [`cores`](crate::cores) worker); the lease stays where it is.
    ///
    /// # Errors
    /// [`Error::NoFreeSlot`] when every slot is leased.
    ///
    /// ```
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// assert!(matches!(pool.attach(), Err(Error::NoFreeSlot { slots: 1, .. })));
    /// drop(lease);
    /// assert!(pool.attach().is_ok());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn attach(&self) -> Result<LocalPool<R>, Error> {
        RawLease::take_for_cpu(&self.raw, calling_cpu()).map(LocalPool::new)
    }

    /// Leases slot `index` for this thread.
    ///
    /// # Errors
    /// [`Error::NoSuchSlot`] for an index out of range, [`Error::SlotBusy`] when another lease
    /// holds the slot.
    ///
    /// ```
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(2).build()?;
    /// let first = pool.attach_slot(1)?;
    /// assert!(matches!(pool.attach_slot(1), Err(Error::SlotBusy { slot: 1, .. })));
    /// assert!(matches!(pool.attach_slot(2), Err(Error::NoSuchSlot { slot: 2, slots: 2, .. })));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn attach_slot(&self, index: usize) -> Result<LocalPool<R>, Error> {
        RawLease::take(&self.raw, index).map(LocalPool::new)
    }

    /// Counters of every slot.
    pub fn stats(&self) -> PoolStats {
        PoolStats::of(self.raw.inner())
    }

    /// Counters of one slot, or `None` if it does not exist.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(3).slots(1).build()?;
    /// assert_eq!(pool.slot_stats(0).map(|s| s.capacity), Some(3));
    /// assert!(pool.slot_stats(1).is_none());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn slot_stats(&self, index: usize) -> Option<SlotStats> {
        let inner = self.raw.inner();
        inner
            .slots
            .get(index)
            .map(|slot| SlotStats::of(inner, slot))
    }

    /// The recorded state of block `block` of slot `slot`, or `None` if there is no such block.
    pub fn block_state(&self, slot: usize, block: usize) -> Option<BlockState> {
        let slot = self.raw.inner().slots.get(slot)?;
        slot.state(u32::try_from(block).ok().filter(|&b| b < slot.blocks())?)
    }

    /// The pool's ownership log, if it was built with
    /// [`log_ownership`](PoolBuilder::log_ownership).
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let plain = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// assert!(plain.ownership_log().is_none());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn ownership_log(&self) -> Option<OwnershipLog> {
        self.raw.inner().log.clone().map(OwnershipLog::new)
    }

    /// What the operating system really gave, one entry per slot.
    pub fn backing(&self) -> &[BackingInfo] {
        &self.raw.inner().backing
    }

    /// The pool's name.
    pub fn name(&self) -> &PoolName {
        &self.raw.inner().name
    }

    /// A number unique to this pool in this process.
    pub fn id(&self) -> u64 {
        self.raw.inner().id
    }

    /// The residency's name, with the node for `NumaNode<N>` (for example `NumaNode<1>`).
    pub fn residency_name(&self) -> &str {
        &self.raw.inner().residency_label
    }

    /// Bytes per block (the builder's value rounded up to [`BLOCK_GRANULE`]).
    pub fn block_size(&self) -> usize {
        self.raw.inner().block_size
    }

    /// The alignment every block has, in bytes.
    pub fn block_align(&self) -> usize {
        self.raw.inner().block_align
    }

    /// Bytes of bookkeeping the pool keeps for its blocks, outside them: 28 bytes per block (a
    /// free-stack entry, a remote-free link, two 8-byte state words and a reader count). Blocks carry
    /// no header, so a block's `block_size` bytes are all usable; beyond this, each slot has a
    /// fixed part (its owner and remote words, each padded to a cache line, and counters), and
    /// a pool built with [`log_ownership`](PoolBuilder::log_ownership) has its event rings.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(16).slots(2).build()?;
    /// assert_eq!(pool.metadata_bytes(), 2 * 16 * 28); // 0.7 % of the 128 KiB of blocks
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn metadata_bytes(&self) -> usize {
        let inner = self.raw.inner();
        inner.slots.len() * inner.blocks_per_slot as usize * slot::METADATA_BYTES_PER_BLOCK
    }

    /// Blocks in each slot.
    pub fn blocks_per_slot(&self) -> usize {
        self.raw.inner().blocks_per_slot as usize
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.raw.inner().slots.len()
    }
}

impl<R: Residency> Clone for Pool<R> {
    fn clone(&self) -> Self {
        Pool::from_raw(self.raw.clone())
    }
}

impl<R: Residency> fmt::Debug for Pool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.raw.inner();
        f.debug_struct("Pool")
            .field("name", &inner.name)
            .field("residency", &inner.residency_label)
            .field("block_size", &inner.block_size)
            .field("blocks_per_slot", &inner.blocks_per_slot)
            .field("slots", &inner.slots.len())
            .field("backing", &backing::Summary(&inner.backing))
            .finish_non_exhaustive()
    }
}

/// The CPU this thread runs on now, for [`Pool::attach`]; `None` under Miri, which does not
/// model CPUs.
fn calling_cpu() -> Option<u32> {
    if cfg!(miri) {
        None
    } else {
        crate::topology::Topology::current_cpu()
    }
}
