//! Pool and slot statistics, derived from each slot's counters.

use super::inner::PoolInner;
use super::slot::Slot;
use crate::error::PoolName;

/// Counters of one slot, read without stopping its owner.
///
/// While threads work the figures may lag each other by a few operations; when the pool is
/// quiescent they are exact and satisfy
/// `capacity = free + in_use` and `allocations = local_frees + remote_frees + in_use`.
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
/// // 64 blocks of 64 bytes tile one 4 KiB page exactly: no slack, no fragmentation.
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(64).slots(1).build()?;
/// let lease = pool.attach()?;
/// let a = lease.alloc::<u8>(8)?;
/// let b = lease.alloc::<u8>(8)?;
/// drop(a);
/// let c = lease.alloc::<u8>(8)?; // reuses a's block
/// let s = lease.stats();
/// assert_eq!((s.capacity, s.in_use, s.high_water), (64, 2, 2));
/// assert_eq!((s.allocations, s.local_frees, s.remote_frees), (3, 1, 0));
/// assert_eq!(s.reuse_rate(), 1.0 / 3.0);
/// assert_eq!(s.external_fragmentation(), 0.0);
/// # drop((b, c));
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SlotStats {
    /// The slot's index.
    pub slot: usize,
    /// Whether a `LocalPool` holds the slot now.
    pub leased: bool,
    /// Blocks in the slot.
    pub capacity: u64,
    /// Bytes per block.
    pub block_size: usize,
    /// Bytes of the slot's region (whole pages; may exceed `capacity * block_size`).
    pub region_bytes: usize,
    /// Blocks owned outside the slot now (buffers, capabilities in flight).
    pub in_use: u64,
    /// Free blocks: never used, on the owner's list, or freed remotely and not yet drained.
    pub free: u64,
    /// The most blocks that were out of the owner's hands at once (in use, or freed remotely and
    /// not yet taken back). The owner reuses freed blocks before fresh ones, so this is also the
    /// number of blocks the slot ever touched: its memory footprint.
    pub high_water: u64,
    /// Blocks handed out, all time.
    pub allocations: u64,
    /// Blocks handed out that had been used and freed before (not fresh).
    pub reuses: u64,
    /// Frees on the owning thread, all time.
    pub local_frees: u64,
    /// Frees from other threads (lock-free pushes), all time.
    pub remote_frees: u64,
    /// Remote frees not yet taken back by the owner.
    pub remote_pending: u64,
    /// Allocations that found the slot empty.
    pub exhaustion_events: u64,
    /// Of those, allocations a fallback pool served.
    pub fallback_allocations: u64,
    /// Capabilities this slot's leases refused (`Capability::accept` errors), all time.
    pub accept_failures: u64,
}

impl SlotStats {
    pub(crate) fn of(inner: &PoolInner, slot: &Slot) -> SlotStats {
        let c = slot.counters();
        let remote_pending = c.pushed.saturating_sub(c.drained);
        let in_use = c.fresh.saturating_sub(c.len).saturating_sub(remote_pending);
        SlotStats {
            slot: slot.index(),
            leased: c.leased,
            capacity: c.blocks,
            block_size: inner.block_size,
            region_bytes: slot.region().info().bytes,
            in_use,
            free: c.blocks - in_use.min(c.blocks),
            high_water: c.fresh,
            allocations: c.allocations,
            reuses: c.allocations.saturating_sub(c.fresh),
            local_frees: c
                .allocations
                .saturating_sub(c.pushed)
                .saturating_sub(in_use),
            remote_frees: c.pushed,
            remote_pending,
            exhaustion_events: c.exhausted,
            fallback_allocations: c.fallbacks,
            accept_failures: c.accept_failures,
        }
    }

    /// Allocations served by a previously freed block, over all allocations (0 when none).
    pub fn reuse_rate(&self) -> f64 {
        ratio(self.reuses, self.allocations)
    }

    /// External fragmentation: the share of free memory that cannot serve a request of the
    /// largest size the pool accepts (one block).
    ///
    /// Free memory is the free blocks plus the slack at the end of the region (the part of the
    /// last page that holds no whole block). Every free block serves any request, so only the
    /// slack counts against: the figure is `slack / (free blocks × block size + slack)`, zero
    /// when the blocks tile the region's pages exactly (invariant I5), and never any larger
    /// however the pool is used, because fixed-size blocks never split.
    pub fn external_fragmentation(&self) -> f64 {
        let slack = self
            .region_bytes
            .saturating_sub(self.capacity as usize * self.block_size) as u64;
        let free_bytes = self.free * self.block_size as u64 + slack;
        ratio(slack, free_bytes)
    }
}

