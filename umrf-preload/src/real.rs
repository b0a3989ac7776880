//! The allocator this library stands in front of: the next definitions of `malloc` and friends
//! (glibc's, or whatever is preloaded after us), found with `dlsym(RTLD_NEXT, ...)`, and the
//! start-up arena that serves the allocations made before they are found (`dlsym` itself calls
//! `calloc`).

use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `malloc`, `free`, `calloc`, `realloc`, `posix_memalign`, `malloc_usable_size`.
const NAMES: [&CStr; 6] = [
    c"malloc",
    c"free",
    c"calloc",
    c"realloc",
    c"posix_memalign",
    c"malloc_usable_size",
];
const MALLOC: usize = 0;
const FREE: usize = 1;
const CALLOC: usize = 2;
const REALLOC: usize = 3;
const POSIX_MEMALIGN: usize = 4;
const USABLE: usize = 5;

/// The resolved addresses, in `NAMES` order; 0 until found.
///
/// # Invariants
///
/// 0. A non-zero entry is the address `dlsym` returned for its name: a function of the C type
///    that name has in `<stdlib.h>` / `<malloc.h>`.
static NEXT: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

/// Looks the next allocator up. Idempotent and safe to race: every thread stores the same
/// addresses. Returns whether all were found.
pub fn resolve() -> bool {
    let mut all = true;
    for (slot, name) in NEXT.iter().zip(NAMES) {
        if slot.load(Ordering::Acquire) != 0 {
            continue;
        }
        // SAFETY: `name` is a NUL-terminated string; RTLD_NEXT asks for the next definition
        // after this library in the lookup order. dlsym may call calloc, which reaches our
        // calloc: it is served from the start-up arena while NEXT is incomplete, so this does
        // not recurse.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        if found.is_null() {
            all = false;
        } else {
            slot.store(found.addr(), Ordering::Release);
        }
    }
    all
}

/// Whether every next-allocator function is known.
#[inline]
pub fn ready() -> bool {
    NEXT[USABLE].load(Ordering::Acquire) != 0 && NEXT[MALLOC].load(Ordering::Acquire) != 0
}

fn get(index: usize) -> Option<usize> {
    match NEXT[index].load(Ordering::Acquire) {
        0 => None,
        addr => Some(addr),
    }
}

/// The next allocator's `malloc`; null when it is unknown.
pub fn malloc(size: usize) -> *mut c_void {
    let Some(addr) = get(MALLOC) else {
        return bootstrap::alloc(size, 16);
    };
    // SAFETY: invariant 0: `addr` is `malloc`'s address, of type `void *(size_t)`.
    let f: unsafe extern "C" fn(usize) -> *mut c_void = unsafe { std::mem::transmute(addr) };
    // SAFETY: malloc accepts any size.
    unsafe { f(size) }
}

/// The next allocator's `calloc`; the start-up arena (zeroed) while it is unknown.
pub fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(addr) = get(CALLOC) else {
        return count
            .checked_mul(size)
            .map_or(std::ptr::null_mut(), |bytes| bootstrap::alloc(bytes, 16));
    };
    // SAFETY: invariant 0: `addr` is `calloc`'s address, of type `void *(size_t, size_t)`.
    let f: unsafe extern "C" fn(usize, usize) -> *mut c_void = unsafe { std::mem::transmute(addr) };
    // SAFETY: calloc accepts any counts and checks their product itself.
    unsafe { f(count, size) }
}

/// The next allocator's `free`. Start-up arena pointers are ignored (the arena is never
/// reclaimed).
///
/// # Safety
/// `ptr` is null, from the start-up arena, or a live pointer of the next allocator.
pub unsafe fn free(ptr: *mut c_void) {
    if ptr.is_null() || bootstrap::contains(ptr) {
        return;
    }
    let Some(addr) = get(FREE) else { return };
    // SAFETY: invariant 0: `addr` is `free`'s address, of type `void (void *)`.
    let f: unsafe extern "C" fn(*mut c_void) = unsafe { std::mem::transmute(addr) };
    // SAFETY: the caller promises `ptr` is a live pointer of this allocator.
    unsafe { f(ptr) }
}

/// The next allocator's `realloc`.
///
/// # Safety
/// `ptr` is null or a live pointer of the next allocator.
pub unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let Some(addr) = get(REALLOC) else {
        return std::ptr::null_mut();
    };
    // SAFETY: invariant 0: `addr` is `realloc`'s address, of type `void *(void *, size_t)`.
    let f: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void =
        unsafe { std::mem::transmute(addr) };
    // SAFETY: the caller promises `ptr` is null or a live pointer of this allocator.
    unsafe { f(ptr, size) }
}

