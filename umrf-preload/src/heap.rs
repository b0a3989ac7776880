//! The umrf side of `malloc`: the process's pools, which requests they serve, and where the
//! others go (the next allocator, counted by reason).
//!
//! Requests of up to 64 KiB with alignment up to a page are served by umrf's per-core pools
//! (`umrf_c::pools::Pools`: size classes of 64 B to 64 KiB, one slot per core, a shared
//! fallback pool per class), on the core the calling thread runs on. Everything else, and
//! everything while the pools are being built or when they are exhausted, goes to the next
//! allocator. A free looks the address up among the pools' regions: a block of ours goes home,
//! anything else goes to the next allocator, so pointers allocated before this library was
//! loaded, or by the next allocator, are freed where they came from.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{MutexGuard, OnceLock};

use umrf_c::pools::{Config, Core, Pools};

use crate::real;

/// Largest request the pools serve.
pub const MAX_POOLED: usize = umrf_c::UMRF_MAX_ALLOC;
/// Largest alignment the pools serve (blocks of up to a page are aligned to their size).
pub const MAX_POOLED_ALIGN: usize = 4096;

const NOT_STARTED: u8 = 0;
const STARTING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);
static POOLS: OnceLock<Pools> = OnceLock::new();

thread_local! {
    /// Set while this thread is inside umrf's allocation code: any `malloc` reached from there
    /// (the C library registering a thread-local destructor, say) goes to the next allocator,
    /// never back into the pools. Const-initialised and without a destructor, so touching it
    /// allocates nothing.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    /// The core tables locked around a `fork` by the forking thread.
    static FORK_GUARDS: RefCell<Vec<MutexGuard<'static, Core>>> = const { RefCell::new(Vec::new()) };
}

/// Why requests went to the next allocator, and frees that were refused.
pub struct Counters {
    /// Larger than [`MAX_POOLED`].
    pub large: AtomicU64,
    /// Alignment above [`MAX_POOLED_ALIGN`].
    pub aligned: AtomicU64,
    /// The core's class and its fallback pool were exhausted.
    pub exhausted: AtomicU64,
    /// Before the pools were ready, or from inside umrf's own code.
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
    exhausted: AtomicU64::new(0),
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

/// Runs `f` marked busy; `None` if this thread already is (a re-entrant call).
fn busy<T>(f: impl FnOnce() -> T) -> Option<T> {
    if BUSY.get() {
        return None;
    }
    BUSY.set(true);
    let out = f();
    BUSY.set(false);
    Some(out)
}

/// A size from the environment variable `name`, if set and valid.
fn env_size(name: &CStr) -> Option<usize> {
    // SAFETY: `name` is NUL-terminated; getenv only reads the environment.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string of the environment.
    let text = unsafe { CStr::from_ptr(value) };
    text.to_str().ok()?.trim().parse().ok()
}

/// Whether the environment variable `name` is set to a non-empty value other than `0`.
pub fn env_flag(name: &CStr) -> bool {
    // SAFETY: `name` is NUL-terminated; getenv only reads the environment.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: non-null getenv results are NUL-terminated strings of the environment.
    !value.is_null() && !matches!(unsafe { CStr::from_ptr(value) }.to_bytes(), b"" | b"0")
}

/// The pools' configuration: one core per CPU this process may run on;
/// `UMRF_BYTES_PER_CLASS` (default 8 MiB) per class and core, and as much again in the
/// fallback pools (`UMRF_FALLBACK_BYTES_PER_CLASS`). Pages are touched only when used.
fn config() -> Config {
    let defaults = Config::default_for_machine();
    Config {
        cores: defaults.cores,
        bytes_per_class: env_size(c"UMRF_BYTES_PER_CLASS").unwrap_or(8 << 20),
        fallback_bytes_per_class: env_size(c"UMRF_FALLBACK_BYTES_PER_CLASS").unwrap_or(8 << 20),
    }
}

/// Builds the pools once. The first caller builds them (its own allocations meanwhile go to
/// the next allocator); concurrent callers are served by the next allocator until they are
/// ready.
pub fn start() {
    if STATE
        .compare_exchange(NOT_STARTED, STARTING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    if !real::resolve() {
        STATE.store(FAILED, Ordering::Release);
        crate::report::say(
            "umrf: the next allocator's malloc family was not found with dlsym(RTLD_NEXT); every allocation stays in the start-up arena",
        );
        return;
    }
    let built = busy(|| Pools::new(config(), "umrf-malloc"));
    match built {
        Some(Ok(pools)) => {
            let _ = POOLS.set(pools);
            STATE.store(READY, Ordering::Release);
        }
        Some(Err(reason)) => {
            STATE.store(FAILED, Ordering::Release);
            crate::report::say(&format!(
                "umrf: the malloc pools could not be built ({reason}); the next allocator serves every request"
            ));
        }
        None => STATE.store(NOT_STARTED, Ordering::Release),
    }
}

/// The pools, if ready (starting them on first use).
#[inline]
pub fn pools() -> Option<&'static Pools> {
    match STATE.load(Ordering::Acquire) {
        READY => POOLS.get(),
        NOT_STARTED => {
            start();
            POOLS.get()
        }
        _ => None,
    }
}

/// The pools if they are ready, without starting them.
pub fn ready_pools() -> Option<&'static Pools> {
    if STATE.load(Ordering::Acquire) == READY {
        POOLS.get()
    } else {
        None
    }
}

