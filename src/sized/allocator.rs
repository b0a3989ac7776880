//! `allocator_api2::alloc::Allocator` for a [`SizedLease`]: stable Rust's containers
//! (`allocator_api2::vec::Vec`, `hashbrown`) on umrf memory.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::pool::Slot;
use crate::residency::Residency;

use super::classes::{class_for, class_index};
use super::lease::SizedLease;
use super::row::Record;

impl<R: Residency> SizedLease<R> {
    /// The block that holds `ptr`, an allocation of this lease made with `layout`: its class
    /// (`None` for a large block) and its size.
    fn block_at(&self, ptr: NonNull<u8>, layout: Layout) -> Option<(Option<usize>, usize)> {
        let row = self.raw();
        if let Some(class) = class_for(layout.size(), layout.align(), row.last_class())
            && let Some(found) = row.find_class(ptr, class)
        {
            return Some((Some(found), super::classes::class_bytes(found)));
        }
        let (_, _, block_size) = large_block(ptr)?;
        Some((None, block_size))
    }

    /// Frees an allocation of this lease: onto its class's list (the layout's class, or a
    /// larger one it borrowed from), else back to its large region.
    ///
    /// # Safety
    /// `ptr` came from [`Allocator::allocate`] on this lease with `layout` (size non-zero),
    /// and is given up.
    #[inline(always)]
    unsafe fn release(&self, ptr: NonNull<u8>, layout: Layout) {
        let class = class_index(layout.size(), layout.align());
        // SAFETY: caller's promise: a block of this row's `class` is the caller's.
        if unsafe { self.raw().free_local(ptr, class, Record::Unrecorded) } {
            return;
        }
        // SAFETY: caller's promise, passed on.
        unsafe { self.release_slow(ptr, layout) }
    }

    /// `release` for a block of a borrowed class or a large region.
    ///
    /// # Safety
    /// As [`release`](Self::release).
    #[cold]
    #[inline(never)]
    unsafe fn release_slow(&self, ptr: NonNull<u8>, layout: Layout) {
        let row = self.raw();
        if let Some(class) = class_for(layout.size(), layout.align(), row.last_class())
            && let Some(found) = row.find_class(ptr, class + 1)
        {
            // SAFETY: caller's promise: the block is this row's, of `found`, and given up.
            let freed = unsafe { row.free_local(ptr, found, Record::Unrecorded) };
            debug_assert!(freed);
            return;
        }
        match large_block(ptr) {
            // SAFETY: caller's promise: the large block is out and given up.
            // (A large block's size names no class of the row, or one whose slot is not its.)
            Some((slot, index, block_size)) => unsafe {
                row.free_block(slot, index, super::class_of(block_size))
            },
            None => debug_assert!(false, "a pointer this lease did not hand out"),
        }
    }
}

impl<R: Residency> SizedLease<R> {
    /// `allocate` when the class's own list is empty (or no class serves the layout): the
    /// refill, the exhaustion policy and the large path, with every error as [`AllocError`].
    #[cold]
    #[inline(never)]
    fn allocate_slow(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError);
        }
        let block = self
            .raw()
            .alloc(layout.size(), layout.align())
            .map_err(|_| AllocError)?;
        Ok(NonNull::slice_from_raw_parts(block.ptr, block.usable))
    }
}

/// The slot, block index and block size of the large block at `ptr`, from the provenance
/// registry.
fn large_block(ptr: NonNull<u8>) -> Option<(NonNull<Slot>, u32, usize)> {
    crate::provenance::with_slot_at(ptr.as_ptr().addr(), |slot, pool, offset| {
        (offset % pool.block_size == 0).then(|| {
            (
                NonNull::from(slot),
                (offset / pool.block_size) as u32,
                pool.block_size,
            )
        })
    })
    .flatten()
}

/// Blocks of a [`SizedLease`] for stable Rust's containers: the allocation is the lease's
/// (the smallest class that holds the layout, or the large path), the free goes back to the
/// row's list, and `grow`/`shrink` stay in place while the block holds the new size.
///
/// Zero-sized and over-aligned (above the page size) layouts, and exhaustion, are
/// [`AllocError`]; nothing panics. A container on `&lease` is `!Send`, like the lease.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use umrf::sized::SizedPool;
/// use umrf::residency::CpuLocal;
///
/// let pool = SizedPool::<CpuLocal>::builder().lazy(true).rows(1).build()?;
/// let lease = pool.attach()?;
/// let mut v: Vec<u64, _> = Vec::new_in(&lease);
/// v.extend(0..1000);
/// let mut map = hashbrown::HashMap::new_in(&lease);
/// map.insert("key", 7);
/// assert_eq!((v[999], map["key"]), (999, 7));
/// assert!(pool.stats().in_use() >= 2);
/// # drop((v, map));
/// # Ok::<(), umrf::Error>(())
/// ```
// SAFETY: `allocate` returns a block of at least `layout.size()` bytes aligned to
// `layout.align()` (class_for picks a class whose blocks have that alignment; large regions
// are page aligned), owned by the caller until it is deallocated through this lease, which
// frees exactly that block; `&SizedLease` is `!Send`, so every call runs on the lease's
// thread. Grown and shrunk blocks keep this: in place only when the block holds the new
// layout.
unsafe impl<R: Residency> Allocator for &SizedLease<R> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() != 0
            && let Some(block) = self
                .raw()
                .alloc_fast(class_index(layout.size(), layout.align()), layout.size())
        {
            return Ok(NonNull::slice_from_raw_parts(block.ptr, block.usable));
        }
        self.allocate_slow(layout)
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: the trait's contract: `ptr` came from this allocator with `layout`.
            unsafe { self.release(ptr, layout) }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the trait's contract, passed on.
        unsafe { self.resize(ptr, old, new, false) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the trait's contract, passed on.
        unsafe { self.resize(ptr, old, new, true) }
    }
}

impl<R: Residency> SizedLease<R> {
    /// `grow` and `shrink`: in place when the block holds `new` (and, for a shrink, is not
    /// more than twice too large above 128 bytes), else a new block with the contents copied.
    ///
    /// # Safety
    /// The contract of [`Allocator::grow`]/[`Allocator::shrink`].
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
        shrinking: bool,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.size() == 0 {
            // SAFETY: the contract: `ptr` is live with `old`.
            unsafe { self.deallocate(ptr, old) };
            return Err(AllocError);
        }
        if old.size() != 0
            && let Some((_, usable)) = self.block_at(ptr, old)
            && new.size() <= usable
            && ptr.as_ptr().addr().is_multiple_of(new.align())
            && (!shrinking || usable <= 128 || new.size() > usable / 2)
        {
            return Ok(NonNull::slice_from_raw_parts(ptr, usable));
        }
        let fresh = self.allocate(new)?;
        // SAFETY: both blocks hold at least `min(old, new)` bytes and are distinct; the old
        // one is live (contract) and given up here.
        unsafe {
            core::ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                fresh.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
        }
        if old.size() != 0 {
            // SAFETY: as above.
            unsafe { self.release(ptr, old) };
        }
        Ok(fresh)
    }
}
