//! Page handles and pin guards.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use bytemuck::Pod;

use super::error::PageId;
use super::store::TieredStore;
use crate::{Residency, Transferable};

/// The handle of one page of `T`s in a [`TieredStore<R>`]: the right to pin it.
///
/// One handle per page, not `Clone`: a shared pin borrows it (`&`), a writing pin borrows it
/// exclusively (`&mut`), so the borrow checker rules out a writer beside a reader, and no pin
/// outlives its handle or its store. The handle is plain data (the store's id and the page
/// number), `Send` and [`Transferable`]: it can be sent in a [mailbox](crate::mailbox()) to the
/// thread that owns the store, as the capability to that page. Give the page back with
/// [`TieredStore::free`]; a handle dropped without it keeps the page until the store drops.
///
/// ```
/// use umrf::tiered::{Tiered, TieredStore};
/// use umrf::residency::CpuLocal;
/// let store = TieredStore::<CpuLocal>::builder().page_size(4096).ram_budget(8 * 4096).build()?;
/// let (tx, rx) = umrf::mailbox::<Tiered<u64, CpuLocal>>(1);
/// let mut page = store.alloc::<u64>()?;
/// store.pin_mut(&mut page)?[0] = 42;
/// std::thread::spawn(move || tx.send(page).unwrap()).join().unwrap(); // and back
/// let page = rx.recv().unwrap();
/// assert_eq!(store.pin(&page)?[0], 42);
/// store.free(page)?;
/// # Ok::<(), umrf::tiered::TieredError>(())
/// ```
#[must_use = "a page lives until `TieredStore::free` or the store's drop"]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Tiered<T: Pod, R: Residency> {
    pub(crate) store: u64,
    pub(crate) page: u32,
    pub(crate) _marker: PhantomData<fn() -> (T, R)>,
}

// SAFETY: a handle is two integers; it reaches no memory (pins go through the store, which
// stays on its thread), so moving it shares no mutable state.
unsafe impl<T: Pod, R: Residency> Transferable for Tiered<T, R> {}

impl<T: Pod, R: Residency> Tiered<T, R> {
    /// The page's number in its store.
    ///
    /// ```
    /// use umrf::tiered::{PageId, TieredStore};
    /// let store = TieredStore::<umrf::residency::CpuLocal>::builder().page_size(64).ram_budget(64).build()?;
    /// assert_eq!(store.alloc::<u8>()?.id(), PageId(0));
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn id(&self) -> PageId {
        PageId(self.page)
    }
}

/// A page pinned in RAM for reading: it derefs to the page's `T`s, and the page is not evicted
/// until the guard drops.
///
/// # Invariants
/// 0. `page` of `store` has a pin counted for this guard, so (table invariant 1) its block is
///    in RAM and the store neither evicts, writes, nor frees it while the guard lives.
/// 1. `ptr` is the start of that block, aligned for `T` (checked at `alloc`), and `len` `T`s
///    fill the page.
/// 2. No [`PinnedMut`] of the page exists: that needs `&mut` of the page's only handle, which
///    this guard borrows shared.
#[must_use = "the page is pinned while the guard lives"]
pub struct Pinned<'a, T: Pod, R: Residency> {
    pub(crate) store: &'a TieredStore<R>,
    pub(crate) page: u32,
    pub(crate) ptr: NonNull<T>,
    pub(crate) len: usize,
    pub(crate) _handle: PhantomData<&'a Tiered<T, R>>,
}

impl<T: Pod, R: Residency> Deref for Pinned<'_, T, R> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: invariants 0 and 1: `ptr` is valid and aligned for `len` initialised `T`s
        // (bytes of a `Pod` type) for the guard's life; invariant 2: nothing writes them.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> Drop for Pinned<'_, T, R> {
    fn drop(&mut self) {
        self.store.unpin(self.page);
    }
}

/// A page pinned in RAM for writing: it derefs mutably to the page's `T`s; the page is dirty
/// (it will be written to a tier when evicted) and not evicted until the guard drops.
///
/// # Invariants
/// 0. and 1. as for [`Pinned`].
/// 2. No other guard of the page exists: this one borrows the page's only handle mutably.
#[must_use = "the page is pinned while the guard lives"]
pub struct PinnedMut<'a, T: Pod, R: Residency> {
    pub(crate) store: &'a TieredStore<R>,
    pub(crate) page: u32,
    pub(crate) ptr: NonNull<T>,
    pub(crate) len: usize,
    pub(crate) _handle: PhantomData<&'a mut Tiered<T, R>>,
}

impl<T: Pod, R: Residency> Deref for PinnedMut<'_, T, R> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: invariants 0 and 1: `ptr` is valid and aligned for `len` initialised `T`s
        // for the guard's life; `&self` keeps `deref_mut` from running meanwhile.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> DerefMut for PinnedMut<'_, T, R> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: invariants 0 and 1: `ptr` is valid and aligned for `len` `T`s for the
        // guard's life; invariant 2 and `&mut self`: this is the only access to them, and any
        // bit pattern is a valid `T: Pod`.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> Drop for PinnedMut<'_, T, R> {
    fn drop(&mut self) {
        self.store.unpin(self.page);
    }
}
