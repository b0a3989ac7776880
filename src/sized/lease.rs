//! `SizedLease`: one thread's lease on a row of a [`SizedPool`](super::SizedPool).

use core::fmt;
use core::marker::PhantomData;

use bytemuck::Pod;

use crate::buffer::SharedBuffer;
use crate::capability::Capability;
use crate::error::Error;
use crate::residency::Residency;
use crate::sync::Arc;

use super::core::{Block, Core};
use super::row::RowLease;

/// One thread's lease on a row of a [`SizedPool`](super::SizedPool): allocation of any size.
///
/// `!Send` and `!Sync`, like [`LocalPool`](crate::LocalPool): each class's free list is
/// touched by this thread alone. Every buffer is a [`SharedBuffer`] over one block of a class
/// pool (or of a large region), with the usual rules: dropped on this thread it goes onto this
/// row's list, elsewhere (as a [`Capability`](crate::Capability)) it goes home by a remote
/// free.
///
/// ```
/// use umrf::sized::SizedPool;
/// use umrf::residency::CpuLocal;
/// let pool = SizedPool::<CpuLocal>::builder().largest_class(1 << 16).rows(1).build()?;
/// let lease = pool.attach()?;
/// let sizes = [1usize, 17, 100, 1000, 60_000];
/// let bufs: Vec<_> = sizes.iter().map(|&n| lease.alloc_zeroed::<u8>(n)).collect::<Result<_, _>>()?;
/// for (buf, &n) in bufs.iter().zip(&sizes) {
///     assert_eq!(buf.len(), n);
///     assert!(buf.block_size() >= n);
/// }
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct SizedLease<R: Residency> {
    row: RowLease<Arc<Core>>,
    _residency: PhantomData<fn() -> R>,
}

impl<R: Residency> SizedLease<R> {
    /// The lease on `row` of `core`.
    ///
    /// # Safety
    /// The caller claimed `row` and hands the claim over.
    pub(crate) unsafe fn new(core: Arc<Core>, row: usize) -> Self {
        SizedLease {
            // SAFETY: caller's promise, passed on.
            row: unsafe { RowLease::new(core, row) },
            _residency: PhantomData,
        }
    }

    /// The untyped row lease.
    pub(crate) fn raw(&self) -> &RowLease<Arc<Core>> {
        &self.row
    }

