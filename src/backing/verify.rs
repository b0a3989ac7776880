//! The verify step: ask the kernel where a region's pages are (`move_pages`), or for pages not
//! yet touched what policy the mapping has (`get_mempolicy`), and how much of a huge-page
//! region really sits in huge pages (`/proc/self/smaps`, read once per pool for all its
//! slots); hold the answers against the plan.
//!
//! The census asks about every page of a region of up to [`CENSUS_MAX_PAGES`] pages, and about
//! that many evenly spaced pages of a larger one (a whole 1 GiB region of 4 KiB pages would
//! add a tenth to the build time); in a huge-page region, one address per huge page. Every
//! page of a region has the same policy, so a shortfall on the policy's node (the only way
//! pages land elsewhere) shows up in the sample.

use std::io;

use super::info::{Bytes, Mechanism, NodePolicy};
use super::obtain::Mapped;
use super::policy::Plan;
use super::region::Region;
use super::{os, smaps};
use crate::error::Error;

/// Page addresses asked about per `move_pages` call.
const CENSUS_BATCH: usize = 512;

/// The most pages the census asks about in one region.
pub(super) const CENSUS_MAX_PAGES: usize = 16384;

/// Where the pages were found.
#[derive(Default)]
struct Census {
    /// `(node, pages)`, sorted by node.
    nodes: Vec<(u32, usize)>,
    /// Pages asked about.
    pages: usize,
}

/// The distance between the pages the census asks about: one per page (one per huge page in
/// huge-page regions), widened in whole pages so that at most [`CENSUS_MAX_PAGES`] are asked.
fn census_stride(len: usize, page: usize) -> usize {
    let pages = len / page;
    page * pages.div_ceil(CENSUS_MAX_PAGES).max(1)
}

/// Asks the kernel where every page is; a page of a strict plan off its node is an error.
/// Returns the nodes and whether the census could be taken.
pub(super) fn census_check(
    plan: &Plan,
    mapped: &Mapped,
    notes: &mut Vec<String>,
) -> Result<(Vec<u32>, bool), Error> {
    match census(mapped) {
        Ok(census) => judge(plan, &census, notes),
        Err(e) => {
            notes.push(format!(
                "move_pages unavailable ({e}): where the pages landed was not read back"
            ));
            Ok((Vec::new(), false))
        }
    }
}

