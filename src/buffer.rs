//! `SharedBuffer`: an owned, typed view of one pool block, confined to one thread.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::capability::Capability;
use crate::coherence::{Coherence, DeviceMapping, Direction};
use crate::frozen::Frozen;
use crate::pool::{BlockRef, NOT_LOCAL, Slot, UNKNOWN_TRIP};
use crate::residency::Residency;

/// An owned buffer of `len` elements of `T` in one pool block of residency `R`.
///
/// It derefs to `[T]`. It is `!Send` and `!Sync`: it lives on one thread, and leaves it only as
/// a [`Capability`] made by [`into_capability`](Self::into_capability). Dropping it returns the
/// block home — to the slot's local list if this thread leases the home slot, else by a
/// lock-free remote free.
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(8).slots(1).build()?;
/// let lease = pool.attach()?;
/// let mut buf = lease.alloc_zeroed::<f32>(256)?;
/// buf[3] = 2.0;
/// let total: f32 = buf.iter().sum();
/// assert_eq!(total, 2.0);
/// assert_eq!(buf.as_bytes().len(), 1024);
/// assert_eq!(buf.home_slot(), 0);
/// # Ok::<(), umrf::Error>(())
/// ```
///
/// # Invariants
/// 0. `ptr` is the start of block `block`, aligned for `T`, and `len * size_of::<T>()` bytes
///    fit in the block; every byte of the block is initialised (Region invariant 2).
/// 1. This value is the block's only owner (I1): no other buffer, capability or free list
///    names the block while it lives.
/// 2. `local_gen` is `NOT_LOCAL` or a lease generation of the home slot taken on the thread
///    this buffer lives on (it is `!Send`, so it never changes thread).
pub struct SharedBuffer<T: Pod, R: Residency> {
    ptr: NonNull<T>,
    len: usize,
    block: BlockRef,
    local_gen: u64,
    _marker: PhantomData<(*mut T, R)>,
}

impl<T: Pod, R: Residency> SharedBuffer<T, R> {
    /// A buffer over a block just handed to a lease.
    ///
    /// # Safety
    /// 1. Block `block` of `slot` is owned by the caller alone, who gives it to the buffer; its
    ///    pool has residency `R`; `local_gen` is `NOT_LOCAL` or the generation of the lease on
    ///    `slot` held by the calling thread.
    /// 2. `len >= 1` and `len` elements of `T` fit in a block, aligned.
    #[inline(always)]
    pub(crate) unsafe fn from_block(
        slot: NonNull<Slot>,
        block: u32,
        len: usize,
        local_gen: u64,
    ) -> Self {
        let block = BlockRef {
            slot,
            index: block,
            trip: UNKNOWN_TRIP,
        };
        let ptr = block.slot().block_ptr(block.index).cast::<T>();
        SharedBuffer {
            ptr,
            len,
            block,
            local_gen,
            _marker: PhantomData,
        }
    }

    /// Rebuilds a buffer from the parts of one given up by [`into_parts`](Self::into_parts).
    ///
    /// # Safety
    /// The parts come from `into_parts` of a buffer of the same `T` and `R`; `local_gen` is
    /// `NOT_LOCAL` or a generation of a lease of the home slot taken on the calling thread.
    pub(crate) unsafe fn from_parts(
        ptr: NonNull<T>,
        len: usize,
        block: BlockRef,
        local_gen: u64,
    ) -> Self {
        SharedBuffer {
            ptr,
            len,
            block,
            local_gen,
            _marker: PhantomData,
        }
    }

    /// The buffer a block becomes when it arrives at the lease of slot `owner` on this thread
    /// (a capability accepted, a frozen block thawed): records the arrival, then owns it.
    ///
    /// # Safety
    /// 1. `ptr`, `len` and `block` are the parts of a buffer of the same `T` and `R` that the
    ///    caller owns and gives up with this call.
    /// 2. `local_gen` and `owner` come from [`LocalPool::adopt`](crate::LocalPool) on this
    ///    thread.
    #[inline(always)]
    pub(crate) unsafe fn arrive(
        ptr: NonNull<T>,
        len: usize,
        block: &BlockRef,
        local_gen: u64,
        owner: usize,
    ) -> Self {
        let trip = block.arrive(local_gen != NOT_LOCAL, owner);
        let block = BlockRef {
            trip,
            ..block.share()
        };
        // SAFETY: promise 1 gives the parts; promise 2: `local_gen` is NOT_LOCAL or a
        // generation of a lease of the home slot taken on this thread.
        unsafe { SharedBuffer::from_parts(ptr, len, block, local_gen) }
    }

    /// Gives up the buffer without returning the block: the caller becomes its owner.
    pub(crate) fn into_parts(self) -> (NonNull<T>, usize, BlockRef) {
        let this = ManuallyDrop::new(self);
        (this.ptr, this.len, this.block.share())
    }

    /// The lease generation this buffer frees with (invariant 2).
    #[inline(always)]
    pub(crate) fn local_gen(&self) -> u64 {
        self.local_gen
    }

    /// The start of the data as a raw pointer with the provenance of the whole block (not
    /// derived from a reference), for owners that hand out parts of the block themselves.
    #[inline(always)]
    pub(crate) fn raw_ptr(&self) -> NonNull<T> {
        self.ptr
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a buffer holds at least one element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The elements as bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }

