//! [`Node`]: one NUMA node.

use super::classify::{Classification, KindCue, MemoryKind};
use super::cpuset::CpuSet;

/// One NUMA node: its CPUs, memory and kind.
///
/// Built by the topology readers, or by hand with [`Node::new`] and the
/// `with_*` methods for synthetic topologies.
///
/// # Examples
///
/// ```
/// use umrf::topology::{CpuSet, MemoryKind, Node};
///
/// let dram = Node::new(0, CpuSet::first_n(4)).with_memory(Some(1 << 30), None);
/// assert!(dram.has_cpus() && dram.kind() == MemoryKind::Dram);
/// let hbm = Node::new(1, CpuSet::new()).with_kind(MemoryKind::Hbm);
/// assert!(hbm.is_memory_only());
/// assert_eq!(hbm.kind_reason(), "declared by the code that built this topology");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    id: u32,
    cpus: CpuSet,
    local_cpus: CpuSet,
    memory_total: Option<u64>,
    memory_free: Option<u64>,
    classification: Classification,
    tier: Option<u32>,
}

impl Node {
    /// A node with id `id` and CPUs `cpus`; memory unknown; kind DRAM if it
    /// has CPUs, `Unknown` otherwise ([`Classification::by_cpus`]); no tier;
    /// local CPUs = `cpus`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, MemoryKind, Node};
    /// let node = Node::new(3, CpuSet::new());
    /// assert_eq!((node.id(), node.kind()), (3, MemoryKind::Unknown));
    /// ```
    #[must_use]
    pub fn new(id: u32, cpus: CpuSet) -> Self {
        Self {
            id,
            classification: Classification::by_cpus(!cpus.is_empty()),
            local_cpus: cpus.clone(),
            cpus,
            memory_total: None,
            memory_free: None,
            tier: None,
        }
    }

    /// Sets total and free memory, in bytes (`None` = unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// let node = Node::new(0, CpuSet::first_n(1)).with_memory(Some(4096), Some(1024));
    /// assert_eq!((node.memory_total(), node.memory_free()), (Some(4096), Some(1024)));
    /// ```
    #[must_use]
    pub fn with_memory(mut self, total: Option<u64>, free: Option<u64>) -> Self {
        self.memory_total = total;
        self.memory_free = free;
        self
    }

    /// Declares the kind ([`KindCue::Declared`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, KindCue, MemoryKind, Node};
    /// let node = Node::new(2, CpuSet::new()).with_kind(MemoryKind::Cxl);
    /// assert_eq!(node.classification().cue, KindCue::Declared);
    /// ```
    #[must_use]
    pub fn with_kind(self, kind: MemoryKind) -> Self {
        self.with_classification(Classification::new(kind, KindCue::Declared))
    }

    /// Sets kind and cue.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{Classification, CpuSet, KindCue, MemoryKind, Node};
    /// let c = Classification::new(MemoryKind::Gpu, KindCue::NvidiaNumaStatus);
    /// assert_eq!(Node::new(250, CpuSet::new()).with_classification(c).kind(), MemoryKind::Gpu);
    /// ```
    #[must_use]
    pub fn with_classification(mut self, classification: Classification) -> Self {
        self.classification = classification;
        self
    }

    /// Sets the memory tier (lower = faster; see [`Node::tier`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert_eq!(Node::new(0, CpuSet::first_n(1)).with_tier(Some(4)).tier(), Some(4));
    /// ```
    #[must_use]
    pub fn with_tier(mut self, tier: Option<u32>) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the CPUs local to this memory (see [`Node::local_cpus`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// let mcdram = Node::new(4, CpuSet::new()).with_local_cpus(CpuSet::first_n(4));
    /// assert!(mcdram.is_memory_only() && mcdram.local_cpus().len() == 4);
    /// ```
    #[must_use]
    pub fn with_local_cpus(mut self, local_cpus: CpuSet) -> Self {
        self.local_cpus = local_cpus;
        self
    }

    /// The node id (Linux node number, hwloc `os_index`).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert_eq!(Node::new(8, CpuSet::new()).id(), 8);
    /// ```
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The CPUs of this node, as the source lists them (sysfs
    /// `nodeN/cpulist`). They may include offline CPUs: intersect with
    /// [`Topology::online_cpus`](super::Topology::online_cpus) for the ones
    /// that can run.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert_eq!(Node::new(0, CpuSet::first_n(2)).cpus().to_string(), "0-1");
    /// ```
    #[must_use]
    pub fn cpus(&self) -> &CpuSet {
        &self.cpus
    }

    /// The CPUs the platform reports as local to this memory: the node's own
    /// CPUs; for a memory-only node, those of its HMAT initiator nodes
    /// (sysfs `nodeN/access1/initiators`, else `access0`) or of its hwloc
    /// parent. Empty when no source says.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert!(Node::new(9, CpuSet::new()).local_cpus().is_empty());
    /// ```
    #[must_use]
    pub fn local_cpus(&self) -> &CpuSet {
        &self.local_cpus
    }

    /// Total memory in bytes, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert_eq!(Node::new(0, CpuSet::new()).memory_total(), None);
    /// ```
    #[must_use]
    pub fn memory_total(&self) -> Option<u64> {
        self.memory_total
    }

    /// Free memory in bytes, if known (a snapshot taken at detection).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// let node = Node::new(0, CpuSet::new()).with_memory(Some(2048), Some(1024));
    /// assert_eq!(node.memory_free(), Some(1024));
    /// ```
    #[must_use]
    pub fn memory_free(&self) -> Option<u64> {
        self.memory_free
    }

    /// The kind of memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, MemoryKind, Node};
    /// assert_eq!(Node::new(0, CpuSet::first_n(1)).kind(), MemoryKind::Dram);
    /// ```
    #[must_use]
    pub fn kind(&self) -> MemoryKind {
        self.classification.kind
    }

    /// The kind with the cue it was derived from.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, KindCue, Node};
    /// assert_eq!(Node::new(0, CpuSet::first_n(1)).classification().cue, KindCue::HasCpus);
    /// ```
    #[must_use]
    pub fn classification(&self) -> Classification {
        self.classification
    }

    /// Why the node has its kind, as a sentence.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert!(Node::new(1, CpuSet::new()).kind_reason().contains("CPU-less"));
    /// ```
    #[must_use]
    pub fn kind_reason(&self) -> &'static str {
        self.classification.cue.reason()
    }

    /// The memory tier, if the source has tiers. Lower is faster. Values
    /// are comparable only within one topology: sysfs gives the kernel tier
    /// id (`memory_tier4` is the default DRAM tier), hwloc its `MemoryTier`
    /// rank (0 = fastest).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert_eq!(Node::new(0, CpuSet::new()).tier(), None);
    /// ```
    #[must_use]
    pub fn tier(&self) -> Option<u32> {
        self.tier
    }

    /// Whether the node has CPUs.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert!(Node::new(0, CpuSet::first_n(1)).has_cpus());
    /// ```
    #[must_use]
    pub fn has_cpus(&self) -> bool {
        !self.cpus.is_empty()
    }

    /// Whether the node has memory but no CPUs (HBM, CXL, GPU memory, or
    /// interleaved memory as on the Itanium sx2000).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::{CpuSet, Node};
    /// assert!(Node::new(16, CpuSet::new()).is_memory_only());
    /// ```
    #[must_use]
    pub fn is_memory_only(&self) -> bool {
        self.cpus.is_empty()
    }
}
