//! The backing seam: how a slot's region of memory is obtained for a residency's strategy.
//!
//! The pool asks this layer for one region per slot and never calls the operating system
//! itself. Raw system calls live in one private module (`os`), under a Miri- and loom-friendly
//! stand-in, so the pool logic above is checked by both.

pub(crate) mod os;
mod region;

pub(crate) use region::Region;
pub use region::{BackingInfo, Mechanism};

use crate::error::Error;
use crate::residency::Strategy;

/// What a pool asks of the backing layer for one slot.
#[derive(Clone, Debug)]
pub(crate) struct RegionRequest {
    /// Bytes needed (rounded up to whole pages by the backing).
    pub bytes: usize,
    /// The strategy of the pool's residency.
    pub strategy: Strategy,
    /// The residency's name, for errors.
    pub residency: &'static str,
    /// Fault every page in now rather than on first touch.
    pub prefault: bool,
}

/// Obtains the region for one slot.
///
/// # Errors
/// [`Error::Backing`] naming the call that failed when the operating system refuses memory.
pub(crate) fn obtain(request: &RegionRequest) -> Result<Region, Error> {
    Region::map(request.bytes, request.strategy, request.prefault).map_err(|source| {
        Error::Backing {
            residency: request.residency,
            bytes: request.bytes,
            operation: "mmap (anonymous); lower blocks_per_slot or block_size if memory is short",
            source,
        }
    })
}
