//! Automatic placement: from what a buffer is for and what the machine has, which residency to
//! use, and why.
//!
//! [`decide`] applies the seed rules to a [`Request`] and a [`Topology`], in this order:
//!
//! | # | when | strategy | [`Rule`] |
//! |---|---|---|---|
//! | 0 | the request forces a strategy | that strategy: an explicit override always wins | `Override` |
//! | 1 | a GPU reads or writes the memory | `GpuPinned` | `GpuAccess` |
//! | 2 | the scope is remote | `Hugepage` | `RemoteScope` |
//! | 3 | capacity-bound, at least [`CXL_MIN_BYTES`], and the topology has a CXL node | `Cxl` (nearest CXL node) | `CapacityTier` |
//! | 4 | the topology has several nodes and the request is over [`NUMA_MIN_BYTES`] | `NumaNode` of the requester's node | `MultiNode` |
//! | 5 | otherwise | `CpuLocal` | `Default` |
//!
//! The [`Decision`] carries the strategy, the node it points at, the rule and a sentence saying
//! why. Code that decides at run time builds an [`AnyPool`] from it and gets back to typed
//! buffers with a checked downcast, [`AnyPool::try_into_typed`].
//!
//! ```
//! use umrf::placement::{decide, AnyPool, Request, Rule, Reach};
//! use umrf::residency::{CpuLocal, Hugepage};
//! use umrf::topology::Topology;
//!
//! let topo = Topology::detect()?;
//! let decision = decide(&Request::new(64 << 20).reach(Reach::Remote), &topo);
//! assert_eq!(decision.rule, Rule::RemoteScope);
//! println!("{decision}"); // "huge pages: remote scope: …"
//!
//! let pool = AnyPool::builder(&decision).block_size(1 << 20).blocks_per_slot(2).slots(1).build()?;
//! let pool = pool.try_into_typed::<CpuLocal>().unwrap_err().into_inner(); // not CpuLocal: handed back
//! let pool = pool.try_into_typed::<Hugepage>().unwrap(); // a Pool<Hugepage>
//! let lease = pool.attach()?;
//! let buf = lease.alloc_zeroed::<u8>(4096)?; // a SharedBuffer<u8, Hugepage>
//! assert_eq!(buf.len(), 4096);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod any_pool;

use core::fmt;

pub use any_pool::{AnyPool, AnyPoolBuilder, IntoTypedError};

use crate::backing;
use crate::residency::Strategy;
use crate::topology::{Node, Topology};

/// Above this size, a request on a machine with several NUMA nodes is bound to its node (rule 4):
/// smaller buffers fit in caches and per-core slots, where first touch already places them.
pub const NUMA_MIN_BYTES: usize = 1 << 20;

/// From this size on, a capacity-bound request may go to CXL memory (rule 3): below it, the
/// DRAM saved is not worth the roughly doubled latency of CXL-attached memory.
pub const CXL_MIN_BYTES: usize = 256 << 20;

/// Who reads and writes the memory: the scope of a [`Request`].
///
/// ```
/// use umrf::placement::Reach;
/// assert_eq!(Reach::default(), Reach::Local);
/// assert_eq!(Reach::CrossSocket.to_string(), "cross-socket");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reach {
    /// Threads on the requester's own node.
    #[default]
    Local,
    /// Threads on other sockets of this machine too.
    CrossSocket,
    /// Other machines or devices (RDMA, network, storage), through a registration of the
    /// whole region.
    Remote,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Local => "local",
            Reach::CrossSocket => "cross-socket",
            Reach::Remote => "remote",
        })
    }
}

/// What a buffer (or pool) is for: its size, who uses it, and any explicit choice.
///
/// ```
/// use umrf::placement::{Request, Reach};
/// use umrf::residency::Strategy;
/// let request = Request::new(8 << 20)
///     .reach(Reach::CrossSocket)
///     .from_cpu(3)
///     .capacity_bound(true);
/// assert_eq!(request.bytes(), 8 << 20);
/// let forced = request.force(Strategy::Hugepage);
/// assert_eq!(forced.forced(), Some(Strategy::Hugepage));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    bytes: usize,
    reach: Reach,
    gpu_access: bool,
    capacity_bound: bool,
    cpu: Option<u32>,
    forced: Option<Strategy>,
}

