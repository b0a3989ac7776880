//! `GlobalPool`: umrf's size-class pools as a program's `#[global_allocator]`, and the raw
//! operations a C shim needs.
//!
//! ```
//! use umrf::GlobalPool;
//! use umrf::residency::CpuLocal;
//!
//! // In a program: #[global_allocator] static A: GlobalPool<CpuLocal> = GlobalPool::new();
//! static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
//!
//! let p = POOL.allocate(100, 8);
//! assert!(!p.is_null());
//! // SAFETY: `p` is this thread's; nothing frees it meanwhile.
//! assert_eq!(unsafe { POOL.usable_size(p) }, Some(112));
//! // SAFETY: `p` came from POOL.allocate and is freed once.
//! assert!(unsafe { POOL.free(p) });
//! let on_stack = 0u64;
//! // SAFETY: a pointer that is not POOL's is recognised and left alone.
//! assert!(!unsafe { POOL.free(&on_stack as *const u64 as *mut u8) });
//! ```
//!
//! # How it works
//!
//! The first allocation initialises the pool (without allocating through itself: the thread is
//! *busy* while umrf's own cold paths run, and a busy thread's allocations go to the system
//! allocator). Each thread claims a row of class pools on its first allocation and releases it
//! at exit; the next thread to claim the row reuses its pools, and every block of the exited
//! thread that is still out comes home to them when freed. A free on the owning thread is a
//! push onto the row's list; from any other thread it is a remote free, found through the page
//! map in two loads. Pointers of other allocators (the system allocator's, from before
//! initialisation or from busy threads) are recognised by the page map and handed to the
//! system allocator, so nothing is ever freed into the wrong heap.
//!
//! # Fallbacks (each counted in [`GlobalStats`])
//!
//! The system allocator serves an allocation when the pool is being initialised by another
//! thread, when the calling thread is busy or has exited, when every row is claimed, and when
//! a class and the [`borrow`](GlobalPool::borrow_classes) classes above it are all exhausted in
//! the thread's row. Requests above the largest class take the large path (a region of their
//! own, returned to the operating system on free). Over-aligned requests (above the page size)
//! get null, as do zero-size and overflowing ones. Nothing in the allocator panics.

mod check;
mod fork;
mod init;
#[cfg(all(test, umrf_loom))]
mod loom_tests;
mod thread;

pub use check::PointerKind;

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use std::alloc::System;

use crate::pool::{BlockRef, UNKNOWN_TRIP};
use crate::residency::{self, Residency};
use crate::sized::pagemap::{self, ClassBlock, Entry};
use crate::sized::row::Record;
use crate::sized::{
    ClassExhaustion, Config, Core, SizedStats, class_for, class_index, classes_up_to,
};
use crate::sync::statics::{AtomicU64, Ordering};

use init::LazyInit;

/// The global allocator's settings (see the `const` setters of [`GlobalPool`]).
#[derive(Clone, Copy, Debug)]
struct GlobalSettings {
    rows: usize,
    bytes_per_class: usize,
    max_blocks: usize,
    largest: usize,
    borrow: usize,
}

/// Counters of the global allocator's fallbacks.
struct GlobalCounters {
    system_allocations: AtomicU64,
    internal_allocations: AtomicU64,
    foreign_frees: AtomicU64,
    invalid_frees: AtomicU64,
}

/// umrf's size-class pools of residency `R` as a [`GlobalAlloc`]. See the
/// [module docs](crate::global) for how it works and when it falls back.
///
/// ```no_run
/// use umrf::GlobalPool;
/// use umrf::residency::CpuLocal;
///
/// #[global_allocator]
/// static ALLOC: GlobalPool<CpuLocal> = GlobalPool::new();
///
/// fn main() {
///     let words: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
///     assert_eq!(words.len(), 1000);
///     assert!(ALLOC.stats().sized.unwrap().allocations() >= 1000);
/// }
/// ```
pub struct GlobalPool<R: Residency> {
    core: LazyInit<Core>,
    settings: GlobalSettings,
    counters: GlobalCounters,
    _residency: PhantomData<fn() -> R>,
}

