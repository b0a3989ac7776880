//! Fault injection at the backing seam: make any operating-system call of umrf fail on purpose.
//!
//! Every system call that obtains, places, verifies or locks memory, registers it with CUDA,
//! or pins a thread passes through one wrapper in umrf's `os` module, and each wrapper first
//! asks the calling thread's fault plan whether to fail. A test installs a [`FaultPlan`] —
//! which [`OsCall`] fails, with which `errno`, on which call — builds a pool or spawns workers,
//! and checks the error it gets and that nothing leaked ([`ledger`]).
//!
//! Available under `cfg(test)` and with the `fault-injection` feature. umrf's own integration
//! tests turn the feature on through a dev-dependency of the crate on itself; a crate that
//! wants to test its handling of umrf's errors adds
//! `umrf = { version = "…", features = ["fault-injection"] }` to its `[dev-dependencies]`.
//! Without the feature the seam compiles to nothing.
//!
//! # Scope: one thread
//!
//! A plan, its call counters and its ledger belong to the thread that installed them, so tests
//! running in parallel in one process never see each other's faults. Pool building makes all
//! its calls on the calling thread. [`Workers::spawn`](crate::cores::Workers::spawn) copies the
//! spawning thread's plan into each worker before it pins itself, so
//! [`OsCall::SetAffinity`] faults reach the workers (each worker then counts its own calls).
//!
//! # Example
//!
//! ```
//! use umrf::backing::fault::{self, FaultPlan, OsCall};
//! use umrf::{Error, Pool, residency::Node0};
//!
//! let before = fault::ledger();
//! let err = {
//!     // The second slot's mbind fails with ENOMEM.
//!     let _plan = FaultPlan::new().fail_nth(OsCall::Mbind, 1, libc::ENOMEM).install();
//!     Pool::<Node0>::builder().block_size(4096).blocks_per_slot(4).slots(3).build().unwrap_err()
//! }; // the plan ends here
//! assert!(matches!(err, Error::Backing { .. }), "{err}");
//! assert!(err.to_string().contains("mbind"));
//! // Both regions made before the failure were returned to the operating system.
//! assert_eq!(fault::ledger().live_mappings(), before.live_mappings());
//! ```

use std::cell::RefCell;
use std::io;

pub use super::os::OsCall;

/// One rule of a plan: `call` fails with `errno` after `skip` calls succeed, `times` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    call: OsCall,
    errno: i32,
    skip: u64,
    times: u64,
}

/// Which operating-system calls fail, on this thread, while the plan is installed.
///
/// Rules apply in the order given; the first rule for a call that is due decides. Counting
/// starts at [`install`](FaultPlan::install).
///
/// ```
/// use umrf::backing::fault::{FaultPlan, OsCall};
/// let plan = FaultPlan::new()
///     .fail(OsCall::Mlock, libc::ENOMEM) // every mlock
///     .fail_nth(OsCall::Mmap, 2, libc::ENOMEM) // only the third mmap
///     .fail_after(OsCall::Mbind, 1, libc::EPERM); // every mbind after the first
/// let _guard = plan.install();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "a plan does nothing until `install` is called"]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan that fails nothing.
    ///
    /// ```
    /// use umrf::backing::fault::FaultPlan;
    /// assert_eq!(FaultPlan::new(), FaultPlan::default());
    /// ```
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Every `call` fails with `errno`.
    ///
    /// ```
    /// use umrf::backing::fault::{FaultPlan, OsCall};
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let _guard = FaultPlan::new().fail(OsCall::Mmap, libc::ENOMEM).install();
    /// let err = Pool::<CpuLocal>::builder().slots(1).build().unwrap_err();
    /// assert!(matches!(err, Error::Backing { .. }));
    /// ```
    pub fn fail(self, call: OsCall, errno: i32) -> Self {
        self.rule(call, errno, 0, u64::MAX)
    }

    /// Only call number `n` of `call` (counting from 0) fails with `errno`.
    ///
    /// ```
    /// use umrf::backing::fault::{FaultPlan, OsCall};
    /// let _guard = FaultPlan::new().fail_nth(OsCall::Populate, 0, libc::ENOMEM).install();
    /// ```
    pub fn fail_nth(self, call: OsCall, n: u64, errno: i32) -> Self {
        self.rule(call, errno, n, 1)
    }

    /// The first `n` calls of `call` succeed, every later one fails with `errno`.
    ///
    /// ```
    /// use umrf::backing::fault::{FaultPlan, OsCall};
    /// let _guard = FaultPlan::new().fail_after(OsCall::Mlock, 2, libc::ENOMEM).install();
    /// ```
    pub fn fail_after(self, call: OsCall, n: u64, errno: i32) -> Self {
        self.rule(call, errno, n, u64::MAX)
    }

    fn rule(mut self, call: OsCall, errno: i32, skip: u64, times: u64) -> Self {
        self.rules.push(Rule {
            call,
            errno,
            skip,
            times,
        });
        self
    }

    /// Makes this the calling thread's plan until the guard drops; the plan it replaces comes
    /// back then.
    ///
    /// ```
    /// use umrf::backing::fault::{self, FaultPlan, OsCall};
    /// {
    ///     let _guard = FaultPlan::new().fail(OsCall::Mbind, libc::EPERM).install();
    ///     assert!(fault::active());
    /// }
    /// assert!(!fault::active());
    /// ```
    pub fn install(self) -> FaultGuard {
        let previous = STATE.with(|state| {
            let mut state = state.borrow_mut();
            let rules = self
                .rules
                .into_iter()
                .map(|rule| Armed { rule, seen: 0 })
                .collect();
            core::mem::replace(&mut state.armed, rules)
        });
        FaultGuard {
            previous,
            _not_send: core::marker::PhantomData,
        }
    }
}