impl Request {
    /// A request for `bytes`, local scope, no GPU access.
    pub fn new(bytes: usize) -> Self {
        Request {
            bytes,
            reach: Reach::Local,
            gpu_access: false,
            capacity_bound: false,
            cpu: None,
            forced: None,
        }
    }

    /// Who uses the memory: the request's scope.
    pub fn reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// Whether a GPU reads or writes the memory by DMA.
    pub fn gpu_access(mut self, yes: bool) -> Self {
        self.gpu_access = yes;
        self
    }

    /// Whether the data is bound by capacity rather than latency (cold tables, spill space),
    /// so CXL memory may hold it when the request is large.
    pub fn capacity_bound(mut self, yes: bool) -> Self {
        self.capacity_bound = yes;
        self
    }

    /// The CPU that will use the memory (default: the calling thread's CPU for a topology of
    /// this machine, else the first CPU of the first node).
    pub fn from_cpu(mut self, cpu: u32) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// An explicit choice, which always wins over the rules.
    pub fn force(mut self, strategy: Strategy) -> Self {
        self.forced = Some(strategy);
        self
    }

    /// Bytes asked for.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The explicit choice, if any.
    pub fn forced(&self) -> Option<Strategy> {
        self.forced
    }
}

/// The rule that made a [`Decision`] (see the [module](self) table).
///
/// ```
/// use umrf::placement::Rule;
/// assert_eq!(Rule::MultiNode.to_string(), "several NUMA nodes");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The request forced a strategy.
    Override,
    /// A GPU uses the memory.
    GpuAccess,
    /// Remote scope.
    RemoteScope,
    /// A large capacity-bound request, and CXL memory is present.
    CapacityTier,
    /// Several NUMA nodes and a request over [`NUMA_MIN_BYTES`].
    MultiNode,
    /// None of the above.
    Default,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Override => "explicit override",
            Rule::GpuAccess => "GPU access",
            Rule::RemoteScope => "remote scope",
            Rule::CapacityTier => "capacity tier",
            Rule::MultiNode => "several NUMA nodes",
            Rule::Default => "default",
        })
    }
}

/// Where to place a request, and why.
///
/// ```
/// use umrf::placement::{decide, Request, Rule};
/// use umrf::residency::Strategy;
/// use umrf::topology::{CpuSet, Node, Topology};
/// let topo = Topology::builder()
///     .node(Node::new(0, CpuSet::parse_list("0-7")?))
///     .node(Node::new(1, CpuSet::parse_list("8-15")?))
///     .build()?;
/// let d = decide(&Request::new(16 << 20).from_cpu(9), &topo);
/// assert_eq!((d.strategy, d.node, d.rule), (Strategy::Numa { node: 1 }, Some(1), Rule::MultiNode));
/// assert!(d.reason.contains("CPU 9"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// The strategy to use.
    pub strategy: Strategy,
    /// The node the memory should come from, where one is meant.
    pub node: Option<u32>,
    /// The rule that decided.
    pub rule: Rule,
    /// Why, in words.
    pub reason: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.strategy)?;
        if let Some(node) = self.node {
            write!(f, " (node {node})")?;
        }
        write!(f, ": {}: {}", self.rule, self.reason)
    }
}

