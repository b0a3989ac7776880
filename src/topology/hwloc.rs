//! The `hwloc` feature: the same model from the hwloc library, through the
//! `hwlocality` crate (hwloc 2.x; it also imports hwloc 1.x XML files).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::Path;

use hwlocality::Topology as HwTopology;
use hwlocality::bitmap::BitmapRef;
use hwlocality::cpu::cpuset::CpuSet as HwCpuSet;
use hwlocality::object::TopologyObject;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::distance::DistancesKind;
use hwlocality::object::types::ObjectType;
use hwlocality::topology::builder::BuildFlags;

use super::classify::{MemoryKind, classify_hwloc, kind_of_hwloc_subtype};
use super::hwloc_gpu::{FSROOT_VAR, fs_root, restore_hidden_gpu_nodes};
use super::{
    CpuSet, Distances, HugePagePool, Node, NodeHugePages, Package, Source, Topology, TopologyError,
};

/// Largest XML file accepted (the biggest real exports are a few MiB).
const MAX_XML_BYTES: u64 = 256 << 20;
/// Hint for a failing hwloc library.
const HWLOC_HINT: &str = "check that the system hwloc 2.x library works (`lstopo` should run)";
/// Hint for an XML file hwloc rejects or this model cannot hold.
const XML_HINT: &str = "check that the file is an hwloc v1 or v2 XML export (`lstopo --input FILE` \
                        should load it); hwloc 2.x cannot import v3.0 files";