/// Keeps a [`FaultPlan`] installed on this thread; dropping it restores the previous plan.
#[must_use = "the plan is removed when the guard drops"]
#[derive(Debug)]
pub struct FaultGuard {
    previous: Vec<Armed>,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        let previous = core::mem::take(&mut self.previous);
        // A guard dropped during thread teardown finds no state: nothing to restore.
        let _ = STATE.try_with(|state| state.borrow_mut().armed = previous);
    }
}

/// What the seam did on this thread: mappings made and released, CUDA registrations made and
/// undone. Compare two snapshots to check that a failed build returned everything.
///
/// ```
/// use umrf::backing::fault;
/// use umrf::{Pool, residency::CpuLocal};
/// let before = fault::ledger();
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(2).slots(2).build()?;
/// assert_eq!(fault::ledger().live_mappings(), before.live_mappings() + 2);
/// drop(pool);
/// assert_eq!(fault::ledger().live_mappings(), before.live_mappings());
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ledger {
    /// Regions reserved (`mmap`) on this thread.
    pub mapped: u64,
    /// Regions released (`munmap`) on this thread.
    pub unmapped: u64,
    /// Regions registered with CUDA on this thread.
    pub registered: u64,
    /// CUDA registrations undone on this thread.
    pub unregistered: u64,
}

impl Ledger {
    /// Regions mapped and not yet released (negative if this thread released regions that
    /// another thread mapped).
    pub fn live_mappings(&self) -> i64 {
        self.mapped as i64 - self.unmapped as i64
    }

    /// CUDA registrations not yet undone.
    pub fn live_registrations(&self) -> i64 {
        self.registered as i64 - self.unregistered as i64
    }
}

/// This thread's ledger.
///
/// ```
/// let ledger = umrf::backing::fault::ledger();
/// assert!(ledger.mapped >= ledger.unmapped || ledger.live_mappings() < 0);
/// ```
pub fn ledger() -> Ledger {
    STATE.with(|state| state.borrow().ledger)
}

/// How many times `call` was attempted on this thread (failed or not), since the thread began.
///
/// ```
/// use umrf::backing::fault::{self, OsCall};
/// use umrf::{Pool, residency::Node0};
/// let before = fault::calls(OsCall::Mbind);
/// let _pool = Pool::<Node0>::builder().block_size(4096).blocks_per_slot(1).slots(2).build()?;
/// assert_eq!(fault::calls(OsCall::Mbind), before + 2);
/// # Ok::<(), umrf::Error>(())
/// ```
pub fn calls(call: OsCall) -> u64 {
    STATE.with(|state| state.borrow().calls[call.index()])
}

