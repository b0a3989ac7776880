//! What the machine has: NUMA nodes, their CPUs and memory, distances, huge-page pools.
//!
//! One model, [`Topology`], from two sources:
//! - Linux sysfs/procfs ([`Topology::from_sysfs`], [`Topology::detect`]),
//!   the default, with no dependency beyond libc;
//! - hwloc, behind the `hwloc` feature (`Topology::from_hwloc`,
//!   `Topology::from_hwloc_xml`).
//!
//! Tests and other modules build synthetic topologies with
//! [`Topology::builder`].
//!
//! # Examples
//!
//! ```
//! use umrf::topology::Topology;
//!
//! let topo = Topology::detect()?;
//! let here = topo.current_node().expect("this CPU belongs to a node");
//! println!("running on node {here} of {}", topo.nodes().len());
//! for id in topo.nearest_nodes(here).unwrap_or_default() {
//!     println!("  node {id}: distance {:?}", topo.distance(here, id));
//! }
//! # Ok::<(), umrf::topology::TopologyError>(())
//! ```

mod builder;
mod classify;
mod cpuset;
mod distances;
mod error;
#[cfg(feature = "hwloc")]
mod hwloc;
#[cfg(feature = "hwloc")]
mod hwloc_gpu;
mod live;
mod node;
mod package;
mod pools;
mod rooted;
mod source;
mod sysfs;
mod sysfs_checks;
mod sysfs_cues;
mod sysfs_files;
mod sysfs_hugepages;
mod sysfs_packages;

pub use builder::TopologyBuilder;
pub use classify::{Classification, KindCue, MemoryKind};
pub use cpuset::CpuSet;
pub use distances::Distances;
pub use error::{CpuSetError, TopologyError};
pub use node::Node;
pub use package::Package;
pub use pools::{HugePagePool, MemoryTier, NodeHugePages};
pub use source::Source;

/// The machine's memory topology: NUMA nodes, distances, huge-page pools,
/// memory tiers, and where the information came from.
///
/// # Invariants
///
/// 0. `nodes` is sorted by id, ids are unique.
/// 1. `distances` is unknown or covers exactly the node ids.
/// 2. `huge_pages` is sorted by page size, sizes unique.
/// 3. `tiers` is sorted by id and names only existing nodes.
/// 4. `packages` is sorted by id, ids are unique, and no CPU is in two.
/// 5. No CPU belongs to two nodes.
///
/// The builder ([`TopologyBuilder::build`]) checks all six.
///
/// # Examples
///
/// ```
/// use umrf::topology::{CpuSet, Distances, Node, Topology};
///
/// let topo = Topology::builder()
///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
///     .node(Node::new(1, CpuSet::new()))
///     .distances(Distances::from_rows(vec![0, 1], vec![vec![10, 20], vec![20, 10]])?)
///     .build()?;
/// assert!(topo.is_numa());
/// assert_eq!(topo.node_of_cpu(2), Some(0));
/// assert_eq!(topo.memory_only_nodes().map(|n| n.id()).collect::<Vec<_>>(), [1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    nodes: Vec<Node>,
    distances: Distances,
    huge_pages: Vec<HugePagePool>,
    base_page_size: Option<u64>,
    default_huge_page_size: Option<u64>,
    online_cpus: CpuSet,
    tiers: Vec<MemoryTier>,
    packages: Vec<Package>,
    warnings: Vec<String>,
    source: Source,
}