/// Counters of a whole pool: per slot, and summed.
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().name("demo").block_size(64).blocks_per_slot(8).slots(2).build()?;
/// let lease = pool.attach_slot(1)?;
/// let _buf = lease.alloc::<u8>(1)?;
/// let stats = pool.stats();
/// assert_eq!(stats.pool.as_str(), "demo");
/// assert_eq!(stats.capacity(), 16);
/// assert_eq!(stats.in_use(), 1);
/// assert_eq!(stats.slots[1].in_use, 1);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name.
    pub pool: PoolName,
    /// The pool's numeric id (unique in this process).
    pub id: u64,
    /// The residency's name.
    pub residency: String,
    /// Bytes per block.
    pub block_size: usize,
    /// One entry per slot, in slot order.
    pub slots: Vec<SlotStats>,
    /// Whether the pool's memory only emulates its residency (for example a `Cxl` pool built
    /// with `CxlFallback::Emulate` on a machine without CXL memory); see
    /// [`Pool::backing`](crate::Pool::backing).
    pub emulated: bool,
}

impl PoolStats {
    pub(crate) fn of(inner: &PoolInner) -> PoolStats {
        PoolStats {
            pool: inner.name.clone(),
            id: inner.id,
            residency: inner.residency_label.clone(),
            block_size: inner.block_size,
            slots: inner
                .slots
                .iter()
                .map(|slot| SlotStats::of(inner, slot))
                .collect(),
            emulated: inner.backing.iter().any(|b| b.emulated),
        }
    }

    fn sum(&self, field: impl Fn(&SlotStats) -> u64) -> u64 {
        self.slots.iter().map(field).sum()
    }

    /// Blocks in the pool.
    pub fn capacity(&self) -> u64 {
        self.sum(|s| s.capacity)
    }

    /// Blocks in use now.
    pub fn in_use(&self) -> u64 {
        self.sum(|s| s.in_use)
    }

    /// Free blocks now.
    pub fn free(&self) -> u64 {
        self.sum(|s| s.free)
    }

    /// Sum of the slots' high-water marks (an upper bound of the pool's peak).
    pub fn high_water(&self) -> u64 {
        self.sum(|s| s.high_water)
    }

    /// Blocks handed out, all time.
    pub fn allocations(&self) -> u64 {
        self.sum(|s| s.allocations)
    }

    /// Frees on owning threads, all time.
    pub fn local_frees(&self) -> u64 {
        self.sum(|s| s.local_frees)
    }

    /// Frees from other threads, all time.
    pub fn remote_frees(&self) -> u64 {
        self.sum(|s| s.remote_frees)
    }

    /// Remote frees not yet taken back.
    pub fn remote_pending(&self) -> u64 {
        self.sum(|s| s.remote_pending)
    }

    /// Allocations that found their slot empty.
    pub fn exhaustion_events(&self) -> u64 {
        self.sum(|s| s.exhaustion_events)
    }

    /// Allocations served by a fallback pool.
    pub fn fallback_allocations(&self) -> u64 {
        self.sum(|s| s.fallback_allocations)
    }

    /// Capabilities refused by the pool's leases.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let a = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let b = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let cap = a.attach()?.alloc::<u8>(1)?.into_capability();
    /// let _refused = cap.accept(&b.attach()?).unwrap_err();
    /// assert_eq!(b.stats().accept_failures(), 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn accept_failures(&self) -> u64 {
        self.sum(|s| s.accept_failures)
    }

    /// Allocations served by a previously freed block, over all allocations.
    pub fn reuse_rate(&self) -> f64 {
        ratio(self.sum(|s| s.reuses), self.allocations())
    }

    /// External fragmentation of the whole pool (see [`SlotStats::external_fragmentation`]).
    pub fn external_fragmentation(&self) -> f64 {
        let slack: u64 = self.sum(|s| {
            s.region_bytes
                .saturating_sub(s.capacity as usize * s.block_size) as u64
        });
        ratio(slack, self.free() * self.block_size as u64 + slack)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
