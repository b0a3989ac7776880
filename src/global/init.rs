//! The global allocator's one-time initialisation: a value made by the first thread that asks,
//! published once, and never waited for.
//!
//! A thread that finds the value not made yet claims the right to make it with one CAS on a
//! phase word (`UNINIT` to `INITIALISING`); every other thread that asks meanwhile gets `None`
//! at once (the global allocator then serves it from the system allocator) instead of waiting
//! on a thread that may itself be allocating. The maker publishes the value's address with a
//! `Release` store, which the `Acquire` load of every later reader pairs with, so a reader that
//! finds the address sees the value whole. A maker that gives up (its closure returns `None`,
//! as a busy thread's does) puts the phase back to `UNINIT`, so a later caller tries again.
//!
//! The protocol is written once over [`InitWords`]: a [`GlobalPool`](super::GlobalPool) runs it
//! on `std` atomics ([`StaticWords`], built in a `const fn`), and the loom model
//! (`loom_tests::loom_threads_race_to_initialise_the_pool`) on loom's.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::sync::statics::{AtomicPtr, AtomicU8, Ordering};

/// No thread has made the value, and none is making it.
pub(crate) const UNINIT: u8 = 0;
/// One thread is making the value.
pub(crate) const INITIALISING: u8 = 1;
/// The value is published.
pub(crate) const READY: u8 = 2;

/// The two words the protocol runs on: the phase and the published address. Plain
/// forwarding to atomics: the orderings are [`LazyInit`]'s, so the loom model checks the
/// ones the global allocator runs with.
pub(crate) trait InitWords {
    /// CAS of the phase from `from` to `to`; whether it succeeded.
    fn claim(&self, from: u8, to: u8, success: Ordering, failure: Ordering) -> bool;
    /// Store of the phase.
    fn set_phase(&self, phase: u8, order: Ordering);
    /// Load of the published address (null before publication).
    fn published(&self, order: Ordering) -> *mut ();
    /// Store of the address.
    fn publish(&self, value: *mut (), order: Ordering);
}

/// Forwards [`InitWords`] to a phase word and an address word of the atomic types given.
macro_rules! forward_init_words {
    ($words:ty) => {
        impl InitWords for $words {
            #[inline]
            fn claim(&self, from: u8, to: u8, success: Ordering, failure: Ordering) -> bool {
                self.phase
                    .compare_exchange(from, to, success, failure)
                    .is_ok()
            }

            #[inline]
            fn set_phase(&self, phase: u8, order: Ordering) {
                self.phase.store(phase, order);
            }

            #[inline(always)]
            fn published(&self, order: Ordering) -> *mut () {
                self.value.load(order)
            }

            #[inline]
            fn publish(&self, value: *mut (), order: Ordering) {
                self.value.store(value, order);
            }
        }
    };
}

/// [`InitWords`] over `std` atomics, constructible in a `const fn` (for a `static`).
pub(crate) struct StaticWords {
    phase: AtomicU8,
    value: AtomicPtr<()>,
}

