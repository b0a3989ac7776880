//! Under loom: the two places where loom 0.7's model is weaker than the real one, mended.
//!
//! 1. **`SeqCst` loads, stores and read-modify-writes.** loom treats them as `Acquire`/`Release`
//!    (its documentation says so; tokio-rs/loom#180): it does not keep the single total order
//!    of `SeqCst` operations, so a store-buffering ("Dekker") pattern, each side storing its
//!    flag and then loading the other's, can read both flags stale under loom, which the C++20
//!    model (and every real machine) forbids. The mailbox's sleep protocol is such a pattern, so
//!    loom would report a lost wake-up that cannot happen. loom does implement `SeqCst`
//!    *fences*, so the atomics here put a `SeqCst` fence before every `SeqCst` access and after
//!    every `SeqCst` store or read-modify-write: the leading-fence mapping of `SeqCst` accesses
//!    (as on Power and Arm), plus a trailing fence on the writing side, which restores the
//!    total order. The price: the fences also order
//!    `Relaxed` accesses next to them, so the model is slightly stronger than the real code
//!    around `SeqCst` operations. Non-`SeqCst` operations pass through unchanged; the pool's
//!    own protocols use none.
//! 2. **Timed waits.** loom 0.7 models `Condvar::wait_timeout` as an untimed wait that never
//!    times out. A thread that relies on its timeout to look again (a mailbox sender blocked on
//!    a full ring re-checks at least every `SENDER_RECHECK`, by design) would then look
//!    deadlocked. Here a timed wait is modelled as its timeout firing after the scheduler has
//!    let the other threads run: the lock is released, the thread yields, and it takes the
//!    lock again. That is the waiter's worst case (every notification sent meanwhile is lost),
//!    so a protocol correct under this model stays correct when notifications do arrive.
//!    Untimed waits remain loom's own, so a lost wake-up of an untimed waiter (the receiver in
//!    `recv`) is still reported, as a deadlock.

use loom::sync::atomic::{Ordering, fence};

use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError};
use std::time::Duration;

/// `std::sync::Mutex` over loom's, with a guard that a timed wait can release and retake.
#[derive(Debug)]
pub(crate) struct Mutex<T> {
    inner: loom::sync::Mutex<T>,
}

/// The guard of [`Mutex`]; `guard` is `None` only inside a wait.
#[derive(Debug)]
pub(crate) struct MutexGuard<'a, T> {
    mutex: &'a loom::sync::Mutex<T>,
    guard: Option<loom::sync::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex {
            inner: loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        wrap(&self.inner, self.inner.lock())
    }
}

/// Rewraps loom's guard (poisoned or not) in ours.
fn wrap<'a, T>(
    mutex: &'a loom::sync::Mutex<T>,
    result: LockResult<loom::sync::MutexGuard<'a, T>>,
) -> LockResult<MutexGuard<'a, T>> {
    match result {
        Ok(guard) => Ok(MutexGuard {
            mutex,
            guard: Some(guard),
        }),
        Err(poisoned) => Err(PoisonError::new(MutexGuard {
            mutex,
            guard: Some(poisoned.into_inner()),
        })),
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard
            .as_ref()
            .expect("a guard is only empty inside a wait")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard
            .as_mut()
            .expect("a guard is only empty inside a wait")
    }
}

/// Whether a timed wait timed out (always, in this model).
#[derive(Debug)]
pub(crate) struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended by its timeout.
    #[allow(dead_code)]
    pub(crate) fn timed_out(&self) -> bool {
        self.0
    }
}

/// `std::sync::Condvar` over loom's; see the module docs for the timed wait.
#[derive(Debug)]
pub(crate) struct Condvar {
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar {
            inner: loom::sync::Condvar::new(),
        }
    }

    /// Blocks until notified (loom reports a deadlock if no notification can come).
    pub(crate) fn wait<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
    ) -> LockResult<MutexGuard<'a, T>> {
        let mutex = guard.mutex;
        let inner = guard
            .guard
            .take()
            .expect("a guard is only empty inside a wait");
        wrap(mutex, self.inner.wait(inner))
    }

    /// Releases the lock, lets the other threads run, and takes it again: a timeout.
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        mut guard: MutexGuard<'a, T>,
        _timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex;
        drop(guard.guard.take());
        loom::thread::yield_now();
        match wrap(mutex, mutex.lock()) {
            Ok(guard) => Ok((guard, WaitTimeoutResult(true))),
            Err(poisoned) => Err(PoisonError::new((
                poisoned.into_inner(),
                WaitTimeoutResult(true),
            ))),
        }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// The fence that goes before every `SeqCst` access (see the module docs, item 1).
#[inline]
fn before(order: Ordering) {
    if order == Ordering::SeqCst {
        fence(Ordering::SeqCst);
    }
}

/// Runs a store or read-modify-write with the fences a `SeqCst` one needs: before and after.
#[inline]
fn fenced<R>(order: Ordering, access: impl FnOnce() -> R) -> R {
    before(order);
    let result = access();
    before(order);
    result
}

/// Compare-and-exchange methods that forward to loom's with `SeqCst` fences.
macro_rules! fenced_cas {
    ($int:ty: $($name:ident),*) => {$(
        pub(crate) fn $name(
            &self,
            current: $int,
            new: $int,
            success: Ordering,
            failure: Ordering,
        ) -> Result<$int, $int> {
            fenced(success, || self.0.$name(current, new, success, failure))
        }
    )*};
}

/// Read-modify-write methods that forward to loom's with `SeqCst` fences.
macro_rules! fenced_rmw {
    ($int:ty: $($name:ident),*) => {$(
        pub(crate) fn $name(&self, value: $int, order: Ordering) -> $int {
            fenced(order, || self.0.$name(value, order))
        }
    )*};
}

macro_rules! seq_cst_atomic_int {
    ($($name:ident($int:ty)),* $(,)?) => {$(
        /// loom's atomic of the same name, with `SeqCst` accesses fenced (module docs, item 1).
        #[derive(Debug)]
        pub(crate) struct $name(loom::sync::atomic::$name);

        #[allow(dead_code)]
        impl $name {
            pub(crate) fn new(value: $int) -> Self {
                Self(loom::sync::atomic::$name::new(value))
            }

            pub(crate) fn load(&self, order: Ordering) -> $int {
                before(order);
                self.0.load(order)
            }

            pub(crate) fn store(&self, value: $int, order: Ordering) {
                fenced(order, || self.0.store(value, order))
            }

            fenced_cas!($int: compare_exchange, compare_exchange_weak);
            fenced_rmw!($int: fetch_add, fetch_sub, fetch_or);
        }

        /// Zero, as `std`'s.
        impl Default for $name {
            fn default() -> Self {
                Self::new(0)
            }
        }
    )*};
}

seq_cst_atomic_int!(AtomicU32(u32), AtomicU64(u64), AtomicUsize(usize),);

/// loom's `AtomicBool`, with `SeqCst` accesses fenced (module docs, item 1).
#[derive(Debug)]
pub(crate) struct AtomicBool(loom::sync::atomic::AtomicBool);

impl AtomicBool {
    pub(crate) fn new(value: bool) -> Self {
        Self(loom::sync::atomic::AtomicBool::new(value))
    }

    pub(crate) fn load(&self, order: Ordering) -> bool {
        before(order);
        self.0.load(order)
    }

    pub(crate) fn store(&self, value: bool, order: Ordering) {
        fenced(order, || self.0.store(value, order))
    }

    fenced_cas!(bool: compare_exchange);
}
