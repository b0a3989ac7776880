//! `umrf::placement`: the seed rules, table-driven over the real machine topologies in
//! `../shared/topologies` (sysfs tarballs, and hwloc XML with the `hwloc` feature) and over
//! synthetic ones; and `AnyPool`'s checked downcast.

mod common;

use umrf::backing::CxlFallback;
use umrf::placement::{
    AnyPool, CXL_MIN_BYTES, Decision, NUMA_MIN_BYTES, Reach, Request, Rule, decide,
};
use umrf::residency::{CpuLocal, Cxl, GpuPinned, Hugepage, Node0, Node1, NumaNode, Strategy};
use umrf::topology::{CpuSet, Distances, MemoryKind, Node, Topology};
use umrf::typenum::U0;
use umrf::{Error, Pool};

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// One row: a request and what the rules must answer.
struct Case {
    request: Request,
    strategy: Strategy,
    node: Option<u32>,
    rule: Rule,
}

fn case(request: Request, strategy: Strategy, node: Option<u32>, rule: Rule) -> Case {
    Case {
        request,
        strategy,
        node,
        rule,
    }
}

fn check(name: &str, topo: &Topology, cases: &[Case]) {
    for (i, c) in cases.iter().enumerate() {
        let d = decide(&c.request, topo).unwrap_or_else(|e| panic!("{name}, row {i}: {e}"));
        assert_eq!(
            (d.strategy, d.node, d.rule),
            (c.strategy, c.node, c.rule),
            "{name}, row {i}: {d}"
        );
        assert!(!d.reason.is_empty(), "{name}, row {i}: a decision says why");
    }
}

/// The rows every topology shares, for a requester on `cpu` of node `home`.
fn common_rows(multi_socket: bool, cpu: u32, home: u32, first_node: u32) -> Vec<Case> {
    let big = if multi_socket {
        (Strategy::Numa { node: home }, Rule::MultiSocket)
    } else {
        (Strategy::CpuLocal, Rule::Default)
    };
    let big_unplaced = if multi_socket {
        (Strategy::Numa { node: first_node }, Rule::MultiSocket)
    } else {
        (Strategy::CpuLocal, Rule::Default)
    };
    vec![
        // Small: per-core memory.
        case(
            Request::new(4096).from_cpu(cpu),
            Strategy::CpuLocal,
            Some(home),
            Rule::Default,
        ),
        // Exactly 1 MiB is not "more than 1 MiB".
        case(
            Request::new(NUMA_MIN_BYTES).from_cpu(cpu),
            Strategy::CpuLocal,
            Some(home),
            Rule::Default,
        ),
        // Large: bound to the requester's node where there are several sockets.
        case(
            Request::new(64 * MIB).from_cpu(cpu),
            big.0,
            Some(home),
            big.1,
        ),
        case(
            Request::new(64 * MIB)
                .from_cpu(cpu)
                .reach(Reach::CrossSocket),
            big.0,
            Some(home),
            big.1,
        ),
        // No requester CPU: a fixture topology is not this machine, so the first CPU node.
        case(
            Request::new(64 * MIB),
            big_unplaced.0,
            Some(first_node),
            big_unplaced.1,
        ),
        // GPU access beats size and scope.
        case(
            Request::new(GIB)
                .from_cpu(cpu)
                .reach(Reach::Remote)
                .gpu_access(true),
            Strategy::GpuPinned,
            Some(home),
            Rule::GpuAccess,
        ),
        // Remote scope: huge pages.
        case(
            Request::new(16 * MIB).from_cpu(cpu).reach(Reach::Remote),
            Strategy::Hugepage,
            None,
            Rule::RemoteScope,
        ),
        // Capacity-bound but no CXL node in any real topology: the other rules apply.
        case(
            Request::new(2 * GIB).from_cpu(cpu).capacity_bound(true),
            big.0,
            Some(home),
            big.1,
        ),
        // An explicit override always wins, even a node the machine lacks.
        case(
            Request::new(GIB)
                .from_cpu(cpu)
                .gpu_access(true)
                .force(Strategy::Numa { node: 999 }),
            Strategy::Numa { node: 999 },
            Some(999),
            Rule::Override,
        ),
        case(
            Request::new(4096).from_cpu(cpu).force(Strategy::Hugepage),
            Strategy::Hugepage,
            None,
            Rule::Override,
        ),
    ]
}

