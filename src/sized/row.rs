//! One thread's lease on a row of class pools: the untyped allocation and free paths shared by
//! [`SizedLease`](super::SizedLease) and the global allocator.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use crate::backing;
use crate::error::Error;
use crate::pool::{BlockRef, LocalHandle, NOT_LOCAL, RawLease, Slot, UNKNOWN_TRIP};

use super::classes::{CLASS_COUNT, class_for};
use super::core::{Block, ClassExhaustion, Core, count};

/// Entries of a row's hot table: one per class, and one for the requests no class serves
/// ([`class_index`](super::classes::class_index)'s `CLASS_COUNT`), never attached.
const HOT_ENTRIES: usize = CLASS_COUNT + 1;

/// What the hot paths need of one attached class: the lease's handle on its slot and the
/// pool's geometry, one cache line per class (the lease's whole fast-path state for its 60
/// classes is 60 lines it alone touches).
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Hot {
    /// The leased slot; `None` until the class is attached.
    local: Option<LocalHandle>,
    base: NonNull<u8>,
    /// Bytes of the class's blocks from `base` (0 until attached): an address is one of
    /// them when its offset from `base`, wrapping, is below this.
    span: usize,
    block_size: usize,
    /// `ceil(2^64 / block_size)`: `offset / block_size` as a multiply-high, exact for every
    /// block start (`offset = k * block_size` with `k < 2^32`: the rounding error
    /// `k * (magic * block_size - 2^64)` stays below `2^64`; Lemire, Kaser and Kurz, "Faster
    /// remainder by direct computation", 2019).
    magic: u64,
    generation: u64,
}

impl Hot {
    const NONE: Hot = Hot {
        local: None,
        base: NonNull::dangling(),
        span: 0,
        block_size: 1,
        magic: 0,
        generation: NOT_LOCAL,
    };

    /// The leased slot, if attached.
    #[inline(always)]
    fn slot(&self) -> Option<NonNull<Slot>> {
        self.local.map(|local| local.slot())
    }

    /// Whether `addr` is inside this class's blocks (never, before the class is attached:
    /// `span` is 0).
    #[inline(always)]
    fn contains(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base.as_ptr().addr()) < self.span
    }
}

/// A row of class pools held by one thread.
///
/// # Invariants
/// 0. This lease holds `row`'s claim in `core` until `Drop`.
/// 1. `hot[c].local` is `Some` exactly when `leases[c]` holds a lease on the slot of the class
///    pool of (`c`, `row`), and then it is this thread's handle on that slot, and `hot[c]`
///    copies that lease and its pool's geometry.
/// 2. A `RowLease` is used by one thread only (it is `!Send`; the global allocator keeps it in
///    thread-local storage).
/// 3. `hot[c].local` is `None` for every `c > last` (those classes are never attached), so
///    the fast paths take any [`class_index`](super::classes::class_index) without comparing
///    it with `last`: a request above the row's classes finds no slot and goes the slow way.
pub(crate) struct RowLease<C: Deref<Target = Core>> {
    hot: [Cell<Hot>; HOT_ENTRIES],
    leases: [Cell<Option<RawLease>>; CLASS_COUNT],
    row: usize,
    /// `core.config.classes - 1`, copied: the class lookup of every allocation and free reads
    /// it, and the copy sits next to the hot entries instead of behind the core's pointer.
    last: usize,
    core: C,
    _not_send: PhantomData<*mut ()>,
}

impl<C: Deref<Target = Core>> RowLease<C> {
    /// The lease on `row`.
    ///
    /// # Safety
    /// The caller claimed `row` of `core` ([`Core::claim_row`]) and hands the claim over.
    pub(crate) unsafe fn new(core: C, row: usize) -> Self {
        RowLease {
            hot: [const { Cell::new(Hot::NONE) }; HOT_ENTRIES],
            leases: [const { Cell::new(None) }; CLASS_COUNT],
            row,
            last: core.config.classes - 1,
            core,
            _not_send: PhantomData,
        }
    }

