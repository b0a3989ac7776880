//! Checked frees for callers that cannot trust their pointers (a C `free`): what any address
//! is to the global pools, found through the page map, and frees that refuse interior pointers
//! and blocks that are free already.
//!
//! A block's state word (see `pool::state`) says whether it is out or free: allocation marks
//! it owned, a local free marks it free before the push, a remote free records it free on its
//! trip before the queue push, and the drain keeps it free. So a second free of a block finds
//! it free and is refused, whichever thread made either free. Two threads freeing the same
//! block at the same instant may both read it out before either marks it; that is a data race
//! in the program, which no check outside the push itself can order.

use core::ptr::NonNull;

use super::{GlobalPool, free_class_block, thread};
use crate::pool::BlockState;
use crate::residency::Residency;
use crate::sized::pagemap::{self, ClassBlock, Entry};
use crate::sized::row::LocalFree;
use crate::sync::statics::Ordering;

/// What an address is to a [`GlobalPool`], from [`GlobalPool::classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PointerKind {
    /// The start of a block that is out, with `usable` bytes.
    Live {
        /// The block's size: the bytes the caller may use.
        usable: usize,
    },
    /// The start of a block that is free now (freeing it again would be a double free).
    Free,
    /// Inside one of umrf's regions but not the start of a block (an interior pointer).
    Interior,
    /// Not umrf's: null, or an address of another allocator (or none).
    Foreign,
}

/// Why a block's state is read: to answer a query, or to free the block if it is out (a free
/// that did not go through the calling thread's row: most often a free away from the block's
/// home, which writes the block's remote word next; see
/// `StateTable::state_before_remote_free`).
#[derive(Clone, Copy)]
enum Access {
    Query,
    Free,
}

/// Where an address lies, as [`GlobalPool::free_checked`] needs it.
enum Located {
    /// The start of a class pool's block; `free` if its state says so.
    Block {
        block: ClassBlock,
        free: bool,
    },
    /// The start of a large block.
    Large {
        usable: usize,
    },
    Interior,
    Foreign,
}

impl<R: Residency> GlobalPool<R> {
    /// What `ptr` is to the global pools: the start of a live block, of a free one, an
    /// interior address, or not umrf's. Two loads of the page map and the block's state words
    /// (with one entry of its class's free stack); any address may be asked about, nothing is
    /// dereferenced outside umrf's own records. Where the pool took frees through the Rust
    /// allocator interfaces (`GlobalAlloc::dealloc`, which write no block state), a block that
    /// reads as live is looked for on its class's free stack first: a scan of that stack,
    /// which the C-style entry points ([`free_checked`](Self::free_checked),
    /// [`resize`](Self::resize)) never cause.
    ///
    /// # Safety
    /// If `ptr` points into one of umrf's large blocks (above the largest class), no other
    /// thread frees that block while this call runs (see
    /// [`usable_size`](GlobalPool::usable_size)). Any other address may be asked about.
    ///
    /// ```
    /// use umrf::{GlobalPool, PointerKind, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate(100, 8);
    /// // SAFETY (all four): no large block of umrf's is asked about.
    /// assert_eq!(unsafe { POOL.classify(p) }, PointerKind::Live { usable: 112 });
    /// assert_eq!(unsafe { POOL.classify(p.wrapping_add(8)) }, PointerKind::Interior);
    /// assert_eq!(unsafe { POOL.classify(&0u8) }, PointerKind::Foreign);
    /// // SAFETY: p came from POOL and is freed once.
    /// unsafe { POOL.free(p) };
    /// assert_eq!(unsafe { POOL.classify(p) }, PointerKind::Free);
    /// ```
    pub unsafe fn classify(&self, ptr: *const u8) -> PointerKind {
        // SAFETY: caller's promise, passed on.
        match unsafe { self.locate(ptr) } {
            Located::Block { free: true, .. } => PointerKind::Free,
            Located::Block { block, .. } => PointerKind::Live {
                usable: block.block_size,
            },
            Located::Large { usable } => PointerKind::Live { usable },
            Located::Interior => PointerKind::Interior,
            Located::Foreign => PointerKind::Foreign,
        }
    }

    /// Where `ptr` lies: the page map's answer, with the block of a class pool named.
    ///
    /// # Safety
    /// As [`classify`](Self::classify).
    #[inline]
    unsafe fn locate(&self, ptr: *const u8) -> Located {
        // SAFETY: caller's promise, passed on.
        unsafe { self.locate_entry(ptr, pagemap::get(ptr.addr()), Access::Query) }
    }