/// Table for one real topology: the common rows from `cpu`, plus `extra`.
fn real(name: &str, topo: Option<Topology>, cpu: u32, home: u32, extra: Vec<Case>) {
    let Some(topo) = topo else {
        return;
    };
    assert_eq!(topo.node_of_cpu(cpu), Some(home), "{name}: CPU {cpu}");
    let first = topo.nodes().iter().find(|n| n.has_cpus()).unwrap().id();
    let mut rows = common_rows(topo.socket_count() > 1, cpu, home, first);
    rows.extend(extra);
    check(name, &topo, &rows);
    let forced = decide(&Request::new(1).force(Strategy::Numa { node: 999 }), &topo).unwrap();
    assert!(forced.reason.contains("building will fail"), "{forced}");
}

#[test]
fn real_sysfs_topologies() {
    use common::sysfs;
    real("memorysidecaches", sysfs("memorysidecaches"), 5, 1, vec![]);
    real("memorysidecaches", sysfs("memorysidecaches"), 78, 2, vec![]);
    real(
        "32intel64-2p8co2t+8ve",
        sysfs("32intel64-2p8co2t+8ve"),
        20,
        0,
        vec![],
    );
    real(
        "32intel64-2p8co2t+8ve",
        sysfs("32intel64-2p8co2t+8ve"),
        9,
        1,
        vec![],
    );
    real(
        "64amd64-4s2n4ca2co",
        sysfs("64amd64-4s2n4ca2co"),
        63,
        7,
        vec![],
    );
    real(
        "128arm-2pa2n8cluster4co",
        sysfs("128arm-2pa2n8cluster4co"),
        64,
        2,
        vec![],
    );
    real("128ia64-17n4s2c", sysfs("128ia64-17n4s2c"), 127, 15, vec![]);
    real(
        "nvidiagpunumanodes",
        sysfs("nvidiagpunumanodes"),
        100,
        8,
        // The GPU memory nodes are memory-only but GPU memory, not CXL: never a capacity tier.
        vec![case(
            Request::new(4 * GIB).capacity_bound(true).from_cpu(5),
            Strategy::Numa { node: 0 },
            Some(0),
            Rule::MultiSocket,
        )],
    );
    if let Some(knl) = sysfs("64intel64-fakeKNL-SNC4-hybrid") {
        let cpu = knl.node(3).unwrap().cpus().first().unwrap();
        real("fakeKNL", Some(knl), cpu, 3, vec![]);
    }
    real(
        "fakeheteromemtiers",
        sysfs("fakeheteromemtiers"),
        4,
        2,
        vec![],
    );
}

#[cfg(feature = "hwloc")]
#[test]
fn real_hwloc_topologies() {
    use common::hwloc_xml;
    real(
        "sandy bridge",
        hwloc_xml("32em64t-2n8c2t-pci-normalio.xml"),
        24,
        1,
        vec![],
    );
    real("epyc corona", hwloc_xml("epyc-corona.xml"), 90, 7, vec![]);
    real("tioga", hwloc_xml("eas-tioga.xml"), 100, 2, vec![]);
    real(
        "knl snc4",
        hwloc_xml("knl-snc4-flat-hwloc1.xml"),
        260,
        3,
        vec![],
    );
    real(
        "knl quad",
        hwloc_xml("knl-quad-flat-hwloc1.xml"),
        5,
        0,
        vec![],
    );
    real(
        "lassen",
        hwloc_xml("coral-lassen-hwloc1.xml"),
        100,
        8,
        vec![],
    );
    // QEMU with CXL expanders that are not onlined as NUMA nodes: one node, no CXL tier.
    real(
        "cxl qemu",
        hwloc_xml("cxlmem+dax.v2.xml"),
        2,
        0,
        vec![case(
            Request::new(2 * GIB).capacity_bound(true).from_cpu(2),
            Strategy::CpuLocal,
            Some(0),
            Rule::Default,
        )],
    );
    // More than the VM's 2.85 GiB: no node has room, whatever the rule.
    if let Some(qemu) = hwloc_xml("cxlmem+dax.v2.xml") {
        let err = decide(&Request::new(4 * GIB).capacity_bound(true), &qemu).unwrap_err();
        assert!(
            err.to_string()
                .contains("the largest is node 0 with 2.9 GiB, the only node with CPUs"),
            "{err}"
        );
    }
}

