//! What kind of memory a NUMA node holds, and the cue that says so.
//!
//! Classification is conservative: a kind other than [`MemoryKind::Unknown`]
//! is given only on a cue that a kernel, driver or hwloc documents. Every
//! result carries its [`KindCue`], so placement code can explain itself.

use std::fmt;

/// What kind of memory a NUMA node holds.
///
/// A kind other than `Unknown` is given only on a cue that a kernel, driver
/// or hwloc documents; [`Node::classification`](super::Node::classification)
/// says which cue.
///
/// # Heuristics, in the order they are tried
///
/// sysfs/procfs ([`Topology::from_sysfs`](super::Topology::from_sysfs)):
/// 1. **GPU**: `/proc/driver/nvidia/gpus/<bus>/numa_status` has a line
///    `Node: N`. The NVIDIA driver writes it when it onlines GPU memory as
///    NUMA node N (POWER9 AC922 with NVLink 2, Grace Hopper); hwloc uses the
///    same file to give such nodes the subtype `GPUMemory`.
///    Nothing else marks a GPU node. In particular a CPU-less node at a
///    large, uniform distance (80 on the AC922) whose size matches a GPU's is
///    *not* taken as GPU memory: that would be a guess, so it stays `Unknown`.
/// 2. **CXL**: a device-DAX instance `/sys/bus/dax/devices/daxX.Y` whose
///    `target_node` is N and whose device path runs through the CXL bus (an
///    ancestor whose `subsystem` link names the `cxl` bus, or the CXL root
///    device `ACPI0017`). That is how a CXL RAM region is onlined as a NUMA
///    node by `dax_kmem`. A DAX instance under `hmem` (EFI "soft reserved"
///    memory) is *not* a cue: firmware reports both HBM and BIOS-configured
///    CXL memory that way.
/// 3. **DRAM**: the node has CPUs. CPU-attached system memory is DRAM on
///    every platform except HBM-only parts (Xeon Max in HBM-only mode,
///    A64FX), which sysfs cannot tell apart.
/// 4. **HBM**: a CPU-less node in a *faster* kernel memory tier than every
///    node with CPUs (`/sys/devices/virtual/memory_tiering/memory_tierN`,
///    lower N = lower abstract distance = faster, Linux
///    `Documentation/admin-guide/mm/memory-tiering.rst`). A CPU-less node in
///    a slower tier may be CXL or persistent memory, so it stays `Unknown`.
/// 5. Otherwise a CPU-less node is `Unknown`.
///
/// hwloc (`Topology::from_hwloc`, feature `hwloc`):
/// 1. the object subtype: `DRAM` → DRAM; `HBM`, `MCDRAM` → HBM;
///    `GPUMemory` → GPU; `CXL-DRAM`, `CXL-NVM` or any `CXL…` → CXL; any other
///    subtype (`NVM`, `SPM`) → `Unknown`;
/// 2. the hwloc 1.x info `Type=MCDRAM` → HBM;
/// 3. then rules 3 and 5 above.
///
/// # Examples
///
/// ```
/// use umrf::topology::MemoryKind;
/// assert_eq!(MemoryKind::Hbm.to_string(), "HBM");
/// assert!(MemoryKind::Cxl.is_known() && !MemoryKind::Unknown.is_known());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryKind {
    /// Ordinary DRAM attached to CPUs.
    Dram,
    /// High-bandwidth memory (HBM, Xeon Phi MCDRAM).
    Hbm,
    /// Memory behind a CXL link (a CXL Type-3 expander).
    Cxl,
    /// GPU memory onlined as a NUMA node.
    Gpu,
    /// No documented cue says what this memory is.
    Unknown,
}

impl MemoryKind {
    /// Whether the kind is anything but [`MemoryKind::Unknown`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::MemoryKind;
    /// assert!(MemoryKind::Dram.is_known());
    /// ```
    #[must_use]
    pub fn is_known(self) -> bool {
        self != Self::Unknown
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dram => "DRAM",
            Self::Hbm => "HBM",
            Self::Cxl => "CXL",
            Self::Gpu => "GPU",
            Self::Unknown => "unknown",
        })
    }
}