fn current_core(cores: usize) -> usize {
    // SAFETY: sched_getcpu has no preconditions; it fails with -1, handled below.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).map_or(0, |c| c % cores)
}

/// The next allocator's block of `size` bytes aligned to `align`.
fn system(size: usize, align: usize) -> *mut c_void {
    if align <= 16 {
        real::malloc(size)
    } else {
        real::memalign(align, size)
    }
}

/// `size` bytes aligned to `align` (a power of two): from the pools when they serve it, else
/// from the next allocator. Null only when both fail.
pub fn alloc(size: usize, align: usize) -> *mut c_void {
    if size > MAX_POOLED {
        count(&COUNTERS.large);
        return system(size, align);
    }
    if align > MAX_POOLED_ALIGN {
        count(&COUNTERS.aligned);
        return system(size, align);
    }
    let served = busy(|| {
        let pools = pools()?;
        // Blocks of up to a page are aligned to their size: asking for `align` bytes aligns.
        let request = size.max(align).max(1);
        pools.alloc(request, current_core(pools.cores())).ok()
    });
    match served {
        Some(Some(ptr)) => ptr.cast(),
        Some(None) if ready_pools().is_some() => {
            count(&COUNTERS.exhausted);
            system(size, align)
        }
        _ => {
            count(&COUNTERS.early);
            system(size, align)
        }
    }
}

/// What a pointer is, for free, realloc and malloc_usable_size.
pub enum Kind {
    /// Null.
    Null,
    /// The start of a block of ours (where it lies in the pools).
    Ours(umrf_c::pools::Location),
    /// An address inside our pools that is not a live block's start.
    Invalid,
    /// The start-up arena's.
    Bootstrap,
    /// Anyone else's: the next allocator's (or garbage, which only it can judge).
    Foreign,
}

/// Classifies `ptr`.
pub fn kind(ptr: *const c_void) -> Kind {
    if ptr.is_null() {
        return Kind::Null;
    }
    if real::bootstrap::contains(ptr) {
        return Kind::Bootstrap;
    }
    let Some(pools) = ready_pools() else {
        return Kind::Foreign;
    };
    match busy(|| pools.owner(ptr.cast())) {
        Some(Some(owner)) if owner.offset == 0 => Kind::Ours(owner),
        Some(Some(_)) => Kind::Invalid,
        _ => Kind::Foreign,
    }
}

/// Frees `ptr`: home if ours, ignored if the start-up arena's, to the next allocator if not.
///
/// # Safety
/// `ptr` is null or was returned by this allocator (or the next one) and not freed.
pub unsafe fn free(ptr: *mut c_void) {
    match kind(ptr) {
        Kind::Null | Kind::Bootstrap => {}
        Kind::Ours(owner) => {
            let freed = ready_pools().and_then(|pools| busy(|| pools.free_at(ptr.cast(), &owner)));
            if !matches!(freed, Some(Ok(()))) {
                count(&COUNTERS.invalid_frees);
            }
        }
        Kind::Invalid => count(&COUNTERS.invalid_frees),
        Kind::Foreign => {
            count(&COUNTERS.foreign_frees);
            // SAFETY: not ours and not the arena's: the caller promises it is the next
            // allocator's live pointer.
            unsafe { real::free(ptr) }
        }
    }
}

/// Locks every core table before `fork` (in the forking thread).
pub extern "C" fn before_fork() {
    if let Some(pools) = ready_pools() {
        // Marked busy: the first touch of FORK_GUARDS registers its destructor, which calls
        // calloc; with every table locked that calloc must not reach the pools.
        let _ = busy(|| {
            let guards = pools.lock_all();
            FORK_GUARDS.with_borrow_mut(|held| *held = guards);
        });
    }
}

/// Unlocks them after `fork`, in the parent and in the child (whose only thread is the copy of
/// the forking one, with its thread-locals).
pub extern "C" fn after_fork() {
    let _ = FORK_GUARDS.try_with(|held| held.borrow_mut().clear());
}
