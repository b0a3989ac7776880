//! The umrf side of `malloc`: the process's global pool, which requests it serves, and where
//! the others go (the next allocator, counted by reason).
//!
//! Requests of up to 1 MiB with alignment up to a page are served by a [`GlobalPool`]: each
//! thread allocates from its own row of size-class pools (no lock, no atomic read-modify-write
//! on the hot path) and a free from any thread finds its block through the page map. Larger
//! requests, over-aligned ones and everything before the next allocator is known go to the
//! next allocator. A free asks the page map what the address is: a live block of ours goes
//! home, an interior address or a block that is free already is refused and counted, and
//! anything else goes to the next allocator, so pointers allocated before this library was
//! loaded, or by the next allocator, are freed where they came from.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use umrf::residency::CpuLocal;
use umrf::{GlobalPool, PointerKind};

use crate::real;

/// Largest request the pools serve.
pub const MAX_POOLED: usize = 1 << 20;
/// Largest alignment the pools serve (blocks of up to a page are aligned to their size).
pub const MAX_POOLED_ALIGN: usize = 4096;

/// The process's pools: lazily built on the first allocation, one row per thread.
pub static POOL: GlobalPool<CpuLocal> = GlobalPool::new().largest_class(MAX_POOLED);

thread_local! {
    /// Set while this thread is inside the global pool's slow path: its own cold paths
    /// allocate through the system allocator, whose `malloc` is this library's; those calls
    /// miss the thread's row (the pool hides it while it is busy), and go to the next
    /// allocator, never back into the pool's slow path. The fast path never reads it.
    /// Const-initialised and without a destructor, so touching it allocates nothing (also
    /// during thread exit).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Why requests went to the next allocator, and frees that were refused.
pub struct Counters {
    /// Larger than [`MAX_POOLED`].
    pub large: AtomicU64,
    /// Alignment above [`MAX_POOLED_ALIGN`].
    pub aligned: AtomicU64,
    /// Before the next allocator was known.
    pub early: AtomicU64,
    /// Frees (and reallocs) of pointers that are not ours, passed to the next allocator.
    pub foreign_frees: AtomicU64,
    /// Frees of our addresses that are not a live block (interior, double): refused, counted.
    pub invalid_frees: AtomicU64,
    /// `calloc`, `reallocarray` and `pvalloc` sizes that overflow: `ENOMEM`.
    pub overflows: AtomicU64,
    /// Alignments that are not a power of two (or too small for `posix_memalign`): `EINVAL`.
    pub bad_alignments: AtomicU64,
}

/// The process's counters.
pub static COUNTERS: Counters = Counters {
    large: AtomicU64::new(0),
    aligned: AtomicU64::new(0),
    early: AtomicU64::new(0),
    foreign_frees: AtomicU64::new(0),
    invalid_frees: AtomicU64::new(0),
    overflows: AtomicU64::new(0),
    bad_alignments: AtomicU64::new(0),
};

/// Adds one to `counter`.
pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Runs `f` marked busy; `None` if this thread already is (a re-entrant call from inside the
/// pool).
#[inline(always)]
fn busy<T>(f: impl FnOnce() -> T) -> Option<T> {
    if BUSY.get() {
        return None;
    }
    BUSY.set(true);
    let out = f();
    BUSY.set(false);
    Some(out)
}

/// Whether the environment variable `name` is set to a non-empty value other than `0`.
pub fn env_flag(name: &std::ffi::CStr) -> bool {
    // SAFETY: `name` is NUL-terminated; getenv only reads the environment.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: non-null getenv results are NUL-terminated strings of the environment.
    !value.is_null()
        && !matches!(
            unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes(),
            b"" | b"0"
        )
}

/// Finds the next allocator; reports if it cannot be found (every allocation then stays in
/// the start-up arena).
pub fn start() {
    if !real::resolve() {
        crate::report::say(
            "umrf: the next allocator's malloc family was not found with dlsym(RTLD_NEXT); every allocation stays in the start-up arena",
        );
    }
}

/// The next allocator's block of `size` bytes aligned to `align`.
fn system(size: usize, align: usize) -> *mut c_void {
    if align <= 16 {
        real::malloc(size)
    } else {
        real::memalign(align, size)
    }
}

/// `size` bytes aligned to `align` (a power of two), zeroed if `zeroed`: from the pool when it
/// serves it, else from the next allocator. Null only when both fail.
///
/// The fast path is the calling thread's row alone ([`GlobalPool::allocate_local`], which
/// never calls an allocator): no re-entrancy flag is read or written on it. Only the slow
/// path, which may build pools and so call `malloc` from inside the pool, marks the thread
/// busy.
#[inline(always)]
pub fn alloc(size: usize, align: usize, zeroed: bool) -> *mut c_void {
    if size <= MAX_POOLED && align <= MAX_POOLED_ALIGN && real::ready() {
        let request = size.max(1);
        if let Some(block) = POOL.allocate_local(request, align) {
            let ptr = block.as_ptr();
            if zeroed {
                // SAFETY: a fresh block of at least `request` writable bytes.
                unsafe { ptr.write_bytes(0, request) };
            }
            return ptr.cast();
        }
    }
    alloc_slow(size, align, zeroed)
}

/// [`alloc`] past the thread's row: the pool's slow path (guarded against re-entry), or the
/// next allocator, counted by reason.
#[cold]
#[inline(never)]
fn alloc_slow(size: usize, align: usize, zeroed: bool) -> *mut c_void {
    if size <= MAX_POOLED && align <= MAX_POOLED_ALIGN && real::ready() {
        let request = size.max(1);
        let served = busy(|| {
            if zeroed {
                POOL.allocate_zeroed(request, align)
            } else {
                POOL.allocate(request, align)
            }
        });
        if let Some(ptr) = served {
            return ptr.cast();
        }
        // Re-entered from the pool's own cold path: the next allocator serves it, uncounted
        // here (the pool counts its internal allocations).
    } else if size > MAX_POOLED {
        count(&COUNTERS.large);
    } else if align > MAX_POOLED_ALIGN {
        count(&COUNTERS.aligned);
    } else {
        count(&COUNTERS.early);
    }
    let ptr = system(size, align);
    if zeroed && !ptr.is_null() && align > 16 {
        // SAFETY: a fresh block of at least `size` writable bytes.
        unsafe { std::ptr::write_bytes(ptr.cast::<u8>(), 0, size) };
    }
    ptr
}

/// What a pointer is, for free, realloc and malloc_usable_size.
pub enum Kind {
    /// Null.
    Null,
    /// The start of a live block of ours, of this many usable bytes.
    Ours(usize),
    /// An address of ours that is not a live block's start (interior, or freed already).
    Invalid,
    /// The start-up arena's.
    Bootstrap,
    /// Anyone else's: the next allocator's (or garbage, which only it can judge).
    Foreign,
}

/// Classifies `ptr`.
///
/// # Safety
/// No other thread frees the block `ptr` points into while this runs: the contract of `free`,
/// `realloc` and `malloc_usable_size`, whose caller holds the pointer it passes.
#[inline]
pub unsafe fn kind(ptr: *const c_void) -> Kind {
    if ptr.is_null() {
        return Kind::Null;
    }
    if real::bootstrap::contains(ptr) {
        return Kind::Bootstrap;
    }
    // SAFETY: caller's promise: no thread frees the block meanwhile.
    match unsafe { POOL.classify(ptr.cast()) } {
        PointerKind::Live { usable } => Kind::Ours(usable),
        PointerKind::Foreign => Kind::Foreign,
        _ => Kind::Invalid,
    }
}

/// Frees `ptr`: home if ours, refused and counted if an interior pointer or a double free,
/// ignored if the start-up arena's, to the next allocator if not ours.
///
/// # Safety
/// `ptr` is null or was returned by this allocator (or the next one) and not freed.
#[inline(always)]
pub unsafe fn free(ptr: *mut c_void) {
    if ptr.is_null() || real::bootstrap::contains(ptr) {
        return;
    }
    // SAFETY: the caller's promise: a live block of ours is given up.
    match unsafe { POOL.free_checked(ptr.cast()) } {
        PointerKind::Live { .. } => {}
        PointerKind::Foreign => {
            count(&COUNTERS.foreign_frees);
            // SAFETY: not ours and not the arena's: the caller promises it is the next
            // allocator's live pointer.
            unsafe { real::free(ptr) }
        }
        _ => count(&COUNTERS.invalid_frees),
    }
}

/// Resizes our live block at `ptr` to `size` bytes (16-byte aligned): in place when it fits,
/// else moved; null (the old block intact) when no memory is left.
///
/// # Safety
/// `ptr` is a live block of ours, given up on a non-null return (unless returned again).
pub unsafe fn resize(ptr: *mut c_void, size: usize) -> *mut c_void {
    if size <= MAX_POOLED {
        // SAFETY: the caller's promise, passed on.
        if let Some(new) = busy(|| unsafe { POOL.resize(ptr.cast(), size, 16) }) {
            return new.cast();
        }
    }
    // SAFETY: caller's promise: `ptr` is the caller's live block, which nothing else frees.
    let Some(old) = (unsafe { POOL.usable_size(ptr.cast()) }) else {
        return std::ptr::null_mut();
    };
    let new = alloc(size, 16, false);
    if !new.is_null() {
        // SAFETY: `ptr` holds `old` readable bytes and `new` at least `size` writable ones;
        // distinct live blocks.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old.min(size)) };
        // SAFETY: the caller's promise; the contents were copied out.
        unsafe { free(ptr) };
    }
    new
}
