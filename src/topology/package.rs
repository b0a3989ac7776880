//! [`Package`]: one processor package (socket).

use super::cpuset::CpuSet;

/// One processor package (a socket): its id and the CPUs it holds.
///
/// The sysfs reader takes the id from `cpuN/topology/physical_package_id`
/// (which need not be small or dense: the Kunpeng 920 pair reports 36 and
/// 8442), hwloc from the `Package` object's OS index. A NUMA node belongs to
/// the package that holds its CPUs, or, for a memory-only node, the CPUs
/// local to it ([`Topology::package_of_node`](super::Topology::package_of_node)).
///
/// # Examples
///
/// ```
/// use umrf::topology::{CpuSet, Package};
/// let socket = Package::new(8, CpuSet::parse_list("88-175")?);
/// assert_eq!((socket.id(), socket.cpus().len()), (8, 88));
/// # Ok::<(), umrf::topology::CpuSetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Package {
    id: u32,
    cpus: CpuSet,
}

impl Package {
    /// A package with id `id` holding `cpus`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Package};
    /// assert_eq!(Package::new(0, CpuSet::first_n(4)).cpus().to_string(), "0-3");
    /// ```
    #[must_use]
    pub fn new(id: u32, cpus: CpuSet) -> Self {
        Self { id, cpus }
    }

    /// The package id (`physical_package_id`, hwloc `os_index`).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Package};
    /// assert_eq!(Package::new(36, CpuSet::new()).id(), 36);
    /// ```
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The CPUs of the package that the source lists (a trimmed dump may
    /// list fewer than the package has).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Package};
    /// assert!(Package::new(1, CpuSet::first_n(2)).cpus().contains(1));
    /// ```
    #[must_use]
    pub fn cpus(&self) -> &CpuSet {
        &self.cpus
    }

    /// Adds `cpu` to the package (the readers build packages CPU by CPU).
    pub(crate) fn insert(&mut self, cpu: u32) {
        self.cpus.insert(cpu);
    }
}

impl super::Topology {
    /// The processor packages (sockets), sorted by id; empty where the source
    /// does not say (a topology built by hand without
    /// [`TopologyBuilder::package`](super::TopologyBuilder::package)).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Package, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
    ///     .node(Node::new(1, CpuSet::parse_list("4-7")?))
    ///     .package(Package::new(0, CpuSet::parse_list("0-7")?))
    ///     .build()?;
    /// assert_eq!(topo.packages().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// The package holding `cpu`, if the source lists one.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Package, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
    ///     .package(Package::new(36, CpuSet::parse_list("0-3")?))
    ///     .build()?;
    /// assert_eq!((topo.package_of_cpu(2), topo.package_of_cpu(9)), (Some(36), None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn package_of_cpu(&self, cpu: u32) -> Option<u32> {
        self.packages
            .iter()
            .find(|p| p.cpus.contains(cpu))
            .map(Package::id)
    }

    /// The package of node `id`: the one holding the node's CPUs, or for a
    /// memory-only node the CPUs local to it ([`Node::local_cpus`]). `None`
    /// if the node is unknown, or none of those CPUs is in a listed package
    /// (GPU memory nodes read from sysfs have no local CPUs).
    ///
    /// [`Node::local_cpus`]: super::Node::local_cpus
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Package, Topology};
    /// let topo = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
    ///     .node(Node::new(4, CpuSet::new()).with_local_cpus(CpuSet::parse_list("0-3")?))
    ///     .node(Node::new(5, CpuSet::new()))
    ///     .package(Package::new(0, CpuSet::parse_list("0-3")?))
    ///     .build()?;
    /// assert_eq!(topo.package_of_node(4), Some(0));
    /// assert_eq!(topo.package_of_node(5), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn package_of_node(&self, id: u32) -> Option<u32> {
        let node = self.node(id)?;
        let cpus = if node.has_cpus() {
            node.cpus()
        } else {
            node.local_cpus()
        };
        cpus.iter().find_map(|cpu| self.package_of_cpu(cpu))
    }

    /// How many sockets the machine has: the listed packages; where the
    /// source lists none, the nodes with CPUs (memory-only nodes never
    /// count: a one-socket Xeon Phi with MCDRAM nodes, or DRAM plus CXL, is
    /// one socket).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Package, Topology};
    /// let knl = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
    ///     .node(Node::new(1, CpuSet::new()))
    ///     .build()?;
    /// assert_eq!(knl.socket_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn socket_count(&self) -> usize {
        if self.packages.is_empty() {
            self.nodes.iter().filter(|n| n.has_cpus()).count()
        } else {
            self.packages.len()
        }
    }
}
