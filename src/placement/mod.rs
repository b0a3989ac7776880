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
//! | 3 | [`MemoryPreference::Bandwidth`], and an HBM node has room | `NumaNode` of the nearest such node | `HighBandwidth` |
//! | 4 | [`MemoryPreference::Capacity`], at least [`CXL_MIN_BYTES`], and a CXL node has room | `Cxl` (nearest such node) | `CapacityTier` |
//! | 5 | the machine has several sockets and the request is over [`NUMA_MIN_BYTES`] | `NumaNode` of the requester's node, else of the nearest node with CPUs that has room | `MultiSocket` |
//! | 6 | rule 5 applies, no single node has room, the request allows spreading and the nodes together have room | `CpuLocal`: each slot's memory on its own CPU's node | `Spread` |
//! | 7 | otherwise | `CpuLocal` | `Default` |
//!
//! *Room* is a node's free memory where the topology says it (sysfs `MemFree`, read when the
//! topology was), else its size; a node whose memory is unknown is taken to have room. A strict
//! binding (rules 3 to 5) never goes to a node without room: when rule 5 finds none and
//! spreading is not allowed (or would not fit), and when no rule fits a request larger than
//! all the nodes with CPUs together, [`decide`] returns [`PlacementError::NoRoom`]. A
//! preference that finds no node with room (rules 3 and 4) falls through to the next rules,
//! and the [`Decision`]'s reason says why.
//!
//! *Sockets* are the topology's packages ([`Topology::socket_count`]); memory-only nodes (HBM
//! without CPUs, CXL, GPU memory) never make a machine multi-socket, and are chosen only by the
//! preference that asks for them.
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
//! let decision = decide(&Request::new(64 << 20).reach(Reach::Remote), &topo)?;
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
mod error;
mod request;
mod room;

use core::fmt;

pub use any_pool::{AnyPool, AnyPoolBuilder, IntoTypedError};
pub use error::PlacementError;
pub use request::{MemoryPreference, Reach, Request};

use crate::backing;
use crate::residency::Strategy;
use crate::topology::{MemoryKind, Node, Topology};
use room::{by_distance, describe, first_fitting, fits, room, size, total_room};

/// Above this size, a request on a machine with several sockets is bound to its node (rule 5):
/// smaller buffers fit in caches and per-core slots, where first touch already places them.
pub const NUMA_MIN_BYTES: usize = 1 << 20;

/// From this size on, a capacity-bound request may go to CXL memory (rule 4): below it, the
/// DRAM saved is not worth the roughly doubled latency of CXL-attached memory.
pub const CXL_MIN_BYTES: usize = 256 << 20;

/// The rule that made a [`Decision`] (see the [module](self) table).
///
/// ```
/// use umrf::placement::Rule;
/// assert_eq!(Rule::MultiSocket.to_string(), "several sockets");
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
    /// The request prefers bandwidth, and a high-bandwidth node has room.
    HighBandwidth,
    /// A large capacity-bound request, and a CXL node has room.
    CapacityTier,
    /// Several sockets and a request over [`NUMA_MIN_BYTES`].
    MultiSocket,
    /// No single node has room; the request allows spreading over nodes.
    Spread,
    /// None of the above.
    Default,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Override => "explicit override",
            Rule::GpuAccess => "GPU access",
            Rule::RemoteScope => "remote scope",
            Rule::HighBandwidth => "high bandwidth",
            Rule::CapacityTier => "capacity tier",
            Rule::MultiSocket => "several sockets",
            Rule::Spread => "spread over nodes",
            Rule::Default => "default",
        })
    }
}