impl Topology {
    /// This machine as hwloc sees it (including CPUs and nodes outside this
    /// process's cgroup, as sysfs does), or the machine hwloc's environment
    /// points it at (`HWLOC_FSROOT`, `HWLOC_XMLFILE`, …): then hwloc says the
    /// result is not this system and the source is
    /// [`Source::HwlocElsewhere`], so nothing uses the calling thread's CPU as
    /// a CPU of that machine.
    ///
    /// **NVIDIA GPU memory nodes.** hwloc 2.x hides them unless
    /// `HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES` is set, and has no topology flag for
    /// it. Where the variable is unset, the nodes hwloc hid are added back
    /// from the sysfs tree it read (with their sysfs memory sizes, and the
    /// sysfs distance matrix, which covers them), and
    /// [`Topology::warnings`] says so, so this reader and
    /// [`Topology::from_sysfs`] agree on the nodes. With the variable set,
    /// hwloc's own answer stands.
    ///
    /// # Mapping
    ///
    /// Mapping:
    /// - each `Package` object becomes a [`Package`] (`os_index` → id, else
    ///   its logical index);
    /// - each `NUMANode` object becomes a [`Node`]: `os_index` → id,
    ///   `local_memory` → total memory (free memory is unknown), `MemoryTier`
    ///   info → tier, subtype / `Type` info → kind (see the `classify` module);
    /// - the `NUMALatency` distance matrix (else any latency matrix over NUMA
    ///   nodes) → [`Distances`], if it covers every node;
    /// - page types: the smallest size is the base page size, the others are
    ///   huge-page pools with per-node counts (free counts unknown);
    /// - the topology cpuset → online CPUs.
    ///
    /// **Which nodes own CPUs.** In hwloc 2.x a NUMA node's cpuset is its
    /// *locality*: a memory-only node carries the CPUs of the object it is
    /// attached to, the same as the DRAM node next to it. Since Linux gives each
    /// CPU to exactly one node, the reader picks owners so: a node is a
    /// candidate if its cpuset is non-empty, its subtype is not one that never
    /// has CPUs (`GPUMemory`, `CXL…`, `NVM`, `SPM`), and its cpuset does not
    /// strictly contain another node's (a node attached at the machine root,
    /// such as interleaved memory, is memory-only). Among candidates with the
    /// same cpuset (nodes sharing one parent), the owner is the one with subtype
    /// `DRAM`, else without subtype, else `HBM`/`MCDRAM`; ties go to the lowest
    /// id. Every other node is memory-only, with its cpuset kept as
    /// [`Node::local_cpus`]. hwloc 1.x files give memory-only nodes the cpuset
    /// `0x0`, which hwloc 2 keeps, so they fall out of the first rule.
    ///
    /// # Errors
    ///
    /// [`TopologyError::Hwloc`] if hwloc fails, or reports a node without an
    /// OS index or an infinite cpuset; as [`Topology::from_sysfs`] where
    /// hidden GPU nodes have to be read from sysfs.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{Source, Topology};
    /// let topo = Topology::from_hwloc()?;
    /// assert_eq!(topo.source(), &Source::Hwloc);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn from_hwloc() -> Result<Self, TopologyError> {
        let fail = |what: String| TopologyError::Hwloc {
            what,
            hint: HWLOC_HINT,
        };
        let topo = HwTopology::builder()
            .with_flags(BuildFlags::INCLUDE_DISALLOWED)
            .map_err(|e| fail(format!("cannot set build flags: {e}")))?
            .build()
            .map_err(|e| fail(format!("topology discovery failed: {e}")))?;
        let source = if topo.is_this_system() {
            Source::Hwloc
        } else {
            Source::HwlocElsewhere {
                setting: elsewhere_setting(),
            }
        };
        let root = match source {
            Source::Hwloc => std::path::PathBuf::from("/"),
            _ => fs_root(),
        };
        let linux = std::env::var_os("HWLOC_XMLFILE").is_none()
            && std::env::var_os("HWLOC_SYNTHETIC").is_none();
        let topology = convert(&topo, source)?;
        if linux {
            restore_hidden_gpu_nodes(topology, &root)
        } else {
            Ok(topology)
        }
    }

    /// Loads an hwloc XML file (v2, or v1 which hwloc 2 imports), mapped
    /// as [`Topology::from_hwloc`] describes. CPUs and nodes the file marks
    /// disallowed (outside the cgroup it was exported in) are kept, as the
    /// sysfs reader and [`Topology::from_hwloc`] keep them.
    ///
    /// # Errors
    ///
    /// [`TopologyError::Io`] if the file cannot be read;
    /// [`TopologyError::Malformed`] if it is over 256 MiB;
    /// [`TopologyError::Hwloc`] if hwloc rejects the file, or it describes
    /// something this model cannot hold (a node without an OS index, a
    /// distance too large for `u32`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use umrf::topology::Topology;
    /// let topo = Topology::from_hwloc_xml("knl-quad-flat-hwloc1.xml")?;
    /// assert_eq!(topo.memory_only_nodes().count(), 1);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn from_hwloc_xml(path: impl AsRef<Path>) -> Result<Self, TopologyError> {
        let path = path.as_ref();
        // The file is read here and handed to hwloc as a buffer: hwlocality
        // panics (`unreachable!`) on any errno but EINVAL from hwloc's own
        // file loading (ENOENT, EISDIR, EACCES, ...).
        let meta = std::fs::metadata(path).map_err(|e| TopologyError::io(path, e))?;
        if meta.len() > MAX_XML_BYTES {
            return Err(TopologyError::malformed(
                path,
                format!(
                    "{} bytes is more than an hwloc XML export can be",
                    meta.len()
                ),
                XML_HINT,
            ));
        }
        let xml = std::fs::read_to_string(path).map_err(|e| TopologyError::io(path, e))?;
        let fail = |what: String| TopologyError::Hwloc {
            what,
            hint: XML_HINT,
        };
        let topo = HwTopology::builder()
            .with_flags(BuildFlags::INCLUDE_DISALLOWED)
            .map_err(|e| fail(format!("cannot set build flags: {e}")))?
            .from_xml(&xml)
            .map_err(|e| fail(format!("{}: {e}", path.display())))?
            .build()
            .map_err(|e| {
                fail(format!(
                    "{}: cannot build the topology: {e}",
                    path.display()
                ))
            })?;
        convert(
            &topo,
            Source::HwlocXml {
                path: path.to_path_buf(),
            },
        )
    }
}

