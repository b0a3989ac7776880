//! `Arena`: bump allocation in pool blocks — no free, only reset.
//!
//! An arena takes one or more blocks from a lease when it is made and carves allocations out of
//! them by moving a cursor downwards (as `bumpalo` does: one subtraction and one mask, the
//! alignment of a downward bump needs no rounding up). Allocations are never freed one by one;
//! [`Arena::reset`] takes them all back at once in O(1), and its `&mut self` receiver is the
//! proof that none is still borrowed. The blocks go home when the arena is dropped.

use core::cell::Cell;
use core::fmt;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::buffer::SharedBuffer;
use crate::error::{Error, PoolName};
use crate::pool::{BLOCK_GRANULE, LocalPool};
use crate::residency::Residency;

/// A bump region of residency `R`, made of blocks taken from a pool: allocations are borrows
/// of the arena, and the only way to free them is [`reset`](Self::reset), for all at once.
///
/// `alloc` takes `&self` and returns `&mut [T]` tied to that borrow (many allocations live side
/// by side); `reset` takes `&mut self`, so the compiler refuses it while any allocation is in
/// use, and refuses any allocation that would outlive the arena (invariant I4). Running out of
/// room is an [`Error::ArenaFull`], never a panic.
///
/// An arena belongs to the thread of the lease it was made from (`!Send`, `!Sync`): make one
/// per core, from each core's own lease. Its memory is that of the pool's blocks, so it has the
/// pool's residency; the blocks count as in use while the arena lives and go home when it is
/// dropped.
///
/// ```
/// use umrf::{Arena, Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(64 * 1024).blocks_per_slot(4).slots(2).build()?;
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         let pool = pool.clone();
///         std::thread::spawn(move || {
///             let lease = pool.attach().unwrap();
///             let mut arena = Arena::new_in(&lease, 64 * 1024).unwrap(); // one per core
///             let mut checksum = 0u64;
///             for round in 0..100u64 {
///                 let keys = arena.alloc_from_slice(&[round; 16]).unwrap();
///                 let scratch = arena.alloc_zeroed::<f32>(1000).unwrap();
///                 scratch[0] = keys[15] as f32;
///                 checksum += scratch[0] as u64;
///                 arena.reset(); // O(1): every allocation of this round is gone
///             }
///             checksum
///         })
///     })
///     .collect();
/// for worker in workers {
///     assert_eq!(worker.join().unwrap(), 4950);
/// }
/// assert_eq!(pool.stats().in_use(), 0); // the arenas' blocks went home
/// # Ok::<(), umrf::Error>(())
/// ```
///
/// # Invariants
/// 0. `chunks` is not empty; each chunk is a buffer of `chunk_bytes` bytes whose start is
///    aligned to `chunk_align` (≥ [`BLOCK_GRANULE`]).
/// 1. `current < chunks.len()`, `base` is the start of `chunks[current]` (its raw pointer, with
///    the whole block's provenance) and `offset <= chunk_bytes`.
/// 2. Since the last reset (or the arena's creation), the bytes handed out are: all of
///    `chunks[..current]` that was handed out before the cursor moved on, and
///    `chunks[current][offset..]`. Bytes below `offset` in the current chunk, and all of
///    `chunks[current + 1..]`, are not borrowed by any allocation.
/// 3. No allocation outlives a shared borrow of the arena, and `reset` and `Drop` take it
///    exclusively: when they run, no allocation is alive.
pub struct Arena<R: Residency> {
    offset: Cell<usize>,
    base: Cell<NonNull<u8>>,
    current: Cell<usize>,
    chunk_bytes: usize,
    chunk_align: usize,
    chunks: Box<[SharedBuffer<u8, R>]>,
    pool: PoolName,
}

impl<R: Residency> Arena<R> {
    /// An arena of at least `bytes` bytes (rounded up to whole blocks, at least one), taken
    /// from `lease`'s slot (or its fallback pools).
    ///
    /// Each allocation must fit in one block: an arena of several blocks moves to the next
    /// block when the current one has no room left, leaving the rest of it unused until the
    /// reset.
    ///
    /// # Errors
    /// [`Error::Exhausted`] when the lease cannot supply the blocks; the blocks already taken
    /// go back, nothing is lost.
    ///
    /// ```
    /// use umrf::{Arena, Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(4).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let arena = Arena::new_in(&lease, 10_000)?; // three blocks
    /// assert_eq!((arena.capacity(), arena.chunks()), (12_288, 3));
    /// assert!(matches!(Arena::new_in(&lease, 8192), Err(Error::Exhausted { .. })));
    /// assert_eq!(lease.stats().in_use, 3); // the failed arena gave its block back
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn new_in(lease: &LocalPool<R>, bytes: usize) -> Result<Arena<R>, Error> {
        let inner = lease.raw_pool().inner();
        let chunk_bytes = inner.block_size;
        let count = bytes.div_ceil(chunk_bytes).max(1);
        let chunks = (0..count)
            .map(|_| lease.alloc::<u8>(chunk_bytes))
            .collect::<Result<Box<[_]>, Error>>()?;
        Ok(Arena {
            offset: Cell::new(chunk_bytes),
            base: Cell::new(chunks[0].raw_ptr()),
            current: Cell::new(0),
            chunk_bytes,
            chunk_align: inner.block_align,
            chunks,
            pool: inner.name.clone(),
        })
    }