/// A snapshot of a [`GlobalPool`]'s counters.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct GlobalStats {
    /// The size-class pools' counters, once initialised.
    pub sized: Option<SizedStats>,
    /// Allocations the system allocator served instead (see the fallbacks in the
    /// [module docs](crate::global)), not counting `internal_allocations`.
    pub system_allocations: u64,
    /// Allocations of umrf's own cold paths (building class pools and rows), which always go
    /// to the system allocator.
    pub internal_allocations: u64,
    /// [`free`](GlobalPool::free) calls with a pointer that was not a block of umrf's.
    pub foreign_frees: u64,
    /// [`free_checked`](GlobalPool::free_checked) calls refused: a block that was free
    /// already (a double free) or an address inside umrf's regions that is no block's start.
    pub invalid_frees: u64,
}

impl<R: Residency> GlobalPool<R> {
    /// A global pool with the defaults: classes up to 1 MiB, 32 MiB of blocks per class pool
    /// (at most 2^20 blocks), four rows per online CPU (at least 16), borrowing from the next
    /// 4 classes. Nothing is reserved until the first allocation.
    pub const fn new() -> Self {
        GlobalPool {
            core: LazyInit::new(),
            settings: GlobalSettings {
                rows: 0,
                bytes_per_class: 32 << 20,
                max_blocks: 1 << 20,
                largest: crate::sized::MAX_CLASS_BYTES,
                borrow: 4,
            },
            counters: GlobalCounters {
                system_allocations: AtomicU64::new(0),
                internal_allocations: AtomicU64::new(0),
                foreign_frees: AtomicU64::new(0),
                invalid_frees: AtomicU64::new(0),
            },
            _residency: PhantomData,
        }
    }

    /// Rows: threads that can hold umrf memory at once (more threads fall back to the system
    /// allocator). 0 keeps the default.
    pub const fn rows(mut self, rows: usize) -> Self {
        self.settings.rows = rows;
        self
    }

    /// Bytes of blocks in each class pool of each row (reserved, faulted in on first touch).
    pub const fn bytes_per_class(mut self, bytes: usize) -> Self {
        self.settings.bytes_per_class = bytes;
        self
    }

    /// The most blocks one class pool holds (bounds the per-block bookkeeping of the smallest
    /// classes).
    pub const fn max_blocks_per_class(mut self, blocks: usize) -> Self {
        self.settings.max_blocks = blocks;
        self
    }

    /// The largest class, in bytes (at most 1 MiB); larger requests take the large path.
    pub const fn largest_class(mut self, bytes: usize) -> Self {
        self.settings.largest = bytes;
        self
    }

    /// How many larger classes an exhausted class borrows from before the system allocator
    /// serves the request.
    pub const fn borrow_classes(mut self, classes: usize) -> Self {
        self.settings.borrow = classes;
        self
    }

    /// This pool's identity in the thread rows.
    #[inline(always)]
    fn id(&self) -> *const () {
        (self as *const Self).cast()
    }