/// Where to place a request, and why.
///
/// ```
/// use umrf::placement::{decide, Request, Rule};
/// use umrf::residency::Strategy;
/// use umrf::topology::{CpuSet, Node, Package, Topology};
/// let topo = Topology::builder()
///     .node(Node::new(0, CpuSet::parse_list("0-7")?))
///     .node(Node::new(1, CpuSet::parse_list("8-15")?))
///     .package(Package::new(0, CpuSet::parse_list("0-7")?))
///     .package(Package::new(1, CpuSet::parse_list("8-15")?))
///     .build()?;
/// let d = decide(&Request::new(16 << 20).from_cpu(9), &topo)?;
/// assert_eq!((d.strategy, d.node, d.rule), (Strategy::Numa { node: 1 }, Some(1), Rule::MultiSocket));
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
    /// The nodes a [`Rule::Spread`] decision spreads over (nearest to the requester first);
    /// empty for every other rule.
    pub spread: Vec<u32>,
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
/// An explicit override naming a node the topology lacks, or one without room, is still the
/// decision (its reason says so), and building a pool from it reports the error.
///
/// # Errors
///
/// [`PlacementError::NoRoom`] when the rules call for binding to one node and none with CPUs
/// has room, unless the request allows spreading and the nodes together have room; and when a
/// request is larger than the room of all nodes with CPUs together.
///
/// ```
/// use umrf::placement::{decide, Request, Rule};
/// use umrf::residency::Strategy;
/// use umrf::topology::Topology;
/// let topo = Topology::detect()?;
/// let d = decide(&Request::new(4096).gpu_access(true), &topo)?;
/// assert_eq!((d.strategy, d.rule), (Strategy::GpuPinned, Rule::GpuAccess));
/// let d = decide(&Request::new(4096).gpu_access(true).force(Strategy::CpuLocal), &topo)?;
/// assert_eq!((d.strategy, d.rule), (Strategy::CpuLocal, Rule::Override));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn decide(request: &Request, topology: &Topology) -> Result<Decision, PlacementError> {
    let home = home_node(request, topology);
    let from = match (request.cpu, home) {
        (Some(cpu), Some(node)) => format!("CPU {cpu} on node {node}"),
        (Some(cpu), None) => format!("CPU {cpu}, on no node of the topology"),
        (None, Some(node)) => format!("node {node}"),
        (None, None) => "an unknown node".to_owned(),
    };
    let bytes = request.bytes;
    let decision = |strategy, node, rule, reason: String| Decision {
        strategy,
        node,
        rule,
        reason,
        spread: Vec::new(),
    };
    if let Some(strategy) = request.forced {
        let node = forced_node(strategy, topology, home);
        let warning = match strategy {
            Strategy::Numa { node } => match topology.node(node) {
                None => format!("; node {node} is not in this topology, so building will fail"),
                Some(n) if !fits(n, bytes) => format!(
                    "; {} has too little room for {}",
                    describe(n),
                    size(bytes as u64)
                ),
                Some(_) => String::new(),
            },
            _ => String::new(),
        };
        return Ok(decision(
            strategy,
            node,
            Rule::Override,
            format!("the request chose {strategy} explicitly, which wins over every rule{warning}"),
        ));
    }
    if request.gpu_access {
        return Ok(decision(
            Strategy::GpuPinned,
            home,
            Rule::GpuAccess,
            format!(
                "a GPU reaches the memory by DMA, so it is page-locked host memory near {from}"
            ),
        ));
    }
    if request.reach == Reach::Remote {
        return Ok(decision(
            Strategy::Hugepage,
            None,
            Rule::RemoteScope,
            "remote consumers register the whole region: huge pages mean fewer pages to pin and translate".to_owned(),
        ));
    }
    let mut aside = String::new();
    match request.preference {
        MemoryPreference::Latency => {}
        MemoryPreference::Bandwidth => {
            let hbm = by_distance(topology, home, |n| {
                n.kind() == MemoryKind::Hbm && backing::has_memory(n)
            });
            if let Some(node) = first_fitting(&hbm, bytes) {
                return Ok(decision(
                    Strategy::Numa { node },
                    Some(node),
                    Rule::HighBandwidth,
                    format!(
                        "{} preferring bandwidth goes to high-bandwidth {}, the nearest to {from} with room",
                        size(bytes as u64),
                        topology
                            .node(node)
                            .map_or_else(|| format!("node {node}"), describe)
                    ),
                ));
            }
            aside = if hbm.is_empty() {
                " (bandwidth preferred, but no node is known to be high-bandwidth memory)"
                    .to_owned()
            } else {
                format!(
                    " (bandwidth preferred, but no high-bandwidth node has room for {}: {})",
                    size(bytes as u64),
                    list(&hbm)
                )
            };
        }
        MemoryPreference::Capacity => {
            let cxl = by_distance(topology, home, backing::is_cxl);
            match first_fitting(&cxl, bytes) {
                _ if cxl.is_empty() => {
                    aside = " (capacity-bound, but the topology has no CXL node)".to_owned();
                }
                _ if bytes < CXL_MIN_BYTES => {
                    aside = format!(
                        " (capacity-bound, but under {}: kept off CXL)",
                        size(CXL_MIN_BYTES as u64)
                    );
                }
                Some(node) => {
                    return Ok(decision(
                        Strategy::Cxl,
                        Some(node),
                        Rule::CapacityTier,
                        format!(
                            "{} of capacity-bound data goes to CXL {}, the nearest to {from} with room, sparing DRAM",
                            size(bytes as u64),
                            topology
                                .node(node)
                                .map_or_else(|| format!("node {node}"), describe)
                        ),
                    ));
                }
                None => {
                    aside = format!(
                        " (capacity-bound, but no CXL node has room for {}: {})",
                        size(bytes as u64),
                        list(&cxl)
                    );
                }
            }
        }
    }
    let with_cpus = by_distance(topology, home, |n| n.has_cpus() && backing::has_memory(n));
    let sockets = topology.socket_count();
    if sockets > 1 && bytes > NUMA_MIN_BYTES {
        let Some(node) = first_fitting(&with_cpus, bytes) else {
            return spread_or_fail(request, &with_cpus, &from, &aside);
        };
        let place = match home.and_then(|h| topology.node(h)) {
            Some(h) if h.id() == node => format!(", the memory of {from}"),
            Some(h) if !backing::has_memory(h) => format!(
                ", near {from}: node {} has no memory, node {node} is the nearest that has room",
                h.id()
            ),
            Some(h) => format!(
                ", near {from}: {} has too little room, node {node} is the nearest with room",
                describe(h)
            ),
            None => format!(", for {from}"),
        };
        return Ok(decision(
            Strategy::Numa { node },
            Some(node),
            Rule::MultiSocket,
            format!(
                "{sockets} sockets and {}, over {}: bound to node {node}{place}; for {} use{aside}",
                size(bytes as u64),
                size(NUMA_MIN_BYTES as u64),
                request.reach
            ),
        ));
    }
    if let Some(total) = total_room(&with_cpus)
        && total < bytes as u64
    {
        return Err(no_room(request, &with_cpus));
    }
    Ok(decision(
        Strategy::CpuLocal,
        home,
        Rule::Default,
        format!(
            "{} for {} use from {from} on {}: per-core memory on the node of each slot's CPU{aside}",
            size(bytes as u64),
            request.reach,
            if sockets > 1 {
                "a multi-socket machine"
            } else {
                "a single-socket machine"
            }
        ),
    ))
}

