//! Huge-page pools from sysfs (`hugepages/hugepages-<size>kB`) and, on
//! kernels without those directories, from `meminfo`.

use std::collections::BTreeSet;

use super::error::TopologyError;
use super::pools::{HugePagePool, NodeHugePages};
use super::rooted::Rooted;
use super::sysfs_files::{Meminfo, hugepage_dir_size, parse_count};

/// Machine-wide huge-page directory.
const GLOBAL_DIR: &str = "sys/kernel/mm/hugepages";

/// The counts of one `hugepages-<size>kB` directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HugeCounts {
    /// Page size in bytes.
    pub size: u64,
    /// `nr_hugepages`.
    pub total: u64,
    /// `free_hugepages`, if the file exists.
    pub free: Option<u64>,
}

/// Reads every `hugepages-<size>kB` under `rel`; empty if `rel` is absent.
pub(crate) fn read_hugepage_dir(fs: &Rooted, rel: &str) -> Result<Vec<HugeCounts>, TopologyError> {
    let mut out = Vec::new();
    for name in fs.list(rel)?.unwrap_or_default() {
        let Some(size) = hugepage_dir_size(&name) else {
            continue;
        };
        let count = |file: &str| -> Result<Option<u64>, TopologyError> {
            let path = format!("{rel}/{name}/{file}");
            fs.read(&path)?
                .map(|t| parse_count(&fs.shown(&path), &t))
                .transpose()
        };
        let total = count("nr_hugepages")?.ok_or_else(|| {
            TopologyError::malformed(
                fs.shown(&format!("{rel}/{name}")),
                "huge-page directory without nr_hugepages",
                "the kernel always writes nr_hugepages here; the tree is incomplete",
            )
        })?;
        out.push(HugeCounts {
            size,
            total,
            free: count("free_hugepages")?,
        });
    }
    Ok(out)
}

/// Merges machine-wide and per-node counts into one pool per size. Totals
/// come from `sys/kernel/mm/hugepages` where present, else from the sum of
/// the nodes. With no huge-page directory anywhere, `/proc/meminfo`'s
/// default-size counts (and the nodes' `HugePages_*` meminfo lines) are
/// used.
pub(crate) fn read_pools(
    fs: &Rooted,
    nodes: &[(u32, &[HugeCounts], Meminfo)],
    meminfo: Option<Meminfo>,
) -> Result<Vec<HugePagePool>, TopologyError> {
    let global = read_hugepage_dir(fs, GLOBAL_DIR)?;
    let sizes: BTreeSet<u64> = global
        .iter()
        .chain(nodes.iter().flat_map(|(_, h, _)| h.iter()))
        .map(|h| h.size)
        .collect();
    if sizes.is_empty() {
        return Ok(meminfo_pool(nodes, meminfo).into_iter().collect());
    }
    let pools = sizes
        .into_iter()
        .map(|size| {
            let on_nodes: Vec<NodeHugePages> = nodes
                .iter()
                .filter_map(|(id, huge, _)| {
                    let h = huge.iter().find(|h| h.size == size)?;
                    Some(NodeHugePages::new(*id, h.total, h.free))
                })
                .collect();
            let (total, free) = match global.iter().find(|h| h.size == size) {
                Some(h) => (h.total, h.free),
                // Saturating: a corrupt tree must not overflow (and panic).
                None => (
                    on_nodes.iter().fold(0u64, |a, n| a.saturating_add(n.total)),
                    on_nodes
                        .iter()
                        .try_fold(0u64, |a, n| Some(a.saturating_add(n.free?))),
                ),
            };
            on_nodes.into_iter().fold(
                HugePagePool::new(size, total, free),
                HugePagePool::with_node,
            )
        })
        .collect();
    Ok(pools)
}

/// The default-size pool described by `meminfo` lines, if any.
fn meminfo_pool(
    nodes: &[(u32, &[HugeCounts], Meminfo)],
    meminfo: Option<Meminfo>,
) -> Option<HugePagePool> {
    let meminfo = meminfo?;
    let size = meminfo.huge_page_size?;
    let total = meminfo.huge_total?;
    let pool = HugePagePool::new(size, total, meminfo.huge_free);
    Some(
        nodes
            .iter()
            .fold(pool, |pool, (id, _, m)| match m.huge_total {
                Some(t) => pool.with_node(NodeHugePages::new(*id, t, m.huge_free)),
                None => pool,
            }),
    )
}
