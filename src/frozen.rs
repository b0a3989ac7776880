//! `Frozen`: a block frozen read-only, shared by many readers on any cores (single writer,
//! many readers).
//!
//! A [`SharedBuffer`] has one writer. [`SharedBuffer::freeze`] ends the writing: the block
//! becomes read-only and its ownership passes to a *reader group*, a count of live `Frozen`
//! handles. Handles are cheap to clone, `Send + Sync` and [`Transferable`], so they go to
//! other cores in mailbox messages and are read there in place. Reading writes nothing shared:
//! no cache line of the data bounces between the readers' cores. The last reader either frees
//! the block (it goes home, like a dropped buffer) or takes it back as a writable buffer with
//! [`Frozen::try_thaw`].

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::buffer::SharedBuffer;
use crate::pool::{BlockRef, BlockState, LocalPool, NOT_LOCAL};
use crate::residency::Residency;
use crate::sync::{Ordering, fence, thread_tag};
use crate::transfer::Transferable;

/// Counts at or above this are out of the normal range: a handle count that reaches it was
/// inflated by leaked handles (`mem::forget` of about two billion clones).
const READERS_OVERFLOW: u32 = 1 << 31;

/// Where an overflowed count is parked, far from both zero and the wrap-around, so that it
/// never comes back to zero: the block is then leaked, never freed under a live reader.
const READERS_STUCK: u32 = 3 << 30;

/// A read-only block shared by a group of readers: single writer (before the freeze), many
/// readers (after).
///
/// Made by [`SharedBuffer::freeze`], which consumes the buffer. It derefs to `[T]` and gives
/// no mutable access. Cloning makes another reader of the same block (one atomic increment on
/// the block's reader count; no copy). Handles are `Send + Sync` and [`Transferable`], so they
/// can be sent to other cores, in mailbox messages too. The block goes home when the last
/// reader drops: onto its slot's local free list if that happens on the thread that froze it
/// while it still leases the block's home slot, else as a lock-free remote free.
///
/// ```
/// use umrf::{BlockState, Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(8).slots(1).build()?;
/// let lease = pool.attach()?;
/// let mut table = lease.alloc_zeroed::<u32>(1024)?;
/// table.iter_mut().enumerate().for_each(|(i, x)| *x = i as u32 * 3);
/// let table = table.freeze(); // from here on, read-only
///
/// let readers: Vec<_> = (0..4)
///     .map(|r| {
///         let table = table.clone();
///         std::thread::spawn(move || table.iter().skip(r).step_by(4).map(|&x| u64::from(x)).sum::<u64>())
///     })
///     .collect();
/// let total: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
/// assert_eq!(total, 3 * (1023 * 1024 / 2));
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Frozen));
/// drop(table); // the last reader: the block goes home
/// assert_eq!(pool.block_state(0, 0), Some(BlockState::Free));
/// assert_eq!(pool.stats().in_use(), 0);
/// # Ok::<(), umrf::Error>(())
/// ```
///
/// # Invariants
/// 0. `ptr`, `len` and `block` are those of the [`SharedBuffer`] that was frozen: in bounds,
///    aligned, initialised.
/// 1. The block's reader count equals the number of live handles of this group (while it is
///    below `READERS_OVERFLOW`; from there on it is parked at `READERS_STUCK` and never
///    reaches zero). The group owns the block (I1); its state is `Frozen`. No handle gives
///    mutable access, so from the freeze until the last handle is gone the block is not
///    written.
/// 2. `block.trip` is the trip the group holds the block on (never `UNKNOWN_TRIP`).
/// 3. `home_gen` is `NOT_LOCAL`, or the generation of the home slot's lease that the thread
///    named `home_thread` held when it froze the block.
pub struct Frozen<T: Pod, R: Residency> {
    ptr: NonNull<T>,
    len: usize,
    block: BlockRef,
    home_gen: u64,
    home_thread: u64,
    _marker: PhantomData<(T, R)>,
}

// SAFETY: a handle gives only shared, read-only access to `T: Pod + Sync` values (invariant 1),
// like `Arc<[T]>`; the reader count is atomic and the last handle's drop, which frees the block,
// is correct on any thread (a remote free unless invariant 3 proves this is the home thread).
unsafe impl<T: Pod + Send + Sync, R: Residency> Send for Frozen<T, R> {}
// SAFETY: `&Frozen` gives `&[T]` (needs `T: Sync`) and `clone`, an atomic increment.
unsafe impl<T: Pod + Send + Sync, R: Residency> Sync for Frozen<T, R> {}
// SAFETY: no handle can write the block (invariant 1): what crosses cores is read-only data
// and a share of its ownership, never shared mutable state.
unsafe impl<T: Pod + Send + Sync, R: Residency> Transferable for Frozen<T, R> {}

