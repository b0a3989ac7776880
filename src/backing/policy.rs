//! Which node a slot's region goes to, and how strictly: a pure function of the strategy, the
//! slot's CPU and the topology, so it is tested against real and synthetic machines without
//! any system call.

use super::info::NodePolicy;
use super::options::{BackingOptions, CxlFallback};
use crate::error::Error;
use crate::residency::Strategy;
use crate::topology::{MemoryKind, Node, Topology};

/// The machine as the backing layer sees it: a topology, or why there is none.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Machine<'a> {
    /// The topology to place by.
    Known(&'a Topology),
    /// No topology (detection failed, or Miri); the reason, for reports.
    Unknown(&'a str),
}

/// Where a region goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The policy to set before the first touch.
    pub(crate) policy: NodePolicy,
    /// Whether a page found off the policy's node is an error (`MPOL_BIND`), not a report.
    pub(crate) strict: bool,
    /// Whether the region only stands in for the residency.
    pub(crate) emulated: bool,
    /// Why, in words.
    pub(crate) note: String,
}

/// Plans the placement of one slot's region.
///
/// # Errors
/// [`Error::NodeAbsent`] for a `NumaNode<N>` whose node the topology lacks or that has no
/// memory; [`Error::NoCxlNode`] for `Cxl` without a CXL node unless emulation was opted into.
pub(crate) fn plan(
    strategy: Strategy,
    cpu: Option<u32>,
    machine: Machine<'_>,
    options: &BackingOptions,
) -> Result<Plan, Error> {
    let topo = match machine {
        Machine::Known(topo) => topo,
        Machine::Unknown(why) => return plan_blind(strategy, cpu, why, options),
    };
    let home = cpu.and_then(|c| topo.node_of_cpu(c));
    match strategy {
        Strategy::Numa { node } => plan_numa(topo, node),
        Strategy::Cxl => plan_cxl(topo, cpu, home, options),
        _ => Ok(local(cpu, home)),
    }
}

/// The local plan: prefer the node of the slot's CPU.
fn local(cpu: Option<u32>, home: Option<u32>) -> Plan {
    let (policy, note) = match (cpu, home) {
        (Some(cpu), Some(node)) => (
            NodePolicy::Preferred { node },
            format!("node {node} holds CPU {cpu}"),
        ),
        (Some(cpu), None) => (
            NodePolicy::Default,
            format!("CPU {cpu} is on no node of the topology: default policy"),
        ),
        (None, _) => (
            NodePolicy::Default,
            "the slot serves no known CPU: default policy".to_owned(),
        ),
    };
    Plan {
        policy,
        strict: false,
        emulated: false,
        note,
    }
}

/// `NumaNode<N>`: bind to `node`, which must exist and have memory.
fn plan_numa(topo: &Topology, node: u32) -> Result<Plan, Error> {
    let absent = |why: &'static str| Error::NodeAbsent {
        node,
        why,
        available: memory_nodes(topo),
    };
    let found = topo
        .node(node)
        .ok_or_else(|| absent("is not on this machine"))?;
    if found.memory_total() == Some(0) {
        return Err(absent("has no memory"));
    }
    Ok(Plan {
        policy: NodePolicy::Bind { node },
        strict: true,
        emulated: false,
        note: format!("bound to node {node} ({})", found.kind()),
    })
}

/// `Cxl`: the CXL node nearest the slot's CPU, else the emulated fallback if allowed.
fn plan_cxl(
    topo: &Topology,
    cpu: Option<u32>,
    home: Option<u32>,
    options: &BackingOptions,
) -> Result<Plan, Error> {
    let nearest = nearest(topo, home, is_cxl);
    if let Some(node) = nearest {
        let cue = topo.node(node).map_or("", Node::kind_reason);
        let distance = home
            .and_then(|h| topo.distance(h, node))
            .map_or(String::new(), |d| {
                format!(", distance {d} from the CPU's node")
            });
        return Ok(Plan {
            policy: NodePolicy::Bind { node },
            strict: true,
            emulated: false,
            note: format!("node {node} is CXL memory ({cue}){distance}"),
        });
    }
    if options.cxl_fallback != CxlFallback::Emulate {
        return Err(Error::NoCxlNode {
            nodes: describe_memory_only(topo),
        });
    }
    let stand_in = farthest(topo, home);
    let local = local(cpu, home);
    let (policy, node_words) = match stand_in {
        Some(node) => (NodePolicy::Preferred { node }, format!("node {node}")),
        None => (local.policy, "the default node".to_owned()),
    };
    Ok(Plan {
        policy,
        strict: false,
        emulated: true,
        note: format!(
            "EMULATED: no CXL memory node on this machine ({}); {node_words}, the memory farthest from the slot's CPU, stands in, as the builder allowed",
            describe_memory_only(topo)
        ),
    })
}