/// The evidence a [`Classification`] rests on.
///
/// # Examples
///
/// ```
/// use umrf::topology::KindCue;
/// assert!(KindCue::NvidiaNumaStatus.reason().contains("numa_status"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KindCue {
    /// The node has CPUs.
    HasCpus,
    /// The NVIDIA driver's `numa_status` names the node.
    NvidiaNumaStatus,
    /// A device-DAX instance on the CXL bus targets the node.
    CxlDax,
    /// The node has no CPUs and sits in a faster kernel memory tier than
    /// every node with CPUs.
    FasterMemoryTier,
    /// The hwloc object subtype.
    HwlocSubtype,
    /// The hwloc 1.x info `Type=MCDRAM`.
    HwlocTypeInfo,
    /// The node has no CPUs and nothing else says what it is.
    MemoryOnlyNoEvidence,
    /// The only node of a machine without NUMA sysfs; taken to be DRAM.
    SingleNodeFallback,
    /// Declared by the code that built the topology.
    Declared,
}

impl KindCue {
    /// A sentence saying what the cue is, for logs and error messages.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::KindCue;
    /// assert!(KindCue::HasCpus.reason().starts_with("the node has CPUs"));
    /// ```
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::HasCpus => "the node has CPUs; CPU-attached system memory is taken to be DRAM",
            Self::NvidiaNumaStatus => {
                "/proc/driver/nvidia/gpus/*/numa_status names this node: the NVIDIA driver \
                 onlined GPU memory as it"
            }
            Self::CxlDax => {
                "a device-DAX instance on the CXL bus (/sys/bus/dax/devices/*/target_node) \
                 was onlined as this node"
            }
            Self::FasterMemoryTier => {
                "CPU-less node in a faster kernel memory tier \
                 (/sys/devices/virtual/memory_tiering) than every node with CPUs"
            }
            Self::HwlocSubtype => "the hwloc NUMA node subtype",
            Self::HwlocTypeInfo => "the hwloc 1.x info Type=MCDRAM",
            Self::MemoryOnlyNoEvidence => {
                "CPU-less node and no documented cue says what memory it holds"
            }
            Self::SingleNodeFallback => {
                "only node of a machine without /sys/devices/system/node; taken to be DRAM"
            }
            Self::Declared => "declared by the code that built this topology",
        }
    }
}

impl fmt::Display for KindCue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A [`MemoryKind`] together with the [`KindCue`] it was derived from.
///
/// # Examples
///
/// ```
/// use umrf::topology::{Classification, KindCue, MemoryKind};
/// let c = Classification::new(MemoryKind::Gpu, KindCue::NvidiaNumaStatus);
/// assert_eq!(c.kind, MemoryKind::Gpu);
/// assert!(c.to_string().starts_with("GPU ("));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The kind of memory.
    pub kind: MemoryKind,
    /// Why.
    pub cue: KindCue,
}

impl Classification {
    /// Pairs a kind with its cue.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{Classification, KindCue, MemoryKind};
    /// let c = Classification::new(MemoryKind::Dram, KindCue::Declared);
    /// assert_eq!(c.cue, KindCue::Declared);
    /// ```
    #[must_use]
    pub const fn new(kind: MemoryKind, cue: KindCue) -> Self {
        Self { kind, cue }
    }

    /// The fallback for a node with no other evidence: DRAM if it has CPUs,
    /// `Unknown` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{Classification, MemoryKind};
    /// assert_eq!(Classification::by_cpus(true).kind, MemoryKind::Dram);
    /// assert_eq!(Classification::by_cpus(false).kind, MemoryKind::Unknown);
    /// ```
    #[must_use]
    pub const fn by_cpus(has_cpus: bool) -> Self {
        if has_cpus {
            Self::new(MemoryKind::Dram, KindCue::HasCpus)
        } else {
            Self::new(MemoryKind::Unknown, KindCue::MemoryOnlyNoEvidence)
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.cue)
    }
}

/// The cues the sysfs reader found for one node.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SysfsEvidence {
    /// The node has CPUs.
    pub has_cpus: bool,
    /// An NVIDIA `numa_status` file names the node.
    pub nvidia_gpu: bool,
    /// A CXL-bus DAX instance targets the node.
    pub cxl_dax: bool,
    /// The node's kernel memory tier id.
    pub tier: Option<u32>,
    /// The fastest (lowest) tier id holding a node with CPUs.
    pub fastest_cpu_tier: Option<u32>,
}

