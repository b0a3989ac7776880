//! The page map: which size-class region, if any, an address belongs to, in two loads.
//!
//! A two-level radix table over 4 KiB chunks of a 48-bit address space, after the segment map
//! of mimalloc: a static top level of 2^18 leaf pointers (2 MiB of zero pages in `.bss`, of
//! which only the entries in use are ever touched) and leaves of 2^18 words, each made on first
//! use from the system allocator and kept for the life of the process. Regions are whole pages
//! (at least 4 KiB, page aligned), so a chunk belongs to at most one region.
//!
//! A word is null (not ours) or the address of the region's record, with the low bit telling
//! which kind of record (see [`Entry`]). Records are published with `Release` and read with
//! `Acquire`, so a reader that finds one sees it whole. An entry is removed before its region
//! is returned to the operating system; a pointer handed out from the region can only be freed
//! while the region lives, and a pointer of another allocator can only fall in the range after
//! the region is gone (and its entries with it).

use core::ptr::NonNull;
#[cfg(not(umrf_loom))]
use std::alloc::{GlobalAlloc, Layout, System};

use crate::pool::Slot;
#[cfg(not(umrf_loom))]
use crate::sync::statics::{AtomicPtr, Ordering};
// Under loom the map is a loom static, made afresh for each explored execution (`loom_tests`).
#[cfg(umrf_loom)]
use crate::sync::{AtomicPtr, Ordering};

use super::classes::{CLASS_COUNT, class_bytes};
use super::core::ClassCell;
use super::row::{index_of, magic_of};

/// Bytes per map chunk: the smallest page of the platforms umrf supports.
const CHUNK_SHIFT: u32 = 12;
/// Under loom, a map of 4 leaves of 2 chunks (the first 32 KiB of addresses): loom atomics are
/// each constructed and tracked, so the models use a table a few words long.
const LEAF_BITS: u32 = if cfg!(umrf_loom) { 1 } else { 18 };
const TOP_BITS: u32 = if cfg!(umrf_loom) {
    2
} else {
    48 - CHUNK_SHIFT - LEAF_BITS
};
const LEAF_LEN: usize = 1 << LEAF_BITS;
const TOP_LEN: usize = 1 << TOP_BITS;

/// One leaf: the words of 2^18 chunks (1 GiB of address space).
struct Leaf([AtomicPtr<u8>; LEAF_LEN]);

#[cfg(not(umrf_loom))]
static TOP: [AtomicPtr<Leaf>; TOP_LEN] = [const { AtomicPtr::new(core::ptr::null_mut()) }; TOP_LEN];

#[cfg(umrf_loom)]
crate::sync::lazy_static! {
    static ref TOP: [AtomicPtr<Leaf>; TOP_LEN] =
        core::array::from_fn(|_| AtomicPtr::new(core::ptr::null_mut()));
}

/// The low bit of a word: set for a large allocation's slot, clear for a class cell.
const LARGE_TAG: usize = 1;

/// What an address of ours belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    /// A block of a size-class pool, whose cell this is.
    Class(NonNull<ClassCell>),
    /// The block of a large allocation: the one slot of its own pool.
    Large(NonNull<Slot>),
}

impl Entry {
    /// The tagged pointer stored for this entry (it keeps the record's provenance).
    fn word(self) -> *mut u8 {
        match self {
            Entry::Class(cell) => cell.as_ptr().cast(),
            Entry::Large(slot) => slot.as_ptr().cast::<u8>().map_addr(|a| a | LARGE_TAG),
        }
    }
}

/// The leaf for top-level index `top`, made if `create` and absent. `None` when absent and not
/// made (or the system allocator refused the memory).
fn leaf(top: usize, create: bool) -> Option<&'static Leaf> {
    let cell = &TOP[top];
    let found = cell.load(Ordering::Acquire);
    if !found.is_null() {
        // SAFETY: leaves are never freed, and a published pointer is to a fully zeroed leaf
        // (Release below pairs with the Acquire above).
        return Some(unsafe { &*found });
    }
    if !create {
        return None;
    }
    let fresh = new_leaf()?;
    match cell.compare_exchange(
        core::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: just published; leaves are zeroed atomics (all-zero is a valid null
        // `AtomicPtr`), never freed.
        Ok(_) => Some(unsafe { &*fresh }),
        Err(other) => {
            // SAFETY: `fresh` came from `new_leaf` and was never shared (the CAS failed).
            unsafe { free_leaf(fresh) };
            // SAFETY: as for `found` above.
            Some(unsafe { &*other })
        }
    }
}

/// A leaf of null words, from the system allocator (never the global one, so a global
/// allocator built on this map cannot recurse into itself); `None` if it has no memory.
#[cfg(not(umrf_loom))]
fn new_leaf() -> Option<*mut Leaf> {
    // SAFETY: the layout has a non-zero size.
    let fresh = unsafe { System.alloc_zeroed(Layout::new::<Leaf>()) }.cast::<Leaf>();
    (!fresh.is_null()).then_some(fresh)
}

/// Under loom, a leaf of constructed loom atomics (all-zero bytes are not one).
#[cfg(umrf_loom)]
fn new_leaf() -> Option<*mut Leaf> {
    let words = core::array::from_fn(|_| AtomicPtr::new(core::ptr::null_mut()));
    Some(Box::into_raw(Box::new(Leaf(words))))
}

/// Frees a leaf that [`new_leaf`] made and no other thread has seen.
///
/// # Safety
/// `leaf` came from `new_leaf` and was never published.
#[cfg(not(umrf_loom))]
unsafe fn free_leaf(leaf: *mut Leaf) {
    // SAFETY: caller's promise: `new_leaf` allocated it from `System` with this layout.
    unsafe { System.dealloc(leaf.cast(), Layout::new::<Leaf>()) }
}