/// A plan without a topology: the kernel checks node numbers, CXL cannot be found.
fn plan_blind(
    strategy: Strategy,
    cpu: Option<u32>,
    why: &str,
    options: &BackingOptions,
) -> Result<Plan, Error> {
    let mut plan = local(cpu, None);
    plan.note = format!("topology unavailable ({why}): default policy");
    match strategy {
        Strategy::Numa { node } => {
            plan.policy = NodePolicy::Bind { node };
            plan.strict = true;
            plan.note = format!("bound to node {node}; topology unavailable ({why})");
        }
        Strategy::Cxl if options.cxl_fallback == CxlFallback::Emulate => {
            plan.emulated = true;
            plan.note = format!(
                "EMULATED: topology unavailable ({why}), so no CXL node can be found; default policy, as the builder allowed"
            );
        }
        Strategy::Cxl => {
            return Err(Error::NoCxlNode {
                nodes: format!("the topology is unavailable: {why}"),
            });
        }
        _ => {}
    }
    Ok(plan)
}

/// Whether a node may hold pages (unknown sizes count as yes).
pub(crate) fn has_memory(node: &Node) -> bool {
    node.memory_total() != Some(0)
}

/// The node satisfying `wanted` nearest to `home` (ties and unknown distances: lowest id).
pub(crate) fn nearest(
    topo: &Topology,
    home: Option<u32>,
    wanted: impl Fn(&Node) -> bool,
) -> Option<u32> {
    topo.nodes()
        .iter()
        .filter(|n| wanted(n))
        .map(|n| {
            let d = home.and_then(|h| topo.distance(h, n.id()));
            (d.unwrap_or(u32::MAX), n.id())
        })
        .min()
        .map(|(_, id)| id)
}

/// Whether a node holds CXL memory that pages can come from.
pub(crate) fn is_cxl(node: &Node) -> bool {
    node.kind() == MemoryKind::Cxl && has_memory(node)
}

/// The node with memory farthest from `home` (ties: the highest id, which on most machines
/// is the last-onlined, often CPU-less, node).
fn farthest(topo: &Topology, home: Option<u32>) -> Option<u32> {
    topo.nodes()
        .iter()
        .filter(|n| has_memory(n))
        .map(|n| {
            let d = home.and_then(|h| topo.distance(h, n.id()));
            (d.unwrap_or(0), n.id())
        })
        .max()
        .map(|(_, id)| id)
}

/// The ids of the nodes with memory, for error messages.
fn memory_nodes(topo: &Topology) -> String {
    let ids: Vec<String> = topo
        .nodes()
        .iter()
        .filter(|n| has_memory(n))
        .map(|n| n.id().to_string())
        .collect();
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.join(", ")
    }
}

