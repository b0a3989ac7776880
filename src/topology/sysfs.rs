//! The default source: Linux sysfs and procfs under a root directory.

use std::path::Path;

use super::classify::{Classification, KindCue, MemoryKind, SysfsEvidence, classify_sysfs};
use super::cpuset::CpuSet;
use super::distances::Distances;
use super::error::TopologyError;
use super::live;
use super::node::Node;
use super::rooted::Rooted;
use super::source::{Source, is_root_dir};
use super::sysfs_checks::{check_cpus_disjoint, check_distances};
use super::sysfs_cues::{Cues, read_cues};
use super::sysfs_files::{Meminfo, numbered, parse_distance_row, parse_meminfo, smaps_page_size};
use super::sysfs_hugepages::{HugeCounts, read_hugepage_dir, read_pools};
use super::sysfs_packages::read_packages;
use super::{Topology, TopologyBuilder};

/// Where the kernel lists NUMA nodes.
pub(crate) const NODE_DIR: &str = "sys/devices/system/node";
/// Where the kernel lists CPUs.
pub(crate) const CPU_DIR: &str = "sys/devices/system/cpu";
/// Hint for a tree that is not shaped like sysfs.
const SYSFS_SHAPE: &str = "point the reader at a root holding the sys/ and proc/ trees of one \
                           machine, as the kernel writes them";

impl Topology {
    /// Reads the topology from `root/sys/...` and `root/proc/...`: `/` for
    /// this machine, or a directory holding a copy of another machine's
    /// trees (such as an extracted hwloc test tarball). If
    /// `root/sys/devices/system/node` is absent, the result is one node built
    /// from `root/proc/meminfo` and the online CPUs, with
    /// [`Source::SysfsSingleNodeFallback`].
    ///
    /// # What is read
    ///
    /// Relative to the root:
    /// - `sys/devices/system/node/online` for the node ids; where it is missing
    ///   (old kernels) the `nodeN` directories. The `has_cpu` file is *not*
    ///   used: real machines ship it empty (2× Xeon Silver 4108 with SX-Aurora),
    ///   so each node's own CPU list decides whether it has CPUs.
    /// - per node: `cpulist`, or `cpumap` where there is no `cpulist`;
    ///   `meminfo` (`Node N MemTotal: … kB`); `distance` (columns follow the
    ///   node ids in increasing order, as the kernel prints them);
    ///   `hugepages/hugepages-<size>kB/{nr,free}_hugepages`; HMAT
    ///   `access1/initiators` (else `access0`) for a memory-only node's local
    ///   CPUs.
    /// - `sys/kernel/mm/hugepages` for machine-wide huge-page counts; where no
    ///   huge-page directory exists at all, the default-size pool from
    ///   `proc/meminfo` (`HugePages_Total`, `HugePages_Free`, `Hugepagesize`).
    /// - `sys/devices/system/cpu/online` (else the `cpuN` directories and their
    ///   `online` files) for the online CPUs.
    /// - `sys/devices/system/cpu/cpuN/topology/physical_package_id` for the
    ///   packages (sockets).
    /// - `sys/devices/virtual/memory_tiering/memory_tierN/nodelist` for tiers.
    /// - `proc/driver/nvidia/gpus/*/numa_status` and `sys/bus/dax/devices/*`
    ///   as classification cues (see the `classify` module docs).
    /// - The base page size: `sysconf(_SC_PAGESIZE)` when the root is `/`;
    ///   otherwise `proc/self/smaps` (`KernelPageSize`) if the root has it, and
    ///   unknown if not. A fixture root does not say which kernel page size its
    ///   machine used, so the reader does not guess.
    ///
    /// Symbolic links are resolved inside the root (see the `rooted` module).
    ///
    /// An asymmetric distance matrix, which ACPI allows, is kept and
    /// reported in [`Topology::warnings`].
    ///
    /// # Errors
    ///
    /// - [`TopologyError::Io`] if `root` is not a readable directory, or a
    ///   file exists but cannot be read;
    /// - [`TopologyError::CpuSet`] for a CPU or node list or mask that does
    ///   not parse;
    /// - [`TopologyError::Malformed`] for a file not in the kernel's format,
    ///   a node listed online without a directory, a node without any CPU
    ///   file, distance rows that do not match the nodes, data no kernel
    ///   writes (a node's distance to itself other than 10, another node at
    ///   10 or less, two nodes listing the same CPU), or parts that do not
    ///   fit together; each names the file or directory it came from;
    /// - [`TopologyError::SymlinkLoop`] for a symlink loop in the tree.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::from_sysfs("/")?;
    /// assert!(topo.source().is_live());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn from_sysfs(root: impl AsRef<Path>) -> Result<Self, TopologyError> {
        read(root.as_ref())
    }
}

