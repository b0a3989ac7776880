//! Plain data of a topology: huge-page pools and memory tiers.

/// The huge pages of one size on one node.
///
/// # Examples
///
/// ```
/// use umrf::topology::NodeHugePages;
/// let n = NodeHugePages::new(0, 2048, Some(2048));
/// assert_eq!((n.node, n.total, n.free), (0, 2048, Some(2048)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NodeHugePages {
    /// The node id.
    pub node: u32,
    /// Pages reserved in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages not in use (`free_hugepages`); `None` where the source does not
    /// say (hwloc).
    pub free: Option<u64>,
}

impl NodeHugePages {
    /// A per-node pool entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::NodeHugePages;
    /// assert_eq!(NodeHugePages::new(3, 0, None).node, 3);
    /// ```
    #[must_use]
    pub const fn new(node: u32, total: u64, free: Option<u64>) -> Self {
        Self { node, total, free }
    }
}

/// The huge-page pool of one page size, machine-wide and per node.
///
/// # Examples
///
/// ```
/// use umrf::topology::{HugePagePool, NodeHugePages};
///
/// let pool = HugePagePool::new(2 << 20, 4096, Some(4096))
///     .with_node(NodeHugePages::new(0, 2048, Some(2048)))
///     .with_node(NodeHugePages::new(1, 2048, Some(2048)));
/// assert_eq!(pool.page_size, 2 * 1024 * 1024);
/// assert_eq!(pool.node(1).map(|n| n.total), Some(2048));
/// assert_eq!(pool.total_bytes(), 8 << 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct HugePagePool {
    /// Page size in bytes.
    pub page_size: u64,
    /// Pages reserved machine-wide (`nr_hugepages`).
    pub total: u64,
    /// Pages free machine-wide; `None` where the source does not say.
    pub free: Option<u64>,
    /// The same per node, sorted by node id; empty where the source has no
    /// per-node counts.
    pub per_node: Vec<NodeHugePages>,
}

impl HugePagePool {
    /// A pool with no per-node counts.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::HugePagePool;
    /// assert!(HugePagePool::new(1 << 30, 0, Some(0)).per_node.is_empty());
    /// ```
    #[must_use]
    pub const fn new(page_size: u64, total: u64, free: Option<u64>) -> Self {
        Self {
            page_size,
            total,
            free,
            per_node: Vec::new(),
        }
    }

    /// Adds (or replaces) a node's counts, keeping `per_node` sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{HugePagePool, NodeHugePages};
    /// let pool = HugePagePool::new(2 << 20, 1, None)
    ///     .with_node(NodeHugePages::new(8, 1, None))
    ///     .with_node(NodeHugePages::new(0, 0, None));
    /// assert_eq!(pool.per_node[0].node, 0);
    /// ```
    #[must_use]
    pub fn with_node(mut self, entry: NodeHugePages) -> Self {
        match self.per_node.binary_search_by_key(&entry.node, |n| n.node) {
            Ok(i) => self.per_node[i] = entry,
            Err(i) => self.per_node.insert(i, entry),
        }
        self
    }

    /// The counts of node `node`, if the source had them.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::HugePagePool;
    /// assert!(HugePagePool::new(2 << 20, 0, None).node(0).is_none());
    /// ```
    #[must_use]
    pub fn node(&self, node: u32) -> Option<&NodeHugePages> {
        self.per_node.iter().find(|n| n.node == node)
    }

    /// `total * page_size`, saturating.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::HugePagePool;
    /// assert_eq!(HugePagePool::new(2 << 20, 3, None).total_bytes(), 6 << 20);
    /// ```
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.total.saturating_mul(self.page_size)
    }
}

/// A kernel memory tier (`/sys/devices/virtual/memory_tiering/memory_tierN`)
/// or an hwloc `MemoryTier` rank: nodes of similar performance. Lower ids
/// are faster.
///
/// # Examples
///
/// ```
/// use umrf::topology::MemoryTier;
/// let tier = MemoryTier::new(4, vec![0, 1]);
/// assert!(tier.nodes.contains(&1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MemoryTier {
    /// The tier id (`N` of `memory_tierN`, or the hwloc rank).
    pub id: u32,
    /// The node ids in the tier, sorted.
    pub nodes: Vec<u32>,
}

impl MemoryTier {
    /// A tier; `nodes` is sorted and deduplicated here.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::MemoryTier;
    /// assert_eq!(MemoryTier::new(1, vec![3, 1, 3]).nodes, [1, 3]);
    /// ```
    #[must_use]
    pub fn new(id: u32, mut nodes: Vec<u32>) -> Self {
        nodes.sort_unstable();
        nodes.dedup();
        Self { id, nodes }
    }
}