/// Under loom: as above, for the boxed leaf.
///
/// # Safety
/// As above.
#[cfg(umrf_loom)]
unsafe fn free_leaf(leaf: *mut Leaf) {
    // SAFETY: caller's promise: `new_leaf` boxed it, and nobody else holds it.
    drop(unsafe { Box::from_raw(leaf) });
}

/// The chunk numbers of `start..start + len`, or `None` if they leave the mapped space.
fn chunks(start: usize, len: usize) -> Option<core::ops::Range<usize>> {
    let first = start >> CHUNK_SHIFT;
    let end = start
        .checked_add(len)?
        .checked_add((1 << CHUNK_SHIFT) - 1)?
        >> CHUNK_SHIFT;
    (end <= TOP_LEN * LEAF_LEN).then_some(first..end)
}

/// The block of a size-class pool that starts at an address (see [`class_block`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClassBlock {
    /// The class pool's slot.
    pub(crate) slot: NonNull<Slot>,
    /// The block's index in it.
    pub(crate) index: u32,
    /// The class.
    pub(crate) class: usize,
    /// The block size of the class.
    pub(crate) block_size: usize,
}

/// `magic_of(class_bytes(c))` for every class `c`: the block index of an offset is a
/// multiply-high, not a division.
static MAGICS: [u64; CLASS_COUNT] = {
    let mut magics = [0; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        magics[class] = magic_of(class_bytes(class));
        class += 1;
    }
    magics
};

/// The block of `cell`'s class pool that starts at `addr`, or `None` if the pool is not built
/// or `addr` is no block's start (an interior address, or outside the blocks).
///
/// The index is `offset * magic >> 64` (exact for every block start, see `row.rs`), checked
/// by multiplying back: an offset that is no multiple of the block size never passes.
#[inline(always)]
pub(crate) fn class_block(cell: &ClassCell, addr: usize) -> Option<ClassBlock> {
    let built = cell.built()?;
    let base = built.base.as_ptr().addr();
    if addr < base || addr >= built.end {
        return None;
    }
    let offset = (addr - base) as u64;
    let class = cell.class as usize;
    debug_assert_eq!(class_bytes(class), built.block_size);
    let index = index_of(offset, *MAGICS.get(class)?);
    (u64::from(index) * built.block_size as u64 == offset).then_some(ClassBlock {
        slot: built.slot,
        index,
        class,
        block_size: built.block_size,
    })
}

/// Maps every chunk of `start..start + len` (a page-aligned region) to `entry`.
///
/// # Errors
/// A description of the cause when the range is above 2^48 or the system allocator refuses
/// a leaf; nothing stays mapped then.
pub(crate) fn insert(start: usize, len: usize, entry: Entry) -> Result<(), &'static str> {
    let range = chunks(start, len).ok_or("the region lies above the 48-bit address space")?;
    let word = entry.word();
    for (done, chunk) in range.clone().enumerate() {
        let Some(leaf) = leaf(chunk >> LEAF_BITS, true) else {
            remove(start, done << CHUNK_SHIFT);
            return Err("the system allocator refused 2 MiB for a page-map leaf");
        };
        debug_assert!(
            leaf.0[chunk & (LEAF_LEN - 1)]
                .load(Ordering::Relaxed)
                .is_null()
        );
        leaf.0[chunk & (LEAF_LEN - 1)].store(word, Ordering::Release);
    }
    Ok(())
}

/// Unmaps every chunk of `start..start + len`.
pub(crate) fn remove(start: usize, len: usize) {
    let Some(range) = chunks(start, len) else {
        return;
    };
    for chunk in range {
        if let Some(leaf) = leaf(chunk >> LEAF_BITS, false) {
            leaf.0[chunk & (LEAF_LEN - 1)].store(core::ptr::null_mut(), Ordering::Release);
        }
    }
}

/// What `addr` belongs to, if it is inside a mapped region.
#[inline]
pub(crate) fn get(addr: usize) -> Option<Entry> {
    let chunk = addr >> CHUNK_SHIFT;
    let top = TOP.get(chunk >> LEAF_BITS)?.load(Ordering::Acquire);
    if top.is_null() {
        return None;
    }
    // SAFETY: a non-null top entry is a published, never-freed leaf (see `leaf`).
    let leaf = unsafe { &*top };
    let word = leaf.0[chunk & (LEAF_LEN - 1)].load(Ordering::Acquire);
    let ptr = NonNull::new(word.map_addr(|a| a & !LARGE_TAG))?;
    Some(if word.addr() & LARGE_TAG == 0 {
        Entry::Class(ptr.cast())
    } else {
        Entry::Large(ptr.cast())
    })
}

#[cfg(all(test, umrf_loom))]
mod loom_tests;

#[cfg(all(test, not(umrf_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_range_answers_every_address_and_nothing_else() {
        let slot = NonNull::<Slot>::dangling();
        let base = 0x7100_0000_0000usize;
        insert(base, 3 << CHUNK_SHIFT, Entry::Large(slot)).unwrap();
        for addr in [base, base + 1, base + (3 << CHUNK_SHIFT) - 1] {
            assert!(matches!(get(addr), Some(Entry::Large(s)) if s == slot));
        }
        assert!(get(base - 1).is_none());
        assert!(get(base + (3 << CHUNK_SHIFT)).is_none());
        remove(base, 3 << CHUNK_SHIFT);
        assert!(get(base).is_none());
        assert!(get(usize::MAX).is_none());
        assert!(insert(usize::MAX - 4096, 4096, Entry::Large(slot)).is_err());
    }
}
