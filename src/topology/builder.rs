//! [`TopologyBuilder`]: assembles and checks a [`Topology`].

use super::{
    CpuSet, Distances, HugePagePool, MemoryTier, Node, Package, Source, Topology, TopologyError,
};

/// Builds a [`Topology`] from parts, checking that they fit together.
///
/// Every reader uses it; other modules' tests use it for synthetic machines.
///
/// # Examples
///
/// ```
/// use umrf::topology::{CpuSet, Distances, MemoryKind, MemoryTier, Node, Topology};
///
/// // A 2-socket machine with one CXL expander (node 2).
/// let topo = Topology::builder()
///     .node(Node::new(0, CpuSet::parse_list("0-7")?).with_memory(Some(64 << 30), None))
///     .node(Node::new(1, CpuSet::parse_list("8-15")?).with_memory(Some(64 << 30), None))
///     .node(Node::new(2, CpuSet::new()).with_kind(MemoryKind::Cxl).with_tier(Some(5)))
///     .distances(Distances::from_rows(
///         vec![0, 1, 2],
///         vec![vec![10, 21, 14], vec![21, 10, 24], vec![14, 24, 10]],
///     )?)
///     .tier(MemoryTier::new(5, vec![2]))
///     .base_page_size(4096)
///     .build()?;
/// assert_eq!(topo.online_cpus().len(), 16);
/// assert_eq!(topo.nearest_nodes(2), Some(vec![2, 0, 1]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TopologyBuilder {
    nodes: Vec<Node>,
    distances: Distances,
    huge_pages: Vec<HugePagePool>,
    base_page_size: Option<u64>,
    default_huge_page_size: Option<u64>,
    online_cpus: Option<CpuSet>,
    tiers: Vec<MemoryTier>,
    packages: Vec<Package>,
    warnings: Vec<String>,
    source: Source,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TopologyBuilder {
    /// An empty builder; the source is [`Source::Synthetic`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::TopologyBuilder;
    /// assert!(TopologyBuilder::new().build().is_err(), "a topology needs a node");
    /// ```
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            distances: Distances::unknown(),
            huge_pages: Vec::new(),
            base_page_size: None,
            default_huge_page_size: None,
            online_cpus: None,
            tiers: Vec::new(),
            packages: Vec::new(),
            warnings: Vec::new(),
            source: Source::Synthetic,
        }
    }

    /// Adds a node (any order; they are sorted by id).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let t = Topology::builder().node(Node::new(1, CpuSet::new())).node(Node::new(0, CpuSet::first_n(1))).build()?;
    /// assert_eq!(t.nodes()[0].id(), 0);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn node(mut self, node: Node) -> Self {
        self.nodes.push(node);
        self
    }

    /// Sets the distance matrix (default: unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Distances, Node, Topology};
    /// let t = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .distances(Distances::from_rows(vec![0], vec![vec![10]])?)
    ///     .build()?;
    /// assert_eq!(t.distance(0, 0), Some(10));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn distances(mut self, distances: Distances) -> Self {
        self.distances = distances;
        self
    }

    /// Adds a huge-page pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, HugePagePool, Node, Topology};
    /// let t = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .huge_pages(HugePagePool::new(1 << 30, 2, Some(1)))
    ///     .build()?;
    /// assert_eq!(t.hugepage_pools().len(), 1);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn huge_pages(mut self, pool: HugePagePool) -> Self {
        self.huge_pages.push(pool);
        self
    }

    /// Sets the base page size in bytes (default: unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let t = Topology::builder().node(Node::new(0, CpuSet::first_n(1))).base_page_size(65536).build()?;
    /// assert_eq!(t.base_page_size(), Some(65536));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn base_page_size(mut self, bytes: u64) -> Self {
        self.base_page_size = Some(bytes);
        self
    }

    /// Sets the default huge page size in bytes (default: unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let t = Topology::builder().node(Node::new(0, CpuSet::first_n(1))).default_huge_page_size(2 << 20).build()?;
    /// assert_eq!(t.default_huge_page_size(), Some(2 << 20));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn default_huge_page_size(mut self, bytes: u64) -> Self {
        self.default_huge_page_size = Some(bytes);
        self
    }

    /// Sets the online CPUs (default: the union of the nodes' CPUs).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let t = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(8)))
    ///     .online_cpus(CpuSet::first_n(4))
    ///     .build()?;
    /// assert_eq!(t.online_cpus().len(), 4);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn online_cpus(mut self, cpus: CpuSet) -> Self {
        self.online_cpus = Some(cpus);
        self
    }

    /// Adds a memory tier.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, MemoryTier, Node, Topology};
    /// let t = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .tier(MemoryTier::new(4, vec![0]))
    ///     .build()?;
    /// assert_eq!(t.memory_tiers()[0].id, 4);
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn tier(mut self, tier: MemoryTier) -> Self {
        self.tiers.push(tier);
        self
    }

    /// Adds a processor package (socket).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Package, Topology};
    /// let t = Topology::builder()
    ///     .node(Node::new(0, CpuSet::parse_list("0-3")?))
    ///     .node(Node::new(1, CpuSet::parse_list("4-7")?))
    ///     .package(Package::new(0, CpuSet::parse_list("0-3")?))
    ///     .package(Package::new(1, CpuSet::parse_list("4-7")?))
    ///     .build()?;
    /// assert_eq!((t.socket_count(), t.package_of_node(1)), (2, Some(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn package(mut self, package: Package) -> Self {
        self.packages.push(package);
        self
    }

    /// Records something questionable the reader found
    /// ([`Topology::warnings`]).
    pub(crate) fn warning(mut self, warning: String) -> Self {
        self.warnings.push(warning);
        self
    }

    /// Sets the source (the readers use this; the default is
    /// [`Source::Synthetic`]).
    pub(crate) fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Makes `Node::tier` and the tier list say the same: a node listed in a
    /// tier gets that tier; a node with a tier not listed is added to it.
    fn reconcile_tiers(&mut self) -> Result<(), TopologyError> {
        for node in &mut self.nodes {
            let listed = self.tiers.iter().find(|t| t.nodes.contains(&node.id()));
            match (listed, node.tier()) {
                (Some(t), Some(own)) if t.id != own => {
                    return Err(TopologyError::Inconsistent {
                        what: format!(
                            "node {} says tier {own} but memory tier {} lists it",
                            node.id(),
                            t.id
                        ),
                    });
                }
                (Some(t), None) => *node = node.clone().with_tier(Some(t.id)),
                (None, Some(own)) => match self.tiers.binary_search_by_key(&own, |t| t.id) {
                    Ok(i) => {
                        let tier = &self.tiers[i];
                        let mut nodes = tier.nodes.clone();
                        nodes.push(node.id());
                        self.tiers[i] = MemoryTier::new(own, nodes);
                    }
                    Err(i) => self.tiers.insert(i, MemoryTier::new(own, vec![node.id()])),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the parts and builds the topology.
    ///
    /// # Errors
    ///
    /// [`TopologyError::Inconsistent`] if there is no node, a node id
    /// repeats, the distance matrix is known but does not cover exactly the
    /// node ids, a huge page size is zero or repeats, a per-node huge-page
    /// entry or a tier names a missing node, a node sits in two tiers, a
    /// tier id repeats, a node's own [`Node::tier`] differs from the tier
    /// that lists it, two nodes or two packages share a CPU, or a package id
    /// repeats. A node whose tier no [`MemoryTier`] lists is added to
    /// that tier, and a node listed by a tier gets it as its
    /// [`Node::tier`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node, Topology};
    /// let dup = Topology::builder()
    ///     .node(Node::new(0, CpuSet::first_n(1)))
    ///     .node(Node::new(0, CpuSet::new()))
    ///     .build();
    /// assert!(dup.is_err());
    /// ```
    pub fn build(mut self) -> Result<Topology, TopologyError> {
        let bad = |what: String| Err(TopologyError::Inconsistent { what });
        if self.nodes.is_empty() {
            return bad("a topology needs at least one node".into());
        }
        self.nodes.sort_by_key(Node::id);
        if let Some(w) = self.nodes.windows(2).find(|w| w[0].id() == w[1].id()) {
            return bad(format!("node {} appears twice", w[0].id()));
        }
        if let Some((a, b, cpu)) = shared_cpu(self.nodes.iter().map(|n| (n.id(), n.cpus()))) {
            return bad(format!(
                "nodes {a} and {b} both list CPU {cpu}; Linux gives each CPU to one node"
            ));
        }
        self.packages.sort_by_key(Package::id);
        if let Some(w) = self.packages.windows(2).find(|w| w[0].id() == w[1].id()) {
            return bad(format!("package {} appears twice", w[0].id()));
        }
        if let Some((a, b, cpu)) = shared_cpu(self.packages.iter().map(|p| (p.id(), p.cpus()))) {
            return bad(format!("packages {a} and {b} both list CPU {cpu}"));
        }
        let ids: Vec<u32> = self.nodes.iter().map(Node::id).collect();
        if self.distances.is_known() && self.distances.node_ids() != ids.as_slice() {
            return bad(format!(
                "the distance matrix covers nodes {:?} but the nodes are {ids:?}",
                self.distances.node_ids()
            ));
        }
        self.huge_pages.sort_by_key(|p| p.page_size);
        if let Some(p) = self.huge_pages.iter().find(|p| p.page_size == 0) {
            return bad(format!("huge-page pool with page size 0 ({p:?})"));
        }
        if let Some(w) = self
            .huge_pages
            .windows(2)
            .find(|w| w[0].page_size == w[1].page_size)
        {
            return bad(format!("two huge-page pools of size {}", w[0].page_size));
        }
        let known = |id: &u32| ids.binary_search(id).is_ok();
        for pool in &self.huge_pages {
            if let Some(n) = pool.per_node.iter().find(|n| !known(&n.node)) {
                return bad(format!(
                    "huge-page pool of size {} names node {}, which does not exist",
                    pool.page_size, n.node
                ));
            }
        }
        self.tiers.sort_by_key(|t| t.id);
        if let Some(w) = self.tiers.windows(2).find(|w| w[0].id == w[1].id) {
            return bad(format!("memory tier {} appears twice", w[0].id));
        }
        let mut tiered: Vec<u32> = Vec::new();
        for tier in &self.tiers {
            if let Some(n) = tier.nodes.iter().find(|n| !known(n)) {
                return bad(format!("memory tier {} names missing node {n}", tier.id));
            }
            tiered.extend(&tier.nodes);
        }
        tiered.sort_unstable();
        if let Some(w) = tiered.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("node {} is in two memory tiers", w[0]));
        }
        self.reconcile_tiers()?;
        let online_cpus = self.online_cpus.unwrap_or_else(|| {
            self.nodes
                .iter()
                .fold(CpuSet::new(), |all, n| all.union(n.cpus()))
        });
        Ok(Topology {
            nodes: self.nodes,
            distances: self.distances,
            huge_pages: self.huge_pages,
            base_page_size: self.base_page_size,
            default_huge_page_size: self.default_huge_page_size,
            online_cpus,
            tiers: self.tiers,
            packages: self.packages,
            warnings: self.warnings,
            source: self.source,
        })
    }
}

/// The first CPU two of `sets` share, with the ids of both.
fn shared_cpu<'a>(sets: impl Iterator<Item = (u32, &'a CpuSet)>) -> Option<(u32, u32, u32)> {
    let sets: Vec<(u32, &CpuSet)> = sets.collect();
    sets.iter().enumerate().find_map(|(i, &(a, cpus))| {
        sets[i + 1..].iter().find_map(|&(b, other)| {
            let common = cpus.intersection(other);
            common.first().map(|cpu| (a, b, cpu))
        })
    })
}