    /// [`locate`](Self::locate) with the page map's answer for `ptr` already read, for a
    /// query or for a free (see [`Access`]).
    ///
    /// # Safety
    /// As [`classify`](Self::classify).
    #[inline]
    unsafe fn locate_entry(&self, ptr: *const u8, entry: Option<Entry>, access: Access) -> Located {
        let addr = ptr.addr();
        match entry {
            None => Located::Foreign,
            Some(Entry::Class(cell)) => {
                // SAFETY: cells in the page map belong to a global pool's core, which is
                // leaked: it lives for the rest of the process.
                let Some(block) = pagemap::class_block(unsafe { cell.as_ref() }, addr) else {
                    return Located::Interior;
                };
                // SAFETY: the slot of a built class pool lives as long as the core (leaked).
                let slot = unsafe { block.slot.as_ref() };
                let state = match access {
                    Access::Query => slot.state(block.index),
                    Access::Free => slot.state_before_remote_free(block.index),
                };
                match state {
                    Some(state) => Located::Block {
                        block,
                        free: state == BlockState::Free,
                    },
                    None => Located::Interior,
                }
            }
            // SAFETY: caller's promise: no thread frees the large block meanwhile.
            Some(Entry::Large(_)) => match unsafe { self.usable_size(ptr.cast_mut()) } {
                Some(usable) => Located::Large { usable },
                None => Located::Interior,
            },
        }
    }

    /// Frees `ptr` only if it is the start of a live block of umrf's, and returns what it was:
    /// [`PointerKind::Live`] when freed; [`Free`](PointerKind::Free) (a double free) and
    /// [`Interior`](PointerKind::Interior) are refused and counted in
    /// [`GlobalStats::invalid_frees`](super::GlobalStats::invalid_frees);
    /// [`Foreign`](PointerKind::Foreign) is left alone and counted as a foreign free, for the
    /// caller to hand to the allocator it came from.
    ///
    /// # Safety
    /// If `ptr` is a live block of umrf's, the caller owns it and gives it up: nothing uses it
    /// after this call. If `ptr` points inside one of umrf's large blocks, no other thread
    /// frees that block while this call runs (as for [`classify`](Self::classify): a racing
    /// free of the same block is a data race in the program, which no check can order).
    ///
    /// ```
    /// use umrf::{GlobalPool, PointerKind, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let p = POOL.allocate(64, 8);
    /// // SAFETY: p came from POOL; the second call is refused, not performed.
    /// assert_eq!(unsafe { POOL.free_checked(p) }, PointerKind::Live { usable: 64 });
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { POOL.free_checked(p) }, PointerKind::Free);
    /// assert_eq!(POOL.stats().invalid_frees, 1);
    /// ```
    #[inline]
    pub unsafe fn free_checked(&self, ptr: *mut u8) -> PointerKind {
        let entry = pagemap::get(ptr.addr());
        if let Some(Entry::Class(cell)) = entry
            && let Some(nonnull) = NonNull::new(ptr)
            && let Some(row) = thread::current()
            && row.owner == self.id()
        {
            // SAFETY: cells in the page map belong to a global pool's core, which is leaked:
            // it lives for the rest of the process.
            let class = unsafe { cell.as_ref() }.class as usize;
            // SAFETY: the caller's promise: a live block of umrf's at `ptr` is given up.
            match unsafe { row.lease.free_checked(nonnull, class) } {
                LocalFree::Freed { usable } => return PointerKind::Live { usable },
                LocalFree::AlreadyFree => return self.refuse(PointerKind::Free),
                LocalFree::Interior => return self.refuse(PointerKind::Interior),
                LocalFree::NotHere => {}
            }
        }
        // SAFETY: the caller's promise, passed on.
        unsafe { self.free_checked_away(ptr, entry) }
    }

    /// Counts a refused free and returns what the pointer was.
    #[cold]
    fn refuse(&self, kind: PointerKind) -> PointerKind {
        self.counters.invalid_frees.fetch_add(1, Ordering::Relaxed);
        kind
    }

    /// [`free_checked`](Self::free_checked) of a pointer that is not a block of the calling
    /// thread's row: another row's block (a remote free), a large block, or not umrf's.
    /// `entry` is the page map's answer for `ptr`.
    ///
    /// # Safety
    /// As [`free_checked`](Self::free_checked).
    unsafe fn free_checked_away(&self, ptr: *mut u8, entry: Option<Entry>) -> PointerKind {
        // SAFETY: caller's promise (`free_checked`'s, which covers `classify`'s).
        match unsafe { self.locate_entry(ptr, entry, Access::Free) } {
            Located::Block { block, free: false } => {
                // SAFETY: the caller owns the live block at `ptr` and gives it up; its slot
                // lives as long as the core.
                unsafe { free_class_block(block) };
                PointerKind::Live {
                    usable: block.block_size,
                }
            }
            Located::Large { usable } => {
                if let Some(block) = NonNull::new(ptr) {
                    // SAFETY: the caller owns the live large block at `ptr` and gives it up.
                    unsafe { self.free_mapped(block) };
                }
                PointerKind::Live { usable }
            }
            Located::Foreign => {
                self.counters.foreign_frees.fetch_add(1, Ordering::Relaxed);
                PointerKind::Foreign
            }
            Located::Interior => self.refuse(PointerKind::Interior),
            Located::Block { free: true, .. } => self.refuse(PointerKind::Free),
        }
    }
}
