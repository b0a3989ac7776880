//! The one door to atomics, cells, locks and thread hints used by umrf's concurrent code.
//!
//! Normal builds use `std`. Building with `RUSTFLAGS="--cfg umrf_loom"` switches every item
//! here to [`loom`](https://docs.rs/loom), so the lock-free parts (the remote-free queue, slot
//! leasing, the mailbox ring) can be model-checked. No other module imports
//! `core::sync::atomic` or `core::cell::UnsafeCell` directly (STYLE rule 11).

#[cfg(not(umrf_loom))]
mod imp {
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread::yield_now;

    /// `UnsafeCell` with loom's closure-based API, so the same code checks under both.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a raw mutable pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(umrf_loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
    };
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread::yield_now;
}

pub(crate) use imp::*;

/// Adds one to a counter that only one thread writes (the slot's owner).
///
/// A relaxed load and store, not a read-modify-write: on x86-64 and aarch64 this is a plain
/// `mov`/`ldr`+`str`, with no lock prefix and no exclusive monitor. Readers on other threads
/// see a value that may lag but is never torn.
#[inline(always)]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Backs off while waiting for another thread: spins with a CPU hint, then yields.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    const SPIN_LIMIT: u32 = 6;
    const YIELD_LIMIT: u32 = 10;

    /// One round of waiting; each round waits longer, up to yielding the CPU.
    pub(crate) fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..(1u32 << self.step) {
                spin_loop();
            }
        } else {
            yield_now();
        }
        if self.step <= Self::YIELD_LIMIT {
            self.step += 1;
        }
    }

    /// Whether the caller should stop spinning and block instead.
    pub(crate) fn is_completed(&self) -> bool {
        self.step > Self::YIELD_LIMIT
    }
}

/// A process-wide source of pool ids. Not a synchronisation point, so it stays a `std` atomic
/// under loom (loom atomics cannot live in statics).
pub(crate) fn next_pool_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
