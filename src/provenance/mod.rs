//! Memory provenance: which pool, slot and block an address belongs to, and who owns it now.
//!
//! Every pool registers its slots' block spans in a process-wide registry when it is built and
//! removes them just before its memory is returned to the operating system. [`owner_of`] looks
//! an address up there (a binary search: O(log regions)) and reads the block's state from the
//! pool's state table, the same record that [`Pool::block_state`](crate::Pool::block_state)
//! reads. The alloc and free paths pay nothing for this: the registry is touched only when a
//! pool is built and when it is freed.
//!
//! ```
//! use umrf::{BlockState, Pool, provenance, residency::CpuLocal};
//!
//! let pool = Pool::<CpuLocal>::builder().name("frames").block_size(4096).blocks_per_slot(8).slots(2).build()?;
//! let lease = pool.attach_slot(1)?;
//! let buf = lease.alloc::<u8>(4096)?;
//! let owner = provenance::owner_of(buf[100..].as_ptr()).expect("inside a umrf pool");
//! assert_eq!(owner.pool.as_str(), "frames");
//! assert_eq!(owner.residency, "CpuLocal");
//! assert_eq!((owner.slot, owner.block, owner.offset), (1, 0, 100));
//! assert_eq!(owner.state, BlockState::Owned { slot: 1 });
//!
//! let elsewhere = Box::new(0u64);
//! assert!(provenance::owner_of(&*elsewhere as *const u64).is_none());
//! # Ok::<(), umrf::Error>(())
//! ```
//!
//! # Lookups and pool lifetime
//!
//! A lookup holds the registry's read lock while it reads the slot's state; a pool removes its
//! entries under the write lock before it frees its memory. So a lookup racing with the last
//! block of a pool coming home either sees the pool (and reads live memory) or does not see it
//! at all (and returns `None`); it never reads freed memory.

mod address;
mod mapped;
mod registry;

pub use address::Address;

pub(crate) use registry::{register, unregister, with_slot_at};

use crate::BlockState;
use crate::error::PoolName;
use crate::pool::{PoolInner, Slot};

/// Who owns the block that contains an address. Returned by [`owner_of`].
///
/// The `state` is the pool's own record of the block, a [`BlockState`]: every state the pool
/// records is reported here unchanged: [`Free`](BlockState::Free) (in its slot: never used,
/// on the owner's free list, or queued as a remote free), [`Owned { slot }`](BlockState::Owned)
/// (a `SharedBuffer` on the thread leasing `slot`), [`InFlight`](BlockState::InFlight) (inside
/// a `Capability`), [`Frozen`](BlockState::Frozen) (shared by a group of
/// [`Frozen`](crate::Frozen) readers) and [`MappedForDevice`](BlockState::MappedForDevice)
/// (inside a [`DeviceMapping`](crate::coherence::DeviceMapping)). `BlockState` is
/// `#[non_exhaustive]`: a state added to the pool later (spilled blocks, with the tiered spill
/// store) flows through here without a change to this type.
///
/// ```
/// use umrf::{BlockState, Pool, provenance, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(4).slots(1).build()?;
/// let lease = pool.attach()?;
/// let a = lease.alloc::<u8>(64)?;
/// let b = lease.alloc::<u8>(64)?;
/// let cap = b.into_capability();
/// let first = provenance::owner_of(a.as_ptr()).unwrap();
/// assert_eq!((first.block, first.state), (0, BlockState::Owned { slot: 0 }));
/// // One past the end of block 0 is the start of block 1.
/// let next = provenance::owner_of(a.as_ptr().wrapping_add(64)).unwrap();
/// assert_eq!((next.block, next.offset, next.state), (1, 0, BlockState::InFlight));
/// assert_eq!(next.block_start, first.block_start + 64);
/// # drop(cap);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Owner {
    /// The pool's name.
    pub pool: PoolName,
    /// The pool's id (unique in this process).
    pub pool_id: u64,
    /// The residency's name, with the node for `NumaNode<N>`.
    pub residency: String,
    /// The block's home slot (the per-core slot whose region holds it).
    pub slot: usize,
    /// The block's index in its slot.
    pub block: usize,
    /// The address of the block's first byte.
    pub block_start: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// The address's offset from `block_start`.
    pub offset: usize,
    /// What holds the block now.
    pub state: BlockState,
}

