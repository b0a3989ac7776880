//! Lookups of the global allocator's blocks, which its pools leave out of the registry: they
//! are found through the page map, which knows every region of the global allocator's class
//! pools (see `sized::pagemap`).

use crate::pool::{PoolInner, Slot};
use crate::sized::pagemap::{self, Entry};

/// The block of a global allocator's class pool that holds `addr`, as `read` of its slot, its
/// pool and the offset from the slot's first block; `None` if the page map does not know the
/// address, its class pool is not built, or the address is in the region's slack after the
/// last block.
///
/// Large allocations (a region of their own, returned to the operating system when the block
/// is freed) are not answered: their slot may be freed while the lookup reads it, and a lookup
/// takes no lock that would keep it.
pub(super) fn with_class_block_at<T>(
    addr: usize,
    read: impl FnOnce(&Slot, &PoolInner, usize) -> T,
) -> Option<T> {
    let Entry::Class(cell) = pagemap::get(addr)? else {
        return None;
    };
    // SAFETY: a class cell in the page map belongs to a global allocator's core, which is
    // leaked (it lives for the rest of the process); only the global allocator maps pages.
    let cell = unsafe { cell.as_ref() };
    let built = cell.built()?;
    let start = built.base.as_ptr().addr();
    if addr < start || addr >= built.end {
        return None;
    }
    // SAFETY: `Built` invariant 0: `slot` is the only slot of `raw`, valid while `raw` lives,
    // and `raw` lives as long as the cell's core: for the rest of the process.
    let slot = unsafe { built.slot.as_ref() };
    Some(read(slot, built.raw.inner(), addr - start))
}
