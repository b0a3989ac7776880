//! The one module that makes raw memory system calls (STYLE rule 3).
//!
//! Every `mmap`/`munmap` (and, with real backings, `mbind`, `madvise`, `mlock`) of umrf goes
//! through a function here, so there is one place to audit and one place to inject faults.
//! Under Miri and loom, which cannot run these calls, regions come from the global allocator
//! instead (through `crate::sync::heap`, which loom tracks for leaks and double frees): the
//! pool logic above this seam is the same, so it is still checked.

use core::ptr::NonNull;
use std::io;

/// The base page size of this machine (4096 where it cannot be asked).
pub(crate) fn page_size() -> usize {
    #[cfg(not(any(miri, umrf_loom)))]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            return size as usize;
        }
    }
    4096
}

/// The number of online CPUs (at least 1).
pub(crate) fn online_cpus() -> usize {
    #[cfg(not(any(miri, umrf_loom)))]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            return n as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Maps `len` bytes of private, anonymous, zero-filled, read-write memory, page aligned.
///
/// With `populate`, the kernel faults every page in before returning (`MAP_POPULATE`), so the
/// first touch on the hot path costs no page fault.
///
/// # Errors
/// The operating system's error when it refuses the mapping (usually `ENOMEM`).
#[cfg(not(any(miri, umrf_loom)))]
pub(crate) fn map_anonymous(len: usize, populate: bool) -> io::Result<NonNull<u8>> {
    let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    if populate {
        flags |= libc::MAP_POPULATE;
    }
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing (addr null, no
    // MAP_FIXED) cannot alias any existing object; the arguments are plain values.
    let ptr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null mapping"))
}

/// Heap stand-in for `mmap` under Miri and loom: zeroed, page aligned.
#[cfg(any(miri, umrf_loom))]
pub(crate) fn map_anonymous(len: usize, _populate: bool) -> io::Result<NonNull<u8>> {
    let layout = std::alloc::Layout::from_size_align(len, page_size())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if layout.size() == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { crate::sync::heap::alloc_zeroed(layout) };
    NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}

/// Returns a mapping made by [`map_anonymous`] to the operating system.
///
/// # Safety
/// 1. `ptr` and `len` are exactly those of one earlier [`map_anonymous`] call that succeeded.
/// 2. The mapping has not been unmapped yet, and nothing reads or writes it after this call.
#[cfg(not(any(miri, umrf_loom)))]
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: caller's promises 1 and 2: this is a live mapping of `len` bytes, unused from now.
    let rc = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    debug_assert_eq!(
        rc,
        0,
        "munmap of a live mapping failed: {}",
        io::Error::last_os_error()
    );
}

/// Heap stand-in for `munmap` under Miri and loom.
///
/// # Safety
/// As for the `mmap` version: `ptr`/`len` come from one [`map_anonymous`] call, freed once.
#[cfg(any(miri, umrf_loom))]
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    let layout = std::alloc::Layout::from_size_align(len, page_size())
        .expect("the layout was valid when the region was mapped");
    // SAFETY: caller's promise: `ptr` came from `alloc_zeroed` with this very layout, once.
    unsafe { crate::sync::heap::dealloc(ptr.as_ptr(), layout) }
}