/// The owner of the block that contains `ptr`, or `None` if `ptr` is not inside the blocks of
/// any live umrf pool.
///
/// Any pointer may be passed (it is only compared, never read): addresses of other allocators,
/// of the stack, dangling ones. The bytes at the end of a slot's region that hold no whole
/// block (page slack) are not inside a block, so they give `None` too.
///
/// Blocks of size-class pools are answered too: each (class, row) of a
/// [`SizedPool`](crate::sized::SizedPool) or of a [`GlobalPool`](crate::GlobalPool) is a pool
/// of one slot (so `slot` is 0), named `<family>/<class bytes>B/row<row>`, and `block_size` is
/// the class's. A `SizedPool`'s class pools are in the registry; a `GlobalPool`'s are found
/// through its page map (the global allocator keeps its pools out of the registry, whose lock
/// its allocation paths must not take). A `GlobalPool`'s large allocations (above its largest
/// class: a region of their own, returned to the operating system when freed) give `None`.
///
/// Cost: a shared lock and a binary search over the registered slots (O(log regions)), then
/// two relaxed loads of the block's state words (for a `GlobalPool`'s block, two loads of its
/// page map instead of the search). The alloc and free paths take no part in it.
///
/// ```
/// use umrf::{BlockState, GlobalPool, provenance, residency::CpuLocal};
/// static POOL: GlobalPool<CpuLocal> = GlobalPool::new().rows(1).largest_class(64).bytes_per_class(1024);
/// let p = POOL.allocate(40, 8); // a block of the 48-byte class
/// let owner = provenance::owner_of(p.wrapping_add(5)).expect("a block of the global pool");
/// assert_eq!((owner.block_size, owner.offset, owner.block_start), (48, 5, p as usize));
/// assert!(owner.pool.as_str().ends_with("/48B/row0"), "{}", owner.pool);
/// // SAFETY: `p` came from POOL.allocate and is freed once.
/// assert!(unsafe { POOL.free(p) });
/// assert_eq!(provenance::owner_of(p).unwrap().state, BlockState::Free);
/// ```
///
/// ```
/// use umrf::{Pool, provenance, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(128).blocks_per_slot(2).slots(1).build()?;
/// let lease = pool.attach()?;
/// let buf = lease.alloc::<u8>(1)?;
/// let owner = provenance::owner_of(buf.as_ptr()).unwrap();
/// assert_eq!(owner.pool_id, pool.id());
/// assert!(provenance::owner_of(std::ptr::null::<u8>()).is_none());
/// # Ok::<(), umrf::Error>(())
/// ```
pub fn owner_of(ptr: impl Address) -> Option<Owner> {
    let addr = ptr.address();
    registry::with_slot_at(addr, owner)
        .or_else(|| mapped::with_class_block_at(addr, owner))
        .flatten()
}

/// The owner of the block at `offset` bytes from the first block of `slot`, a slot of `pool`.
fn owner(slot: &Slot, pool: &PoolInner, offset: usize) -> Option<Owner> {
    let block = offset / pool.block_size;
    let start = slot.block_ptr(0).as_ptr().addr();
    Some(Owner {
        pool: pool.name.clone(),
        pool_id: pool.id,
        residency: pool.residency_label.clone(),
        slot: slot.index(),
        block,
        block_start: start + block * pool.block_size,
        block_size: pool.block_size,
        offset: offset % pool.block_size,
        state: slot.state(u32::try_from(block).ok()?)?,
    })
}

/// One slot's span of blocks, as registered. Returned by [`regions`].
///
/// ```
/// use umrf::{Pool, provenance, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(3).slots(2).build()?;
/// let mine: Vec<_> = provenance::regions().into_iter().filter(|r| r.pool_id == pool.id()).collect();
/// assert_eq!(mine.len(), 2);
/// assert!(mine.iter().all(|r| r.end - r.start == 3 * 64));
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegionSpan {
    /// The pool's name.
    pub pool: PoolName,
    /// The pool's id.
    pub pool_id: u64,
    /// The slot.
    pub slot: usize,
    /// The first byte of block 0.
    pub start: usize,
    /// One past the last byte of the last block.
    pub end: usize,
}

/// Every live pool slot's span of blocks, in address order.
pub fn regions() -> Vec<RegionSpan> {
    let mut spans = Vec::new();
    registry::for_each_slot(|slot, pool, start, end| {
        spans.push(RegionSpan {
            pool: pool.name.clone(),
            pool_id: pool.id,
            slot: slot.index(),
            start,
            end,
        });
    });
    spans
}
