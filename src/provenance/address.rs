//! What [`owner_of`](super::owner_of) accepts: anything that names an address.

use core::ptr::NonNull;

use bytemuck::Pod;

use crate::residency::Residency;
use crate::{Frozen, SharedBuffer};

/// Something that names one address: a raw pointer of any type, a `NonNull`, a slice (its
/// first element), or a buffer or frozen block (the start of its data).
///
/// The address is only compared, never read, so any value is safe to pass, dangling or not.
///
/// ```
/// use umrf::{Pool, provenance::owner_of, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(1).slots(1).build()?;
/// let lease = pool.attach()?;
/// let buf = lease.alloc::<f32>(8)?;
/// let by_buffer = owner_of(&buf).unwrap();
/// assert_eq!(owner_of(buf.as_ptr()).unwrap().block_start, by_buffer.block_start); // *const f32
/// assert_eq!(owner_of(&buf[2..]).unwrap().offset, 8); // a slice: its first element
/// assert!(owner_of(core::ptr::NonNull::<u64>::dangling()).is_none());
/// # Ok::<(), umrf::Error>(())
/// ```
pub trait Address {
    /// The address, as an integer.
    fn address(&self) -> usize;
}

impl<T: ?Sized> Address for *const T {
    fn address(&self) -> usize {
        self.addr()
    }
}

impl<T: ?Sized> Address for *mut T {
    fn address(&self) -> usize {
        self.addr()
    }
}

impl<T: ?Sized> Address for NonNull<T> {
    fn address(&self) -> usize {
        self.as_ptr().addr()
    }
}

impl<T> Address for &[T] {
    fn address(&self) -> usize {
        self.as_ptr().addr()
    }
}

impl<T> Address for &mut [T] {
    fn address(&self) -> usize {
        self.as_ptr().addr()
    }
}

impl<T: Pod, R: Residency> Address for &SharedBuffer<T, R> {
    fn address(&self) -> usize {
        self.as_ptr().addr()
    }
}

impl<T: Pod, R: Residency> Address for &Frozen<T, R> {
    fn address(&self) -> usize {
        self.as_ptr().addr()
    }
}