/// What pointed hwloc's discovery away from this system, for
/// [`Source::HwlocElsewhere`].
fn elsewhere_setting() -> String {
    for var in [
        FSROOT_VAR,
        "HWLOC_XMLFILE",
        "HWLOC_SYNTHETIC",
        "HWLOC_COMPONENTS",
    ] {
        if let Some(value) = std::env::var_os(var) {
            return format!("{var}={}", value.to_string_lossy());
        }
    }
    "hwloc reports that the topology is not this system".to_owned()
}

/// One NUMA node as hwloc describes it.
struct RawNode<'t> {
    id: u32,
    locality: CpuSet,
    subtype: Option<String>,
    object: &'t TopologyObject,
}

/// Builds the model from an hwloc topology.
fn convert(topo: &HwTopology, source: Source) -> Result<Topology, TopologyError> {
    let hint = match source {
        Source::HwlocXml { .. } => XML_HINT,
        _ => HWLOC_HINT,
    };
    // Every message names what was read: "hwloc XML <path>: …", "hwloc: …".
    let origin = source.to_string();
    let fail = move |what: String| TopologyError::Hwloc {
        what: format!("{origin}: {what}"),
        hint,
    };
    let mut raw = Vec::new();
    for object in topo.objects_with_type(ObjectType::NUMANode) {
        let id = object
            .os_index()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| fail("a NUMA node has no (32-bit) OS index".into()))?;
        let locality = match object.cpuset() {
            Some(set) => to_cpuset(set).map_err(|w| fail(format!("NUMA node {id}: {w}")))?,
            None => CpuSet::new(),
        };
        raw.push(RawNode {
            id,
            locality,
            subtype: object.subtype().map(lossy),
            object,
        });
    }
    raw.sort_by_key(|n| n.id);
    let owners = cpu_owners(&raw);
    let mut builder = Topology::builder().source(source);
    let mut pages: BTreeMap<u64, Vec<NodeHugePages>> = BTreeMap::new();
    for (node, owns) in raw.iter().zip(&owners) {
        let cpus = if *owns {
            node.locality.clone()
        } else {
            CpuSet::new()
        };
        let type_info = node.object.info("Type").map(lossy);
        let classification = classify_hwloc(node.subtype.as_deref(), type_info.as_deref(), *owns);
        let tier = node
            .object
            .info("MemoryTier")
            .and_then(|t| lossy(t).trim().parse::<u32>().ok());
        let mut total = None;
        if let Some(ObjectAttributes::NUMANode(attr)) = node.object.attributes() {
            total = attr.local_memory().map(|m| m.get());
            for page in attr.page_types() {
                let entry = NodeHugePages::new(node.id, page.count(), None);
                pages.entry(page.size().get()).or_default().push(entry);
            }
        }
        builder = builder.node(
            Node::new(node.id, cpus)
                .with_memory(total, None)
                .with_classification(classification)
                .with_tier(tier)
                .with_local_cpus(node.locality.clone()),
        );
    }
    let mut sizes = pages.into_iter();
    if let Some((base, _)) = sizes.next() {
        builder = builder.base_page_size(base);
    }
    for (size, per_node) in sizes {
        let total = per_node.iter().fold(0u64, |a, n| a.saturating_add(n.total));
        let pool = per_node.into_iter().fold(
            HugePagePool::new(size, total, None),
            HugePagePool::with_node,
        );
        builder = builder.huge_pages(pool);
    }
    for package in topo.objects_with_type(ObjectType::Package) {
        let id = package
            .os_index()
            .unwrap_or(package.logical_index())
            .try_into()
            .map_err(|_| fail("a package has an OS index over 32 bits".into()))?;
        let cpus = match package.cpuset() {
            Some(set) => to_cpuset(set).map_err(|w| fail(format!("package {id}: {w}")))?,
            None => CpuSet::new(),
        };
        builder = builder.package(Package::new(id, cpus));
    }
    let online = to_cpuset(topo.cpuset()).map_err(|w| fail(format!("topology cpuset: {w}")))?;
    let ids: Vec<u32> = raw.iter().map(|n| n.id).collect();
    builder
        .online_cpus(online)
        .distances(distances(topo, &ids).map_err(&fail)?)
        .build()
        .map_err(|e| match e {
            TopologyError::Inconsistent { what } => fail(what),
            other => other,
        })
}