    /// Allocates `len` elements of `T`. The contents are unspecified but initialised (what the
    /// block held before: zero if never used); `len == 0` and zero-sized `T` are allowed.
    ///
    /// # Errors
    /// [`Error::ArenaFull`] when no block of the arena has room left (reset it),
    /// [`Error::TooLarge`] for a request larger than one block, [`Error::Misaligned`] for a `T`
    /// aligned more strictly than the pool's blocks.
    ///
    /// ```
    /// use umrf::{Arena, Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let arena = Arena::new_in(&lease, 256)?;
    /// let a = arena.alloc::<u64>(16)?;
    /// let b = arena.alloc::<u8>(100)?;
    /// a[0] = 1;
    /// b[0] = 2;
    /// assert!(matches!(arena.alloc::<u8>(200), Err(Error::ArenaFull { requested: 200, .. })));
    /// assert!(matches!(arena.alloc::<u8>(300), Err(Error::TooLarge { .. })));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)] // disjoint pieces of memory the arena owns, as in bumpalo
    pub fn alloc<T: Pod>(&self, len: usize) -> Result<&mut [T], Error> {
        // Every failure is built inline, and the slow path returns a pointer or nothing: no
        // call on this path writes into the returned `Result` (see `LocalPool::alloc`).
        let align = align_of::<T>();
        // Blocks are aligned to at least BLOCK_GRANULE: for the usual `T` this compiles away.
        if align > BLOCK_GRANULE && align > self.chunk_align {
            return Err(self.misaligned::<T>());
        }
        let Some(bytes) = len.checked_mul(size_of::<T>()) else {
            return Err(self.too_large(usize::MAX));
        };
        let ptr = match self.bump(bytes, align) {
            Some(ptr) => ptr,
            None => match self.bump_next_chunk(bytes, align) {
                Some(ptr) => ptr,
                None => return Err(self.no_room(bytes)),
            },
        };
        // SAFETY: `bump` returned `bytes` bytes aligned for `T` in a chunk (invariants 0, 1:
        // `align <= chunk_align`), borrowed by no other allocation (2), valid while `&self` is
        // (3); they are initialised and `T: Pod` accepts any bytes.
        let slice = unsafe { core::slice::from_raw_parts_mut(ptr.cast::<T>().as_ptr(), len) };
        Ok(slice)
    }

    /// Allocates `len` elements of `T`, all zero.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    ///
    /// ```
    /// use umrf::{Arena, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let mut arena = Arena::new_in(&lease, 256)?;
    /// arena.alloc::<u8>(256)?.fill(0xff);
    /// arena.reset();
    /// assert!(arena.alloc_zeroed::<u32>(64)?.iter().all(|&x| x == 0));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)] // as for `alloc`
    pub fn alloc_zeroed<T: Pod>(&self, len: usize) -> Result<&mut [T], Error> {
        let slice = self.alloc::<T>(len)?;
        slice.fill(T::zeroed());
        Ok(slice)
    }

    /// Allocates a copy of `data`.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc) with `len = data.len()`.
    ///
    /// ```
    /// use umrf::{Arena, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let arena = Arena::new_in(&lease, 256)?;
    /// let copy = arena.alloc_from_slice(&[1.5f64, 2.5])?;
    /// copy[1] += 1.0;
    /// assert_eq!(copy, &[1.5, 3.5]);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)] // as for `alloc`
    pub fn alloc_from_slice<T: Pod>(&self, data: &[T]) -> Result<&mut [T], Error> {
        let slice = self.alloc::<T>(data.len())?;
        slice.copy_from_slice(data);
        Ok(slice)
    }

    /// Allocates one value.
    ///
    /// # Errors
    /// As [`alloc`](Self::alloc).
    ///
    /// ```
    /// use umrf::{Arena, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let arena = Arena::new_in(&lease, 64)?;
    /// let counter = arena.alloc_value(41u32)?;
    /// *counter += 1;
    /// assert_eq!(*counter, 42);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)] // as for `alloc`
    pub fn alloc_value<T: Pod>(&self, value: T) -> Result<&mut T, Error> {
        let slot = self.alloc::<T>(1)?;
        slot[0] = value;
        Ok(&mut slot[0])
    }

