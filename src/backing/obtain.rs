//! The real pipeline for one slot: plan, map, place, lock or populate, register, verify, report.
//! Any error drops what was made so far (the reservation unmaps itself, which also unlocks).

use core::ptr::NonNull;
use std::io;
use std::path::Path;

use super::huge::{self, ThpMode};
use super::info::{BackingInfo, Bytes, Mechanism, NodePolicy};
use super::options::HugePageMode;
use super::policy::{self, Machine, Plan};
use super::region::{Region, Reservation};
use super::verify::{census_check, policy_check};
use super::{RegionRequest, os};
use crate::error::Error;
use crate::residency::Strategy;

/// A mapped, not yet placed region.
pub(super) struct Mapped {
    pub(super) reservation: Reservation,
    pub(super) base: NonNull<u8>,
    pub(super) len: usize,
    pub(super) page_size: usize,
    pub(super) mechanism: Mechanism,
}

/// Obtains one slot's region (see the module documentation of `backing`).
pub(super) fn obtain(req: &RegionRequest<'_>) -> Result<Region, Error> {
    let plan = policy::plan(req.strategy, req.cpu, req.machine, &req.options)?;
    let base_page = os::page_size();
    let mut notes = vec![plan.note.clone()];
    let mapped = if req.strategy == Strategy::Hugepage {
        map_huge(req, base_page, &mut notes)?
    } else {
        map_pages(req, req.bytes, base_page, base_page)?
    };
    let policy = apply_policy(req, &plan, &mapped, &mut notes)?;
    let locked = req.strategy == Strategy::GpuPinned;
    if locked {
        lock(req, &mapped)?;
    } else if req.prefault {
        populate(req, &mapped, &mut notes)?;
    }
    let prefaulted = locked || req.prefault;
    #[cfg(feature = "cuda")]
    let registration = if locked {
        // SAFETY: the mapping is owned by `mapped.reservation`, which the Region keeps until
        // after the registration is dropped (Region invariant 3).
        let registration = unsafe { super::cuda::register(mapped.base, mapped.len) }?;
        Some(registration)
    } else {
        None
    };
    #[cfg(not(feature = "cuda"))]
    if locked {
        notes.push(
            "locked with mlock; not registered with CUDA (built without the `cuda` feature)".into(),
        );
    }
    let (nodes, nodes_verified) = if prefaulted {
        census_check(&plan, &mapped, &mut notes)?
    } else {
        (Vec::new(), policy_check(policy, &mapped, &mut notes))
    };
    let huge = matches!(
        mapped.mechanism,
        Mechanism::ExplicitHugePages | Mechanism::TransparentHugePages
    );
    if huge && !prefaulted {
        notes.push("huge pages not verified: the pages are not faulted in yet".into());
    }
    let info = BackingInfo {
        strategy: req.strategy,
        mechanism: mapped.mechanism,
        bytes: mapped.len,
        page_size: mapped.page_size,
        huge_page_bytes: 0,
        prefaulted,
        cpu: req.cpu,
        policy,
        nodes,
        verified: nodes_verified && (prefaulted || !huge),
        locked,
        #[cfg(feature = "cuda")]
        registered: registration.is_some(),
        #[cfg(not(feature = "cuda"))]
        registered: false,
        emulated: plan.emulated,
        reason: notes.join("; "),
    };
    // SAFETY: `mapped.base..+len` is inside the reservation, page aligned, made read-write by
    // `map_pages`/`map_huge` and zero-filled by the kernel (anonymous memory); len > 0.
    let region = unsafe {
        Region::new(
            mapped.reservation,
            mapped.base,
            mapped.len,
            info,
            #[cfg(feature = "cuda")]
            registration,
        )
    };
    // How much really sits in huge pages is read for all slots at once (`verify::huge_pages`).
    Ok(region.with_huge_check(huge && prefaulted))
}