    /// Allocates a buffer of `len` elements of `T` from the smallest class that holds it (or
    /// the large path). The contents are initialised but unspecified, as for
    /// [`LocalPool::alloc`](crate::LocalPool::alloc).
    ///
    /// # Errors
    /// [`Error::ZeroLength`], [`Error::ZeroSizedElement`]; [`Error::TooLarge`] when
    /// `len * size_of::<T>()` overflows; [`Error::Exhausted`] per the
    /// [`ClassExhaustion`](super::ClassExhaustion) policy; [`Error::OverAligned`] for a `T`
    /// aligned above the page size; and the pool builder's errors when a lazy class pool or a
    /// large region cannot be made.
    ///
    /// ```
    /// use umrf::{Error, sized::SizedPool, residency::CpuLocal};
    /// let pool = SizedPool::<CpuLocal>::builder().largest_class(1024).rows(1).build()?;
    /// let lease = pool.attach()?;
    /// assert_eq!(lease.alloc::<u32>(10)?.block_size(), 48);
    /// assert!(matches!(lease.alloc::<u32>(0), Err(Error::ZeroLength)));
    /// assert!(matches!(lease.alloc::<u64>(usize::MAX), Err(Error::TooLarge { .. })));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<SharedBuffer<T, R>, Error> {
        let size = size_of::<T>();
        let bytes = match len.checked_mul(size) {
            Some(bytes) if bytes > 0 && bytes <= isize::MAX as usize => bytes,
            _ => return Err(self.request_error::<T>(len)),
        };
        let Block {
            slot,
            index,
            local_gen,
            ..
        } = self.row.alloc(bytes, align_of::<T>())?;
        // SAFETY: a block for this lease alone, of a class (or large) pool of this family, all
        // of residency R, holding `bytes` bytes aligned to `align_of::<T>()` (class_for);
        // `local_gen` is this thread's lease on its slot, or NOT_LOCAL (large blocks).
        let buffer = unsafe { SharedBuffer::from_block(slot, index, len, local_gen) };
        Ok(buffer)
    }

    /// Allocates a buffer of `len` elements of `T`, all zero.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    #[inline]
    pub fn alloc_zeroed<T: Pod>(&self, len: usize) -> Result<SharedBuffer<T, R>, Error> {
        let mut buf = self.alloc::<T>(len)?;
        buf.as_bytes_mut().fill(0);
        Ok(buf)
    }

    /// Allocates a buffer and copies `data` into it.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc) with `len = data.len()`.
    #[inline]
    pub fn alloc_from_slice<T: Pod>(&self, data: &[T]) -> Result<SharedBuffer<T, R>, Error> {
        let mut buf = self.alloc::<T>(data.len())?;
        buf.copy_from_slice(data);
        Ok(buf)
    }

    /// Takes ownership of a block that arrived as a [`Capability`] of residency `R` (from this
    /// family, another size-class family, or any pool of `R`): the buffer lives on this
    /// thread. A block of this row's own slots comes back home (its drop is a local free);
    /// any other is held away from home and goes back there by a remote free when dropped.
    ///
    /// ```
    /// use umrf::sized::SizedPool;
    /// use umrf::residency::CpuLocal;
    /// let pool = SizedPool::<CpuLocal>::builder().largest_class(4096).rows(2).build()?;
    /// let lease = pool.attach()?;
    /// let cap = lease.alloc_from_slice(&[1u32, 2, 3])?.into_capability();
    /// let other = pool.clone();
    /// let sum = std::thread::spawn(move || {
    ///     let there = other.attach().unwrap();
    ///     let buf = there.accept(cap);
    ///     buf.iter().sum::<u32>()
    /// }) // the buffer drops there: a remote free home
    /// .join()
    /// .unwrap();
    /// assert_eq!(sum, 6);
    /// assert_eq!(pool.stats().class(12).unwrap().remote_frees, 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn accept<T: Pod>(&self, capability: Capability<T, R>) -> SharedBuffer<T, R> {
        let (ptr, len, block) = capability.into_parts();
        // SAFETY: the block is out (this capability owned it), so its pool is live.
        let block_size = unsafe { block.slot().pool().as_ref() }.block_size;
        let class = super::classes::class_of(block_size);
        let local_gen = match self.row.lease_of(class) {
            Some((slot, generation)) if slot == block.slot => generation,
            _ => crate::pool::NOT_LOCAL,
        };
        // SAFETY: the parts are the capability's, given up just now, of the same T and R;
        // `local_gen` is this thread's lease on the block's home slot, or NOT_LOCAL.
        unsafe { SharedBuffer::arrive(ptr, len, &block, local_gen, self.row.row()) }
    }

    /// The row this lease holds.
    pub fn row(&self) -> usize {
        self.row.row()
    }

    /// The error of a request no block can take.
    #[cold]
    fn request_error<T>(&self, len: usize) -> Error {
        let type_name = core::any::type_name::<T>();
        if size_of::<T>() == 0 {
            Error::ZeroSizedElement { type_name }
        } else if len == 0 {
            Error::ZeroLength
        } else {
            Error::TooLarge {
                requested: len.saturating_mul(size_of::<T>()),
                block_size: isize::MAX as usize,
                pool: crate::error::PoolName::new("sized"),
            }
        }
    }
}

impl<R: Residency> fmt::Debug for SizedLease<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SizedLease")
            .field("residency", &R::NAME)
            .field("row", &self.row())
            .finish_non_exhaustive()
    }
}