    /// The row held.
    pub(crate) fn row(&self) -> usize {
        self.row
    }

    /// A block of at least `size` bytes (`size >= 1`) aligned to `align` (a power of two).
    ///
    /// # Errors
    /// [`Error::OverAligned`] for an alignment above the page size, [`Error::Exhausted`] per
    /// the exhaustion policy, and the builder's errors when a class pool or a large region
    /// cannot be made.
    #[inline(always)]
    pub(crate) fn alloc(&self, size: usize, align: usize) -> Result<Block, Error> {
        debug_assert!(size >= 1 && align.is_power_of_two());
        let Some(class) = class_for(size, align, self.last_class()) else {
            return self.alloc_beyond(size, align);
        };
        match self.alloc_fast(class, size) {
            Some(block) => Ok(block),
            None => self.alloc_slow(class, size),
        }
    }

    /// The largest class of the family.
    #[inline(always)]
    pub(crate) fn last_class(&self) -> usize {
        self.last
    }

    /// A block of `class` from its attached slot's own list: no refill, no attach, nothing
    /// that allocates or takes a lock. `class` is a [`class_index`](super::classes::class_index)
    /// (at most `CLASS_COUNT`): one above the row's classes has no slot (invariant 3). `None`
    /// sends the caller to [`alloc_slow`](Self::alloc_slow) (through [`alloc`](Self::alloc),
    /// which checks the class against the row's).
    #[inline(always)]
    pub(crate) fn alloc_fast(&self, class: usize, size: usize) -> Option<Block> {
        let hot = self.hot.get(class)?.get();
        let local = hot.local?;
        // SAFETY: invariant 1: this lease holds the slot, on this thread (invariant 2).
        let index = unsafe { local.pop() }?;
        Some(block_of(&hot, local, index, size))
    }

    /// A block of an attached `class` from its list or its slot's refill (a fresh block, or
    /// the remote frees): nothing that allocates, builds or takes a lock.
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_refill(&self, class: usize, size: usize) -> Option<Block> {
        let hot = self.hot[class].get();
        let local = hot.local?;
        // SAFETY: invariant 1: this lease holds the slot, on this thread (invariant 2).
        let index = unsafe { refill(local) }?;
        Some(block_of(&hot, local, index, size))
    }

    /// Attaches class `class`: builds its pool for this row if needed and leases its slot.
    #[cold]
    #[inline(never)]
    fn attach(&self, class: usize) -> Result<Hot, Error> {
        // Invariant 3: no class above the row's is attached.
        debug_assert!(class <= self.last);
        let hot = self.hot[class].get();
        if hot.local.is_some() {
            return Ok(hot);
        }
        // SAFETY: invariant 0: this lease holds the row's claim.
        let built = unsafe { self.core.build_cell(class, self.row) }?;
        let lease = RawLease::take(&built.raw, 0)?;
        // SAFETY: this thread took the lease just now, and the handle lives in `hot[class]`,
        // which is reset only with the lease (invariants 1 and 2).
        let local = unsafe { LocalHandle::new(lease.slot_ptr()) }.ok_or_else(|| {
            Error::InvalidConfig {
                reason: "a size class's pool records an ownership log; class pools are built without one".into(),
            }
        })?;
        let hot = Hot {
            local: Some(local),
            base: built.base,
            span: built.end - built.base.as_ptr().addr(),
            block_size: built.block_size,
            magic: magic_of(built.block_size),
            generation: lease.generation(),
        };
        self.leases[class].set(Some(lease));
        self.hot[class].set(hot);
        Ok(hot)
    }