/// Applies the sysfs heuristics (module docs) to one node's evidence.
pub(crate) fn classify_sysfs(e: SysfsEvidence) -> Classification {
    if e.nvidia_gpu {
        return Classification::new(MemoryKind::Gpu, KindCue::NvidiaNumaStatus);
    }
    if e.cxl_dax {
        return Classification::new(MemoryKind::Cxl, KindCue::CxlDax);
    }
    if e.has_cpus {
        return Classification::by_cpus(true);
    }
    if let (Some(tier), Some(cpu_tier)) = (e.tier, e.fastest_cpu_tier)
        && tier < cpu_tier
    {
        return Classification::new(MemoryKind::Hbm, KindCue::FasterMemoryTier);
    }
    Classification::by_cpus(false)
}

/// Maps an hwloc NUMA subtype to a kind, if it names one this model knows.
///
/// Returns `None` when there is no subtype; `Some(Unknown)` for a subtype
/// that names no kind of [`MemoryKind`] (`NVM`, `SPM`).
#[cfg(any(feature = "hwloc", test))]
pub(crate) fn kind_of_hwloc_subtype(subtype: Option<&str>) -> Option<MemoryKind> {
    let subtype = subtype?.trim();
    let upper = subtype.to_ascii_uppercase();
    Some(match upper.as_str() {
        "DRAM" => MemoryKind::Dram,
        "HBM" | "MCDRAM" => MemoryKind::Hbm,
        "GPUMEMORY" => MemoryKind::Gpu,
        s if s.starts_with("CXL") => MemoryKind::Cxl,
        _ => MemoryKind::Unknown,
    })
}

/// Applies the hwloc heuristics (module docs) to one NUMA node.
#[cfg(any(feature = "hwloc", test))]
pub(crate) fn classify_hwloc(
    subtype: Option<&str>,
    type_info: Option<&str>,
    has_cpus: bool,
) -> Classification {
    if let Some(kind) = kind_of_hwloc_subtype(subtype) {
        return Classification::new(kind, KindCue::HwlocSubtype);
    }
    if type_info.is_some_and(|t| t.trim().eq_ignore_ascii_case("MCDRAM")) {
        return Classification::new(MemoryKind::Hbm, KindCue::HwlocTypeInfo);
    }
    Classification::by_cpus(has_cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_order_of_cues() {
        let base = SysfsEvidence::default();
        assert_eq!(classify_sysfs(base).kind, MemoryKind::Unknown);
        let gpu = SysfsEvidence {
            nvidia_gpu: true,
            cxl_dax: true,
            ..base
        };
        assert_eq!(classify_sysfs(gpu).cue, KindCue::NvidiaNumaStatus);
        let cxl = SysfsEvidence {
            cxl_dax: true,
            ..base
        };
        assert_eq!(classify_sysfs(cxl).kind, MemoryKind::Cxl);
        let fast = SysfsEvidence {
            tier: Some(3),
            fastest_cpu_tier: Some(4),
            ..base
        };
        assert_eq!(classify_sysfs(fast).kind, MemoryKind::Hbm);
        let slow = SysfsEvidence {
            tier: Some(20),
            fastest_cpu_tier: Some(4),
            ..base
        };
        assert_eq!(classify_sysfs(slow).cue, KindCue::MemoryOnlyNoEvidence);
        let cpu_fast_tier = SysfsEvidence {
            has_cpus: true,
            tier: Some(1),
            fastest_cpu_tier: Some(1),
            ..base
        };
        assert_eq!(classify_sysfs(cpu_fast_tier).kind, MemoryKind::Dram);
    }

    #[test]
    fn hwloc_subtypes() {
        let k = |s| kind_of_hwloc_subtype(Some(s));
        assert_eq!(k("DRAM"), Some(MemoryKind::Dram));
        assert_eq!(k("MCDRAM"), Some(MemoryKind::Hbm));
        assert_eq!(k("HBM"), Some(MemoryKind::Hbm));
        assert_eq!(k("GPUMemory"), Some(MemoryKind::Gpu));
        assert_eq!(k("CXL-DRAM"), Some(MemoryKind::Cxl));
        assert_eq!(k("NVM"), Some(MemoryKind::Unknown));
        assert_eq!(kind_of_hwloc_subtype(None), None);
        assert_eq!(
            classify_hwloc(None, Some("MCDRAM"), false).cue,
            KindCue::HwlocTypeInfo
        );
        assert_eq!(classify_hwloc(None, None, true).kind, MemoryKind::Dram);
        assert_eq!(classify_hwloc(None, None, false).kind, MemoryKind::Unknown);
    }
}