#[test]
fn every_real_topology_gets_a_decision_for_every_online_cpu() {
    for name in common::SYSFS_TARBALLS {
        let Some(topo) = common::sysfs(name) else {
            return;
        };
        for cpu in topo.online_cpus().iter() {
            let d = decide(&Request::new(256 * MIB).from_cpu(cpu), &topo).unwrap();
            match topo.node_of_cpu(cpu) {
                Some(node) if topo.socket_count() > 1 => {
                    assert_eq!(d.strategy, Strategy::Numa { node }, "{name} CPU {cpu}: {d}")
                }
                _ => assert_eq!(d.rule, Rule::Default, "{name} CPU {cpu}: {d}"),
            }
        }
    }
}

/// Two sockets of 4 CPUs, a CXL expander near each, and a CPU node without memory.
fn synthetic_cxl() -> Topology {
    Topology::builder()
        .node(Node::new(0, CpuSet::parse_list("0-3").unwrap()).with_memory(Some(64 << 30), None))
        .node(Node::new(1, CpuSet::parse_list("4-7").unwrap()).with_memory(Some(64 << 30), None))
        .node(Node::new(2, CpuSet::new()).with_kind(MemoryKind::Cxl))
        .node(Node::new(3, CpuSet::new()).with_kind(MemoryKind::Cxl))
        .node(Node::new(4, CpuSet::parse_list("8-9").unwrap()).with_memory(Some(0), Some(0)))
        .distances(
            Distances::from_rows(
                vec![0, 1, 2, 3, 4],
                vec![
                    vec![10, 21, 24, 34, 12],
                    vec![21, 10, 34, 24, 21],
                    vec![24, 34, 10, 44, 24],
                    vec![34, 24, 44, 10, 34],
                    vec![12, 21, 24, 34, 10],
                ],
            )
            .unwrap(),
        )
        .build()
        .unwrap()
}

#[test]
fn synthetic_topologies() {
    let cxl = synthetic_cxl();
    check(
        "synthetic cxl",
        &cxl,
        &[
            // Large and capacity-bound: the CXL node nearest the requester.
            case(
                Request::new(GIB).capacity_bound(true).from_cpu(1),
                Strategy::Cxl,
                Some(2),
                Rule::CapacityTier,
            ),
            case(
                Request::new(CXL_MIN_BYTES).capacity_bound(true).from_cpu(6),
                Strategy::Cxl,
                Some(3),
                Rule::CapacityTier,
            ),
            // Capacity-bound but small: DRAM.
            case(
                Request::new(CXL_MIN_BYTES - 1)
                    .capacity_bound(true)
                    .from_cpu(6),
                Strategy::Numa { node: 1 },
                Some(1),
                Rule::MultiSocket,
            ),
            // Not asked: never CXL.
            case(
                Request::new(8 * GIB).from_cpu(6),
                Strategy::Numa { node: 1 },
                Some(1),
                Rule::MultiSocket,
            ),
            // A requester on the memoryless CPU node: the nearest node with memory.
            case(
                Request::new(8 * MIB).from_cpu(8),
                Strategy::Numa { node: 0 },
                Some(0),
                Rule::MultiSocket,
            ),
            // Forcing Cxl points at the nearest CXL node.
            case(
                Request::new(4096).from_cpu(5).force(Strategy::Cxl),
                Strategy::Cxl,
                Some(3),
                Rule::Override,
            ),
        ],
    );
    let aside = decide(
        &Request::new(8 * MIB).capacity_bound(true).from_cpu(0),
        &cxl,
    )
    .unwrap();
    assert!(aside.reason.contains("kept off CXL"), "{aside}");

    let single = Topology::builder()
        .node(Node::new(0, CpuSet::first_n(4)))
        .build()
        .unwrap();
    check(
        "single node",
        &single,
        &[
            case(
                Request::new(16 * GIB).from_cpu(3),
                Strategy::CpuLocal,
                Some(0),
                Rule::Default,
            ),
            case(
                Request::new(16 * GIB).capacity_bound(true),
                Strategy::CpuLocal,
                Some(0),
                Rule::Default,
            ),
        ],
    );
    let nowhere = decide(&Request::new(4096).from_cpu(99), &single).unwrap();
    assert_eq!((nowhere.strategy, nowhere.node), (Strategy::CpuLocal, None));
    assert!(nowhere.reason.contains("CPU 99"), "{nowhere}");
}

