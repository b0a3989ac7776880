//! A region: one contiguous, page-aligned piece of memory that backs a pool slot.

use core::ptr::NonNull;

use super::os;
use crate::residency::Strategy;

/// What the operating system really gave for one slot's region.
///
/// The residency type states the strategy that was asked for; this says what was obtained, so
/// a fallback is never silent. Returned by [`Pool::backing`](crate::Pool::backing).
///
/// ```
/// use umrf::{Pool, residency::{CpuLocal, Strategy}};
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(4).slots(1).build()?;
/// let info = &pool.backing()[0];
/// assert_eq!(info.strategy, Strategy::CpuLocal);
/// assert!(info.bytes >= 4 * 4096);
/// assert!(info.page_size >= 4096);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackingInfo {
    /// The strategy the residency asked for.
    pub strategy: Strategy,
    /// The mechanism that produced the memory.
    pub mechanism: Mechanism,
    /// Size of the region in bytes (a whole number of pages).
    pub bytes: usize,
    /// The page size backing the region, in bytes.
    pub page_size: usize,
    /// Whether every page was faulted in when the pool was built.
    pub prefaulted: bool,
    /// Why this mechanism was used, in words.
    pub reason: String,
}

/// The mechanism that produced a region's memory.
///
/// ```
/// use umrf::backing::Mechanism;
/// assert_eq!(Mechanism::AnonymousMmap.to_string(), "anonymous mmap");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// A private anonymous `mmap` with the kernel's default page size and memory policy.
    AnonymousMmap,
    /// The global allocator, used where system calls cannot run (Miri, loom).
    Heap,
}

impl core::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Mechanism::AnonymousMmap => "anonymous mmap",
            Mechanism::Heap => "heap allocation",
        })
    }
}

/// Owned memory for one slot.
///
/// # Invariants
/// 0. `ptr` is the start of `len` bytes, page aligned, readable and writable, obtained from
///    [`os::map_anonymous`] and returned to the operating system only by `Drop`, exactly once.
/// 1. `len > 0`.
/// 2. Every byte is initialised (zero-filled when obtained; afterwards only `Pod` values and
///    byte copies are written into it).
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    info: BackingInfo,
}

// SAFETY: a Region is plain memory plus its description; ownership of the mapping may move
// between threads (munmap is thread-agnostic). Concurrent access to the bytes is governed by the
// pool's block ownership (I1), not by this type.
unsafe impl Send for Region {}
// SAFETY: `&Region` only exposes the base pointer and length (no access to the bytes).
unsafe impl Sync for Region {}

impl Region {
    /// Maps `bytes` (rounded up to whole pages) for `strategy`.
    pub(crate) fn map(bytes: usize, strategy: Strategy, prefault: bool) -> std::io::Result<Self> {
        let page = os::page_size();
        let len = bytes
            .checked_next_multiple_of(page)
            .filter(|&l| l > 0)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "region size overflows")
            })?;
        let ptr = os::map_anonymous(len, prefault)?;
        let (mechanism, reason) = if cfg!(any(miri, umrf_loom)) {
            (
                Mechanism::Heap,
                "system calls are unavailable under Miri and loom".to_owned(),
            )
        } else {
            (
                Mechanism::AnonymousMmap,
                format!(
                    "{strategy}: private anonymous mapping with the kernel's default memory policy"
                ),
            )
        };
        let info = BackingInfo {
            strategy,
            mechanism,
            bytes: len,
            page_size: page,
            prefaulted: prefault,
            reason,
        };
        Ok(Region { ptr, len, info })
    }

    /// The first byte of the region.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// What was obtained.
    pub(crate) fn info(&self) -> &BackingInfo {
        &self.info
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: invariant 0: ptr/len are one live mapping, released only here, and the pool
        // drops a region only when every block of it is home (PoolInner invariant 2).
        unsafe { os::unmap(self.ptr, self.len) }
    }
}