/// Applies the seed rules (see the [module](self) table) to `request` on `topology`.
///
/// Never fails: an explicit override naming a node the topology lacks is still the decision
/// (its reason says so), and building a pool from it reports the error.
///
/// ```
/// use umrf::placement::{decide, Request, Rule};
/// use umrf::residency::Strategy;
/// use umrf::topology::Topology;
/// let topo = Topology::detect()?;
/// let d = decide(&Request::new(4096).gpu_access(true), &topo);
/// assert_eq!((d.strategy, d.rule), (Strategy::GpuPinned, Rule::GpuAccess));
/// let d = decide(&Request::new(4096).gpu_access(true).force(Strategy::CpuLocal), &topo);
/// assert_eq!((d.strategy, d.rule), (Strategy::CpuLocal, Rule::Override));
/// # Ok::<(), umrf::topology::TopologyError>(())
/// ```
pub fn decide(request: &Request, topology: &Topology) -> Decision {
    let home = home_node(request, topology);
    let from = match (request.cpu, home) {
        (Some(cpu), Some(node)) => format!("CPU {cpu} on node {node}"),
        (Some(cpu), None) => format!("CPU {cpu}, on no node of the topology"),
        (None, Some(node)) => format!("node {node}"),
        (None, None) => "an unknown node".to_owned(),
    };
    let decision = |strategy, node, rule, reason: String| Decision {
        strategy,
        node,
        rule,
        reason,
    };
    if let Some(strategy) = request.forced {
        let node = forced_node(strategy, topology, home);
        let warning = match strategy {
            Strategy::Numa { node } if topology.node(node).is_none() => {
                format!("; node {node} is not in this topology, so building will fail")
            }
            _ => String::new(),
        };
        return decision(
            strategy,
            node,
            Rule::Override,
            format!("the request chose {strategy} explicitly, which wins over every rule{warning}"),
        );
    }
    if request.gpu_access {
        return decision(
            Strategy::GpuPinned,
            home,
            Rule::GpuAccess,
            format!(
                "a GPU reaches the memory by DMA, so it is page-locked host memory near {from}"
            ),
        );
    }
    if request.reach == Reach::Remote {
        return decision(
            Strategy::Hugepage,
            None,
            Rule::RemoteScope,
            "remote consumers register the whole region: huge pages mean fewer pages to pin and translate".to_owned(),
        );
    }
    let mut aside = String::new();
    if request.capacity_bound {
        match nearest_cxl(topology, home) {
            Some(node) if request.bytes >= CXL_MIN_BYTES => {
                return decision(
                    Strategy::Cxl,
                    Some(node),
                    Rule::CapacityTier,
                    format!(
                        "{} MiB of capacity-bound data goes to CXL node {node}, the nearest to {from}, sparing DRAM",
                        request.bytes >> 20
                    ),
                );
            }
            Some(_) => {
                aside = format!(
                    " (capacity-bound, but under {} MiB: kept off CXL)",
                    CXL_MIN_BYTES >> 20
                );
            }
            None => aside = " (capacity-bound, but the topology has no CXL node)".to_owned(),
        }
    }
    if topology.is_numa()
        && request.bytes > NUMA_MIN_BYTES
        && let Some(node) = home.and_then(|h| with_memory(topology, h))
    {
        return decision(
            Strategy::Numa { node },
            Some(node),
            Rule::MultiNode,
            format!(
                "{} nodes and {} KiB, over {} KiB: bound to node {node}, the memory of {from}, for {} use{aside}",
                topology.nodes().len(),
                request.bytes >> 10,
                NUMA_MIN_BYTES >> 10,
                request.reach
            ),
        );
    }
    decision(
        Strategy::CpuLocal,
        home,
        Rule::Default,
        format!(
            "{} KiB for {} use from {from} on {}: per-core memory on the node of each slot's CPU{aside}",
            request.bytes >> 10,
            request.reach,
            if topology.is_numa() {
                "a NUMA machine"
            } else {
                "a single-node machine"
            }
        ),
    )
}

/// The requester's node: its CPU's, else this thread's (live topologies), else the first
/// node with CPUs.
fn home_node(request: &Request, topology: &Topology) -> Option<u32> {
    if let Some(cpu) = request.cpu {
        return topology.node_of_cpu(cpu);
    }
    topology
        .source()
        .is_live()
        .then(|| topology.current_node())
        .flatten()
        .or_else(|| topology.nodes().iter().find(|n| n.has_cpus()).map(Node::id))
}

/// The node a forced strategy points at.
fn forced_node(strategy: Strategy, topology: &Topology, home: Option<u32>) -> Option<u32> {
    match strategy {
        Strategy::Numa { node } => Some(node),
        Strategy::Cxl => nearest_cxl(topology, home),
        Strategy::Hugepage => None,
        _ => home,
    }
}

/// `node` if it has memory, else the nearest node that does.
fn with_memory(topology: &Topology, node: u32) -> Option<u32> {
    let has = |id: u32| topology.node(id).is_some_and(backing::has_memory);
    if has(node) {
        return Some(node);
    }
    topology
        .nearest_nodes(node)?
        .into_iter()
        .find(|&id| has(id))
}

/// The CXL node nearest `home` (unknown distances: the lowest id).
fn nearest_cxl(topology: &Topology, home: Option<u32>) -> Option<u32> {
    backing::nearest(topology, home, backing::is_cxl)
}