impl<T: Pod, R: Residency> Frozen<T, R> {
    /// Freezes `buffer`: the only reader, for now. See [`SharedBuffer::freeze`].
    pub(crate) fn new(buffer: SharedBuffer<T, R>) -> Self {
        let local_gen = buffer.local_gen();
        let (ptr, len, mut block) = buffer.into_parts();
        let home_gen = if block.is_home(local_gen) {
            local_gen
        } else {
            NOT_LOCAL
        };
        // The only handle: no other thread can see the count until this handle is shared,
        // which synchronises.
        block.readers().store(1, Ordering::Relaxed);
        block.trip = block.depart_as(local_gen, BlockState::Frozen);
        Frozen {
            ptr,
            len,
            block,
            home_gen,
            home_thread: thread_tag(),
            _marker: PhantomData,
        }
    }

    /// The elements as bytes. (The slice methods, `len` and `iter` among them, come through
    /// `Deref<Target = [T]>`.)
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let frozen = pool.attach()?.alloc_from_slice(&[0x0102u16, 7])?.freeze();
    /// assert_eq!(frozen.len(), 2);
    /// assert_eq!(&frozen.as_bytes()[..2], &0x0102u16.to_ne_bytes());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(self)
    }

    /// How many handles of this group are alive now (other threads may change it at once).
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let frozen = pool.attach()?.alloc::<u8>(1)?.freeze();
    /// let other = frozen.clone();
    /// assert_eq!(frozen.readers(), 2);
    /// drop(other);
    /// assert_eq!(frozen.readers(), 1);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn readers(&self) -> usize {
        self.block.readers().load(Ordering::Relaxed) as usize
    }

    /// The slot the block belongs to (where it returns when the last reader drops).
    pub fn home_slot(&self) -> usize {
        self.block.slot().index()
    }

    /// The residency's name.
    pub fn residency_name(&self) -> &'static str {
        R::NAME
    }

    /// Takes the block back as a writable buffer owned by the thread of `lease`, if this is
    /// the last reader.
    ///
    /// `lease` must belong to the pool the block came from (or a pool that falls back to it),
    /// which proves this thread holds a lease of that pool. If it leases the block's home slot,
    /// the buffer is later freed locally; else its drop is a remote free home. The residency
    /// is part of the type: a lease of another residency does not compile.
    ///
    /// # Errors
    /// A [`ThawError`] that hands the handle back, unchanged (take it with
    /// [`ThawError::into_inner`]), when other readers are alive (see
    /// [`readers`](Self::readers)) or `lease` belongs to another pool.
    ///
    /// ```
    /// use umrf::{BlockState, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let frozen = lease.alloc_from_slice(&[1u32, 2])?.freeze();
    /// let reader = frozen.clone();
    /// let frozen = frozen.try_thaw(&lease).unwrap_err().into_inner(); // `reader` still reads it
    /// drop(reader);
    /// let mut buf = frozen.try_thaw(&lease).unwrap(); // the last reader
    /// buf[0] = 10;
    /// assert_eq!(&buf[..], &[10, 2]);
    /// assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn try_thaw(self, lease: &LocalPool<R>) -> Result<SharedBuffer<T, R>, ThawError<T, R>> {
        // Acquire pairs with the Release decrement of every reader that dropped: what they
        // read happens before the writes the buffer allows from now on.
        let readers = self.block.readers().load(Ordering::Acquire);
        if readers != 1 {
            return Err(ThawError {
                frozen: self,
                kind: ThawErrorKind::OtherReaders {
                    readers: readers as usize,
                },
            });
        }
        let Some((local_gen, owner)) = lease.adopt(self.block.slot) else {
            return Err(ThawError {
                frozen: self,
                kind: ThawErrorKind::ForeignPool,
            });
        };
        // This is the only handle (count 1, and a count never comes back from the stuck
        // range), so no other thread can clone it: the group ends here.
        let this = ManuallyDrop::new(self);
        let (ptr, len, block) = (this.ptr, this.len, &this.block);
        // SAFETY: the frozen buffer's parts (invariant 0), same T and R, given up by their sole
        // owner (not dropped); `adopt` returned NOT_LOCAL or a generation of a lease of the
        // home slot held by this thread (`lease` is `!Send`).
        let buffer = unsafe { SharedBuffer::arrive(ptr, len, block, local_gen, owner) };
        Ok(buffer)
    }

    /// The last reader gives the block up.
    #[cold]
    #[inline(never)]
    fn release(&self) {
        if self.home_gen != NOT_LOCAL && thread_tag() == self.home_thread {
            // SAFETY: the group owned the block and this was its last handle (invariant 1);
            // `home_gen` was taken on `home_thread` (invariant 3), which is this thread.
            unsafe { self.block.release(self.home_gen) }
        } else {
            // SAFETY: as above: the last handle gives the block up.
            unsafe { self.block.release_remote() }
        }
    }
}