#[test]
fn decisions_print_their_strategy_rule_and_reason() {
    let d = decide(
        &Request::new(GIB).capacity_bound(true).from_cpu(0),
        &synthetic_cxl(),
    )
    .unwrap();
    let line = d.to_string();
    assert!(
        line.starts_with("cxl memory (node 2): capacity tier: "),
        "{line}"
    );
}

fn decision(strategy: Strategy) -> Decision {
    let topo = Topology::detect().unwrap();
    decide(&Request::new(4096).force(strategy), &topo).unwrap()
}

fn build(decision: &Decision) -> Result<AnyPool, Error> {
    AnyPool::builder(decision)
        .block_size(4096)
        .blocks_per_slot(4)
        .slots(1)
        .build()
}

#[test]
fn any_pool_downcasts_to_the_decided_residency_only() {
    let cpu_local = build(&decision(Strategy::CpuLocal)).unwrap();
    assert!(cpu_local.is::<CpuLocal>());
    let cpu_local = cpu_local
        .try_into_typed::<Hugepage>()
        .unwrap_err()
        .into_inner();
    let cpu_local = cpu_local
        .try_into_typed::<Node0>()
        .unwrap_err()
        .into_inner();
    let typed: Pool<CpuLocal> = cpu_local.try_into_typed().unwrap();
    let lease = typed.attach().unwrap();
    assert_eq!(lease.alloc_zeroed::<u32>(1024).unwrap().len(), 1024);

    let numa = build(&decision(Strategy::Numa { node: 0 })).unwrap();
    assert_eq!(numa.residency_name(), "NumaNode<0>");
    assert!(numa.is::<Node0>() && numa.is::<NumaNode<U0>>() && !numa.is::<Node1>());
    let typed: Pool<Node0> = numa.try_into_typed().unwrap();
    assert_eq!(typed.residency_name(), "NumaNode<0>");

    let huge = build(&decision(Strategy::Hugepage)).unwrap();
    assert!(format!("{huge:?}").contains("Override"));
    let _typed: Pool<Hugepage> = huge.try_into_typed().unwrap();

    match build(&decision(Strategy::GpuPinned)) {
        Ok(pinned) => {
            assert!(pinned.backing()[0].locked);
            let pinned = pinned
                .try_into_typed::<CpuLocal>()
                .unwrap_err()
                .into_inner();
            let _typed: Pool<GpuPinned> = pinned.try_into_typed().unwrap();
        }
        // With `cuda` on a machine without the driver.
        Err(Error::CudaUnavailable { .. }) if cfg!(feature = "cuda") => {}
        Err(e) => panic!("{e}"),
    }
}

#[derive(umrf::Residency)]
#[residency(like = Hugepage, name = "staging")]
struct Staging;

#[test]
fn a_user_residency_like_a_builtin_is_not_the_builtin() {
    let huge = build(&decision(Strategy::Hugepage)).unwrap();
    assert!(
        !huge.is::<Staging>(),
        "Staging promises more than its strategy"
    );
    let staging = Pool::<Staging>::builder()
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let erased = AnyPool::from(staging);
    assert_eq!(erased.strategy(), Strategy::Hugepage);
    assert!(erased.decision().is_none());
    let erased = erased
        .try_into_typed::<Hugepage>()
        .unwrap_err()
        .into_inner();
    let _typed: Pool<Staging> = erased.try_into_typed().unwrap();
}

#[test]
fn any_pool_build_errors_are_the_residencys() {
    let topo = Topology::detect().unwrap();
    if topo.node(1).is_none() {
        let err = build(&decision(Strategy::Numa { node: 1 })).unwrap_err();
        assert!(matches!(err, Error::NodeAbsent { node: 1, .. }), "{err:?}");
    }
    if !topo.nodes().iter().any(|n| n.kind() == MemoryKind::Cxl) {
        let d = decision(Strategy::Cxl);
        assert!(matches!(build(&d), Err(Error::NoCxlNode { .. })));
        let emulated = AnyPool::builder(&d)
            .block_size(4096)
            .blocks_per_slot(1)
            .slots(1)
            .cxl_fallback(CxlFallback::Emulate)
            .build()
            .unwrap();
        assert!(emulated.stats().emulated);
        assert!(format!("{emulated:?}").contains("EMULATED"));
        let _typed: Pool<Cxl> = emulated.try_into_typed().unwrap();
    }
}