    /// The elements as mutable bytes.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let mut buf = lease.alloc_zeroed::<u32>(1)?;
    /// buf.as_bytes_mut().copy_from_slice(&7u32.to_ne_bytes());
    /// assert_eq!(buf[0], 7);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(self)
    }

    /// The slot the block belongs to (where it returns when dropped).
    #[inline]
    pub fn home_slot(&self) -> usize {
        self.block.slot().index()
    }

    /// Bytes in the underlying block (the most this buffer's data could grow to).
    pub fn block_size(&self) -> usize {
        // SAFETY: BlockRef invariant 0: the pool is live while this block is out.
        unsafe { self.block.slot().pool().as_ref() }.block_size
    }

    /// The residency's name.
    pub fn residency_name(&self) -> &'static str {
        R::NAME
    }

    /// Turns the buffer into a [`Capability`], the only form in which it can leave this thread.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(2).build()?;
    /// let lease = pool.attach_slot(0)?;
    /// let cap = lease.alloc_from_slice(&[42u64])?.into_capability();
    /// let pool2 = pool.clone();
    /// std::thread::spawn(move || {
    ///     let there = pool2.attach_slot(1).unwrap();
    ///     let buf = cap.accept(&there).unwrap();
    ///     assert_eq!(buf[0], 42);
    /// }) // the block goes home to slot 0 as a remote free
    /// .join()
    /// .unwrap();
    /// assert_eq!(pool.stats().remote_frees(), 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn into_capability(self) -> Capability<T, R> {
        let trip = self.block.depart(self.local_gen);
        let (ptr, len, mut block) = self.into_parts();
        block.trip = trip;
        // SAFETY: the parts come from a live buffer of the same T and R, given up just now.
        unsafe { Capability::from_parts(ptr, len, block) }
    }

    /// Like [`into_capability`](Self::into_capability), with the block recorded as
    /// [`BlockState::Spilled`](crate::BlockState::Spilled) (and logged as `spilled`): a tiered
    /// store hands the page to its I/O worker to write to a lower tier.
    pub(crate) fn into_spill_capability(self) -> Capability<T, R> {
        let trip = self
            .block
            .depart_as(self.local_gen, crate::BlockState::Spilled);
        let (ptr, len, mut block) = self.into_parts();
        block.trip = trip;
        // SAFETY: the parts come from a live buffer of the same T and R, given up just now; the
        // block's state is `Spilled`, the capability's other in-flight state (invariant 1).
        unsafe { Capability::from_parts(ptr, len, block) }
    }

    /// Ends the writing: the buffer becomes a [`Frozen`] block, read-only, that any number of
    /// readers on any cores may share (single writer, many readers).
    ///
    /// ```
    /// use umrf::{BlockState, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let frozen = lease.alloc_from_slice(&[1u8, 2, 3])?.freeze();
    /// let reader = frozen.clone();
    /// std::thread::spawn(move || assert_eq!(&reader[..], &[1, 2, 3])).join().unwrap();
    /// assert_eq!(pool.block_state(0, 0), Some(BlockState::Frozen));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn freeze(self) -> Frozen<T, R> {
        Frozen::new(self)
    }

    /// Hands the buffer to a device for direction `D` (a
    /// [`coherence`](crate::coherence) marker), with the platform's default
    /// [`Coherence`]: the CPU may not touch the memory until the mapping is
    /// [unmapped](DeviceMapping::unmap).
    ///
    /// ```
    /// use umrf::coherence::ToDevice;
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let buf = pool.attach()?.alloc_from_slice(&[1u8; 64])?;
    /// let mapping = buf.map_for_device::<ToDevice>();
    /// // ... start the device on mapping.dma_addr(), mapping.byte_len() ...
    /// let buf = mapping.unmap();
    /// assert_eq!(buf[63], 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn map_for_device<D: Direction>(self) -> DeviceMapping<T, R, D> {
        DeviceMapping::new(self, Coherence::default())
    }

    /// As [`map_for_device`](Self::map_for_device), with the given [`Coherence`] (for example
    /// [`Coherence::Software`] for a device that does not snoop the CPU caches).
    ///
    /// ```
    /// use umrf::coherence::{Coherence, FromDevice};
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let buf = pool.attach()?.alloc_zeroed::<u8>(64)?;
    /// let mapping = buf.map_for_device_with::<FromDevice>(Coherence::Software);
    /// assert_eq!(mapping.coherence(), Coherence::Software);
    /// # drop(mapping.unmap());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn map_for_device_with<D: Direction>(self, coherence: Coherence) -> DeviceMapping<T, R, D> {
        DeviceMapping::new(self, coherence)
    }
}

impl<T: Pod, R: Residency> Deref for SharedBuffer<T, R> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: invariant 0 (in bounds, aligned, initialised) and invariant 1 (no one else
        // can write the block while this shared borrow of the buffer lives).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> DerefMut for SharedBuffer<T, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: invariants 0 and 1; `&mut self` makes this the only borrow of the block.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> Drop for SharedBuffer<T, R> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: invariant 1 (this buffer owns the block and gives it up here) and
        // invariant 2 (`local_gen` was taken on this thread).
        unsafe { self.block.release(self.local_gen) }
    }
}

impl<T: Pod + fmt::Debug, R: Residency> fmt::Debug for SharedBuffer<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("residency", &R::NAME)
            .field("home_slot", &self.home_slot())
            .field("block", &self.block.index)
            .field("data", &&**self)
            .finish()
    }
}
