//! The interposed C functions, with the errno and NULL results POSIX (and glibc, for the
//! non-POSIX ones) specifies. None of them unwinds: a panic inside umrf is caught and the call
//! fails as if out of memory.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::heap::{self, COUNTERS, Kind, count};
use crate::real;

/// The alignment `malloc` guarantees on 64-bit Linux (glibc's `MALLOC_ALIGNMENT`).
const MALLOC_ALIGN: usize = 16;

#[cold]
fn set_errno(code: libc::c_int) {
    // SAFETY: __errno_location has no preconditions.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: it points to this thread's errno, always valid to write.
    unsafe { *errno = code };
}

#[inline(always)]
fn no_unwind<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

#[inline(always)]
fn alloc_or_enomem(size: usize, align: usize, zeroed: bool) -> *mut c_void {
    let ptr = no_unwind(std::ptr::null_mut(), || heap::alloc(size, align, zeroed));
    if ptr.is_null() {
        set_errno(libc::ENOMEM);
    }
    ptr
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// `malloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    alloc_or_enomem(size, MALLOC_ALIGN, false)
}

/// `free(3)`.
///
/// # Safety
/// `ptr` is null or a live pointer from this process's `malloc` family.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: the caller's promise, passed on.
    no_unwind((), || unsafe { heap::free(ptr) });
}

/// `calloc(3)`: `ENOMEM` and NULL when `count * size` overflows.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(count_: usize, size: usize) -> *mut c_void {
    let Some(bytes) = count_.checked_mul(size) else {
        count(&COUNTERS.overflows);
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    if !real::ready() {
        // dlsym's own calloc while the next allocator is being found: the start-up arena,
        // which is zeroed memory never handed out twice.
        return real::calloc(count_, size);
    }
    alloc_or_enomem(bytes, MALLOC_ALIGN, true)
}

/// `realloc(3)`: NULL and `ENOMEM` on failure with the old block intact; `realloc(p, 0)`
/// frees `p` and returns NULL, as glibc does.
///
/// # Safety
/// `ptr` is null or a live pointer from this process's `malloc` family.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    no_unwind(std::ptr::null_mut(), || {
        // SAFETY: the caller's promise: a live pointer it holds, so nothing frees it meanwhile.
        let old = match unsafe { heap::kind(ptr) } {
            Kind::Null => return alloc_or_enomem(size, MALLOC_ALIGN, false),
            Kind::Foreign => {
                count(&COUNTERS.foreign_frees);
                // SAFETY: not ours: the caller promises it is the next allocator's.
                return unsafe { real::realloc(ptr, size) };
            }
            Kind::Invalid => {
                count(&COUNTERS.invalid_frees);
                set_errno(libc::EINVAL);
                return std::ptr::null_mut();
            }
            Kind::Ours(_) if size != 0 => {
                // SAFETY: a live block of ours (the caller's promise), given up on success.
                let new = unsafe { heap::resize(ptr, size) };
                if new.is_null() {
                    set_errno(libc::ENOMEM);
                }
                return new;
            }
            Kind::Ours(usable) => usable,
            // SAFETY: an arena pointer handed out by the arena.
            Kind::Bootstrap => unsafe { real::usable_size(ptr) },
        };
        if size == 0 {
            // SAFETY: the caller's promise, passed on.
            unsafe { heap::free(ptr) };
            return std::ptr::null_mut();
        }
        // The start-up arena's block: moved out (the arena never takes blocks back).
        let new = alloc_or_enomem(size, MALLOC_ALIGN, false);
        if !new.is_null() {
            // SAFETY: `ptr` holds at least `old` readable bytes and `new` at least `size`
            // writable ones; they are different live blocks, so they do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old.min(size))
            };
        }
        new
    })
}

/// `reallocarray(3)`: `ENOMEM` and NULL (old block intact) when `count * size` overflows.
///
/// # Safety
/// As [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count_: usize, size: usize) -> *mut c_void {
    let Some(bytes) = count_.checked_mul(size) else {
        count(&COUNTERS.overflows);
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: the caller's promise, passed on.
    unsafe { realloc(ptr, bytes) }
}

/// `posix_memalign(3)`: returns `EINVAL` (and leaves `*memptr` alone) unless `align` is a
/// power of two and a multiple of `sizeof(void *)`, `ENOMEM` when out of memory.
///
/// # Safety
/// `memptr` points to a writable `void *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> libc::c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<usize>()) {
        count(&COUNTERS.bad_alignments);
        return libc::EINVAL;
    }
    let ptr = no_unwind(std::ptr::null_mut(), || heap::alloc(size, align, false));
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller promises `memptr` is writable.
    unsafe { memptr.write(ptr) };
    0
}

fn aligned(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        count(&COUNTERS.bad_alignments);
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    alloc_or_enomem(size, align.max(MALLOC_ALIGN), false)
}

/// `aligned_alloc(3)`: `EINVAL` and NULL unless `align` is a power of two.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned(align, size)
}

/// `memalign(3)`: `EINVAL` and NULL unless `align` is a power of two.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    aligned(align, size)
}

/// `valloc(3)`: page-aligned.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned(page_size(), size)
}

/// `pvalloc(3)`: page-aligned, the size rounded up to whole pages (`ENOMEM` on overflow).
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(rounded) => aligned(page, rounded),
        None => {
            count(&COUNTERS.overflows);
            set_errno(libc::ENOMEM);
            std::ptr::null_mut()
        }
    }
}

/// `malloc_usable_size(3)`: the bytes usable at `ptr` (its block's size for ours); 0 for NULL.
///
/// # Safety
/// `ptr` is null or a live pointer from this process's `malloc` family.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: the caller's promise: a live pointer it holds, so nothing frees it meanwhile.
    no_unwind(0, || match unsafe { heap::kind(ptr) } {
        Kind::Null | Kind::Invalid => 0,
        Kind::Ours(usable) => usable,
        // SAFETY: the caller promises a live pointer; not ours, so the arena's or the next
        // allocator's.
        Kind::Bootstrap | Kind::Foreign => unsafe { real::usable_size(ptr) },
    })
}