impl Topology {
    /// Starts a [`TopologyBuilder`] for a synthetic topology.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Source, Topology};
    /// let topo = Topology::builder().node(Node::new(0, CpuSet::first_n(2))).build()?;
    /// assert_eq!(topo.source(), &Source::Synthetic);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::new()
    }

    /// Detects this machine from sysfs/procfs at `/`
    /// ([`Topology::from_sysfs`]). Where `/sys/devices/system/node` is absent
    /// (containers, kernels without NUMA) the result is a single node built
    /// from `/proc/meminfo` and the online CPUs, and
    /// [`Topology::source`] is [`Source::SysfsSingleNodeFallback`].
    ///
    /// # Errors
    ///
    /// As [`Topology::from_sysfs`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// assert!(!topo.nodes().is_empty() && topo.source().is_live());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn detect() -> Result<Self, TopologyError> {
        Self::from_sysfs("/")
    }

    /// The NUMA nodes, sorted by id.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// assert!(topo.nodes().windows(2).all(|w| w[0].id() < w[1].id()));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with id `id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let topo = Topology::builder().node(Node::new(8, CpuSet::first_n(1))).build()?;
    /// assert!(topo.node(8).is_some() && topo.node(0).is_none());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes
            .binary_search_by_key(&id, Node::id)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The node whose CPU list contains `cpu`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-1")?))
    ///     .node(Node::new(1, CpuSet::parse_list("2-3")?))
    ///     .build()?;
    /// assert_eq!(topo.node_of_cpu(3), Some(1));
    /// assert_eq!(topo.node_of_cpu(4), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn node_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.cpus().contains(cpu))
            .map(Node::id)
    }

    /// The CPU the calling thread runs on now (`sched_getcpu(3)`); `None`
    /// where the call is unavailable. The answer can be stale as soon as it
    /// is returned unless the thread is pinned.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// assert!(Topology::current_cpu().is_some());
    /// ```
    #[must_use]
    pub fn current_cpu() -> Option<u32> {
        live::current_cpu()
    }

    /// The node of [`Topology::current_cpu`] in this topology; `None` when
    /// the topology does not describe this machine ([`Source::is_live`] is
    /// false: a sysfs copy under another root, hwloc with `HWLOC_FSROOT`, an
    /// XML file, a synthetic topology), since the calling thread's CPU number
    /// means nothing on another machine.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// assert!(topo.current_node().is_some());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn current_node(&self) -> Option<u32> {
        if !self.source.is_live() {
            return None;
        }
        self.node_of_cpu(Self::current_cpu()?)
    }

    /// The nodes without CPUs (HBM, CXL, GPU memory, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(2)))
    ///     .node(Node::new(4, CpuSet::new()))
    ///     .build()?;
    /// assert_eq!(topo.memory_only_nodes().count(), 1);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn memory_only_nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.iter().filter(|n| n.is_memory_only())
    }

    /// The distance matrix.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// if topo.distances().is_known() {
    ///     assert_eq!(topo.distances().node_ids().len(), topo.nodes().len());
    /// }
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn distances(&self) -> &Distances {
        &self.distances
    }

    /// Distance from node `from` to node `to`, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// let id = topo.nodes()[0].id();
    /// if let Some(d) = topo.distance(id, id) {
    ///     assert_eq!(d, 10);
    /// }
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn distance(&self, from: u32, to: u32) -> Option<u32> {
        self.distances.get(from, to)
    }

    /// All node ids ordered by distance from `from` (nearest first, ties by
    /// id), `from` itself first. `None` if `from` is not a node, or the
    /// machine has several nodes and no distance matrix.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Distances, Node, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .node(Node::new(1, CpuSet::new()))
    ///     .node(Node::new(2, CpuSet::new()))
    ///     .distances(Distances::from_rows(
    ///         vec![0, 1, 2],
    ///         vec![vec![10, 31, 21], vec![31, 10, 41], vec![21, 41, 10]],
    ///     )?)
    ///     .build()?;
    /// assert_eq!(topo.nearest_nodes(0), Some(vec![0, 2, 1]));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn nearest_nodes(&self, from: u32) -> Option<Vec<u32>> {
        self.node(from)?;
        if self.nodes.len() == 1 {
            return Some(vec![from]);
        }
        let mut ids: Vec<(u32, u32)> = self
            .nodes
            .iter()
            .map(|n| Some((self.distance(from, n.id())?, n.id())))
            .collect::<Option<_>>()?;
        // The node itself first even if the firmware gives another node an
        // equal distance.
        ids.sort_by_key(|&(d, id)| (id != from, d, id));
        Some(ids.into_iter().map(|(_, id)| id).collect())
    }

    /// Whether the machine has more than one NUMA node.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let one = Topology::builder().node(Node::new(0, CpuSet::first_n(1))).build()?;
    /// assert!(!one.is_numa());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn is_numa(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The huge-page pools, sorted by page size.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// assert!(topo.hugepage_pools().windows(2).all(|w| w[0].page_size < w[1].page_size));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn hugepage_pools(&self) -> &[HugePagePool] {
        &self.huge_pages
    }

    /// The huge-page pool of pages of `page_size` bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, HugePagePool, Node, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .huge_pages(HugePagePool::new(2 << 20, 16, Some(16)))
    ///     .build()?;
    /// assert_eq!(topo.hugepage_pool(2 << 20).map(|p| p.total), Some(16));
    /// assert!(topo.hugepage_pool(1 << 30).is_none());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn hugepage_pool(&self, page_size: u64) -> Option<&HugePagePool> {
        self.huge_pages.iter().find(|p| p.page_size == page_size)
    }

    /// The base page size in bytes. For the live machine it comes from
    /// `sysconf(_SC_PAGESIZE)`; for a sysfs fixture root from
    /// `proc/self/smaps` (`KernelPageSize`) if the root has it; for hwloc
    /// from the smallest page type. `None` means unknown: a fixture root
    /// without that file says nothing reliable about its page size (64 KiB
    /// on many POWER and ARM systems), so none is assumed.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let size = Topology::detect()?.base_page_size().expect("live machine");
    /// assert!(size.is_power_of_two());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn base_page_size(&self) -> Option<u64> {
        self.base_page_size
    }

    /// The default huge page size (`Hugepagesize` in `/proc/meminfo`), the
    /// size `MAP_HUGETLB` uses without a size flag.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// if let Some(size) = Topology::detect()?.default_huge_page_size() {
    ///     assert!(size.is_power_of_two());
    /// }
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn default_huge_page_size(&self) -> Option<u64> {
        self.default_huge_page_size
    }

    /// The CPUs that are online (sysfs `cpu/online`), which can be fewer
    /// than the nodes list.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// assert!(topo.online_cpus().contains(Topology::current_cpu().unwrap()));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn online_cpus(&self) -> &CpuSet {
        &self.online_cpus
    }

    /// The memory tiers, sorted by id (lower = faster); empty where the
    /// source has none.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// let topo = Topology::detect()?;
    /// for tier in topo.memory_tiers() {
    ///     assert!(tier.nodes.iter().all(|&n| topo.node(n).is_some()));
    /// }
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn memory_tiers(&self) -> &[MemoryTier] {
        &self.tiers
    }

    /// Which source produced this topology.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// println!("topology from {}", Topology::detect()?.source());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// What the reader found questionable but not impossible, one sentence
    /// each, naming the file: an asymmetric distance matrix (ACPI allows one,
    /// but it is rare and often a firmware bug), for example. Empty for a
    /// clean read.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Topology;
    /// for warning in Topology::detect()?.warnings() {
    ///     eprintln!("topology: {warning}");
    /// }
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Total memory of all nodes in bytes, if every node's is known.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)).with_memory(Some(100), None))
    ///     .node(Node::new(1, CpuSet::new()).with_memory(Some(50), None))
    ///     .build()?;
    /// assert_eq!(topo.memory_total(), Some(150));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn memory_total(&self) -> Option<u64> {
        self.nodes
            .iter()
            .try_fold(0u64, |sum, n| Some(sum.saturating_add(n.memory_total()?)))
    }
}
