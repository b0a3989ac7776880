//! A region: one contiguous, page-aligned piece of memory that backs a pool slot, inside an
//! address-space reservation of its own.
//!
//! ```text
//! reservation: [ PROT_NONE guard | region: base .. base + len, read-write | PROT_NONE guard ]
//! ```
//!
//! The guards cost address space, not memory. They make a stray access just past either end
//! fault, and they keep the kernel from merging the region's mapping with a neighbour, so the
//! mapping's `/proc/self/smaps` entry and memory policy are the region's alone.

use core::ptr::NonNull;

use super::info::BackingInfo;
use super::os;

/// An address-space reservation (or an explicit huge-page mapping), returned to the operating
/// system on drop.
///
/// # Invariants
/// 0. `ptr..ptr + len` was obtained from one [`os::reserve`] or `os::map_huge` call and is
///    released only by `Drop`, exactly once.
pub(crate) struct Reservation {
    ptr: NonNull<u8>,
    len: usize,
}

impl Reservation {
    /// Reserves room for a region of `len` bytes aligned to `align` (a power of two, a
    /// multiple of `page`), with a guard of at least one `page` on each side. Returns the
    /// reservation and the region's base address.
    pub(crate) fn new(
        len: usize,
        align: usize,
        page: usize,
    ) -> std::io::Result<(Reservation, NonNull<u8>)> {
        debug_assert!(
            align.is_power_of_two() && align.is_multiple_of(page) && len.is_multiple_of(page)
        );
        // The base is the first `align` boundary after one guard page, at most `align` past
        // the start (the reservation is page aligned), so `len + align + page` leaves one
        // guard page after the region too.
        let total = len
            .checked_add(align)
            .and_then(|t| t.checked_add(page))
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "region size overflows")
            })?;
        let ptr = os::reserve(total)?;
        let reservation = Reservation { ptr, len: total };
        let start = ptr.as_ptr() as usize;
        let offset = (start + page).next_multiple_of(align) - start;
        debug_assert!(offset >= page && offset + len + page <= total);
        // SAFETY: `offset + len <= total` (above), so the base stays inside the reservation.
        let base = unsafe { ptr.add(offset) };
        Ok((reservation, base))
    }

    /// Maps `len` bytes of explicit huge pages of `page_size` bytes; returns the mapping and
    /// its base. No guards: hugetlb mappings never merge with neighbours.
    #[cfg(not(any(miri, umrf_loom)))]
    pub(crate) fn huge(
        len: usize,
        page_size: usize,
    ) -> std::io::Result<(Reservation, NonNull<u8>)> {
        let ptr = os::map_huge(len, page_size)?;
        Ok((Reservation { ptr, len }, ptr))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: invariant 0: one live reservation, released only here. Everything mapped
        // inside it goes with it; its owner (a Region) is dropped only when every block of it
        // is home (PoolInner invariant 2).
        unsafe { os::release(self.ptr, self.len) }
    }
}

/// Owned memory for one slot.
///
/// # Invariants
/// 0. `base..base + info.bytes` lies inside `reservation`, is page aligned, readable and
///    writable, and stays mapped until the reservation is dropped.
/// 1. `info.bytes > 0`.
/// 2. Every byte is initialised (zero-filled when obtained; afterwards only `Pod` values and
///    byte copies are written into it).
/// 3. Fields drop in declaration order: a CUDA registration is undone before the memory it
///    covers is unmapped.
pub(crate) struct Region {
    base: NonNull<u8>,
    info: BackingInfo,
    huge_pending: bool,
    #[cfg(feature = "cuda")]
    _registration: Option<super::cuda::Registration>,
    _reservation: Reservation,
}

// SAFETY: a Region is plain memory plus its description; ownership of the mapping may move
// between threads (munmap and CUDA unregistration are thread-agnostic). Concurrent access to
// the bytes is governed by the pool's block ownership (I1), not by this type.
unsafe impl Send for Region {}
// SAFETY: `&Region` only exposes the base pointer and the description (no access
// to the bytes).
unsafe impl Sync for Region {}

impl Region {
    /// A region over `base..base + len` of `reservation`, described by `info` (whose `bytes`
    /// is `len`).
    ///
    /// # Safety
    /// `base..base + len` satisfies invariants 0 to 2: inside the reservation, page aligned,
    /// mapped read-write, non-empty, and zero-filled or otherwise initialised.
    pub(crate) unsafe fn new(
        reservation: Reservation,
        base: NonNull<u8>,
        len: usize,
        info: BackingInfo,
        #[cfg(feature = "cuda")] registration: Option<super::cuda::Registration>,
    ) -> Region {
        debug_assert!(len > 0 && len == info.bytes);
        Region {
            base,
            info,
            huge_pending: false,
            #[cfg(feature = "cuda")]
            _registration: registration,
            _reservation: reservation,
        }
    }

    /// The first byte of the region.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// What was obtained.
    pub(crate) fn info(&self) -> &BackingInfo {
        &self.info
    }

    /// The report, while the pool is being built.
    #[cfg(not(any(miri, umrf_loom)))]
    pub(crate) fn info_mut(&mut self) -> &mut BackingInfo {
        &mut self.info
    }

    /// Marks whether the region's huge pages still have to be counted.
    #[cfg(not(any(miri, umrf_loom)))]
    pub(crate) fn with_huge_check(mut self, pending: bool) -> Self {
        self.huge_pending = pending;
        self
    }

    /// Whether the region's huge pages still have to be counted.
    pub(crate) fn huge_pending(&self) -> bool {
        self.huge_pending
    }

    /// Records that they were.
    #[cfg(not(any(miri, umrf_loom)))]
    pub(crate) fn huge_checked(&mut self) {
        self.huge_pending = false;
    }
}