impl StaticWords {
    /// Nothing made yet.
    pub(crate) const fn new() -> Self {
        StaticWords {
            phase: AtomicU8::new(UNINIT),
            value: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

forward_init_words!(StaticWords);

/// A `T` made at most once, on first use, by the first thread that asks.
///
/// # Invariants
/// 0. At most one thread at a time is between a successful [`claim`](InitWords::claim) of
///    `UNINIT` and the phase store that ends its attempt (`READY` or `UNINIT` again).
/// 1. The published address, once non-null, never changes: only a claimant publishes, and it
///    sets `READY`, which no one claims from.
/// 2. A published address is what the maker's closure returned: the caller of
///    [`get_or_init`](Self::get_or_init) promised it stays valid for as long as this value is
///    used (the global allocator leaks its core).
pub(crate) struct LazyInit<T, W: InitWords = StaticWords> {
    words: W,
    _value: PhantomData<*const T>,
}

// SAFETY: the words are atomics; the value behind the address is only handed out as a shared
// pointer, and `T: Sync` makes sharing it sound.
unsafe impl<T: Sync, W: InitWords + Sync> Sync for LazyInit<T, W> {}
// SAFETY: as for `Sync`; moving the words moves no value (the value is not owned here).
unsafe impl<T: Sync, W: InitWords + Send> Send for LazyInit<T, W> {}

impl<T> LazyInit<T, StaticWords> {
    /// Nothing made yet, on `std` atomics.
    pub(crate) const fn new() -> Self {
        LazyInit::with_words(StaticWords::new())
    }
}

impl<T, W: InitWords> LazyInit<T, W> {
    /// Nothing made yet, on `words` (which must be in the `UNINIT` phase with nothing
    /// published).
    pub(crate) const fn with_words(words: W) -> Self {
        LazyInit {
            words,
            _value: PhantomData,
        }
    }

    /// The value, once published.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<NonNull<T>> {
        NonNull::new(self.words.published(Ordering::Acquire).cast())
    }

    /// The value, made by `make` on this thread if no thread has started to make it; `None`
    /// while another thread makes it, or if `make` gave up (returned `None`: a later call tries
    /// again).
    ///
    /// `make` must return an address that stays valid for as long as this `LazyInit` is used
    /// (invariant 2).
    #[cold]
    pub(crate) fn get_or_init(
        &self,
        make: impl FnOnce() -> Option<NonNull<T>>,
    ) -> Option<NonNull<T>> {
        if let Some(value) = self.get() {
            return Some(value);
        }
        if !self
            .words
            .claim(UNINIT, INITIALISING, Ordering::Acquire, Ordering::Relaxed)
        {
            return None;
        }
        match make() {
            Some(value) => {
                self.words.publish(value.as_ptr().cast(), Ordering::Release);
                self.words.set_phase(READY, Ordering::Release);
                Some(value)
            }
            None => {
                self.words.set_phase(UNINIT, Ordering::Release);
                None
            }
        }
    }
}

#[cfg(all(test, umrf_loom))]
mod loom_tests {
    //! loom model of the initialisation protocol on loom's atomics: threads race to make the
    //! value, one of them gives up once (a busy thread), and every thread that gets the value
    //! reads what the maker wrote into it (a loom `UnsafeCell`, so a read not ordered after the
    //! write is reported).

    use core::ptr::NonNull;

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};
    use loom::thread;

    use super::{InitWords, LazyInit, UNINIT};

    /// [`InitWords`] on loom's atomics (`Ordering` is `std`'s, which loom re-exports).
    struct LoomWords {
        phase: AtomicU8,
        value: AtomicPtr<()>,
    }

    forward_init_words!(LoomWords);

    /// The value made: a plain (non-atomic) word the maker writes before publishing.
    struct Made {
        word: UnsafeCell<u64>,
    }

    // SAFETY: the word is written only by the maker before publication and read after it;
    // loom's cell checks exactly that.
    unsafe impl Sync for Made {}

    const WRITTEN: u64 = 0x5eed;

    /// A racer's outcome: `None` it fell back, `Some(true)` it made the value, `Some(false)` it
    /// found the value made by another thread.
    type Racer = Option<bool>;

    /// Asks for the value; the maker writes `WRITTEN`, or gives up when `give_up` is set (once).
    fn ask(init: &LazyInit<Made, LoomWords>, makes: &AtomicUsize, give_up: bool) -> Racer {
        let mut made_here = false;
        let got = init.get_or_init(|| {
            if give_up {
                return None;
            }
            let before = makes.fetch_add(1, Ordering::Relaxed);
            assert_eq!(before, 0, "the value was made twice");
            made_here = true;
            let made = Box::leak(Box::new(Made {
                word: UnsafeCell::new(0),
            }));
            // SAFETY: not yet published: this thread alone knows the value.
            made.word.with_mut(|w| unsafe { *w = WRITTEN });
            Some(NonNull::from(made))
        })?;
        // SAFETY: published values are never freed while the model's threads run (the main
        // thread frees it after joining them).
        let value = unsafe { got.as_ref() };
        // SAFETY: a published value is read-only; loom reports a read not ordered after the
        // maker's write.
        let word = value.word.with(|w| unsafe { *w });
        assert_eq!(
            word, WRITTEN,
            "a reader saw the value before its maker's write"
        );
        Some(made_here)
    }

    /// Two threads race to initialise while the main thread first tries and gives up (a busy
    /// thread's attempt: the phase goes back to `UNINIT`), then asks again. At most one value is
    /// made; every thread that gets it sees it whole; a thread refused while another makes the
    /// value gets `None` rather than waiting; and after everyone is done, the value is there
    /// unless every attempt was refused or gave up, in which case the next ask makes it.
    ///
    /// Not reached, though possible: a racer publishing before the main thread's first look
    /// (loom 0.7 forgets a load that a later load of the same thread overwrites,
    /// tokio-rs/loom#392, so it does not reorder the main thread's first load of the address
    /// with the publication).
    ///
    /// Mutations it catches: the publication's `Release` weakened to `Relaxed` (loom reports the
    /// reader's load of the word racing the maker's write), and the give-up leaving the phase
    /// at `INITIALISING` (no one can make the value any more: the final ask is refused).
    #[test]
    fn loom_threads_race_to_initialise_the_pool() {
        let outcomes = crate::sync::model("loom_threads_race_to_initialise_the_pool", || {
            let init = Arc::new(LazyInit::with_words(LoomWords {
                phase: AtomicU8::new(UNINIT),
                value: AtomicPtr::new(core::ptr::null_mut()),
            }));
            let makes = Arc::new(AtomicUsize::new(0));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (init, makes) = (init.clone(), makes.clone());
                    thread::spawn(move || ask(&init, &makes, false))
                })
                .collect();
            let gave_up = ask(&init, &makes, true);
            assert!(
                matches!(gave_up, None | Some(false)),
                "a thread that gives up made nothing"
            );
            let racers: Vec<Racer> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            let makers = racers.iter().filter(|r| **r == Some(true)).count();
            assert_eq!(makers, makes.load(Ordering::Relaxed), "makes counted twice");
            assert!(makers <= 1, "two makers");
            let last = ask(&init, &makes, false);
            assert!(last.is_some(), "no one can make the value any more");
            assert_eq!(
                makes.load(Ordering::Relaxed),
                1,
                "the value was not made once"
            );
            // SAFETY: every thread is joined; the value was leaked by its maker and is freed once.
            drop(unsafe { Box::from_raw(init.get().unwrap().as_ptr()) });
            (gave_up.is_some(), racers, last == Some(true))
        });
        let reached = |want: fn(&(bool, Vec<Racer>, bool)) -> bool, what: &str| {
            assert!(
                outcomes.iter().any(want),
                "never reached: {what}: {outcomes:?}"
            );
        };
        reached(
            |o| o.1.contains(&None),
            "a racer refused while another made the value",
        );
        reached(
            |o| o.1.contains(&Some(false)),
            "a racer found the value made",
        );
        reached(
            |o| o.2,
            "every attempt refused or given up, the final ask made it",
        );
    }
}