/// The memory-only nodes and what they were classed as, for error messages.
fn describe_memory_only(topo: &Topology) -> String {
    let nodes: Vec<String> = topo
        .memory_only_nodes()
        .map(|n| format!("node {} is {} ({})", n.id(), n.kind(), n.kind_reason()))
        .collect();
    if nodes.is_empty() {
        "no memory-only node".to_owned()
    } else {
        format!("memory-only nodes: {}", nodes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CpuSet, Distances};

    fn two_sockets_and_cxl() -> Topology {
        Topology::builder()
            .node(Node::new(0, CpuSet::parse_list("0-3").unwrap()))
            .node(Node::new(1, CpuSet::parse_list("4-7").unwrap()))
            .node(Node::new(2, CpuSet::new()).with_kind(MemoryKind::Cxl))
            .node(Node::new(3, CpuSet::new()).with_kind(MemoryKind::Cxl))
            .node(Node::new(4, CpuSet::new()).with_memory(Some(0), Some(0)))
            .distances(
                Distances::from_rows(
                    vec![0, 1, 2, 3, 4],
                    vec![
                        vec![10, 21, 24, 34, 40],
                        vec![21, 10, 34, 24, 40],
                        vec![24, 34, 10, 40, 40],
                        vec![34, 24, 40, 10, 40],
                        vec![40, 40, 40, 40, 10],
                    ],
                )
                .unwrap(),
            )
            .build()
            .unwrap()
    }

    fn opts(cxl_fallback: CxlFallback) -> BackingOptions {
        BackingOptions {
            cxl_fallback,
            ..BackingOptions::default()
        }
    }

    #[test]
    fn local_strategies_prefer_the_cpus_node() {
        let topo = two_sockets_and_cxl();
        let m = Machine::Known(&topo);
        let o = opts(CxlFallback::Fail);
        for s in [Strategy::CpuLocal, Strategy::Hugepage, Strategy::GpuPinned] {
            let p = plan(s, Some(5), m, &o).unwrap();
            assert_eq!(p.policy, NodePolicy::Preferred { node: 1 });
            assert!(!p.strict && !p.emulated);
        }
        assert_eq!(
            plan(Strategy::CpuLocal, Some(99), m, &o).unwrap().policy,
            NodePolicy::Default
        );
        assert_eq!(
            plan(Strategy::CpuLocal, None, m, &o).unwrap().policy,
            NodePolicy::Default
        );
    }

    #[test]
    fn numa_binds_existing_nodes_and_refuses_absent_or_empty_ones() {
        let topo = two_sockets_and_cxl();
        let m = Machine::Known(&topo);
        let o = opts(CxlFallback::Fail);
        let p = plan(Strategy::Numa { node: 1 }, Some(0), m, &o).unwrap();
        assert_eq!((p.policy, p.strict), (NodePolicy::Bind { node: 1 }, true));
        let err = plan(Strategy::Numa { node: 9 }, Some(0), m, &o).unwrap_err();
        assert!(
            matches!(&err, Error::NodeAbsent { node: 9, available, .. } if available == "0, 1, 2, 3"),
            "{err:?}"
        );
        let err = plan(Strategy::Numa { node: 4 }, Some(0), m, &o).unwrap_err();
        assert!(err.to_string().contains("has no memory"), "{err}");
    }

    #[test]
    fn cxl_takes_the_nearest_cxl_node() {
        let topo = two_sockets_and_cxl();
        let m = Machine::Known(&topo);
        let o = opts(CxlFallback::Fail);
        let p = plan(Strategy::Cxl, Some(1), m, &o).unwrap();
        assert_eq!(p.policy, NodePolicy::Bind { node: 2 });
        assert!(p.note.contains("distance 24"), "{}", p.note);
        let p = plan(Strategy::Cxl, Some(6), m, &o).unwrap();
        assert_eq!(p.policy, NodePolicy::Bind { node: 3 });
    }

    #[test]
    fn cxl_without_a_cxl_node_fails_or_emulates_plainly() {
        let topo = Topology::builder()
            .node(Node::new(0, CpuSet::parse_list("0-1").unwrap()))
            .node(Node::new(1, CpuSet::parse_list("2-3").unwrap()))
            .node(Node::new(5, CpuSet::new()).with_kind(MemoryKind::Hbm))
            .distances(
                Distances::from_rows(
                    vec![0, 1, 5],
                    vec![vec![10, 20, 30], vec![20, 10, 17], vec![30, 17, 10]],
                )
                .unwrap(),
            )
            .build()
            .unwrap();
        let m = Machine::Known(&topo);
        let err = plan(Strategy::Cxl, Some(0), m, &opts(CxlFallback::Fail)).unwrap_err();
        assert!(
            matches!(&err, Error::NoCxlNode { nodes } if nodes.contains("node 5 is HBM")),
            "{err:?}"
        );
        let p = plan(Strategy::Cxl, Some(0), m, &opts(CxlFallback::Emulate)).unwrap();
        assert!(p.emulated && !p.strict);
        assert_eq!(p.policy, NodePolicy::Preferred { node: 5 });
        assert!(p.note.starts_with("EMULATED"));
        // From node 1 the farthest memory is node 0.
        let p = plan(Strategy::Cxl, Some(2), m, &opts(CxlFallback::Emulate)).unwrap();
        assert_eq!(p.policy, NodePolicy::Preferred { node: 0 });
    }

    #[test]
    fn without_a_topology_the_kernel_decides() {
        let m = Machine::Unknown("no sysfs");
        let err = plan(Strategy::Cxl, Some(0), m, &opts(CxlFallback::Fail)).unwrap_err();
        assert!(matches!(err, Error::NoCxlNode { .. }));
        let o = opts(CxlFallback::Emulate);
        let p = plan(Strategy::Numa { node: 3 }, Some(0), m, &o).unwrap();
        assert_eq!((p.policy, p.strict), (NodePolicy::Bind { node: 3 }, true));
        let p = plan(Strategy::Cxl, Some(0), m, &o).unwrap();
        assert!(p.emulated && p.note.contains("no sysfs"));
        let p = plan(Strategy::CpuLocal, Some(0), m, &o).unwrap();
        assert_eq!(p.policy, NodePolicy::Default);
    }
}
