//! `DeviceMapping`: a block handed to a device, with no CPU access until it is unmapped.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use bytemuck::Pod;

use super::{Coherence, Direction, DmaDirection, MapError};
use crate::buffer::SharedBuffer;
use crate::pool::{BlockRef, BlockState, StateMark};
use crate::residency::Residency;
use crate::thread_bound::MappingStaysOnItsThread;

/// A buffer mapped for a device in direction `D`: the device may access its memory, the CPU may
/// not, until [`unmap`](Self::unmap) gives the buffer back.
///
/// Made by [`SharedBuffer::map_for_device`] (or
/// [`map_for_device_with`](SharedBuffer::map_for_device_with)), which consumes the buffer and
/// does the cache maintenance the device needs first. The mapping offers the address and length
/// to hand to a device or DMA engine, and no `Deref`: reading or writing the memory from the
/// CPU takes `unsafe` code. It is `!Send` and `!Sync`, like the buffer it holds.
///
/// A mapping owns its block. Forgetting it (`mem::forget`), or dropping it without `unmap`,
/// **leaks** the block: it never goes back to the pool, because a device may still be writing
/// it; the block stays [`MappedForDevice`](crate::BlockState::MappedForDevice) and counts as in
/// use, and the pool's memory stays mapped for good. Call `unmap` once the device is done.
///
/// ```
/// use umrf::coherence::{Bidirectional, DmaDirection};
/// use umrf::{BlockState, Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(2).slots(1).build()?;
/// let lease = pool.attach()?;
/// let buf = lease.alloc_from_slice(&[1u32, 2, 3, 4])?;
/// let addr = buf.as_ptr() as usize;
/// let mapping = buf.map_for_device::<Bidirectional>().unwrap();
/// assert_eq!((mapping.dma_addr(), mapping.len(), mapping.byte_len()), (addr, 4, 16));
/// assert_eq!(mapping.direction(), DmaDirection::Bidirectional);
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::MappedForDevice));
/// let buf = mapping.unmap();
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
/// assert_eq!(&buf[..], &[1, 2, 3, 4]);
/// # Ok::<(), umrf::Error>(())
/// ```
///
/// # Invariants
/// 0. `ptr`, `len`, `block` and `local_gen` are those of the [`SharedBuffer`] that was mapped:
///    in bounds, aligned, initialised; `local_gen` was taken on this thread (the mapping is
///    `!Send`).
/// 1. The mapping is the block's only owner (I1); its state is `MappedForDevice`, and `mark`
///    holds the state word it replaced.
/// 2. The maintenance `coherence` does for direction `D` before a device access was done when
///    the mapping was made; no CPU access to the block happened since, through this type.
#[must_use = "a mapping owns its block: `unmap` it when the device is done; dropping it leaks the block"]
pub struct DeviceMapping<T: Pod, R: Residency, D: Direction> {
    ptr: NonNull<T>,
    len: usize,
    block: BlockRef,
    local_gen: u64,
    mark: StateMark,
    coherence: Coherence,
    _marker: PhantomData<(*mut T, R, D)>,
}

// SAFETY: no type implements `MappingStaysOnItsThread` (it is private and has no impl), so
// this impl never applies: `DeviceMapping` is `!Send` (invariant 0 relies on it). It exists so
// that the compiler's error names the mapping and the remedy (see `thread_bound`).
unsafe impl<T: Pod, R: Residency, D: Direction> Send for DeviceMapping<T, R, D> where
    DeviceMapping<T, R, D>: MappingStaysOnItsThread
{
}
// SAFETY: as for `Send`: never applies, so `DeviceMapping` is `!Sync`.
unsafe impl<T: Pod, R: Residency, D: Direction> Sync for DeviceMapping<T, R, D> where
    DeviceMapping<T, R, D>: MappingStaysOnItsThread
{
}

impl<T: Pod, R: Residency, D: Direction> DeviceMapping<T, R, D> {
    /// Maps `buffer`: checks that software coherence (if used) cannot corrupt it, records the
    /// state, then makes the memory ready for the device.
    pub(crate) fn new(
        buffer: SharedBuffer<T, R>,
        coherence: Coherence,
    ) -> Result<Self, MapError<T, R>> {
        if let Some(method) = coherence.line_method() {
            let start = buffer.as_ptr().addr();
            if let Some(why) = method.refusal(start, buffer.block_size()) {
                return Err(MapError::new(buffer, method.writeback_granule(), why));
            }
        }
        coherence.for_device(buffer.as_bytes());
        let local_gen = buffer.local_gen();
        let (ptr, len, block) = buffer.into_parts();
        let mark = block.mark(local_gen, BlockState::MappedForDevice);
        Ok(DeviceMapping {
            ptr,
            len,
            block,
            local_gen,
            mark,
            coherence,
            _marker: PhantomData,
        })
    }

    /// The address to give a device or DMA engine: the buffer's virtual address, which is what
    /// user-space DMA interfaces take (VFIO maps it to an I/O virtual address, RDMA registers
    /// it, CUDA copies from host-registered memory at it). Translating it to a bus address is
    /// the driver's or the IOMMU's part.
    pub fn dma_addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The start of the memory, for device APIs that take a pointer. Dereferencing it from the
    /// CPU while the device may access the memory is the caller's `unsafe` responsibility.
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// The start of the memory, writable, for device APIs that write through a pointer (a copy
    /// engine's destination). As for [`as_ptr`](Self::as_ptr).
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a mapping holds at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length in bytes.
    pub fn byte_len(&self) -> usize {
        self.len * size_of::<T>()
    }