/// One node as read from its directory.
#[derive(Debug)]
struct RawNode {
    id: u32,
    cpus: CpuSet,
    /// The file `cpus` came from (`cpulist` or `cpumap`).
    cpus_file: std::path::PathBuf,
    meminfo: Meminfo,
    distance: Option<Vec<u32>>,
    huge: Vec<HugeCounts>,
    initiators: Vec<u32>,
}

/// Reads the topology under `root`.
fn read(root: &Path) -> Result<Topology, TopologyError> {
    let fs = Rooted::new(root)?;
    let live = is_root_dir(root);
    let meminfo = read_meminfo(&fs, "proc/meminfo")?;
    let online = read_online_cpus(&fs)?;
    let base_page_size = if live {
        live::page_size()
    } else {
        fs.read("proc/self/smaps")?
            .as_deref()
            .and_then(smaps_page_size)
    };
    let mut builder = Topology::builder();
    if let Some(size) = base_page_size {
        builder = builder.base_page_size(size);
    }
    if let Some(size) = meminfo.and_then(|m| m.huge_page_size) {
        builder = builder.default_huge_page_size(size);
    }
    if !fs.exists(NODE_DIR)? {
        return fallback(&fs, live, builder, meminfo, online);
    }
    let nodes = node_ids(&fs)?
        .into_iter()
        .map(|id| read_node(&fs, id))
        .collect::<Result<Vec<_>, _>>()?;
    let per_node: Vec<(u32, &[HugeCounts], Meminfo)> = nodes
        .iter()
        .map(|n| (n.id, n.huge.as_slice(), n.meminfo))
        .collect();
    for pool in read_pools(&fs, &per_node, meminfo)? {
        builder = builder.huge_pages(pool);
    }
    let ids: Vec<u32> = nodes.iter().map(|n| n.id).collect();
    let cpu_sets: Vec<&CpuSet> = nodes.iter().map(|n| &n.cpus).collect();
    let cpu_files: Vec<_> = nodes.iter().map(|n| n.cpus_file.clone()).collect();
    check_cpus_disjoint(&ids, &cpu_sets, &cpu_files)?;
    let (matrix, warnings) = distances(&fs, &nodes)?;
    builder = builder.distances(matrix);
    for warning in warnings {
        builder = builder.warning(warning);
    }
    for package in read_packages(&fs)? {
        builder = builder.package(package);
    }
    let all_cpus = nodes.iter().fold(CpuSet::new(), |a, n| a.union(&n.cpus));
    builder = builder.online_cpus(online.unwrap_or(all_cpus));
    let cues = read_cues(&fs, &ids)?;
    for tier in &cues.tiers {
        builder = builder.tier(tier.clone());
    }
    for node in assemble(&nodes, &cues) {
        builder = builder.node(node);
    }
    builder
        .source(Source::Sysfs {
            root: root.to_path_buf(),
        })
        .build()
        .map_err(|e| in_tree(&fs, e))
}

/// A builder error about data read under `fs`, restated as one about the
/// tree it came from.
fn in_tree(fs: &Rooted, error: TopologyError) -> TopologyError {
    match error {
        TopologyError::Inconsistent { what } => {
            TopologyError::malformed(fs.shown(NODE_DIR), what, SYSFS_SHAPE)
        }
        other => other,
    }
}

