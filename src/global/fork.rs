//! Fork safety: no umrf cold path is half done when a process forks.
//!
//! Every cold path of the global allocator that builds (a class pool, a row, a large region)
//! runs under one process-wide lock, which a `pthread_atfork` handler takes before `fork` and
//! gives back after it, in the parent and in the child. The child therefore starts with the
//! lock free and no pool half built; its one thread keeps its rows (the other threads' rows
//! stay claimed, their blocks intact), and its allocations and frees take the usual paths.
//! The fast paths take no lock at all.

use crate::sync::statics::{AtomicU8, Ordering};

/// 0: free, 1: held.
static BUILD: AtomicU8 = AtomicU8::new(0);

/// 0: the fork handlers are not registered yet, 1: being registered, 2: registered.
static REGISTERED: AtomicU8 = AtomicU8::new(0);

/// Holds the build lock until dropped.
pub(crate) struct BuildGuard(());

/// Takes the build lock (spinning, then yielding: it is held for one cold path at most).
pub(crate) fn lock() -> BuildGuard {
    acquire();
    BuildGuard(())
}

fn acquire() {
    let mut spins = 0u32;
    while BUILD
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins < 64 {
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn release() {
    BUILD.store(0, Ordering::Release);
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        release();
    }
}

extern "C" fn before_fork() {
    acquire();
}

extern "C" fn after_fork() {
    release();
}

/// Registers the fork handlers once per process.
pub(crate) fn register_handlers() {
    if REGISTERED
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    #[cfg(not(miri))]
    // SAFETY: the handlers are plain `extern "C"` functions that live for the whole process
    // and only touch an atomic.
    unsafe {
        libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
    }
    REGISTERED.store(2, Ordering::Release);
}