    /// A block of `class` from its slot's slow refill, if any.
    fn take_from(&self, class: usize, size: usize) -> Result<Option<Block>, Error> {
        let hot = self.attach(class)?;
        let Some(local) = hot.local else {
            return Ok(None);
        };
        // SAFETY: invariant 1 (attached just now or before), on this thread (invariant 2).
        let taken = unsafe { local.pop() };
        // SAFETY: as above.
        let taken = taken.or_else(|| unsafe { refill(local) });
        Ok(taken.map(|index| block_of(&hot, local, index, size)))
    }

    /// The allocation path when the class's own list is empty: attach, refill, then the
    /// exhaustion policy.
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_slow(&self, class: usize, size: usize) -> Result<Block, Error> {
        if let Some(block) = self.take_from(class, size)? {
            return Ok(block);
        }
        let cell = self.core.cell(class, self.row);
        count(&cell.exhausted);
        let hot = self.hot[class].get();
        if let Some(slot) = hot.slot() {
            // SAFETY: invariant 1: the slot is leased by this lease, so it is live. Class pools
            // never log (their settings drop the log), so the event is empty; it is published
            // all the same, after the count, as every call-out is.
            unsafe { slot.as_ref() }.note_exhausted().publish();
        }
        let (borrow, large) = match self.core.config.exhaustion {
            ClassExhaustion::Fail => (0, false),
            ClassExhaustion::Borrow { classes } => (classes, false),
            ClassExhaustion::BorrowThenLarge { classes } => (classes, true),
        };
        let last = self.core.config.classes - 1;
        for larger in (class + 1)..=(class.saturating_add(borrow)).min(last) {
            if let Ok(Some(block)) = self.take_from(larger, size) {
                count(&cell.borrowed);
                return Ok(block);
            }
        }
        if large {
            count(&cell.to_large);
            return self.core.alloc_large(size, self.row);
        }
        Err(self.exhausted(class))
    }

    /// A request no class serves: over-aligned, or larger than the largest class.
    #[cold]
    #[inline(never)]
    pub(crate) fn alloc_beyond(&self, size: usize, align: usize) -> Result<Block, Error> {
        let page = backing::os::page_size();
        if align > page {
            return Err(Error::OverAligned {
                align,
                max_align: page,
            });
        }
        self.core.alloc_large(size, self.row)
    }

    /// The error for class `class` with no block left, here or in the classes it may borrow.
    fn exhausted(&self, class: usize) -> Error {
        let name = self
            .core
            .cell(class, self.row)
            .built()
            .map(|b| b.raw.inner().name.clone())
            .unwrap_or_else(|| crate::error::PoolName::new("sized"));
        Error::Exhausted {
            pool: name,
            residency: self.core.config.residency,
            slot: self.row,
            capacity: self.core.config.blocks_of(class),
        }
    }

    /// Frees `ptr` if it is a block of class `class` in this row; `false` (and nothing done)
    /// otherwise. A trusted free: with [`Record::Unrecorded`] the block goes on the stack with
    /// its state words not written (see `pool/state.rs`), for the Rust allocator interfaces;
    /// with [`Record::Recorded`], written, for a caller whose later frees are checked ones
    /// (the C `realloc`), so that a double free of the block is still caught.
    ///
    /// # Safety
    /// If `ptr` is inside this row's blocks of `class`, it is the start of a raw block of the
    /// row's (handed out by [`alloc`](Self::alloc) and never made into a buffer, so it never
    /// left home on a trip), that the caller owns and gives up.
    #[inline(always)]
    pub(crate) unsafe fn free_local(&self, ptr: NonNull<u8>, class: usize, record: Record) -> bool {
        let Some(found) = self.local_block(ptr.as_ptr().addr(), class) else {
            return false;
        };
        debug_assert!(found.exact);
        match record {
            // SAFETY: invariant 1: this lease holds the slot on this thread (invariant 2); the
            // caller gives the block up, a raw block that never left home (promise).
            Record::Unrecorded => unsafe { found.local.push_unrecorded(found.index) },
            // SAFETY: as above.
            Record::Recorded => unsafe { found.local.push(found.index) },
        }
        true
    }