/// Builds the model nodes from what was read, classifying each.
fn assemble(nodes: &[RawNode], cues: &Cues) -> Vec<Node> {
    let tier_of = |id: u32| {
        cues.tiers
            .iter()
            .find(|t| t.nodes.contains(&id))
            .map(|t| t.id)
    };
    let fastest_cpu_tier = nodes
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .filter_map(|n| tier_of(n.id))
        .min();
    nodes
        .iter()
        .map(|raw| {
            let has_cpus = !raw.cpus.is_empty();
            let evidence = SysfsEvidence {
                has_cpus,
                nvidia_gpu: cues.nvidia_gpu_nodes.contains(&raw.id),
                cxl_dax: cues.cxl_dax_nodes.contains(&raw.id),
                tier: tier_of(raw.id),
                fastest_cpu_tier,
            };
            let local = if has_cpus {
                raw.cpus.clone()
            } else {
                nodes
                    .iter()
                    .filter(|n| n.id != raw.id && raw.initiators.contains(&n.id))
                    .fold(CpuSet::new(), |a, n| a.union(&n.cpus))
            };
            Node::new(raw.id, raw.cpus.clone())
                .with_memory(raw.meminfo.total, raw.meminfo.free)
                .with_classification(classify_sysfs(evidence))
                .with_tier(evidence.tier)
                .with_local_cpus(local)
        })
        .collect()
}

/// The single-node model of a machine without `sys/devices/system/node`.
fn fallback(
    fs: &Rooted,
    live: bool,
    builder: TopologyBuilder,
    meminfo: Option<Meminfo>,
    online: Option<CpuSet>,
) -> Result<Topology, TopologyError> {
    let cpus = match online {
        Some(cpus) => cpus,
        None if live => CpuSet::first_n(live::online_cpu_count().unwrap_or(1)),
        None => {
            return Err(TopologyError::malformed(
                fs.shown(CPU_DIR),
                format!("there is no {NODE_DIR} and no CPU information either"),
                SYSFS_SHAPE,
            ));
        }
    };
    let meminfo = meminfo.unwrap_or_default();
    let node = Node::new(0, cpus.clone())
        .with_memory(meminfo.total, meminfo.free)
        .with_classification(Classification::new(
            MemoryKind::Dram,
            KindCue::SingleNodeFallback,
        ));
    let mut builder = builder.node(node).online_cpus(cpus);
    for pool in read_pools(fs, &[], Some(meminfo))? {
        builder = builder.huge_pages(pool);
    }
    builder
        .source(Source::SysfsSingleNodeFallback {
            root: fs.root().to_path_buf(),
        })
        .build()
        .map_err(|e| in_tree(fs, e))
}

/// Reads and parses a meminfo file, if present.
fn read_meminfo(fs: &Rooted, rel: &str) -> Result<Option<Meminfo>, TopologyError> {
    fs.read(rel)?
        .map(|text| parse_meminfo(&fs.shown(rel), &text))
        .transpose()
}

/// Reads a CPU or node list file, if present.
pub(crate) fn read_list(fs: &Rooted, rel: &str) -> Result<Option<CpuSet>, TopologyError> {
    fs.read(rel)?
        .map(|text| {
            CpuSet::parse_list(&text).map_err(|source| TopologyError::CpuSet {
                path: fs.shown(rel),
                source,
            })
        })
        .transpose()
}

/// The online CPUs: `cpu/online`, else the `cpuN` directories whose
/// `online` file is not `0`; `None` if neither exists.
fn read_online_cpus(fs: &Rooted) -> Result<Option<CpuSet>, TopologyError> {
    if let Some(set) = read_list(fs, &format!("{CPU_DIR}/online"))? {
        return Ok(Some(set));
    }
    let Some(names) = fs.list(CPU_DIR)? else {
        return Ok(None);
    };
    let mut set = CpuSet::new();
    for cpu in names.iter().filter_map(|n| numbered(n, "cpu")) {
        if cpu >= CpuSet::MAX_CPUS {
            continue;
        }
        // cpu0 often has no `online` file: it cannot be taken offline.
        let state = fs.read(&format!("{CPU_DIR}/cpu{cpu}/online"))?;
        if state.as_deref().map(str::trim) != Some("0") {
            set.insert(cpu);
        }
    }
    Ok((!set.is_empty()).then_some(set))
}

