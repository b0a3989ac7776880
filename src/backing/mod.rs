//! The backing seam: how a slot's region of memory is obtained for a residency's strategy, and
//! what the operating system really gave.
//!
//! The pool asks this layer for one region per slot and never calls the operating system
//! itself. For each slot, the backing layer:
//!
//! 1. **plans** the placement from the strategy, the slot's CPU and the topology
//!    (a pure function): `CpuLocal`, `Hugepage` and `GpuPinned` prefer the node of the slot's
//!    CPU (`MPOL_PREFERRED`); `NumaNode<N>` binds to node N (`MPOL_BIND`), an absent node being
//!    [`Error::NodeAbsent`]; `Cxl` binds to the CXL node nearest the
//!    CPU, else fails with [`Error::NoCxlNode`] unless the builder
//!    chose [`CxlFallback::Emulate`];
//! 2. **maps** the region inside a `PROT_NONE` reservation with a guard page on each side
//!    (aligned to the huge page size for transparent huge pages), or as explicit huge pages
//!    (`MAP_HUGETLB`) when the reserved pool has enough free pages ([`HugePageMode`]);
//! 3. **places** it with `mbind` before any page is touched, then faults every page in on the
//!    building thread (`MADV_POPULATE_WRITE`), so the policy, not the toucher, decides the node.
//!    `GpuPinned` regions are locked with `mlock` instead (which faults them in), and with the
//!    `cuda` feature registered with the CUDA driver;
//! 4. **verifies**: asks the kernel where every page landed (`move_pages`), or for pages not yet
//!    touched reads the policy back (`get_mempolicy`), and for huge pages reads the region's
//!    `/proc/self/smaps` entry; a page of a bound region found off its node is
//!    [`Error::Misplaced`];
//! 5. **reports** all of it in a [`BackingInfo`], returned by
//!    [`Pool::backing`](crate::Pool::backing).
//!
//! A soft step that the machine refuses (an `MPOL_PREFERRED` `mbind` in a sandbox, `move_pages`
//! blocked by seccomp) is written into the report, not turned into an error; a hard one (an
//! `MPOL_BIND` that fails on a machine with several nodes, `mlock` over `RLIMIT_MEMLOCK`) is an
//! error, and the regions already made are returned to the system.
//!
//! Raw system calls live in one private module (`os`), each behind a fault point that the
//! `fault` module (feature `fault-injection`) can make fail. Under Miri and loom regions come
//! from the global allocator, so the pool logic above this seam is still checked.
//!
//! ```
//! use umrf::{Pool, residency::Node0};
//! let pool = Pool::<Node0>::builder().block_size(4096).blocks_per_slot(16).slots(1).build()?;
//! let info = &pool.backing()[0];
//! assert_eq!(info.policy, umrf::backing::NodePolicy::Bind { node: 0 });
//! if info.verified {
//!     assert_eq!(info.nodes, [0]); // read back from the kernel
//! }
//! # Ok::<(), umrf::Error>(())
//! ```

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
#[cfg(not(any(miri, umrf_loom)))]
mod huge;
mod info;
#[cfg(not(any(miri, umrf_loom)))]
mod obtain;
mod options;
pub(crate) mod os;
mod policy;
mod region;
#[cfg(not(any(miri, umrf_loom)))]
mod smaps;
#[cfg(not(any(miri, umrf_loom)))]
mod verify;

pub(crate) use info::Summary;
pub use info::{BackingInfo, Mechanism, NodePolicy};
pub(crate) use options::BackingOptions;
pub use options::{CxlFallback, HugePageMode};
pub(crate) use policy::{Machine, has_memory, is_cxl, nearest};
pub(crate) use region::Region;

use crate::error::Error;
use crate::residency::Strategy;

/// What a pool asks of the backing layer for one slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegionRequest<'a> {
    /// Bytes needed (rounded up to whole pages by the backing).
    pub(crate) bytes: usize,
    /// The strategy of the pool's residency.
    pub(crate) strategy: Strategy,
    /// The residency's name, for errors.
    pub(crate) residency: &'static str,
    /// Fault every page in now rather than on first touch.
    pub(crate) prefault: bool,
    /// The CPU the slot serves, if known.
    pub(crate) cpu: Option<u32>,
    /// The machine to place by.
    pub(crate) machine: Machine<'a>,
    /// The builder's choices.
    pub(crate) options: BackingOptions,
}

/// Obtains the region for one slot.
///
/// # Errors
/// [`Error::Backing`] naming the call that failed when the operating system refuses memory,
/// and the placement errors listed in the module documentation.
pub(crate) fn obtain(request: &RegionRequest<'_>) -> Result<Region, Error> {
    #[cfg(not(any(miri, umrf_loom)))]
    {
        obtain::obtain(request)
    }
    #[cfg(any(miri, umrf_loom))]
    {
        obtain_heap(request)
    }
}

/// Finishes the regions of one pool: counts how much of each huge-page region sits in huge
/// pages, with one read of `/proc/self/smaps` for all of them.
pub(crate) fn finish(regions: &mut [Region]) {
    #[cfg(not(any(miri, umrf_loom)))]
    verify::huge_pages(regions);
    #[cfg(any(miri, umrf_loom))]
    debug_assert!(regions.iter().all(|r| !r.huge_pending()));
}

/// The Miri and loom stand-in: plan (so placement errors still surface), then take zeroed
/// memory from the global allocator.
#[cfg(any(miri, umrf_loom))]
fn obtain_heap(request: &RegionRequest<'_>) -> Result<Region, Error> {
    let plan = policy::plan(
        request.strategy,
        request.cpu,
        request.machine,
        &request.options,
    )?;
    let page = os::page_size();
    let len = request
        .bytes
        .checked_next_multiple_of(page)
        .filter(|&l| l > 0)
        .ok_or_else(|| Error::InvalidConfig {
            reason: format!("a region of {} bytes overflows", request.bytes),
        })?;
    let (reservation, base) =
        region::Reservation::new(len, page, page).map_err(|source| Error::Backing {
            residency: request.residency,
            bytes: len,
            operation: "heap allocation (Miri/loom stand-in for mmap)",
            source,
        })?;
    let info = BackingInfo {
        strategy: request.strategy,
        mechanism: Mechanism::Heap,
        bytes: len,
        page_size: page,
        huge_page_bytes: 0,
        prefaulted: request.prefault,
        cpu: request.cpu,
        policy: NodePolicy::Default,
        nodes: Vec::new(),
        verified: false,
        locked: false,
        registered: false,
        emulated: plan.emulated,
        reason: format!(
            "system calls are unavailable under Miri and loom; planned: {}",
            plan.note
        ),
    };
    // SAFETY: the heap stand-in of a reservation is zeroed, read-write memory of
    // `len + 2 * page` bytes, and `base..base + len` lies inside it (Reservation::new).
    let region = unsafe {
        Region::new(
            reservation,
            base,
            len,
            info,
            #[cfg(feature = "cuda")]
            None,
        )
    };
    Ok(region)
}