    /// The direction, as a value.
    pub fn direction(&self) -> DmaDirection {
        D::KIND
    }

    /// How the caches are kept coherent with the device for this mapping.
    pub fn coherence(&self) -> Coherence {
        self.coherence
    }

    /// The slot the block belongs to.
    pub fn home_slot(&self) -> usize {
        self.block.slot().index()
    }

    /// Ends the mapping: does the maintenance the CPU needs after the device's accesses
    /// (clean and invalidate for [`FromDevice`](super::FromDevice) and
    /// [`Bidirectional`](super::Bidirectional), nothing for [`ToDevice`](super::ToDevice)) and
    /// gives the buffer back, with what the device wrote.
    ///
    /// Call it once the device has finished with the memory (its completion was observed):
    /// the types prove the CPU did not touch the memory while it was mapped, not when the
    /// device is done.
    ///
    /// ```
    /// use umrf::coherence::ToDevice;
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let mapping = lease.alloc_from_slice(&[5u8; 64])?.map_for_device::<ToDevice>().unwrap();
    /// let mut buf = mapping.unmap();
    /// buf[0] = 6; // the CPU owns it again
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn unmap(self) -> SharedBuffer<T, R> {
        let len = self.byte_len();
        // SAFETY: invariant 0: the mapping's elements, `len` bytes, are in bounds and
        // initialised (a device writes bytes, and every byte pattern is a valid `T: Pod`).
        let bytes = unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), len) };
        self.coherence.for_cpu(D::KIND, bytes);
        self.block.restore(self.mark);
        let this = ManuallyDrop::new(self);
        // SAFETY: the parts are the mapped buffer's (invariant 0), of the same T and R, and
        // this mapping was their only owner (invariant 1), giving them up (it is not dropped);
        // `local_gen` was taken on this thread (the mapping never left it).
        unsafe { SharedBuffer::from_parts(this.ptr, this.len, this.block.share(), this.local_gen) }
    }
}

/// `SharedBuffer::map_for_device` and `map_for_device_with`, defined beside the type they make.
impl<T: Pod, R: Residency> SharedBuffer<T, R> {
    /// Hands the buffer to a device for direction `D` (a
    /// [`coherence`](crate::coherence) marker), with the platform's default
    /// [`Coherence`]: the CPU may not touch the memory until the mapping is
    /// [unmapped](DeviceMapping::unmap).
    ///
    /// # Errors
    /// [`MapError`], handing the buffer back, when the coherence maintains cache lines in
    /// software and the block could share a cache write-back granule with its neighbour (see
    /// [`LineMethod::writeback_granule`](crate::coherence::LineMethod::writeback_granule)):
    /// never on x86-64, whose default is [`Coherence::Hardware`].
    ///
    /// ```
    /// use umrf::coherence::ToDevice;
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(1).slots(1).build()?;
    /// let buf = pool.attach()?.alloc_from_slice(&[1u8; 64])?;
    /// let mapping = buf.map_for_device::<ToDevice>().unwrap();
    /// // ... start the device on mapping.dma_addr(), mapping.byte_len() ...
    /// let buf = mapping.unmap();
    /// assert_eq!(buf[63], 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn map_for_device<D: Direction>(self) -> Result<DeviceMapping<T, R, D>, MapError<T, R>> {
        DeviceMapping::new(self, Coherence::default())
    }

    /// As [`map_for_device`](Self::map_for_device), with the given [`Coherence`] (for example
    /// [`Coherence::Software`] for a device that does not snoop the CPU caches).
    ///
    /// # Errors
    /// As [`map_for_device`](Self::map_for_device): [`MapError`] for a block that could share
    /// a write-back granule, when `coherence` maintains lines in software.
    ///
    /// ```
    /// use umrf::coherence::{Coherence, FromDevice};
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(1).slots(1).build()?;
    /// let buf = pool.attach()?.alloc_zeroed::<u8>(64)?;
    /// let mapping = buf.map_for_device_with::<FromDevice>(Coherence::Software).unwrap();
    /// assert_eq!(mapping.coherence(), Coherence::Software);
    /// # drop(mapping.unmap());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn map_for_device_with<D: Direction>(
        self,
        coherence: Coherence,
    ) -> Result<DeviceMapping<T, R, D>, MapError<T, R>> {
        DeviceMapping::new(self, coherence)
    }
}

impl<T: Pod, R: Residency, D: Direction> Drop for DeviceMapping<T, R, D> {
    /// Leaks the block on purpose: without `unmap`, nothing says the device is done with the
    /// memory, so it must never be handed out again (the block stays `MappedForDevice`, in use,
    /// and its pool's memory stays mapped). `mem::forget` does the same.
    fn drop(&mut self) {}
}

impl<T: Pod, R: Residency, D: Direction> fmt::Debug for DeviceMapping<T, R, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceMapping")
            .field("element", &core::any::type_name::<T>())
            .field("len", &self.len)
            .field("residency", &R::NAME)
            .field("direction", &D::KIND)
            .field("coherence", &self.coherence)
            .field("dma_addr", &format_args!("{:#x}", self.dma_addr()))
            .field("home_slot", &self.home_slot())
            .finish()
    }
}