    /// The core, once initialised.
    #[inline]
    fn core(&self) -> Option<&'static Core> {
        // SAFETY: a published core is leaked (`core_or_init`): it lives for the rest of the
        // process (`LazyInit` invariant 2).
        self.core.get().map(|core| unsafe { core.as_ref() })
    }

    /// The core, initialising it if no thread has started to; `None` while another thread
    /// initialises it (the caller falls back), or if the calling thread is busy.
    #[cold]
    fn core_or_init(&self) -> Option<&'static Core> {
        let core = self.core.get_or_init(|| {
            thread::busy(|_| {
                fork::register_handlers();
                NonNull::from(Box::leak(Box::new(Core::new(self.config()))))
            })
        })?;
        // SAFETY: as in `core`: the core is leaked, never freed.
        Some(unsafe { core.as_ref() })
    }

    fn config(&self) -> Config {
        let s = self.settings;
        let cpus = crate::backing::os::online_cpus();
        let rows = if s.rows == 0 {
            (4 * cpus).clamp(16, 1024)
        } else {
            s.rows
        };
        let mut config = Config {
            classes: classes_up_to(s.largest),
            rows,
            bytes_per_class: s.bytes_per_class.max(1),
            min_blocks: 4,
            max_blocks: s.max_blocks.max(4),
            exhaustion: ClassExhaustion::Borrow { classes: s.borrow },
            map_pages: true,
            cpus: Vec::new(),
            settings: crate::pool::Settings {
                prefault: false,
                register_provenance: false,
                name: Some(format!("global-{}", residency::describe::<R>())),
                ..crate::pool::Settings::default()
            },
            strategy: R::STRATEGY,
            residency: R::NAME,
            label: residency::describe::<R>(),
        };
        config.resolve_machine();
        config
    }

    /// Allocates `size` bytes aligned to `align`: a pointer, or null for a zero size, an
    /// alignment that is not a power of two or exceeds the page size, a size that overflows,
    /// or when no memory is left anywhere. Callable from any thread, at any time (also before
    /// `main` and during thread exit); never panics. For `malloc(0)`'s unique pointer, ask for
    /// one byte.
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// assert!(POOL.allocate(0, 8).is_null());
    /// assert!(POOL.allocate(8, 3).is_null());
    /// assert!(POOL.allocate(usize::MAX, 8).is_null());
    /// let p = POOL.allocate(4096, 4096);
    /// assert_eq!(p as usize % 4096, 0);
    /// // SAFETY: p came from POOL.
    /// unsafe { POOL.free(p) };
    /// ```
    #[inline]
    pub fn allocate(&self, size: usize, align: usize) -> *mut u8 {
        if !valid_request(size, align) {
            return ptr::null_mut();
        }
        match self.allocate_row(size, align) {
            Some(block) => block.as_ptr(),
            None => self.allocate_slow(size, align),
        }
    }

    /// The fast path of [`allocate`](Self::allocate) alone: a block from the calling thread's
    /// row when the row has one of the request's class on its own list, else `None` (the
    /// thread has no row yet, is inside umrf's cold paths, the list is empty, or the request is
    /// invalid or beyond the largest class). It never builds, never takes a lock, never calls
    /// the system allocator and counts no fallback, so a C shim whose system allocator is its
    /// own `malloc` can call it without a re-entrancy guard and guard only
    /// [`allocate`](Self::allocate), its slow path.
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let first = POOL.allocate(48, 8); // the slow path claims the thread's row
    /// // SAFETY: `first` came from POOL and is freed once: it waits on the row's list.
    /// unsafe { POOL.free(first) };
    /// let p = POOL.allocate_local(48, 8).expect("the row's list has a 48-byte block");
    /// // SAFETY: p is this thread's; nothing frees it during the call.
    /// assert_eq!(unsafe { POOL.usable_size(p.as_ptr()) }, Some(48));
    /// assert!(POOL.allocate_local(0, 8).is_none());
    /// // SAFETY: p came from POOL and is freed once.
    /// unsafe { POOL.free(p.as_ptr()) };
    /// ```
    #[inline]
    pub fn allocate_local(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        if !valid_request(size, align) {
            return None;
        }
        self.allocate_row(size, align)
    }

    /// The thread row's list, for a valid request.
    #[inline(always)]
    fn allocate_row(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let row = thread::current()?;
        if row.owner != self.id() {
            return None;
        }
        row.lease
            .alloc_fast(class_index(size, align), size)
            .map(|block| block.ptr)
    }

    /// The allocation path past the thread's hot lists.
    #[cold]
    #[inline(never)]
    fn allocate_slow(&self, size: usize, align: usize) -> *mut u8 {
        if align > crate::backing::os::page_size() {
            return ptr::null_mut();
        }
        if let Some(row) = thread::current()
            && row.owner == self.id()
            && let Some(class) = class_for(size, align, row.lease.last_class())
            && let Some(block) = row.lease.alloc_refill(class, size)
        {
            return block.ptr.as_ptr();
        }
        let busy = thread::is_busy();
        if !busy && let Some(core) = self.core_or_init() {
            let preferred = current_cpu();
            let got = thread::busy(|rows| {
                let _build = fork::lock();
                let row = rows.row_of(self.id(), core, preferred)?;
                row.lease.alloc(size, align).ok()
            });
            if let Some(Some(block)) = got {
                return block.ptr.as_ptr();
            }
        }
        let counter = if busy {
            &self.counters.internal_allocations
        } else {
            &self.counters.system_allocations
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // SAFETY: size is non-zero, align a power of two, and together they do not overflow
        // (checked in `allocate`).
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        // SAFETY: the layout has a non-zero size.
        unsafe { System.alloc(layout) }
    }

    /// Frees `ptr` if it is a block of umrf's global pools, and returns whether it was; a
    /// pointer of any other allocator (or null, or not the start of a block) is left alone and
    /// `false` returned (and counted), so a C shim can hand it to the allocator it came from.
    ///
    /// # Safety
    /// If `ptr` is umrf's, it came from [`allocate`](Self::allocate) (or the `GlobalAlloc`
    /// methods) of a global pool, was not freed since, and is not used after this call.
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate(32, 8);
    /// // SAFETY: p came from POOL and is freed once.
    /// assert!(unsafe { POOL.free(p) });
    /// // SAFETY: null is not umrf's.
    /// assert!(!unsafe { POOL.free(std::ptr::null_mut()) });
    /// ```
    pub unsafe fn free(&self, ptr: *mut u8) -> bool {
        let Some(ptr) = NonNull::new(ptr) else {
            return false;
        };
        // SAFETY: caller's promise, passed on.
        let ours = unsafe { self.free_mapped(ptr) };
        if !ours {
            self.counters.foreign_frees.fetch_add(1, Ordering::Relaxed);
        }
        ours
    }

    /// Frees a block found through the page map; `false` if the page map does not know it.
    ///
    /// # Safety
    /// As [`free`](Self::free).
    unsafe fn free_mapped(&self, ptr: NonNull<u8>) -> bool {
        let addr = ptr.as_ptr().addr();
        match pagemap::get(addr) {
            None => false,
            Some(Entry::Class(cell)) => {
                // SAFETY: cells in the page map belong to a global pool's core, which is
                // leaked: it lives for the rest of the process.
                let Some(block) = pagemap::class_block(unsafe { cell.as_ref() }, addr) else {
                    return false;
                };
                // SAFETY: caller's promise: the caller owns the block and gives it up; its
                // slot is live (the pool is the core's, which never frees it).
                unsafe { free_class_block(block) };
                true
            }
            Some(Entry::Large(slot)) => {
                // SAFETY: the slot of a mapped large block is live while the block is out.
                let base = unsafe { slot.as_ref() }.block_ptr(0);
                if base != ptr {
                    return false;
                }
                match self.core() {
                    // SAFETY: caller's promise: the caller owns the large block.
                    Some(core) => unsafe { core.free_large(slot) },
                    None => return false,
                }
                true
            }
        }
    }

    /// Bytes usable at `ptr` (its block's size), or `None` if `ptr` is not the start of one of
    /// umrf's blocks.
    ///
    /// # Safety
    /// If `ptr` points into one of umrf's large blocks (above the largest class), no other
    /// thread frees that block while this call runs: the answer for a large block is read from
    /// its pool's record, which goes with the block. This is `malloc_usable_size`'s contract
    /// (the caller holds the pointer it asks about). Null, foreign pointers and addresses in
    /// the class pools need nothing: their records live as long as the process.
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate(1000, 8);
    /// // SAFETY: `p` is this thread's; nothing frees it during the calls.
    /// assert_eq!(unsafe { POOL.usable_size(p) }, Some(1024));
    /// // SAFETY: null is no block of umrf's.
    /// assert_eq!(unsafe { POOL.usable_size(std::ptr::null_mut()) }, None);
    /// # // SAFETY: `p` came from `POOL.allocate` above and is freed once, here.
    /// # unsafe { POOL.free(p) };
    /// ```
    pub unsafe fn usable_size(&self, ptr: *mut u8) -> Option<usize> {
        let addr = ptr.addr();
        match pagemap::get(addr)? {
            Entry::Class(cell) => {
                // SAFETY: as in `free_mapped`.
                pagemap::class_block(unsafe { cell.as_ref() }, addr).map(|b| b.block_size)
            }
            Entry::Large(slot) => {
                // SAFETY: a mapped large slot is live while its block is out, and the caller
                // promises no thread frees the block during this call; a block freed before it
                // has left the page map already (entries leave before the memory).
                let slot = unsafe { slot.as_ref() };
                (slot.block_ptr(0).as_ptr().addr() == addr)
                    // SAFETY: as above: the pool lives while the block is out.
                    .then(|| unsafe { slot.pool().as_ref() }.block_size)
            }
        }
    }

    /// Resizes the allocation at `ptr` (of `old_size` bytes aligned to `align`) to `new_size`
    /// bytes: in place when the block holds `new_size` and is not more than twice too large
    /// (blocks of 128 bytes or less always stay), else a new allocation with the contents
    /// copied. Returns null (and leaves the old allocation alone) when no memory is left or the
    /// request is invalid.
    ///
    /// # Safety
    /// `ptr` came from this allocator with `old_size` and `align` and was not freed since;
    /// after a non-null return it is not used again (unless the same pointer is returned).
    pub unsafe fn reallocate(
        &self,
        ptr: *mut u8,
        old_size: usize,
        align: usize,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: caller's promise, passed on.
        unsafe { self.reallocate_as(ptr, old_size, align, new_size, Record::Unrecorded) }
    }

    /// [`reallocate`](Self::reallocate), with the old block's free recorded or not (see
    /// [`Record`]).
    ///
    /// # Safety
    /// As [`reallocate`](Self::reallocate).
    unsafe fn reallocate_as(
        &self,
        ptr: *mut u8,
        old_size: usize,
        align: usize,
        new_size: usize,
        record: Record,
    ) -> *mut u8 {
        // SAFETY: caller's promise: `ptr` is the caller's, so no thread frees it meanwhile.
        if let Some(usable) = unsafe { self.usable_size(ptr) }
            && new_size != 0
            && new_size <= usable
            && (usable <= 128 || new_size > usable / 2)
        {
            return ptr;
        }
        let new = self.allocate(new_size, align);
        if !new.is_null() {
            // SAFETY: both allocations hold at least `min(old, new)` bytes and are distinct.
            unsafe { ptr::copy_nonoverlapping(ptr, new, old_size.min(new_size)) };
            // SAFETY: caller's promise: `ptr` is live, this allocator's (or the system's
            // fallback), and given up.
            unsafe { self.release(ptr, old_size, align, record) };
        }
        new
    }

    /// As [`allocate`](Self::allocate), with every byte zero (`calloc`).
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate_zeroed(64, 8);
    /// // SAFETY: 64 bytes, just allocated and zeroed.
    /// assert!(unsafe { std::slice::from_raw_parts(p, 64) }.iter().all(|&b| b == 0));
    /// # // SAFETY: `p` came from `POOL.allocate` above and is freed once, here.
    /// # unsafe { POOL.free(p) };
    /// ```
    pub fn allocate_zeroed(&self, size: usize, align: usize) -> *mut u8 {
        let ptr = self.allocate(size, align);
        if !ptr.is_null() {
            // SAFETY: a fresh allocation of `size` bytes.
            unsafe { ptr.write_bytes(0, size) };
        }
        ptr
    }

    /// `realloc` for a caller that does not know the old size (a C shim): resizes umrf's
    /// allocation at `ptr` to `new_size` bytes aligned to `align`, as
    /// [`reallocate`](Self::reallocate) with the block's usable size as the old size. Returns
    /// null, touching nothing, when `ptr` is not the start of one of umrf's blocks (give it to
    /// the allocator it came from) or no memory is left.
    ///
    /// # Safety
    /// If `ptr` is umrf's, it came from this allocator with an alignment of at most `align`,
    /// was not freed since, and is not used after a non-null return (unless returned again).
    ///
    /// ```
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate(10, 8);
    /// // SAFETY: p is POOL's; the result replaces it.
    /// let q = unsafe { POOL.resize(p, 4000, 8) };
    /// // SAFETY: q is this thread's.
    /// assert!(unsafe { POOL.usable_size(q) }.unwrap() >= 4000);
    /// // SAFETY: a stack address is not umrf's: null, nothing touched.
    /// assert!(unsafe { POOL.resize(&mut 0u8, 8, 1) }.is_null());
    /// # unsafe { POOL.free(q) };
    /// ```
    pub unsafe fn resize(&self, ptr: *mut u8, new_size: usize, align: usize) -> *mut u8 {
        // SAFETY: caller's promise: `ptr` is the caller's, so no thread frees it meanwhile.
        match unsafe { self.usable_size(ptr) } {
            // SAFETY: caller's promise; the usable size is the block's, which holds the data.
            // Recorded: a C caller's later frees of the old pointer are checked ones, and a
            // double free of it must still be caught.
            Some(old) => unsafe { self.reallocate_as(ptr, old, align, new_size, Record::Recorded) },
            None => ptr::null_mut(),
        }
    }

    /// Frees an allocation of this allocator, umrf's or the system fallback's; a block of the
    /// thread's row is taken back recorded or not as `record` says (see [`Record`]).
    ///
    /// # Safety
    /// `ptr` came from this allocator with `size` and `align`, and is given up.
    #[inline]
    unsafe fn release(&self, ptr: *mut u8, size: usize, align: usize, record: Record) {
        let Some(nonnull) = NonNull::new(ptr) else {
            return;
        };
        if let Some(row) = thread::current()
            && row.owner == self.id()
            // SAFETY: caller's promise: if the block is in this row's class, the caller owns it.
            && unsafe { row.lease.free_local(nonnull, class_index(size, align), record) }
        {
            return;
        }
        // SAFETY: caller's promise.
        if !unsafe { self.free_mapped(nonnull) } {
            // SAFETY: the caller's size and align are those of a valid layout it allocated with.
            let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
            // SAFETY: not umrf's, so the system fallback's, with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GlobalStats {
        GlobalStats {
            sized: self.core().map(SizedStats::of),
            system_allocations: self.counters.system_allocations.load(Ordering::Relaxed),
            internal_allocations: self.counters.internal_allocations.load(Ordering::Relaxed),
            foreign_frees: self.counters.foreign_frees.load(Ordering::Relaxed),
            invalid_frees: self.counters.invalid_frees.load(Ordering::Relaxed),
        }
    }
}

impl<R: Residency> Default for GlobalPool<R> {
    fn default() -> Self {
        GlobalPool::new()
    }
}

impl<R: Residency> fmt::Debug for GlobalPool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalPool")
            .field("residency", &R::NAME)
            .field("settings", &self.settings)
            .field("initialised", &self.core().is_some())
            .finish_non_exhaustive()
    }
}