/// The error for a failed call on a region of `bytes`.
fn os_error(
    req: &RegionRequest<'_>,
    bytes: usize,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> Error {
    let residency = req.residency;
    move |source| Error::Backing {
        residency,
        bytes,
        operation,
        source,
    }
}

/// `bytes` rounded up to `align`, as a non-zero length, or the overflow error.
fn round(req: &RegionRequest<'_>, bytes: usize, align: usize) -> Result<usize, Error> {
    bytes
        .checked_next_multiple_of(align)
        .filter(|&l| l > 0 && l <= isize::MAX as usize / 2)
        .ok_or_else(|| Error::InvalidConfig {
            reason: format!(
                "a {} region of {bytes} bytes does not fit the address space",
                req.residency
            ),
        })
}

/// Base pages (or pages aligned to `align`, for transparent huge pages) in a guarded
/// reservation.
fn map_pages(
    req: &RegionRequest<'_>,
    bytes: usize,
    align: usize,
    base_page: usize,
) -> Result<Mapped, Error> {
    let len = round(req, bytes, align)?;
    let (reservation, base) = Reservation::new(len, align, base_page).map_err(os_error(
        req,
        len,
        "mmap (address-space reservation); lower blocks_per_slot or block_size if memory is short",
    ))?;
    // SAFETY: `base..base + len` lies inside the fresh reservation (Reservation::new), page
    // aligned, and nothing refers to it.
    unsafe { os::make_usable(base, len) }.map_err(os_error(
        req,
        len,
        "mprotect (committing the region); lower blocks_per_slot or block_size if memory is short",
    ))?;
    Ok(Mapped {
        reservation,
        base,
        len,
        page_size: base_page,
        mechanism: Mechanism::AnonymousMmap,
    })
}

/// Explicit huge pages if the mode allows and the pool has them, else transparent huge pages.
fn map_huge(
    req: &RegionRequest<'_>,
    base_page: usize,
    notes: &mut Vec<String>,
) -> Result<Mapped, Error> {
    let root = Path::new("/");
    let mode = req.options.huge_pages;
    if mode != HugePageMode::Transparent {
        let pools = huge::explicit_pools(root);
        match huge::choose_explicit(&pools, req.bytes) {
            Some(size) => {
                let len = round(req, req.bytes, size)?;
                match Reservation::huge(len, size) {
                    Ok((reservation, base)) => {
                        notes.push(format!("explicit huge pages of {} from the reserved pool", Bytes(size)));
                        return Ok(Mapped {
                            reservation,
                            base,
                            len,
                            page_size: size,
                            mechanism: Mechanism::ExplicitHugePages,
                        });
                    }
                    Err(e) if mode == HugePageMode::Explicit => {
                        return Err(Error::HugePagesUnavailable {
                            reason: format!(
                                "mmap(MAP_HUGETLB) of {} in {} pages failed ({e}); {}",
                                Bytes(len),
                                Bytes(size),
                                huge::RESERVE_REMEDY
                            ),
                        });
                    }
                    Err(e) => notes.push(format!(
                        "explicit huge pages of {} refused by mmap ({e}): transparent huge pages instead",
                        Bytes(size)
                    )),
                }
            }
            None if mode == HugePageMode::Explicit => {
                return Err(Error::HugePagesUnavailable {
                    reason: format!(
                        "{}; {}",
                        huge::explicit_shortfall(&pools, req.bytes),
                        huge::RESERVE_REMEDY
                    ),
                });
            }
            None => notes.push(format!(
                "{}: transparent huge pages instead",
                huge::explicit_shortfall(&pools, req.bytes)
            )),
        }
    }
    map_transparent(req, base_page, root, notes)
}

/// A region aligned to the transparent huge page size, advised `MADV_HUGEPAGE`.
fn map_transparent(
    req: &RegionRequest<'_>,
    base_page: usize,
    root: &Path,
    notes: &mut Vec<String>,
) -> Result<Mapped, Error> {
    let mode = req.options.huge_pages;
    let thp = huge::thp_mode(root);
    let enable =
        "enable them as root: `echo madvise > /sys/kernel/mm/transparent_hugepage/enabled`";
    if mode == HugePageMode::Transparent && !thp.usable() {
        return Err(Error::HugePagesUnavailable {
            reason: match thp {
                ThpMode::Unavailable => "this kernel has no transparent huge pages (no /sys/kernel/mm/transparent_hugepage)".to_owned(),
                _ => format!("transparent huge pages are disabled (enabled = never); {enable}"),
            },
        });
    }
    let size = huge::thp_size(root).max(base_page);
    let mut mapped = map_pages(req, req.bytes, size, base_page)?;
    // SAFETY: `mapped` owns this read-write, page-aligned range; the advice keeps contents.
    match unsafe { os::advise_huge(mapped.base, mapped.len) } {
        Ok(()) => {
            mapped.page_size = size;
            mapped.mechanism = Mechanism::TransparentHugePages;
            notes.push(format!(
                "transparent huge pages of {} requested with madvise",
                Bytes(size)
            ));
            if !thp.usable() {
                notes.push(format!("but transparent huge pages are disabled (enabled = never), so expect base pages; {enable}"));
            }
        }
        Err(e) if mode == HugePageMode::Auto => notes.push(format!(
            "madvise(MADV_HUGEPAGE) failed ({e}): base pages, no huge pages at all"
        )),
        Err(e) => {
            return Err(Error::HugePagesUnavailable {
                reason: format!("madvise(MADV_HUGEPAGE) failed ({e}); {enable}"),
            });
        }
    }
    Ok(mapped)
}

/// Sets the plan's policy; returns the policy in force.
fn apply_policy(
    req: &RegionRequest<'_>,
    plan: &Plan,
    mapped: &Mapped,
    notes: &mut Vec<String>,
) -> Result<NodePolicy, Error> {
    let (mode, node) = match plan.policy {
        NodePolicy::Default => return Ok(NodePolicy::Default),
        NodePolicy::Preferred { node } => (libc::MPOL_PREFERRED, node),
        NodePolicy::Bind { node } => (libc::MPOL_BIND, node),
    };
    // SAFETY: `mapped` owns this page-aligned range and nothing has touched it yet.
    let bound = unsafe { os::bind(mapped.base, mapped.len, mode, node) };
    let Err(e) = bound else {
        return Ok(plan.policy);
    };
    let refused = matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM));
    if !plan.strict {
        notes.push(format!(
            "mbind to node {node} refused ({e}): default policy"
        ));
        return Ok(NodePolicy::Default);
    }
    if refused && only_node(req.machine) == Some(node) {
        notes.push(format!(
            "mbind refused ({e}), but node {node} is this machine's only node, so every page is on it"
        ));
        return Ok(NodePolicy::Default);
    }
    Err(os_error(
        req,
        mapped.len,
        "mbind(MPOL_BIND) before the first touch; the node may be offline or the call forbidden (seccomp, container)",
    )(e))
}