/// Which nodes own their cpuset (module docs).
fn cpu_owners(nodes: &[RawNode<'_>]) -> Vec<bool> {
    let never_owns = |n: &RawNode<'_>| {
        matches!(
            kind_of_hwloc_subtype(n.subtype.as_deref()),
            Some(MemoryKind::Gpu | MemoryKind::Cxl | MemoryKind::Unknown)
        )
    };
    let candidate: Vec<bool> = nodes
        .iter()
        .map(|n| {
            !n.locality.is_empty()
                && !never_owns(n)
                && !nodes.iter().any(|o| {
                    !o.locality.is_empty()
                        && o.locality != n.locality
                        && o.locality.is_subset(&n.locality)
                })
        })
        .collect();
    let rank = |n: &RawNode<'_>| match kind_of_hwloc_subtype(n.subtype.as_deref()) {
        Some(MemoryKind::Dram) => 0,
        None => 1,
        _ => 2,
    };
    (0..nodes.len())
        .map(|i| {
            candidate[i]
                && !(0..nodes.len()).any(|j| {
                    j != i
                        && candidate[j]
                        && nodes[j].locality == nodes[i].locality
                        && (rank(&nodes[j]), nodes[j].id) < (rank(&nodes[i]), nodes[i].id)
                })
        })
        .collect()
}

/// The NUMA latency matrix, if one covers exactly the nodes `ids`.
fn distances(topo: &HwTopology, ids: &[u32]) -> Result<Distances, String> {
    let matrices = topo
        .distances_with_type(None, ObjectType::NUMANode)
        .map_err(|e| format!("cannot read distance matrices: {e}"))?;
    let named = |d: &&hwlocality::object::distance::Distances<'_>| {
        d.name().is_some_and(|n| n.to_bytes() == b"NUMALatency")
    };
    let latency = |d: &&hwlocality::object::distance::Distances<'_>| {
        d.kind().contains(DistancesKind::MEANS_LATENCY)
    };
    let Some(matrix) = matrices
        .iter()
        .find(named)
        .or_else(|| matrices.iter().find(latency))
    else {
        return Ok(Distances::unknown());
    };
    let mut order = Vec::with_capacity(matrix.num_objects());
    for object in matrix.objects() {
        match object.and_then(|o| o.os_index()).map(u32::try_from) {
            Some(Ok(id)) => order.push(id),
            _ => return Ok(Distances::unknown()),
        }
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    if sorted != ids {
        return Ok(Distances::unknown());
    }
    let n = order.len();
    let values = matrix
        .distances()
        .iter()
        .map(|&v| u32::try_from(v).map_err(|_| format!("NUMA distance {v} does not fit in u32")))
        .collect::<Result<Vec<u32>, String>>()?;
    let rows = values.chunks(n.max(1)).map(<[u32]>::to_vec).collect();
    Distances::from_rows(order, rows).map_err(|e| e.to_string())
}

/// Converts an hwloc cpuset; fails on an infinite set or a too-large id.
fn to_cpuset(set: BitmapRef<'_, HwCpuSet>) -> Result<CpuSet, String> {
    if set.weight().is_none() {
        return Err(format!("infinite cpuset {set}"));
    }
    let mut out = CpuSet::new();
    for index in set.iter_set() {
        match u32::try_from(usize::from(index)) {
            Ok(cpu) if cpu < CpuSet::MAX_CPUS => {
                out.insert(cpu);
            }
            _ => return Err(format!("CPU id {index} is too large")),
        }
    }
    Ok(out)
}

/// A C string as Rust text.
fn lossy(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}