/// Holds a census against the plan: pages off a bound node are an error, off a preferred node
/// a note. Returns the nodes found.
fn judge(plan: &Plan, census: &Census, notes: &mut Vec<String>) -> Result<(Vec<u32>, bool), Error> {
    let nodes: Vec<u32> = census.nodes.iter().map(|&(n, _)| n).collect();
    let Some(want) = plan.policy.node() else {
        return Ok((nodes, true));
    };
    let off: Vec<(u32, usize)> = census
        .nodes
        .iter()
        .copied()
        .filter(|&(n, _)| n != want)
        .collect();
    if off.is_empty() {
        return Ok((nodes, true));
    }
    let misplaced = off.iter().map(|&(_, p)| p).sum();
    let found = off
        .iter()
        .map(|(n, _)| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if plan.strict {
        return Err(Error::Misplaced {
            node: want,
            pages: census.pages,
            misplaced,
            found,
        });
    }
    notes.push(format!(
        "{misplaced} of {} pages checked landed on node(s) {found}, not the preferred node {want} (short of free memory?)",
        census.pages
    ));
    Ok((nodes, true))
}

/// `move_pages` in query mode over the region's pages (see [`census_stride`]), in batches.
fn census(mapped: &Mapped) -> io::Result<Census> {
    let stride = census_stride(mapped.len, mapped.page_size);
    let total = mapped.len / stride;
    let mut census = Census::default();
    let mut pages = [core::ptr::null_mut::<libc::c_void>(); CENSUS_BATCH];
    let mut status = [0 as libc::c_int; CENSUS_BATCH];
    for first in (0..total).step_by(CENSUS_BATCH) {
        let count = CENSUS_BATCH.min(total - first);
        for (i, slot) in pages[..count].iter_mut().enumerate() {
            *slot = mapped
                .base
                .as_ptr()
                .wrapping_add((first + i) * stride)
                .cast();
        }
        os::page_nodes(&pages[..count], &mut status[..count])?;
        census.pages += count;
        // A negative status is -errno (-ENOENT: not faulted in); it counts as no node.
        for node in status[..count]
            .iter()
            .filter_map(|&s| u32::try_from(s).ok())
        {
            match census.nodes.binary_search_by_key(&node, |&(n, _)| n) {
                Ok(i) => census.nodes[i].1 += 1,
                Err(i) => census.nodes.insert(i, (node, 1)),
            }
        }
    }
    Ok(census)
}

/// For pages not yet touched: reads the mapping's policy back. Returns whether it matches.
pub(super) fn policy_check(policy: NodePolicy, mapped: &Mapped, notes: &mut Vec<String>) -> bool {
    let (want_mode, want_node) = match policy {
        NodePolicy::Default => (libc::MPOL_DEFAULT, None),
        NodePolicy::Preferred { node } => (libc::MPOL_PREFERRED, Some(node)),
        NodePolicy::Bind { node } => (libc::MPOL_BIND, Some(node)),
    };
    let below = want_node.map_or(64, |n| n + 1);
    match os::policy_at(mapped.base, below) {
        Ok((mode, nodes)) => {
            let ok = mode == want_mode && want_node.is_none_or(|n| nodes == [n]);
            notes.push(if ok {
                "pages not faulted in yet: the policy was read back instead".to_owned()
            } else {
                format!("pages not faulted in yet, and the policy read back is mode {mode} over nodes {nodes:?}, not {policy}")
            });
            ok
        }
        Err(e) => {
            notes.push(format!(
                "pages not faulted in yet, and get_mempolicy failed ({e}): placement not verified"
            ));
            false
        }
    }
}

/// Fills in how much of each huge-page region sits in huge pages, from one read of
/// `/proc/self/smaps` for all of them (each read walks every mapping of the process, so one per
/// pool rather than one per slot).
pub(crate) fn huge_pages(regions: &mut [Region]) {
    let pending: Vec<usize> = regions
        .iter()
        .filter(|r| r.huge_pending())
        .map(|r| r.base().as_ptr() as usize)
        .collect();
    if pending.is_empty() {
        return;
    }
    let found = smaps::read_many(&pending);
    for region in regions.iter_mut().filter(|r| r.huge_pending()) {
        let start = region.base().as_ptr() as usize;
        let vma = match &found {
            Ok(vmas) => vmas.iter().find(|v| v.start == start).copied(),
            Err(_) => None,
        };
        let info = region.info_mut();
        match (vma, &found) {
            (Some(vma), _) => {
                info.huge_page_bytes = match info.mechanism {
                    Mechanism::ExplicitHugePages => vma.hugetlb,
                    _ => vma.anon_huge,
                };
                info.reason.push_str(&format!(
                    "; /proc/self/smaps: {} of {} in huge pages",
                    Bytes(info.huge_page_bytes),
                    Bytes(info.bytes)
                ));
            }
            (None, Ok(_)) => {
                info.verified = false;
                info.reason.push_str(
                    "; huge pages not verified: the region is missing from /proc/self/smaps",
                );
            }
            (None, Err(e)) => {
                info.verified = false;
                info.reason.push_str(&format!(
                    "; huge pages not verified: /proc/self/smaps unreadable ({e})"
                ));
            }
        }
        region.huge_checked();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backing::info::NodePolicy;

    fn plan(policy: NodePolicy, strict: bool) -> Plan {
        Plan {
            policy,
            strict,
            emulated: false,
            note: String::new(),
        }
    }

    fn census(nodes: &[(u32, usize)]) -> Census {
        Census {
            nodes: nodes.to_vec(),
            pages: nodes.iter().map(|&(_, p)| p).sum(),
        }
    }

    #[test]
    fn the_census_asks_about_every_page_of_small_regions_and_a_sample_of_big_ones() {
        let page = 4096;
        assert_eq!(census_stride(64 << 20, page), page);
        assert_eq!(census_stride(1 << 30, page), 64 << 10);
        assert_eq!(census_stride(3 * page, page), page);
        assert_eq!(census_stride(1 << 30, 2 << 20), 2 << 20);
        assert!((1usize << 40) / census_stride(1 << 40, page) <= CENSUS_MAX_PAGES);
    }

    #[test]
    fn pages_off_a_bound_node_fail_the_build() {
        let mut notes = Vec::new();
        let err = judge(
            &plan(NodePolicy::Bind { node: 0 }, true),
            &census(&[(0, 90), (1, 6), (3, 4)]),
            &mut notes,
        )
        .unwrap_err();
        match &err {
            Error::Misplaced {
                node: 0,
                pages: 100,
                misplaced: 10,
                found,
            } => assert_eq!(found, "1, 3"),
            other => panic!("expected Misplaced, got {other:?}"),
        }
        assert!(err.to_string().contains("short of free memory"));
    }

    #[test]
    fn pages_off_a_preferred_node_are_reported() {
        let mut notes = Vec::new();
        let (nodes, verified) = judge(
            &plan(NodePolicy::Preferred { node: 1 }, false),
            &census(&[(0, 3), (1, 97)]),
            &mut notes,
        )
        .unwrap();
        assert_eq!((nodes, verified), (vec![0, 1], true));
        assert!(
            notes[0].starts_with("3 of 100 pages checked landed on node(s) 0"),
            "{notes:?}"
        );
        let (nodes, _) = judge(
            &plan(NodePolicy::Bind { node: 2 }, true),
            &census(&[(2, 8)]),
            &mut notes,
        )
        .unwrap();
        assert_eq!(nodes, [2]);
        assert_eq!(notes.len(), 1);
    }
}
