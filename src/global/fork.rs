//! Fork safety: no umrf cold path is half done when a process forks.
//!
//! Every cold path of the global allocator that builds (a class pool, a row, a large region)
//! runs under one process-wide lock, which a `pthread_atfork` handler takes before `fork` and
//! gives back after it, in the parent and in the child. The child therefore starts with the
//! lock free and no pool half built; its one thread keeps its rows (the other threads' rows
//! stay claimed, their blocks intact), and its allocations and frees take the usual paths.
//! The fast paths take no lock at all.

use crate::sync::statics::{AtomicU8 as StaticU8, Ordering as StaticOrdering};
use crate::sync::{AtomicU8, Backoff, Ordering};

/// 0: free, 1: held.
#[cfg(not(umrf_loom))]
static BUILD: AtomicU8 = AtomicU8::new(0);

// Under loom the lock is a loom atomic, made afresh for each explored execution.
#[cfg(umrf_loom)]
crate::sync::lazy_static! {
    static ref BUILD: AtomicU8 = AtomicU8::new(0);
}

/// 0: the fork handlers are not registered yet, 1: being registered, 2: registered.
static REGISTERED: StaticU8 = StaticU8::new(0);

/// Holds the build lock until dropped.
pub(crate) struct BuildGuard(());

/// Takes the build lock (spinning, then yielding: it is held for one cold path at most).
pub(crate) fn lock() -> BuildGuard {
    acquire();
    BuildGuard(())
}

fn acquire() {
    let mut backoff = Backoff::default();
    while BUILD
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        backoff.snooze();
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

#[cfg_attr(miri, allow(dead_code))] // Miri cannot fork: the handlers are not registered
pub(crate) extern "C" fn before_fork() {
    acquire();
}

#[cfg_attr(miri, allow(dead_code))]
pub(crate) extern "C" fn after_fork() {
    release();
}

/// Registers the fork handlers once per process.
pub(crate) fn register_handlers() {
    if REGISTERED
        .compare_exchange(0, 1, StaticOrdering::AcqRel, StaticOrdering::Acquire)
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
    REGISTERED.store(2, StaticOrdering::Release);
}

#[cfg(all(test, umrf_loom))]
mod loom_tests {
    //! A cold path under the build lock against a fork's handlers (which take and give back the
    //! same lock): the forking side finds the cold path either not begun or done, never half
    //! done. The path's two steps write a loom cell, so an access not ordered by the lock is
    //! reported as a data race.

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    use super::{after_fork, before_fork, lock};

    #[test]
    fn loom_fork_finds_no_cold_path_half_done() {
        let outcomes = crate::sync::model("loom_fork_finds_no_cold_path_half_done", || {
            let steps = Arc::new(UnsafeCell::new(0u32));
            let builder = {
                let steps = steps.clone();
                thread::spawn(move || {
                    let _build = lock();
                    for _ in 0..2 {
                        // SAFETY: the build lock is held: no other access to `steps` runs.
                        steps.with_mut(|s| unsafe { *s += 1 });
                    }
                })
            };
            before_fork();
            // SAFETY: the fork handler holds the build lock: no cold path writes `steps`.
            let seen = steps.with(|s| unsafe { *s });
            after_fork();
            builder.join().unwrap();
            assert!(
                seen == 0 || seen == 2,
                "a fork found a cold path half done ({seen} of 2 steps)"
            );
            seen
        });
        assert!(
            outcomes.contains(&0),
            "the fork never went before the cold path: {outcomes:?}"
        );
        assert!(
            outcomes.contains(&2),
            "the fork never came after the cold path: {outcomes:?}"
        );
    }
}