/// Rule 6, or the error when it does not apply: no node of `nodes` (those with CPUs, nearest
/// first) has room for the whole request.
fn spread_or_fail(
    request: &Request,
    nodes: &[&Node],
    from: &str,
    aside: &str,
) -> Result<Decision, PlacementError> {
    let bytes = request.bytes as u64;
    let total = total_room(nodes);
    if !request.spread || total.is_some_and(|t| t < bytes) {
        return Err(no_room(request, nodes));
    }
    let spread: Vec<u32> = nodes
        .iter()
        .filter(|n| room(n) != Some(0))
        .map(|n| n.id())
        .collect();
    Ok(Decision {
        strategy: Strategy::CpuLocal,
        node: None,
        rule: Rule::Spread,
        reason: format!(
            "no single node has room for {} ({}), so it is spread: each slot's memory comes from its own CPU's node, over nodes {spread:?}{} near {from}{aside}",
            size(bytes),
            list(nodes),
            total.map_or_else(String::new, |t| format!(" ({} in all)", size(t)))
        ),
        spread,
    })
}

/// The error for a request none of `nodes` holds.
fn no_room(request: &Request, nodes: &[&Node]) -> PlacementError {
    let largest = nodes.iter().filter_map(|n| Some((room(n)?, n.id()))).max();
    PlacementError::NoRoom {
        bytes: request.bytes,
        largest_node: largest.map(|(_, id)| id),
        largest_room: largest.map_or(0, |(r, _)| r),
        total_room: total_room(nodes),
        nodes: nodes.len(),
        spread_allowed: request.spread,
    }
}

/// Up to four nodes and their room, for a reason.
fn list(nodes: &[&Node]) -> String {
    let mut text: Vec<String> = nodes.iter().take(4).map(|n| describe(n)).collect();
    if nodes.len() > 4 {
        text.push(format!("and {} more", nodes.len() - 4));
    }
    text.join(", ")
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
        Strategy::Cxl => backing::nearest(topology, home, backing::is_cxl),
        Strategy::Hugepage => None,
        _ => home,
    }
}
