//! The calling thread's rows of the global pools: found in one thread-local read, made on
//! first use, released at thread exit.
//!
//! Three thread-locals, none of which allocates to be read: `CURRENT` (the thread's first
//! row, or null), `PHASE` (where the thread stands) and `GUARD` (whose destructor releases the
//! rows; registering it may allocate, so it is first touched while the thread is busy).
//!
//! While a thread runs umrf's own cold paths (building a class pool, claiming a row, the large
//! path) it is *busy*: `CURRENT` reads null and every allocation it makes goes to the system
//! allocator, so the global allocator never recurses into itself.

use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::alloc::{GlobalAlloc, Layout, System};

use crate::sized::Core;
use crate::sized::row::RowLease;

/// One row of one global pool, held by this thread.
pub(crate) struct ThreadRow {
    /// The global pool this row belongs to (its address).
    pub(crate) owner: *const (),
    pub(crate) lease: RowLease<&'static Core>,
    next: *mut ThreadRow,
}

const FRESH: u8 = 0;
const LIVE: u8 = 1;
const BUSY: u8 = 2;
const DEAD: u8 = 3;

std::thread_local! {
    static CURRENT: Cell<*mut ThreadRow> = const { Cell::new(ptr::null_mut()) };
    static PHASE: Cell<u8> = const { Cell::new(FRESH) };
    static GUARD: ExitGuard = const { ExitGuard };
}

/// The thread's first row, if it has one and is not busy.
#[inline(always)]
pub(crate) fn current() -> Option<&'static ThreadRow> {
    let row = CURRENT.with(Cell::get);
    // SAFETY: a non-null CURRENT is a live row of this thread, freed only by the exit guard,
    // which clears CURRENT first; the reference does not outlive the calling allocator call.
    unsafe { row.as_ref() }
}

/// The rows of the calling thread while it is busy.
pub(crate) struct RowList {
    head: *mut ThreadRow,
}

impl RowList {
    /// This thread's row of `owner`, moved to the front of the list; claimed from `core` and
    /// made if the thread has none. `None` when every row of `core` is claimed, or the system
    /// allocator has no memory for the row.
    pub(crate) fn row_of(
        &mut self,
        owner: *const (),
        core: &'static Core,
        preferred: usize,
    ) -> Option<&'static ThreadRow> {
        let mut prev: *mut ThreadRow = ptr::null_mut();
        let mut at = self.head;
        while !at.is_null() {
            // SAFETY: rows of the list are live (only the exit guard frees them).
            let row = unsafe { &mut *at };
            if row.owner == owner {
                if !prev.is_null() {
                    // SAFETY: as above; unlink and put in front.
                    unsafe { (*prev).next = row.next };
                    row.next = self.head;
                    self.head = at;
                }
                return Some(row);
            }
            prev = at;
            at = row.next;
        }
        let claimed = core.claim_row(preferred)?;
        let layout = Layout::new::<ThreadRow>();
        // SAFETY: the layout has a non-zero size.
        let memory = unsafe { System.alloc(layout) }.cast::<ThreadRow>();
        let Some(memory) = NonNull::new(memory) else {
            core.release_row(claimed);
            return None;
        };
        // SAFETY: `claimed` was just claimed, and the claim goes to the lease.
        let lease = unsafe { RowLease::new(core, claimed) };
        // SAFETY: fresh memory of the row's layout.
        unsafe {
            memory.as_ptr().write(ThreadRow {
                owner,
                lease,
                next: self.head,
            })
        };
        self.head = memory.as_ptr();
        // SAFETY: just written; live until the exit guard.
        Some(unsafe { &*memory.as_ptr() })
    }
}

/// Runs `f` with the thread busy (its allocations go to the system allocator) on the thread's
/// row list. `None` when the thread is already busy (a reentrant call) or has exited.
pub(crate) fn busy<T>(f: impl FnOnce(&mut RowList) -> T) -> Option<T> {
    let phase = PHASE.with(Cell::get);
    if phase == BUSY || phase == DEAD {
        return None;
    }
    let mut list = RowList {
        head: CURRENT.with(|c| c.replace(ptr::null_mut())),
    };
    PHASE.with(|p| p.set(BUSY));
    if phase == FRESH {
        // Registers the guard's destructor (which may allocate: the thread is busy).
        let _ = GUARD.try_with(|_| ());
    }
    let out = f(&mut list);
    CURRENT.with(|c| c.set(list.head));
    PHASE.with(|p| p.set(LIVE));
    Some(out)
}

/// Whether the calling thread is inside one of umrf's cold paths.
pub(crate) fn is_busy() -> bool {
    PHASE.with(Cell::get) == BUSY
}

/// Releases the thread's rows when it exits: each class's slot lease, then the row's claim,
/// so the next thread that claims the row takes its slots (and every block still out comes
/// home to them).
struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut at = CURRENT.with(|c| c.replace(ptr::null_mut()));
        PHASE.with(|p| p.set(DEAD));
        while !at.is_null() {
            // SAFETY: rows of the list are live and owned by this thread; each is dropped and
            // freed once, with the layout it was allocated with.
            let next = unsafe { (*at).next };
            // SAFETY: as above.
            unsafe { ptr::drop_in_place(at) };
            // SAFETY: as above.
            unsafe { System.dealloc(at.cast(), Layout::new::<ThreadRow>()) };
            at = next;
        }
    }
}
