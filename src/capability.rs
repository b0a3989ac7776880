//! `Capability`: a buffer in flight between threads, move-only.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use bytemuck::Pod;

use crate::buffer::SharedBuffer;
use crate::error::PoolName;
use crate::pool::{BlockRef, LocalPool, NOT_LOCAL};
use crate::residency::Residency;

/// Ownership of one pool block, on its way to another thread.
///
/// Made only by [`SharedBuffer::into_capability`], which consumes the buffer. It is `Send` but
/// not `Clone` or `Copy`, so exactly one thread can turn it back into a buffer, with
/// [`accept`](Self::accept) on a lease of the same pool. Dropping it unaccepted returns the
/// block home. Send it over a [`mailbox`](crate::mailbox()).
///
/// ```
/// use umrf::{mailbox, Capability, Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(1024).blocks_per_slot(8).slots(2).build()?;
/// let (tx, rx) = mailbox::<Capability<f32, CpuLocal>>(4);
/// let worker_pool = pool.clone();
/// let worker = std::thread::spawn(move || {
///     let lease = worker_pool.attach().unwrap();
///     let buf = rx.recv().unwrap().accept(&lease).unwrap();
///     buf.iter().sum::<f32>()
/// });
/// let lease = pool.attach()?;
/// tx.send(lease.alloc_from_slice(&[1.0f32, 2.0, 3.0])?.into_capability()).unwrap();
/// assert_eq!(worker.join().unwrap(), 6.0);
/// # Ok::<(), umrf::Error>(())
/// ```
///
/// # Invariants
/// 0. `ptr`, `len` and `block` are those of a [`SharedBuffer`] given up for this capability:
///    in bounds, aligned, initialised.
/// 1. This value is the block's only owner (I1), and the block's state is `InFlight`.
#[must_use = "a capability owns a block: send it, or accept it; dropping it returns the block home"]
pub struct Capability<T: Pod, R: Residency> {
    ptr: NonNull<T>,
    len: usize,
    block: BlockRef,
    _marker: PhantomData<(T, R)>,
}

// SAFETY: a capability is the sole owner of its block (invariant 1) and gives no access to the
// data while in flight; moving it moves that ownership. The block's bytes are `T: Pod + Send`
// values. Its drop is a lock-free remote free, correct from any thread.
unsafe impl<T: Pod + Send, R: Residency> Send for Capability<T, R> {}

impl<T: Pod, R: Residency> Capability<T, R> {
    /// A capability over a buffer's parts.
    ///
    /// # Safety
    /// The parts come from [`SharedBuffer::into_parts`] of a buffer of the same `T` and `R`,
    /// and the block's state was set to `InFlight`.
    pub(crate) unsafe fn from_parts(ptr: NonNull<T>, len: usize, block: BlockRef) -> Self {
        Capability {
            ptr,
            len,
            block,
            _marker: PhantomData,
        }
    }

    /// Gives up the capability without returning the block: the caller becomes its owner.
    pub(crate) fn into_parts(self) -> (NonNull<T>, usize, BlockRef) {
        let this = ManuallyDrop::new(self);
        (this.ptr, this.len, this.block.share())
    }

