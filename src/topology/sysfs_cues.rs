//! Machine-wide classification cues from sysfs/procfs: kernel memory tiers,
//! NVIDIA GPU memory nodes and CXL DAX nodes (see the `classify` module).

use super::error::TopologyError;
use super::pools::MemoryTier;
use super::rooted::Rooted;
use super::sysfs::read_list;
use super::sysfs_files::{numbered, parse_numa_status};

/// Kernel memory tiers (`Documentation/ABI/testing/sysfs-kernel-mm-memory-tiers`).
const TIER_DIR: &str = "sys/devices/virtual/memory_tiering";
/// NVIDIA driver's per-GPU proc directory.
const NVIDIA_DIR: &str = "proc/driver/nvidia/gpus";
/// Device-DAX instances (`Documentation/ABI/testing/sysfs-bus-dax`).
const DAX_DIR: &str = "sys/bus/dax/devices";
/// ACPI HID of the CXL root device (CXL 2.0 spec, section 9.14.1: "ACPI0017").
const CXL_ROOT_HID: &str = "ACPI0017";

/// The machine-wide cues.
#[derive(Debug, Default)]
pub(crate) struct Cues {
    /// Memory tiers, restricted to known nodes, non-empty.
    pub tiers: Vec<MemoryTier>,
    /// Nodes the NVIDIA driver onlined from GPU memory.
    pub nvidia_gpu_nodes: Vec<u32>,
    /// Nodes onlined from a CXL-bus DAX instance.
    pub cxl_dax_nodes: Vec<u32>,
}

/// Reads all cues for the nodes `ids`.
pub(crate) fn read_cues(fs: &Rooted, ids: &[u32]) -> Result<Cues, TopologyError> {
    Ok(Cues {
        tiers: read_tiers(fs, ids)?,
        nvidia_gpu_nodes: read_nvidia(fs)?,
        cxl_dax_nodes: read_cxl_dax(fs)?,
    })
}

/// `memory_tierN/nodelist` for each tier, keeping only nodes in `ids`.
fn read_tiers(fs: &Rooted, ids: &[u32]) -> Result<Vec<MemoryTier>, TopologyError> {
    let mut tiers = Vec::new();
    for name in fs.list(TIER_DIR)?.unwrap_or_default() {
        let Some(id) = numbered(&name, "memory_tier") else {
            continue;
        };
        let Some(set) = read_list(fs, &format!("{TIER_DIR}/{name}/nodelist"))? else {
            continue;
        };
        let nodes: Vec<u32> = set.iter().filter(|n| ids.contains(n)).collect();
        if !nodes.is_empty() {
            tiers.push(MemoryTier::new(id, nodes));
        }
    }
    Ok(tiers)
}

/// Nodes named by `proc/driver/nvidia/gpus/*/numa_status`.
fn read_nvidia(fs: &Rooted) -> Result<Vec<u32>, TopologyError> {
    let mut nodes = Vec::new();
    for gpu in fs.list(NVIDIA_DIR)?.unwrap_or_default() {
        let rel = format!("{NVIDIA_DIR}/{gpu}/numa_status");
        if let Some(text) = fs.read(&rel)?
            && let Some(node) = parse_numa_status(&fs.shown(&rel), &text)?
        {
            nodes.push(node);
        }
    }
    Ok(nodes)
}

/// Nodes that are the `target_node` of a DAX instance on the CXL bus.
fn read_cxl_dax(fs: &Rooted) -> Result<Vec<u32>, TopologyError> {
    let mut nodes = Vec::new();
    for dax in fs.list(DAX_DIR)?.unwrap_or_default() {
        let Some(device) = fs.canonical(&format!("{DAX_DIR}/{dax}"))? else {
            continue;
        };
        let Some(text) = fs.read(&format!("{device}/target_node"))? else {
            continue;
        };
        // -1 (no node) and junk are not cues; nothing to report.
        let Ok(node) = text.trim().parse::<u32>() else {
            continue;
        };
        if on_cxl_bus(fs, &device)? {
            nodes.push(node);
        }
    }
    Ok(nodes)
}

/// Whether the device at `device` (relative to the root) hangs below the
/// CXL root device or below a device whose `subsystem` is the `cxl` bus.
fn on_cxl_bus(fs: &Rooted, device: &str) -> Result<bool, TopologyError> {
    let parts: Vec<&str> = device.split('/').collect();
    if parts.iter().any(|p| p.starts_with(CXL_ROOT_HID)) {
        return Ok(true);
    }
    for end in (1..parts.len()).rev() {
        let ancestor = parts[..end].join("/");
        if let Some(subsystem) = fs.canonical(&format!("{ancestor}/subsystem"))?
            && subsystem.trim_end_matches('/').ends_with("bus/cxl")
        {
            return Ok(true);
        }
    }
    Ok(false)
}
