//! # libumrf_preload.so — `malloc` served by umrf's thread-row size-class pools
//!
//! ```sh
//! cargo build --release -p umrf-preload
//! LD_PRELOAD=target/release/libumrf_preload.so python3 -c 'print(sum(range(10**6)))'
//! umrf run -- python3 -c '...'          # the same, through the umrf command
//! UMRF_STATS=1 umrf run -- sort big.txt  # and a summary on standard error at exit
//! ```
//!
//! Interposes `malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign
//! valloc pvalloc malloc_usable_size` (C++ `new` and `delete` reach them through libstdc++).
//! Requests of up to 1 MiB with alignment up to 4 KiB come from umrf's [`umrf::GlobalPool`]
//! (the calling thread's row of size-class pools, without locks); larger ones, and any request
//! the pools cannot serve, go to the next allocator (glibc's), counted by reason. See `heap`
//! for the routing.
//!
//! - **Start-up.** `dlsym(RTLD_NEXT, ...)` calls `calloc` before the next allocator is
//!   known: those calls are served from a static arena. While the pools are being built,
//!   every allocation umrf's pools make for themselves goes to the next allocator. umrf's Rust code in
//!   this library allocates through the next allocator too (the `#[global_allocator]` below),
//!   so nothing recurses into the pools.
//! - **Other allocators' pointers** (made before this library was loaded, by the next
//!   allocator, or by the start-up arena) are recognised by address (umrf's page map) and
//!   freed where they came from.
//! - **Threads.** Each thread allocates from its own row; at thread exit the row is released
//!   for the next thread, and a block freed on another thread goes home as a remote free.
//! - **fork.** The pools' cold paths run under one lock that `pthread_atfork` handlers take
//!   around `fork`, so the child never inherits a half-built pool; the hot paths take none.
//! - **Bad input.** `calloc`/`reallocarray`/`pvalloc` overflow: NULL and `ENOMEM`; an
//!   alignment that is not a power of two: `EINVAL`; a free of an address inside our pools that
//!   is not a live block (interior pointer, double free): refused and counted, never passed on.
//! - **Observability.** `UMRF_STATS=1` prints a summary at exit; `UMRF_METRICS_ADDR=host:port`
//!   serves the pools' per-class Prometheus metrics (`family="umrf-malloc"`) at `/metrics`
//!   while the program runs.

mod exports;
mod heap;
mod real;
mod report;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Arc;

/// umrf's own Rust allocations, in this library, go to the next allocator: never to the
/// interposed `malloc`, so building and running the pools cannot recurse into them.
struct NextAllocator;

// SAFETY: every method forwards to the next C allocator (or the start-up arena before it is
// found), which returns blocks of at least the layout's size and alignment, or null; `dealloc`
// and `realloc` receive only pointers these methods returned.
unsafe impl GlobalAlloc for NextAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            real::malloc(layout.size()).cast()
        } else {
            real::memalign(layout.align(), layout.size()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 {
            real::calloc(1, layout.size()).cast()
        } else {
            let ptr = real::memalign(layout.align(), layout.size());
            if !ptr.is_null() {
                // SAFETY: a fresh block of at least `layout.size()` writable bytes.
                unsafe { std::ptr::write_bytes(ptr.cast::<u8>(), 0, layout.size()) };
            }
            ptr.cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc`/`alloc_zeroed`/`realloc` above: the next allocator's
        // or the arena's.
        unsafe { real::free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= 16 && !real::bootstrap::contains(ptr.cast()) {
            // SAFETY: `ptr` is the next allocator's live block (not the arena's).
            return unsafe { real::realloc(ptr.cast(), new_size) }.cast();
        }
        // SAFETY: the layout is valid with the new size (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; `ptr` has `layout.size()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` came from this allocator.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static NEXT: NextAllocator = NextAllocator;

/// Runs when the library is loaded: finds the next allocator, registers the exit summary
/// (`UMRF_STATS`) and the metrics server (`UMRF_METRICS_ADDR`).
extern "C" fn on_load() {
    heap::start();
    if heap::env_flag(c"UMRF_STATS") {
        report::keep_stderr();
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as the process.
        if unsafe { libc::atexit(report::at_exit) } != 0 {
            report::say("umrf: atexit failed; UMRF_STATS will print nothing");
        }
    }
    serve_metrics();
}

/// Starts the `/metrics` endpoint if `UMRF_METRICS_ADDR` is set; a bind failure is reported
/// and the program runs on.
fn serve_metrics() {
    let Some(addr) = std::env::var_os("UMRF_METRICS_ADDR") else {
        return;
    };
    let addr = addr.to_string_lossy().into_owned();
    let registry = Arc::new(umrf::metrics::Registry::new());
    if let Err(e) = registry.register_classes("umrf-malloc", || heap::POOL.stats().sized) {
        report::say(&format!("umrf: metrics: {e}"));
    }
    match umrf::metrics::MetricsServer::bind(addr.as_str(), registry) {
        Ok(server) => {
            report::say(&format!(
                "umrf: serving pool metrics at http://{}/metrics",
                server.local_addr()
            ));
            // The server lives as long as the process.
            std::mem::forget(server);
        }
        Err(e) => report::say(&format!(
            "umrf: cannot serve metrics at {addr}: {e}; pass a free host:port to --metrics"
        )),
    }
}

/// Registers `on_load` as an ELF constructor of this library.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;