    /// [`free_local`](Self::free_local) for a pointer nobody vouches for (a C `free`): an
    /// address inside this row's blocks of `class` is freed only if it is the start of a
    /// block that is out; one that is no block's start, or a block that is free already, is
    /// refused with nothing touched. [`LocalFree::NotHere`] for an address outside them (or a
    /// class out of range).
    ///
    /// # Safety
    /// If `ptr` is the start of a block of this row's `class` that is out, the caller owns it
    /// and gives it up.
    #[inline(always)]
    pub(crate) unsafe fn free_checked(&self, ptr: NonNull<u8>, class: usize) -> LocalFree {
        let Some(found) = self.local_block(ptr.as_ptr().addr(), class) else {
            return LocalFree::NotHere;
        };
        if !found.exact {
            return LocalFree::Interior;
        }
        // SAFETY: invariant 1: the slot is leased by this lease on this thread (invariant 2),
        // and the block is one of its (inside the class's blocks).
        match unsafe { found.local.is_free(found.index) } {
            Some(true) => LocalFree::AlreadyFree,
            None => LocalFree::Interior,
            Some(false) => {
                // SAFETY: invariant 1: this lease holds the slot on this thread (invariant
                // 2); caller's promise: the block is out, the caller's, and given up.
                unsafe { found.local.push(found.index) };
                LocalFree::Freed {
                    usable: found.block_size,
                }
            }
        }
    }

    /// Where `addr` lies among this row's blocks of `class`, from the row's own copy of the
    /// class's geometry (no page map, no pool record); `None` outside them.
    #[inline(always)]
    fn local_block(&self, addr: usize, class: usize) -> Option<LocalBlock> {
        let hot = self.hot.get(class)?.get();
        // One subtraction for the range check (as `Hot::contains`) and the index.
        let offset = addr.wrapping_sub(hot.base.as_ptr().addr());
        let local = hot.local.filter(|_| offset < hot.span)?;
        let offset = offset as u64;
        let index = index_of(offset, hot.magic);
        Some(LocalBlock {
            local,
            index,
            block_size: hot.block_size,
            exact: u64::from(index) * hot.block_size as u64 == offset,
        })
    }

    /// Frees block `index` of `slot`, a class pool's slot of class `class`: onto this row's
    /// list if the slot is this row's, else as a remote free.
    ///
    /// # Safety
    /// `slot` is live (one of its blocks is out: this one), and the caller owns block `index`
    /// and gives it up.
    #[inline(always)]
    pub(crate) unsafe fn free_block(&self, slot: NonNull<Slot>, index: u32, class: usize) {
        let generation = match self.hot.get(class).map(Cell::get) {
            Some(hot) if hot.slot() == Some(slot) => hot.generation,
            _ => NOT_LOCAL,
        };
        let block = BlockRef {
            slot,
            index,
            trip: UNKNOWN_TRIP,
        };
        // SAFETY: caller's promise gives the block up; `generation` is this thread's lease on
        // the home slot (invariant 1), or NOT_LOCAL.
        unsafe { block.release(generation) }
    }

    /// The class, block size and range check of `ptr` among this row's attached classes from
    /// `from` up: which class's blocks hold it, if any.
    pub(crate) fn find_class(&self, ptr: NonNull<u8>, from: usize) -> Option<usize> {
        let addr = ptr.as_ptr().addr();
        (from..self.core.config.classes).find(|&c| self.hot[c].get().contains(addr))
    }

    /// The lease generation of class `class`, if attached, with its slot.
    pub(crate) fn lease_of(&self, class: usize) -> Option<(NonNull<Slot>, u64)> {
        let hot = self.hot.get(class)?.get();
        hot.slot().map(|slot| (slot, hot.generation))
    }
}