/// Frees `block` of a class pool: onto the calling thread's row list if its slot is its
/// row's, else as a remote free.
///
/// # Safety
/// `block.slot` is live, and the caller owns the block and gives it up.
#[inline(always)]
unsafe fn free_class_block(block: ClassBlock) {
    match thread::current() {
        // SAFETY: caller's promise.
        Some(row) => unsafe { row.lease.free_block(block.slot, block.index, block.class) },
        None => {
            let block = BlockRef {
                slot: block.slot,
                index: block.index,
                trip: UNKNOWN_TRIP,
            };
            // SAFETY: caller's promise.
            unsafe { block.release_remote() }
        }
    }
}

/// Whether `size` bytes aligned to `align` is a request the allocator serves at all: a
/// non-zero size, a power-of-two alignment, and no overflow when the two are combined.
#[inline(always)]
fn valid_request(size: usize, align: usize) -> bool {
    size != 0 && align.is_power_of_two() && size <= isize::MAX as usize - (align - 1)
}

/// The CPU the calling thread runs on, to prefer its row.
fn current_cpu() -> usize {
    #[cfg(not(miri))]
    {
        // SAFETY: sched_getcpu takes no arguments and has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).unwrap_or(0)
    }
    #[cfg(miri)]
    0
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes aligned to
// `layout.align()` (class_for picks a class whose blocks have that alignment; large regions
// are page aligned; the system fallback is given the layout), owned by the caller alone until
// `dealloc`; `dealloc` frees exactly what `alloc` handed out, finding its owner (a row's list,
// a remote queue, a large region or the system allocator) from the pointer. Nothing panics.
unsafe impl<R: Residency> GlobalAlloc for GlobalPool<R> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `ptr` came from this allocator with `layout`.
        unsafe { self.release(ptr, layout.size(), layout.align(), Record::Unrecorded) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract, passed on.
        unsafe { self.reallocate(ptr, layout.size(), layout.align(), new_size) }
    }
}