    /// Turns the capability back into a buffer owned by the thread of `lease`.
    ///
    /// The lease must belong to the pool the block came from (or to a pool that falls back to
    /// it). If it leases the block's home slot, the buffer will later be freed locally; else
    /// its drop is a remote free home.
    ///
    /// # Errors
    /// [`AcceptError`] holding the capability, when `lease` belongs to another pool; take it
    /// back with [`AcceptError::into_inner`].
    ///
    /// ```
    /// use umrf::{AcceptErrorKind, Pool, residency::CpuLocal};
    /// let a = Pool::<CpuLocal>::builder().name("a").block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let b = Pool::<CpuLocal>::builder().name("b").block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let (lease_a, lease_b) = (a.attach()?, b.attach()?);
    /// let cap = lease_a.alloc_from_slice(&[5u8])?.into_capability();
    /// let err = cap.accept(&lease_b).unwrap_err();
    /// assert!(matches!(err.kind(), AcceptErrorKind::ForeignPool { .. }));
    /// let buf = err.into_inner().accept(&lease_a).unwrap(); // nothing was lost
    /// assert_eq!(buf[0], 5);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    #[inline]
    pub fn accept(self, lease: &LocalPool<R>) -> Result<SharedBuffer<T, R>, AcceptError<T, R>> {
        let Some((local_gen, owner)) = lease.adopt(self.block.slot) else {
            lease.note_accept_failure();
            let kind = AcceptErrorKind::ForeignPool {
                expected: lease.raw_pool().inner().name.clone(),
                found: self.pool_name(),
            };
            return Err(AcceptError {
                capability: self,
                kind,
            });
        };
        let trip = self.block.arrive(local_gen != NOT_LOCAL, owner);
        let this = ManuallyDrop::new(self);
        let block = BlockRef {
            slot: this.block.slot,
            index: this.block.index,
            trip,
        };
        // SAFETY: the parts are this capability's (invariant 0), given up just now; `adopt`
        // returned a generation of a lease held by this thread on the home slot, or NOT_LOCAL.
        let buffer = unsafe { SharedBuffer::from_parts(this.ptr, this.len, block, local_gen) };
        Ok(buffer)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a capability holds at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The slot the block belongs to.
    pub fn home_slot(&self) -> usize {
        self.block.slot().index()
    }

    /// The name of the pool the block belongs to.
    #[inline]
    pub fn pool_name(&self) -> PoolName {
        // SAFETY: BlockRef invariant 0: the pool is live while this block is out.
        unsafe { self.block.slot().pool().as_ref() }.name.clone()
    }
}

impl<T: Pod, R: Residency> Drop for Capability<T, R> {
    fn drop(&mut self) {
        // SAFETY: invariant 1: the capability owns the block and gives it up here.
        unsafe { self.block.release_remote() }
    }
}

impl<T: Pod, R: Residency> fmt::Debug for Capability<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capability")
            .field("element", &core::any::type_name::<T>())
            .field("len", &self.len)
            .field("residency", &R::NAME)
            .field("home_slot", &self.home_slot())
            .finish()
    }
}

/// Why a capability was not accepted.
///
/// ```
/// use umrf::{AcceptErrorKind, Pool, residency::CpuLocal};
/// let a = Pool::<CpuLocal>::builder().name("a").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// let b = Pool::<CpuLocal>::builder().name("b").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// let cap = a.attach()?.alloc::<u8>(1)?.into_capability();
/// let err = cap.accept(&b.attach()?).unwrap_err();
/// assert_eq!(
///     err.kind().to_string(),
///     "the capability's block belongs to pool `a` but the lease is on pool `b`: accept it with a lease of `a`"
/// );
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptErrorKind {
    /// The lease belongs to another pool than the block.
    ForeignPool {
        /// The lease's pool.
        expected: PoolName,
        /// The block's pool.
        found: PoolName,
    },
}

impl fmt::Display for AcceptErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptErrorKind::ForeignPool { expected, found } => write!(
                f,
                "the capability's block belongs to pool `{found}` but the lease is on pool `{expected}`: accept it with a lease of `{found}`"
            ),
        }
    }
}

/// A failed [`Capability::accept`]: it hands the capability back, so nothing is lost.
///
/// Its `Debug` does not require `T: Debug`.
pub struct AcceptError<T: Pod, R: Residency> {
    capability: Capability<T, R>,
    kind: AcceptErrorKind,
}

impl<T: Pod, R: Residency> AcceptError<T, R> {
    /// Why the capability was refused.
    pub fn kind(&self) -> &AcceptErrorKind {
        &self.kind
    }

    /// The capability, unchanged.
    pub fn into_inner(self) -> Capability<T, R> {
        self.capability
    }
}

impl<T: Pod, R: Residency> fmt::Debug for AcceptError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptError")
            .field("capability", &self.capability)
            .field("kind", &self.kind)
            .finish()
    }
}

impl<T: Pod, R: Residency> fmt::Display for AcceptError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl<T: Pod, R: Residency> std::error::Error for AcceptError<T, R> {}
