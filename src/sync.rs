//! The one door to atomics, cells, locks and thread hints used by umrf's concurrent code.
//!
//! Normal builds use `std`. Building with `RUSTFLAGS="--cfg umrf_loom"` switches every item
//! here to [`loom`](https://docs.rs/loom), so the lock-free parts (the remote-free queue, slot
//! leasing, the mailbox ring) can be model-checked. Two loom items are wrapped (`loom_shim`):
//! `SeqCst` accesses get the `SeqCst` fences that loom needs to keep their total order, and a
//! timed condition-variable wait can time out. No other module imports
//! `core::sync::atomic` or `core::cell::UnsafeCell` directly (STYLE rule 11).

#[cfg(not(umrf_loom))]
mod imp {
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
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
mod loom_shim;

#[cfg(umrf_loom)]
mod imp {
    pub(crate) use super::loom_shim::{
        AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard,
    };
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::Arc;
    // No `SeqCst` access of an `AtomicPtr` or `AtomicU8` exists, so loom's own needs no shim.
    pub(crate) use loom::lazy_static;
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU8, Ordering, fence};
    pub(crate) use loom::thread::yield_now;
}

pub(crate) use imp::*;

/// The global allocator, for the heap stand-ins of system calls under Miri and loom.
///
/// Under loom these are `loom::alloc`'s, which track every allocation: a region never given
/// back is reported as a leak at the end of each explored execution, and one given back twice
/// panics ("pointer not tracked"). That is how the loom models check that a pool's memory is
/// released exactly once.
#[cfg(any(miri, umrf_loom))]
pub(crate) mod heap {
    #[cfg(umrf_loom)]
    pub(crate) use loom::alloc::{alloc_zeroed, dealloc};
    #[cfg(not(umrf_loom))]
    pub(crate) use std::alloc::{alloc_zeroed, dealloc};
}

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
    #[cfg(not(umrf_loom))]
    const SPIN_ROUNDS: u32 = 100;
    /// How long to keep spinning, counted from the first clock read.
    #[cfg(not(umrf_loom))]
    const SPIN_BUDGET: std::time::Duration = std::time::Duration::from_micros(20);
    /// How long to keep yielding, counted from the first clock read.
    #[cfg(not(umrf_loom))]
    const YIELD_BUDGET: std::time::Duration = std::time::Duration::from_micros(100);
    /// Under loom, time does not pass: a fixed number of rounds instead. One round, so the
    /// blocking paths that follow (the sleep protocols, which carry the correctness argument)
    /// are reached within a small preemption bound.
    #[cfg(umrf_loom)]
    const LOOM_ROUNDS: u32 = 1;

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

/// `len` atomic words, all zero. Outside loom they come from zeroed memory, so the pages of a
/// large table are committed only when an entry is first written (a size-class pool of a
/// million blocks pays for the blocks it uses); loom's atomics must each be constructed.
pub(crate) fn zeroed_u32s(len: usize) -> Box<[AtomicU32]> {
    #[cfg(not(umrf_loom))]
    {
        let table = Box::<[AtomicU32]>::new_zeroed_slice(len);
        // SAFETY: an `AtomicU32` has the layout of a `u32`, for which all-zero bytes are a
        // valid value.
        unsafe { table.assume_init() }
    }
    #[cfg(umrf_loom)]
    {
        (0..len).map(|_| AtomicU32::new(0)).collect()
    }
}

/// As [`zeroed_u32s`], for 64-bit words.
pub(crate) fn zeroed_u64s(len: usize) -> Box<[AtomicU64]> {
    #[cfg(not(umrf_loom))]
    {
        let table = Box::<[AtomicU64]>::new_zeroed_slice(len);
        // SAFETY: an `AtomicU64` has the layout of a `u64`, for which all-zero bytes are a
        // valid value.
        unsafe { table.assume_init() }
    }
    #[cfg(umrf_loom)]
    {
        (0..len).map(|_| AtomicU64::new(0)).collect()
    }
}

/// Atomics for process-wide statics that no loom model explores (the global allocator's state
/// and its page map): `std`'s under every cfg, since loom atomics cannot live in statics.
pub(crate) mod statics {
    pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
}

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

/// Under loom only: named events that the code under test notes at the points a model wants
/// to know were reached (a pool freed, an orphaning CAS retried, a mailbox side asleep).
///
/// Counted per OS thread: loom runs a model's threads as coroutines on the test's thread, so a
/// model reads the counts of its own executions only.
#[cfg(umrf_loom)]
pub(crate) mod loom_events {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    std::thread_local! {
        static COUNTS: RefCell<BTreeMap<&'static str, usize>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// Counts one occurrence of `event`.
    pub(crate) fn note(event: &'static str) {
        COUNTS.with(|counts| *counts.borrow_mut().entry(event).or_default() += 1);
    }

    /// How many times `event` was noted on this thread so far.
    #[allow(dead_code)]
    pub(crate) fn count(event: &'static str) -> usize {
        COUNTS.with(|counts| counts.borrow().get(event).copied().unwrap_or(0))
    }
}

/// Under loom tests: [`loom::model`], reporting how many executions it explored and returning
/// the set of outcomes (what each execution's closure returned).
///
/// Models assert on that set that the interleavings they are about were really reached: loom
/// 0.7's partial-order reduction can skip some (tokio-rs/loom#392: an access overwritten by a
/// later load of the same thread is forgotten), so a model that never saw its racy outcome
/// would pass without checking anything. `.ci/loom` runs with `--nocapture` and prints the
/// figures `docs/RELIABILITY.md` quotes.
#[cfg(all(test, umrf_loom))]
pub(crate) fn model<O, F>(name: &str, f: F) -> std::collections::BTreeSet<O>
where
    O: Ord + core::fmt::Debug + Send + 'static,
    F: Fn() -> O + Sync + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
    use std::sync::{Arc as StdArc, Mutex as StdMutex};

    let executions = StdArc::new(StdAtomicUsize::new(0));
    let outcomes = StdArc::new(StdMutex::new(std::collections::BTreeSet::new()));
    let (counter, seen) = (executions.clone(), outcomes.clone());
    let started = std::time::Instant::now();
    loom::model(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        let outcome = f();
        seen.lock().unwrap().insert(outcome);
    });
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "loom model {name}: {} executions in {:.1?}, outcomes {outcomes:?}",
        executions.load(StdOrdering::Relaxed),
        started.elapsed()
    );
    outcomes
}