/// The next allocator's `posix_memalign`, as a pointer or null; the start-up arena (up to a
/// page of alignment) while it is unknown.
pub fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(addr) = get(POSIX_MEMALIGN) else {
        return bootstrap::alloc(size, align);
    };
    // SAFETY: invariant 0: `addr` is `posix_memalign`'s address, of type
    // `int (void **, size_t, size_t)`.
    let f: unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> libc::c_int =
        unsafe { std::mem::transmute(addr) };
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `out` is a live, writable local; posix_memalign validates `align` itself.
    let rc = unsafe { f(&raw mut out, align.max(std::mem::size_of::<usize>()), size) };
    if rc == 0 { out } else { std::ptr::null_mut() }
}

/// The next allocator's `malloc_usable_size`.
///
/// # Safety
/// `ptr` is a live pointer of the next allocator or the start-up arena.
pub unsafe fn usable_size(ptr: *mut c_void) -> usize {
    if let Some(size) = bootstrap::size_of(ptr) {
        return size;
    }
    let Some(addr) = get(USABLE) else { return 0 };
    // SAFETY: invariant 0: `addr` is `malloc_usable_size`'s address, of type
    // `size_t (void *)`.
    let f: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { std::mem::transmute(addr) };
    // SAFETY: the caller promises `ptr` is a live pointer of this allocator.
    unsafe { f(ptr) }
}

/// A bump arena in this library's data for the few allocations made before the next allocator
/// is found; its blocks are never reused. Each block is preceded by its size.
pub mod bootstrap {
    use std::cell::UnsafeCell;
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const BYTES: usize = 256 * 1024;
    const HEADER: usize = 16;

    #[repr(C, align(4096))]
    struct Arena(UnsafeCell<[u8; BYTES]>);

    // SAFETY: bytes are handed out by an atomic bump (`NEXT`), so no two callers ever get
    // overlapping ranges; each range is then accessed only through the pointer its caller got.
    unsafe impl Sync for Arena {}

    static ARENA: Arena = Arena(UnsafeCell::new([0; BYTES]));
    static USED: AtomicUsize = AtomicUsize::new(0);

    fn base() -> usize {
        ARENA.0.get().addr()
    }

    /// `size` zeroed bytes aligned to `align` (a power of two up to 4096), or null when the
    /// arena is used up or `align` is not supported.
    pub fn alloc(size: usize, align: usize) -> *mut c_void {
        if !align.is_power_of_two() || align > 4096 {
            return std::ptr::null_mut();
        }
        let align = align.max(HEADER);
        let mut used = USED.load(Ordering::Relaxed);
        loop {
            let start = (base() + used + HEADER).next_multiple_of(align) - base();
            let Some(end) = start.checked_add(size).filter(|&e| e <= BYTES) else {
                return std::ptr::null_mut();
            };
            match USED.compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    let block = ARENA.0.get().cast::<u8>().wrapping_add(start);
                    let header = block.wrapping_sub(HEADER).cast::<usize>();
                    // SAFETY: `start - HEADER .. end` is inside the arena and was just claimed
                    // by this call alone (the CAS); `header` is 16-byte aligned (start is a
                    // multiple of 16 and the arena is page aligned).
                    unsafe { header.write(size) };
                    return block.cast();
                }
                Err(now) => used = now,
            }
        }
    }

    /// Whether `ptr` is inside the arena.
    pub fn contains(ptr: *const c_void) -> bool {
        (base()..base() + BYTES).contains(&ptr.addr())
    }

    /// The size recorded for an arena block.
    pub fn size_of(ptr: *const c_void) -> Option<usize> {
        if !contains(ptr) || ptr.addr() < base() + HEADER {
            return None;
        }
        let header = ptr.cast::<u8>().wrapping_sub(HEADER).cast::<usize>();
        // SAFETY: a pointer into the arena handed out by `alloc` has its size 16 bytes before
        // it, written before the pointer was returned; any other in-arena address reads eight
        // bytes of the arena (at least HEADER bytes from its start, checked above), which are
        // always initialised (zero or sizes). The read is unaligned-tolerant.
        Some(unsafe { header.read_unaligned() })
    }

    /// Bytes of the arena used.
    pub fn used() -> usize {
        USED.load(Ordering::Relaxed)
    }
}