/// The node ids: `node/online`, else the `nodeN` directories.
fn node_ids(fs: &Rooted) -> Result<Vec<u32>, TopologyError> {
    let ids: Vec<u32> = match read_list(fs, &format!("{NODE_DIR}/online"))? {
        Some(set) => set.iter().collect(),
        None => fs
            .list(NODE_DIR)?
            .unwrap_or_default()
            .iter()
            .filter_map(|n| numbered(n, "node"))
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect(),
    };
    if ids.is_empty() {
        return Err(TopologyError::malformed(
            fs.shown(NODE_DIR),
            "no NUMA node is listed (empty `online` file and no nodeN directory)",
            SYSFS_SHAPE,
        ));
    }
    Ok(ids)
}

/// Reads `nodeN/`.
fn read_node(fs: &Rooted, id: u32) -> Result<RawNode, TopologyError> {
    let dir = format!("{NODE_DIR}/node{id}");
    if !fs.exists(&dir)? {
        return Err(TopologyError::malformed(
            fs.shown(&dir),
            format!("node {id} is listed in {NODE_DIR}/online but has no directory"),
            SYSFS_SHAPE,
        ));
    }
    let list = format!("{dir}/cpulist");
    let (cpus, cpus_file) = match read_list(fs, &list)? {
        Some(set) => (set, fs.shown(&list)),
        None => {
            let rel = format!("{dir}/cpumap");
            let text = fs.read(&rel)?.ok_or_else(|| {
                TopologyError::malformed(
                    fs.shown(&dir),
                    "the node has neither a cpulist nor a cpumap file",
                    SYSFS_SHAPE,
                )
            })?;
            let set = CpuSet::parse_mask(&text).map_err(|source| TopologyError::CpuSet {
                path: fs.shown(&rel),
                source,
            })?;
            (set, fs.shown(&rel))
        }
    };
    let meminfo = read_meminfo(fs, &format!("{dir}/meminfo"))?.unwrap_or_default();
    let distance_rel = format!("{dir}/distance");
    let distance = fs
        .read(&distance_rel)?
        .map(|t| parse_distance_row(&fs.shown(&distance_rel), &t))
        .transpose()?;
    let huge = read_hugepage_dir(fs, &format!("{dir}/hugepages"))?;
    let mut initiators = Vec::new();
    for access in ["access1", "access0"] {
        let names = fs.list(&format!("{dir}/{access}/initiators"))?;
        initiators = names
            .unwrap_or_default()
            .iter()
            .filter_map(|n| numbered(n, "node"))
            .collect();
        if !initiators.is_empty() {
            break;
        }
    }
    Ok(RawNode {
        id,
        cpus,
        cpus_file,
        meminfo,
        distance,
        huge,
        initiators,
    })
}

/// The distance matrix from the nodes' rows, and the warnings about it:
/// unknown if no node has a `distance` file; an error if only some do, a
/// row has the wrong length, or a value is impossible (`sysfs_checks`).
fn distances(fs: &Rooted, nodes: &[RawNode]) -> Result<(Distances, Vec<String>), TopologyError> {
    if nodes.iter().all(|n| n.distance.is_none()) {
        return Ok((Distances::unknown(), Vec::new()));
    }
    let mut files = Vec::with_capacity(nodes.len());
    let ids: Vec<u32> = nodes.iter().map(|n| n.id).collect();
    let mut rows = Vec::with_capacity(nodes.len());
    for node in nodes {
        let path = fs.shown(&format!("{NODE_DIR}/node{}/distance", node.id));
        files.push(path.clone());
        let Some(row) = &node.distance else {
            return Err(TopologyError::malformed(
                path,
                "this node has no distance file but other nodes do",
                SYSFS_SHAPE,
            ));
        };
        if row.len() != ids.len() {
            return Err(TopologyError::malformed(
                path,
                format!(
                    "{} distances for {} nodes {ids:?}; the columns must follow the node ids \
                     in increasing order",
                    row.len(),
                    ids.len()
                ),
                SYSFS_SHAPE,
            ));
        }
        rows.push(row.clone());
    }
    let warnings = check_distances(&ids, &rows, &files)?;
    let matrix = Distances::from_rows(ids, rows).map_err(|e| in_tree(fs, e))?;
    Ok((matrix, warnings))
}