/// Whether a trusted free ([`RowLease::free_local`]) writes the block's state words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// Not written: the block is free by being on the stack (the Rust allocator interfaces,
    /// whose callers never free a block twice).
    Unrecorded,
    /// Written, as every other free writes them (a free whose block the checked frees may
    /// meet again).
    Recorded,
}

/// What [`RowLease::free_checked`] did with a pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LocalFree {
    /// The block was out, and is on the row's list now.
    Freed {
        /// The block's size.
        usable: usize,
    },
    /// The start of a block that is free already (a double free): refused.
    AlreadyFree,
    /// Inside the row's blocks of the class, but no block's start: refused.
    Interior,
    /// Not inside the row's blocks of the class.
    NotHere,
}

/// A row's block found by [`RowLease::local_block`]: `index` is the block holding the
/// address, which is that block's start when `exact`.
struct LocalBlock {
    local: LocalHandle,
    index: u32,
    block_size: usize,
    exact: bool,
}

/// The multiplier of [`Hot::magic`] for `block_size` (at least 2).
pub(crate) const fn magic_of(block_size: usize) -> u64 {
    u64::MAX / block_size as u64 + 1
}

/// `offset / block_size` for a block start `offset`, with `magic = magic_of(block_size)` (a
/// multiply-high: see [`Hot::magic`]).
#[inline(always)]
pub(crate) const fn index_of(offset: u64, magic: u64) -> u32 {
    ((offset as u128 * magic as u128) >> 64) as u32
}

/// A block for an empty stack: the hot cell's, then the remote frees (so memory freed by
/// other threads is reused before fresh pages are touched), then a fresh block.
///
/// # Safety
/// The calling thread holds `local`'s lease.
#[inline(always)]
unsafe fn refill(local: LocalHandle) -> Option<u32> {
    // SAFETY: caller's promise.
    if let Some(block) = unsafe { local.pop_hot() } {
        return Some(block);
    }
    // SAFETY: caller's promise: the lease holder's slot, live while leased.
    let slot = unsafe { local.slot().as_ref() };
    // SAFETY: caller's promise.
    if unsafe { slot.drain_remote() } > 0 {
        // SAFETY: caller's promise.
        return unsafe { slot.pop_local() };
    }
    // SAFETY: caller's promise.
    unsafe { slot.refill() }
}

/// The block `index` of `hot`'s slot, its requested bytes counted on the slot.
///
/// `local` is `hot.local`, held by this thread (`RowLease` invariants 1 and 2).
#[inline(always)]
fn block_of(hot: &Hot, local: LocalHandle, index: u32, size: usize) -> Block {
    // SAFETY: the caller's lease holds the slot on this thread (RowLease invariants 1 and 2).
    unsafe { local.note_requested(size) };
    // SAFETY: `index` is a block of the slot, so the offset stays inside its blocks (Slot
    // invariant 0).
    let ptr = unsafe { hot.base.add(index as usize * hot.block_size) };
    Block {
        ptr,
        slot: local.slot(),
        index,
        local_gen: hot.generation,
        usable: hot.block_size,
    }
}

impl<C: Deref<Target = Core>> Drop for RowLease<C> {
    fn drop(&mut self) {
        for lease in &self.leases {
            drop(lease.take());
        }
        // Invariant 0: the claim goes last, after every slot lease is given back.
        self.core.release_row(self.row);
    }
}

#[cfg(test)]
mod tests {
    use super::{index_of, magic_of};
    use crate::sized::{CLASS_COUNT, class_bytes};

    #[test]
    fn the_multiply_high_finds_every_block_index_of_every_class() {
        let blocks: u64 = if cfg!(miri) { 1 << 8 } else { 1 << 20 };
        for class in 0..CLASS_COUNT {
            let size = class_bytes(class) as u64;
            let magic = magic_of(size as usize);
            for k in (0..blocks).chain([u32::MAX as u64 / size]) {
                assert_eq!(
                    u64::from(index_of(k * size, magic)),
                    k,
                    "class {class}, block {k}"
                );
            }
        }
    }
}