/// Whether a plan with at least one rule is installed on this thread.
///
/// ```
/// assert!(!umrf::backing::fault::active());
/// ```
pub fn active() -> bool {
    STATE.with(|state| !state.borrow().armed.is_empty())
}

/// A rule and how many of its calls it has seen.
#[derive(Clone, Copy, Debug)]
struct Armed {
    rule: Rule,
    seen: u64,
}

/// One thread's plan, counters and ledger.
#[derive(Default)]
struct State {
    armed: Vec<Armed>,
    calls: [u64; OsCall::ALL.len()],
    ledger: Ledger,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Counts `call` and fails it if the plan says so (called by each wrapper in `os`).
pub(crate) fn check(call: OsCall) -> io::Result<()> {
    STATE
        .try_with(|state| {
            let mut state = state.borrow_mut();
            state.calls[call.index()] += 1;
            let mut verdict = Ok(());
            for armed in state.armed.iter_mut().filter(|a| a.rule.call == call) {
                let n = armed.seen;
                armed.seen += 1;
                let due = n >= armed.rule.skip && n - armed.rule.skip < armed.rule.times;
                if due && verdict.is_ok() {
                    verdict = Err(io::Error::from_raw_os_error(armed.rule.errno));
                }
            }
            verdict
        })
        .unwrap_or(Ok(()))
}

/// Updates this thread's ledger (nothing during thread teardown).
fn with_ledger(update: impl FnOnce(&mut Ledger)) {
    let _ = STATE.try_with(|state| update(&mut state.borrow_mut().ledger));
}

/// Records a mapping made or released.
pub(crate) fn note_mapping(made: bool) {
    with_ledger(|ledger| match made {
        true => ledger.mapped += 1,
        false => ledger.unmapped += 1,
    });
}

/// Records a CUDA registration made or undone.
#[cfg(feature = "cuda")]
pub(crate) fn note_registration(made: bool) {
    with_ledger(|ledger| match made {
        true => ledger.registered += 1,
        false => ledger.unregistered += 1,
    });
}

/// The calling thread's plan, to install on a thread it spawns (see the module docs).
pub(crate) fn inherit() -> FaultPlan {
    STATE.with(|state| FaultPlan {
        rules: state.borrow().armed.iter().map(|a| a.rule).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_on_the_calls_they_name() {
        let _guard = FaultPlan::new()
            .fail_nth(OsCall::Mmap, 1, libc::ENOMEM)
            .fail_after(OsCall::Mbind, 2, libc::EPERM)
            .install();
        assert!(check(OsCall::Mmap).is_ok());
        assert_eq!(
            check(OsCall::Mmap).unwrap_err().raw_os_error(),
            Some(libc::ENOMEM)
        );
        assert!(check(OsCall::Mmap).is_ok());
        assert!(check(OsCall::Mbind).is_ok());
        assert!(check(OsCall::Mbind).is_ok());
        for _ in 0..3 {
            assert_eq!(
                check(OsCall::Mbind).unwrap_err().raw_os_error(),
                Some(libc::EPERM)
            );
        }
        assert!(check(OsCall::Mlock).is_ok());
    }

    #[test]
    fn guards_nest_and_restore() {
        let outer = FaultPlan::new().fail(OsCall::Mlock, libc::ENOMEM).install();
        {
            let _inner = FaultPlan::new().install();
            assert!(check(OsCall::Mlock).is_ok());
            assert!(!active());
        }
        assert!(check(OsCall::Mlock).is_err());
        assert_eq!(inherit().rules.len(), 1);
        drop(outer);
        assert!(check(OsCall::Mlock).is_ok());
    }

    #[test]
    fn counters_count_every_attempt() {
        let before = calls(OsCall::MovePages);
        let _guard = FaultPlan::new()
            .fail(OsCall::MovePages, libc::ENOSYS)
            .install();
        let _ = check(OsCall::MovePages);
        let _ = check(OsCall::MovePages);
        assert_eq!(calls(OsCall::MovePages), before + 2);
    }

    #[test]
    fn other_threads_are_unaffected() {
        let _guard = FaultPlan::new().fail(OsCall::Mmap, libc::ENOMEM).install();
        std::thread::spawn(|| assert!(check(OsCall::Mmap).is_ok()))
            .join()
            .unwrap();
        assert!(check(OsCall::Mmap).is_err());
    }
}