/// `SharedBuffer::freeze`, defined beside the type it makes.
impl<T: Pod, R: Residency> SharedBuffer<T, R> {
    /// Ends the writing: the buffer becomes a [`Frozen`] block, read-only, that any number of
    /// readers on any cores may share (single writer, many readers).
    ///
    /// ```
    /// use umrf::{BlockState, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let frozen = lease.alloc_from_slice(&[1u8, 2, 3])?.freeze();
    /// let reader = frozen.clone();
    /// std::thread::spawn(move || assert_eq!(&reader[..], &[1, 2, 3])).join().unwrap();
    /// assert_eq!(pool.block_state(0, 0), Some(BlockState::Frozen));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn freeze(self) -> Frozen<T, R> {
        Frozen::new(self)
    }
}

impl<T: Pod, R: Residency> Clone for Frozen<T, R> {
    /// Another reader of the same block: one atomic increment, no copy of the data.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let a = pool.attach()?.alloc_from_slice(&[7u8])?.freeze();
    /// let b = a.clone();
    /// assert_eq!(a.as_ptr(), b.as_ptr());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed, as in `Arc::clone`: this handle keeps the group alive while the count rises.
        let old = self.block.readers().fetch_add(1, Ordering::Relaxed);
        if old >= READERS_OVERFLOW {
            stick(self.block.readers());
        }
        Frozen {
            ptr: self.ptr,
            len: self.len,
            block: self.block.share(),
            home_gen: self.home_gen,
            home_thread: self.home_thread,
            _marker: PhantomData,
        }
    }
}

/// Parks an overflowed reader count where it never reaches zero (invariant 1): the block is
/// leaked rather than freed under a reader. Only leaked handles can bring a count this high.
#[cold]
#[inline(never)]
fn stick(readers: &crate::sync::AtomicU32) {
    readers.store(READERS_STUCK, Ordering::Relaxed);
}

impl<T: Pod, R: Residency> Deref for Frozen<T, R> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: invariant 0 (in bounds, aligned, initialised) and invariant 1 (nothing writes
        // the block while any handle lives).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod, R: Residency> Drop for Frozen<T, R> {
    #[inline]
    fn drop(&mut self) {
        // Release, as in `Arc::drop`: this reader's reads happen before the block is freed or
        // thawed by whoever takes the count to its end.
        let old = self.block.readers().fetch_sub(1, Ordering::Release);
        if old == 1 {
            // Pairs with the other readers' Release decrements.
            fence(Ordering::Acquire);
            self.release();
        } else if old >= READERS_OVERFLOW {
            stick(self.block.readers());
        }
    }
}

/// Why [`Frozen::try_thaw`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThawErrorKind {
    /// Other readers of the block are alive (the count when it was checked, this one
    /// included).
    OtherReaders {
        /// Live handles, this one included.
        readers: usize,
    },
    /// The lease belongs to another pool than the block.
    ForeignPool,
}

/// A refused [`Frozen::try_thaw`]: it hands the reader handle back, so nothing is lost.
///
/// It implements [`std::error::Error`] (and is `Send + Sync` like the handle), so `?` works
/// into `Box<dyn Error + Send + Sync>` or, dropping the handle, into [`crate::Error`]. Its
/// `Debug` does not require `T: Debug`.
///
/// ```
/// use umrf::{Pool, ThawErrorKind, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
/// let lease = pool.attach()?;
/// let frozen = lease.alloc::<u8>(1)?.freeze();
/// let reader = frozen.clone();
/// let err = frozen.try_thaw(&lease).unwrap_err();
/// assert_eq!(err.kind(), ThawErrorKind::OtherReaders { readers: 2 });
/// assert!(err.to_string().contains("2 readers"));
/// drop(reader);
/// let buf = err.into_inner().try_thaw(&lease)?; // the last reader now
/// assert_eq!(buf.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub struct ThawError<T: Pod, R: Residency> {
    frozen: Frozen<T, R>,
    kind: ThawErrorKind,
}

