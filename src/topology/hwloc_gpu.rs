//! NVIDIA GPU memory nodes that hwloc's Linux discovery hides.
//!
//! hwloc 2.x (before 2.11) drops the NUMA nodes that the NVIDIA driver onlines for GPU memory
//! (the AC922's V100s) unless `HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES=1` is in the environment when
//! the topology is discovered; there is no topology flag for it. Setting the variable from a
//! library is not sound while other threads may read the environment, so
//! [`Topology::from_hwloc`](super::Topology::from_hwloc) leaves the environment alone and,
//! where the variable is unset, adds the hidden nodes back from the sysfs tree hwloc read
//! (`HWLOC_FSROOT`, else `/`): the nodes that the sysfs reader classes as GPU memory through
//! the driver's `numa_status` file and hwloc did not report. Their memory and kind come from
//! sysfs, and the distance matrix becomes the sysfs one, which covers every node. A user who
//! sets the variable (to `1`, or to `0` to hide them on purpose) gets hwloc's own answer.

use std::path::{Path, PathBuf};

use super::classify::{KindCue, MemoryKind};
use super::{Topology, TopologyError};

/// hwloc's environment variable that keeps NVIDIA GPU NUMA nodes.
pub(crate) const KEEP_VAR: &str = "HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES";
/// hwloc's environment variable naming another file-system root.
pub(crate) const FSROOT_VAR: &str = "HWLOC_FSROOT";
/// Where the NVIDIA driver lists its GPUs (relative to the root).
const NVIDIA_GPUS: &str = "proc/driver/nvidia/gpus";

/// The root hwloc's Linux discovery reads: `HWLOC_FSROOT`, else `/`.
pub(crate) fn fs_root() -> PathBuf {
    std::env::var_os(FSROOT_VAR)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Adds to `topology` (hwloc's) the GPU memory nodes hwloc hid, read from sysfs under
/// `root`. Does nothing where `HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES` is set or the root has no
/// NVIDIA driver directory.
///
/// # Errors
///
/// As [`Topology::from_sysfs`] for the tree under `root`, where hidden nodes have to be read.
pub(crate) fn restore_hidden_gpu_nodes(
    topology: Topology,
    root: &Path,
) -> Result<Topology, TopologyError> {
    if std::env::var_os(KEEP_VAR).is_some() || !root.join(NVIDIA_GPUS).is_dir() {
        return Ok(topology);
    }
    let sysfs = Topology::from_sysfs(root)?;
    Ok(merge_hidden(topology, &sysfs))
}

/// `hwloc` plus the GPU memory nodes of `sysfs` it lacks, with the sysfs distances where
/// nodes were added.
fn merge_hidden(mut hwloc: Topology, sysfs: &Topology) -> Topology {
    let hidden: Vec<_> = sysfs
        .nodes()
        .iter()
        .filter(|n| hwloc.node(n.id()).is_none())
        .filter(|n| {
            let c = n.classification();
            c.kind == MemoryKind::Gpu && c.cue == KindCue::NvidiaNumaStatus
        })
        .cloned()
        .collect();
    if hidden.is_empty() {
        return hwloc;
    }
    let ids: Vec<u32> = hidden.iter().map(|n| n.id()).collect();
    hwloc.nodes.extend(hidden);
    hwloc.nodes.sort_by_key(|n| n.id());
    let all: Vec<u32> = hwloc.nodes.iter().map(|n| n.id()).collect();
    // Invariant 1: the matrix covers exactly the node ids, or is unknown.
    hwloc.distances = if sysfs.distances().node_ids() == all.as_slice() {
        sysfs.distances().clone()
    } else {
        super::Distances::unknown()
    };
    hwloc.warnings.push(format!(
        "hwloc hid NVIDIA GPU memory nodes {ids:?}; they were added from {} (set \
         {KEEP_VAR}=1 before starting threads to have hwloc report them itself)",
        sysfs.source()
    ));
    hwloc
}