    /// Takes every allocation back at once, in O(1): the arena is empty again.
    ///
    /// The `&mut self` receiver is the proof that no allocation is still in use: the compiler
    /// refuses a reset while any borrow from [`alloc`](Self::alloc) lives. The contents are
    /// left as they are (allocations after the reset see them, as `alloc` documents).
    ///
    /// ```
    /// use umrf::{Arena, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let mut arena = Arena::new_in(&lease, 64)?;
    /// let first = arena.alloc::<u8>(64)?.as_ptr();
    /// assert!(arena.alloc::<u8>(1).is_err()); // full
    /// arena.reset();
    /// assert_eq!(arena.alloc::<u8>(64)?.as_ptr(), first); // the same memory, again
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn reset(&mut self) {
        self.current.set(0);
        self.base.set(self.chunks[0].raw_ptr());
        self.offset.set(self.chunk_bytes);
    }

    /// The arena's size in bytes: its blocks, together.
    pub fn capacity(&self) -> usize {
        self.chunks.len() * self.chunk_bytes
    }

    /// The number of blocks the arena holds.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes per block: the largest single allocation.
    pub fn chunk_size(&self) -> usize {
        self.chunk_bytes
    }

    /// Bytes used since the last reset, counting the unused ends of the blocks the arena has
    /// moved past and the padding for alignment.
    ///
    /// ```
    /// use umrf::{Arena, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(128).blocks_per_slot(2).slots(1).build()?;
    /// let lease = pool.attach()?;
    /// let arena = Arena::new_in(&lease, 256)?;
    /// arena.alloc::<u8>(100)?;
    /// assert_eq!((arena.used(), arena.remaining()), (100, 156));
    /// arena.alloc::<u8>(100)?; // does not fit in the first block's 28 bytes: the second block
    /// assert_eq!((arena.used(), arena.remaining()), (228, 28));
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn used(&self) -> usize {
        self.current.get() * self.chunk_bytes + (self.chunk_bytes - self.offset.get())
    }

    /// Bytes not yet used: in the current block and in the blocks after it.
    pub fn remaining(&self) -> usize {
        self.capacity() - self.used()
    }

    /// The residency's name.
    pub fn residency_name(&self) -> &'static str {
        R::NAME
    }

    /// The fast path: `bytes` below the cursor of the current chunk, aligned down to `align`.
    #[inline(always)]
    fn bump(&self, bytes: usize, align: usize) -> Option<NonNull<u8>> {
        // One branch: a masked offset stays at or above zero, the start of the chunk.
        let offset = self.offset.get().checked_sub(bytes)? & !(align - 1);
        self.offset.set(offset);
        // SAFETY: `offset` <= the old offset <= `chunk_bytes` (invariant 1), so the result lies
        // in the current chunk or one past its end.
        let ptr = unsafe { self.base.get().add(offset) };
        Some(ptr)
    }

    /// The slow path: move to the next chunk, which has room for any request that fits in a
    /// block (it is empty and aligned to `chunk_align` >= `align`).
    #[cold]
    #[inline(never)]
    fn bump_next_chunk(&self, bytes: usize, align: usize) -> Option<NonNull<u8>> {
        let next = self.current.get() + 1;
        if bytes > self.chunk_bytes || next >= self.chunks.len() {
            return None;
        }
        // Invariant 2: chunks after the current one are not borrowed; leaving the rest of the
        // current one unused keeps every handed-out byte handed out once.
        self.current.set(next);
        self.base.set(self.chunks[next].raw_ptr());
        self.offset.set(self.chunk_bytes);
        self.bump(bytes, align)
    }

    /// The error for a request that found no room (built inline: see `alloc`).
    #[inline(always)]
    fn no_room(&self, bytes: usize) -> Error {
        if bytes > self.chunk_bytes {
            self.too_large(bytes)
        } else {
            Error::ArenaFull {
                pool: self.pool.clone(),
                requested: bytes,
                capacity: self.capacity(),
            }
        }
    }

    #[inline(always)]
    fn too_large(&self, bytes: usize) -> Error {
        Error::TooLarge {
            requested: bytes,
            block_size: self.chunk_bytes,
            pool: self.pool.clone(),
        }
    }

    #[inline(always)]
    fn misaligned<T>(&self) -> Error {
        Error::Misaligned {
            type_name: core::any::type_name::<T>(),
            align: align_of::<T>(),
            block_align: self.chunk_align,
            pool: self.pool.clone(),
        }
    }
}

impl<R: Residency> fmt::Debug for Arena<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("pool", &self.pool)
            .field("residency", &R::NAME)
            .field("capacity", &self.capacity())
            .field("chunk_size", &self.chunk_bytes)
            .field("used", &self.used())
            .finish()
    }
}