impl<T: Pod, R: Residency> ThawError<T, R> {
    /// Why the thaw was refused.
    pub fn kind(&self) -> ThawErrorKind {
        self.kind
    }

    /// The reader handle, unchanged.
    pub fn into_inner(self) -> Frozen<T, R> {
        self.frozen
    }
}

impl<T: Pod, R: Residency> fmt::Debug for ThawError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThawError")
            .field("kind", &self.kind)
            .field("home_slot", &self.frozen.home_slot())
            .field("residency", &R::NAME)
            .finish()
    }
}

impl<T: Pod, R: Residency> fmt::Display for ThawError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ThawErrorKind::OtherReaders { readers } => write!(
                f,
                "cannot thaw a frozen block that {readers} readers share: drop the other reader handles first, or keep reading it frozen"
            ),
            ThawErrorKind::ForeignPool => f.write_str(
                "cannot thaw a frozen block with a lease of another pool: thaw it with a lease of the pool it came from",
            ),
        }
    }
}

impl<T: Pod, R: Residency> std::error::Error for ThawError<T, R> {}

impl<T: Pod + fmt::Debug, R: Residency> fmt::Debug for Frozen<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen")
            .field("residency", &R::NAME)
            .field("home_slot", &self.home_slot())
            .field("block", &self.block.index)
            .field("readers", &self.readers())
            .field("data", &&**self)
            .finish()
    }
}

/// Loom models of the reader count: `RUSTFLAGS="--cfg umrf_loom" cargo test --lib --release
/// frozen::loom` (or `.ci/loom`). Each model asserts that its racy outcomes were all reached.
#[cfg(all(test, umrf_loom))]
mod loom {
    use std::collections::BTreeSet;

    use crate::Pool;
    use crate::residency::CpuLocal;
    use crate::sync::model;

    fn one_block_pool() -> Pool<CpuLocal> {
        Pool::<CpuLocal>::builder()
            .block_size(64)
            .blocks_per_slot(1)
            .slots(2)
            .prefault(false)
            .build()
            .unwrap()
    }

    /// Two readers drop at once, on two threads: the block is freed exactly once, after both
    /// reads (the slot's only block comes back once: one allocation succeeds, the next fails).
    /// The outcome is whether the other thread's reader was the last one.
    #[test]
    fn loom_racing_last_readers_free_the_block_once() {
        let outcomes = model("loom_racing_last_readers_free_the_block_once", || {
            let pool = one_block_pool();
            let lease = pool.attach_slot(0).unwrap();
            let frozen = lease.alloc_from_slice(&[7u8]).unwrap().freeze();
            let other = frozen.clone();
            let reader = ::loom::thread::spawn(move || {
                assert_eq!(other[0], 7);
                let last = other.readers() == 1;
                drop(other);
                last
            });
            assert_eq!(frozen[0], 7);
            drop(frozen);
            let other_was_last = reader.join().unwrap();
            let only = lease.alloc::<u8>(1).unwrap();
            assert!(lease.alloc::<u8>(1).is_err(), "the block was freed twice");
            drop(only);
            other_was_last
        });
        assert_eq!(outcomes, BTreeSet::from([false, true]));
    }

    /// A reader drops on another thread while the home thread tries to thaw: the thaw
    /// succeeds only once the other reader is gone, and then the buffer owns the block alone.
    /// The outcome is whether the first thaw succeeded.
    #[test]
    fn loom_thaw_races_a_reader_drop() {
        let outcomes = model("loom_thaw_races_a_reader_drop", || {
            let pool = one_block_pool();
            let lease = pool.attach_slot(0).unwrap();
            let frozen = lease.alloc_from_slice(&[1u8]).unwrap().freeze();
            let other = frozen.clone();
            let reader = ::loom::thread::spawn(move || drop(other));
            let first = frozen.try_thaw(&lease);
            let first_try = first.is_ok();
            reader.join().unwrap();
            let thawed = first.unwrap_or_else(|refused| {
                let frozen = refused.into_inner();
                frozen.try_thaw(&lease).ok().expect("the last reader thaws")
            });
            assert_eq!(thawed[0], 1);
            assert_eq!(lease.stats().in_use, 1);
            drop(thawed);
            assert_eq!(lease.stats().in_use, 0);
            first_try
        });
        assert_eq!(outcomes, BTreeSet::from([false, true]));
    }
}