/// The id of the machine's only node, if it has exactly one.
fn only_node(machine: Machine<'_>) -> Option<u32> {
    match machine {
        Machine::Known(topo) if topo.nodes().len() == 1 => Some(topo.nodes()[0].id()),
        _ => None,
    }
}

/// `mlock`, turning a refusal into an error that names `RLIMIT_MEMLOCK`.
fn lock(req: &RegionRequest<'_>, mapped: &Mapped) -> Result<(), Error> {
    // SAFETY: `mapped` owns this read-write range.
    unsafe { os::lock(mapped.base, mapped.len) }.map_err(|source| Error::MemlockLimit {
        residency: req.residency,
        bytes: mapped.len,
        limit: os::memlock_limit().unwrap_or(u64::MAX),
        source,
    })
}

/// Faults every page in under the region's policy.
fn populate(
    req: &RegionRequest<'_>,
    mapped: &Mapped,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    // SAFETY: `mapped` owns this read-write, page-aligned range.
    match unsafe { os::populate(mapped.base, mapped.len) } {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Kernels before 5.14 lack MADV_POPULATE_WRITE.
            // SAFETY: `mapped` owns this zero-filled range and nothing else uses it yet.
            unsafe { os::touch_pages(mapped.base, mapped.len, os::page_size()) };
            notes.push("MADV_POPULATE_WRITE unsupported: pages faulted in by touching".into());
            Ok(())
        }
        Err(e) => Err(os_error(
            req,
            mapped.len,
            "madvise(MADV_POPULATE_WRITE) faulting the pages in; the node may be out of free memory",
        )(e)),
    }
}
