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

/// Waits for another thread in three phases: spin, yield, then (the caller's part) block.
///
/// 1. Spin, with one CPU hint between looks, so a waiter notices its peer's store within
///    about one hint. (A `pause` costs 10 to 140 cycles on bare metal and about 50 ns in some
///    virtual machines, where the hypervisor traps it: an exponential backoff of up to 16 hints
///    leaves a waiter blind for most of a microsecond, and a producer and consumer then fall into
///    lockstep.) The clock is read only after the first [`Backoff::SPIN_ROUNDS`] looks, and the
///    spinning lasts [`Backoff::SPIN_BUDGET`].
/// 2. Yield the CPU between looks, until [`Backoff::YIELD_BUDGET`]: other threads on this core
///    run, and the wait still costs no system-call wake-up.
/// 3. Then [`is_completed`](Backoff::is_completed) says to block. The budgets are several times
///    what a block and wake-up costs (futex wait, wake-up call, context switch: 5 to 10 µs), so
///    only long waits pay it.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    rounds: u32,
    #[cfg(not(umrf_loom))]
    clock_started: Option<std::time::Instant>,
}

impl Backoff {
    /// Looks before the clock is first read.
    const SPIN_ROUNDS: u32 = 100;
    /// How long to keep spinning, counted from the first clock read.
    #[cfg(not(umrf_loom))]
    const SPIN_BUDGET: std::time::Duration = std::time::Duration::from_micros(20);
    /// How long to keep yielding, counted from the first clock read.
    #[cfg(not(umrf_loom))]
    const YIELD_BUDGET: std::time::Duration = std::time::Duration::from_micros(100);
    /// Under loom, time does not pass: a fixed number of rounds instead.
    #[cfg(umrf_loom)]
    const LOOM_ROUNDS: u32 = 4;

    /// One round of waiting.
    pub(crate) fn snooze(&mut self) {
        self.rounds = self.rounds.saturating_add(1);
        #[cfg(not(umrf_loom))]
        {
            if self.rounds <= Self::SPIN_ROUNDS {
                spin_loop();
                return;
            }
            let started = *self
                .clock_started
                .get_or_insert_with(std::time::Instant::now);
            if started.elapsed() < Self::SPIN_BUDGET {
                spin_loop();
            } else {
                yield_now();
            }
        }
        #[cfg(umrf_loom)]
        yield_now();
    }

    /// Whether the caller should stop waiting actively and block instead.
    pub(crate) fn is_completed(&self) -> bool {
        #[cfg(not(umrf_loom))]
        {
            self.clock_started
                .is_some_and(|since| since.elapsed() >= Self::YIELD_BUDGET)
        }
        #[cfg(umrf_loom)]
        {
            self.rounds >= Self::LOOM_ROUNDS
        }
    }
}

/// A reader-writer lock for process-wide statics (the provenance registry of pool regions).
///
/// It guards no lock-free protocol and is never taken on an allocation path, so it stays `std`
/// under loom, whose locks cannot live in statics.
pub(crate) use std::sync::RwLock as StaticRwLock;

/// A process-wide source of pool ids. Not a synchronisation point, so it stays a `std` atomic
/// under loom (loom atomics cannot live in statics).
pub(crate) fn next_pool_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A number that names the calling thread, unique for the life of the process (never reused,
/// unlike a thread-local's address). Not a synchronisation point, so it stays `std` under loom.
///
/// A [`Frozen`](crate::Frozen) group remembers the thread that froze it on its home lease, so
/// that its last reader can tell whether it runs on that thread and may free locally.
#[inline]
pub(crate) fn thread_tag() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Under loom, model threads share one OS thread: their locals come from loom.
    #[cfg(not(umrf_loom))]
    std::thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(umrf_loom)]
    loom::thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    TAG.with(|tag| *tag)
}

/// A value computed once per process and then only read (the CPU feature caches of
/// `coherence`, on the targets that have them). Not a synchronisation point of umrf's
/// protocols, so it stays `std` under loom.
#[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri)))]
pub(crate) use std::sync::OnceLock;
