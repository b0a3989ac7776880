//! `umrf::placement` and capacity: a strict binding never goes to a node without room; the
//! "over 1 MiB" rule fires on several sockets, not several NUMA nodes; bandwidth and capacity
//! preferences. Table-driven over the real machines of `../shared/topologies` (sysfs tarballs,
//! and hwloc XML with `--features hwloc`) and over fixtures built from its README's facts.

mod common;

use common::sysfs;
use umrf::placement::{Decision, MemoryPreference, PlacementError, Request, Rule, decide};
use umrf::residency::Strategy;
use umrf::topology::{CpuSet, Distances, MemoryKind, Node, Package, Topology};

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

fn ok(request: &Request, topo: &Topology) -> Decision {
    decide(request, topo).unwrap_or_else(|e| panic!("{request:?}: {e}"))
}

fn outcome(d: &Decision) -> (Strategy, Option<u32>, Rule) {
    (d.strategy, d.node, d.rule)
}

#[test]
fn opteron_node_of_8_gib_is_not_given_more_than_it_has() {
    // Dell C6145, 4x Opteron 6276: node 5 has 8 GiB (7.7 GiB free), the others 16 GiB
    // (about 15.4 GiB free). CPU 40 is on node 5.
    let Some(topo) = sysfs("64amd64-4s2n4ca2co") else {
        return;
    };
    assert_eq!(topo.node_of_cpu(40), Some(5));
    let fits = ok(&Request::new(64 * MIB).from_cpu(40), &topo);
    assert_eq!(
        outcome(&fits),
        (Strategy::Numa { node: 5 }, Some(5), Rule::MultiSocket)
    );

    // 12 GiB: node 5 cannot hold it; nodes 2, 3, 4 and 7 are nearest (16), 2 has the lowest id.
    let moved = ok(&Request::new(12 * GIB).from_cpu(40), &topo);
    assert_eq!(
        outcome(&moved),
        (Strategy::Numa { node: 2 }, Some(2), Rule::MultiSocket)
    );
    assert!(
        moved
            .reason
            .contains("node 5 (7.7 GiB free) has too little room")
            && moved.reason.contains("node 2 is the nearest with room"),
        "{moved}"
    );

    // 16 GiB fits no node's free memory: an error, unless spreading is allowed.
    let err = decide(&Request::new(16 * GIB).from_cpu(40), &topo).unwrap_err();
    assert!(
        matches!(err, PlacementError::NoRoom { bytes, spread_allowed: false, .. } if bytes == 16 * GIB)
    );
    let text = err.to_string();
    assert!(
        text.contains("no NUMA node has room for 16 GiB")
            && text.contains("allow_spread(true)")
            && text.contains("across the 8 nodes with CPUs"),
        "{text}"
    );
    let spread = ok(
        &Request::new(16 * GIB).from_cpu(40).allow_spread(true),
        &topo,
    );
    assert_eq!(outcome(&spread), (Strategy::CpuLocal, None, Rule::Spread));
    assert_eq!(spread.spread.len(), 8);
    assert_eq!(spread.spread[0], 5, "nearest first: {spread}");
    assert!(
        spread.reason.contains("no single node has room for 16 GiB"),
        "{spread}"
    );

    // More than the whole machine: an error even when spreading is allowed.
    let err = decide(
        &Request::new(1 << 40).from_cpu(40).allow_spread(true),
        &topo,
    )
    .unwrap_err();
    assert!(err.to_string().contains("ask for at most"), "{err}");
    let err = decide(
        &Request::new(1 << 40).from_cpu(40).force(Strategy::CpuLocal),
        &topo,
    );
    assert!(err.is_ok(), "an explicit override is not second-guessed");
    let forced = ok(
        &Request::new(12 * GIB).force(Strategy::Numa { node: 5 }),
        &topo,
    );
    assert!(forced.reason.contains("too little room"), "{forced}");
}

/// A 2-socket DRAM box with a 1 GiB CXL expander near socket 0 (no real CXL NUMA data exists;
/// the shape follows the Xeon 4410Y with SK hynix expanders in the README's notes).
fn dram_and_small_cxl(sockets: u32) -> Topology {
    let cpus = |s| CpuSet::parse_list(s).unwrap();
    let mut builder = Topology::builder()
        .node(Node::new(0, cpus("0-3")).with_memory(Some(128 << 30), None))
        .node(Node::new(1, cpus("4-7")).with_memory(Some(128 << 30), None))
        .node(
            Node::new(2, CpuSet::new())
                .with_kind(MemoryKind::Cxl)
                .with_memory(Some(1 << 30), Some(1 << 30)),
        )
        .distances(
            Distances::from_rows(
                vec![0, 1, 2],
                vec![vec![10, 21, 14], vec![21, 10, 24], vec![14, 24, 10]],
            )
            .unwrap(),
        );
    builder = if sockets == 2 {
        builder
            .package(Package::new(0, cpus("0-3")))
            .package(Package::new(1, cpus("4-7")))
    } else {
        builder.package(Package::new(0, cpus("0-7")))
    };
    builder.build().unwrap()
}

#[test]
fn capacity_requests_go_to_cxl_only_where_it_has_room() {
    let two = dram_and_small_cxl(2);
    let small = ok(
        &Request::new(512 * MIB).capacity_bound(true).from_cpu(1),
        &two,
    );
    assert_eq!(
        outcome(&small),
        (Strategy::Cxl, Some(2), Rule::CapacityTier)
    );
    let big = ok(
        &Request::new(64 * GIB).capacity_bound(true).from_cpu(1),
        &two,
    );
    assert_eq!(
        outcome(&big),
        (Strategy::Numa { node: 0 }, Some(0), Rule::MultiSocket)
    );
    assert!(
        big.reason
            .contains("no CXL node has room for 64 GiB: node 2 (1 GiB free)"),
        "{big}"
    );
    let latency = ok(&Request::new(512 * MIB).from_cpu(1), &two);
    assert_eq!(latency.strategy, Strategy::Numa { node: 0 }, "{latency}");
}

#[test]
fn the_numa_rule_counts_sockets_not_nodes() {
    // One socket with a CXL node: three NUMA nodes, one socket, so no binding.
    let one = dram_and_small_cxl(1);
    assert!(one.is_numa() && one.socket_count() == 1);
    let d = ok(&Request::new(64 * MIB).from_cpu(5), &one);
    assert_eq!(outcome(&d), (Strategy::CpuLocal, Some(1), Rule::Default));
    assert!(d.reason.contains("single-socket"), "{d}");
    // Real one-socket machines with memory-only nodes: fake KNL (MCDRAM), QEMU HBM/NVM.
    for name in ["64intel64-fakeKNL-SNC4-hybrid", "fakeheteromemtiers"] {
        let Some(topo) = sysfs(name) else {
            return;
        };
        assert!(topo.memory_only_nodes().count() >= 4, "{name}");
        let d = ok(&Request::new(64 * MIB).from_cpu(0), &topo);
        assert_eq!(
            outcome(&d),
            (Strategy::CpuLocal, Some(0), Rule::Default),
            "{name}: {d}"
        );
    }
    // Sixty-four Itanium packages: bound, and never to the interleaved memory-only node 16.
    let itanium = sysfs("128ia64-17n4s2c").unwrap();
    for cpu in [0, 64, 127] {
        let d = ok(&Request::new(64 * MIB).from_cpu(cpu), &itanium);
        assert_eq!(d.rule, Rule::MultiSocket, "{d}");
        assert_ne!(d.node, Some(16), "{d}");
    }
}

#[test]
fn bandwidth_without_known_hbm_falls_through_and_says_why() {
    // The sysfs dump of the fake KNL cannot tell MCDRAM from other CPU-less memory.
    let Some(knl) = sysfs("64intel64-fakeKNL-SNC4-hybrid") else {
        return;
    };
    let d = ok(
        &Request::new(512 * MIB)
            .prefer(MemoryPreference::Bandwidth)
            .from_cpu(0),
        &knl,
    );
    assert_eq!(outcome(&d), (Strategy::CpuLocal, Some(0), Rule::Default));
    assert!(
        d.reason
            .contains("no node is known to be high-bandwidth memory"),
        "{d}"
    );
    // GPU memory nodes are not HBM for the host.
    let power9 = sysfs("nvidiagpunumanodes").unwrap();
    let d = ok(
        &Request::new(512 * MIB)
            .prefer(MemoryPreference::Bandwidth)
            .from_cpu(0),
        &power9,
    );
    assert_eq!(
        outcome(&d),
        (Strategy::Numa { node: 0 }, Some(0), Rule::MultiSocket)
    );
}

/// The decision table for bandwidth and capacity preferences on the real hwloc files.
#[cfg(feature = "hwloc")]
#[test]
fn preference_table_on_real_hwloc_files() {
    use common::hwloc_xml;
    let bandwidth = |bytes, cpu| {
        Request::new(bytes)
            .prefer(MemoryPreference::Bandwidth)
            .from_cpu(cpu)
    };
    // (file, request, expected strategy, node, rule)
    let rows: Vec<(&str, Request, Strategy, Option<u32>, Rule)> = vec![
        // KNL 7250 SNC-4 flat: CPU 40 is in cluster 2, whose MCDRAM is node 6 (4 GiB).
        (
            "knl-snc4-flat-hwloc1.xml",
            bandwidth(GIB, 40),
            Strategy::Numa { node: 6 },
            Some(6),
            Rule::HighBandwidth,
        ),
        (
            "knl-snc4-flat-hwloc1.xml",
            bandwidth(GIB, 0),
            Strategy::Numa { node: 4 },
            Some(4),
            Rule::HighBandwidth,
        ),
        // 8 GiB fits no 4 GiB MCDRAM node: one socket, so per-core DRAM.
        (
            "knl-snc4-flat-hwloc1.xml",
            bandwidth(8 * GIB, 40),
            Strategy::CpuLocal,
            Some(2),
            Rule::Default,
        ),
        // Latency (the default) never goes to MCDRAM.
        (
            "knl-snc4-flat-hwloc1.xml",
            Request::new(GIB).from_cpu(40),
            Strategy::CpuLocal,
            Some(2),
            Rule::Default,
        ),
        // Quadrant flat: one 16 GiB MCDRAM node.
        (
            "knl-quad-flat-hwloc1.xml",
            bandwidth(8 * GIB, 100),
            Strategy::Numa { node: 1 },
            Some(1),
            Rule::HighBandwidth,
        ),
        (
            "knl-quad-flat-hwloc1.xml",
            bandwidth(32 * GIB, 100),
            Strategy::CpuLocal,
            Some(0),
            Rule::Default,
        ),
        // Fake KNL hybrid: DRAM node 0 pairs with MCDRAM node 7, node 1 with 4.
        (
            "64intel64-fakeKNL-SNC4-hybrid.xml",
            bandwidth(GIB, 0),
            Strategy::Numa { node: 7 },
            Some(7),
            Rule::HighBandwidth,
        ),
        (
            "64intel64-fakeKNL-SNC4-hybrid.xml",
            bandwidth(GIB, 4),
            Strategy::Numa { node: 4 },
            Some(4),
            Rule::HighBandwidth,
        ),
        // No HBM and no CXL node: the other rules.
        (
            "epyc-corona.xml",
            bandwidth(GIB, 90),
            Strategy::Numa { node: 7 },
            Some(7),
            Rule::MultiSocket,
        ),
        (
            "cxlmem+dax.v2.xml",
            Request::new(GIB).capacity_bound(true).from_cpu(2),
            Strategy::CpuLocal,
            Some(0),
            Rule::Default,
        ),
        // Lassen: GPU memory nodes are neither HBM nor a capacity tier for the host.
        (
            "coral-lassen-hwloc1.xml",
            bandwidth(GIB, 100),
            Strategy::Numa { node: 8 },
            Some(8),
            Rule::MultiSocket,
        ),
        (
            "coral-lassen-hwloc1.xml",
            Request::new(4 * GIB).capacity_bound(true).from_cpu(100),
            Strategy::Numa { node: 8 },
            Some(8),
            Rule::MultiSocket,
        ),
    ];
    for (file, request, strategy, node, rule) in rows {
        let Some(topo) = hwloc_xml(file) else {
            return;
        };
        let d = ok(&request, &topo);
        assert_eq!(
            outcome(&d),
            (strategy, node, rule),
            "{file} {request:?}: {d}"
        );
        if rule == Rule::HighBandwidth {
            assert!(d.reason.contains("high-bandwidth node"), "{d}");
        }
    }
    let knl = hwloc_xml("knl-quad-flat-hwloc1.xml").unwrap();
    let d = ok(&bandwidth(32 * GIB, 100), &knl);
    assert!(
        d.reason
            .contains("no high-bandwidth node has room for 32 GiB: node 1 (16 GiB)"),
        "{d}"
    );
}

#[test]
fn a_memoryless_cpu_node_binds_to_the_nearest_dram_not_to_nearer_cxl() {
    // Two sockets; node 3 has CPUs but no memory, and the CXL node is nearer to it than DRAM.
    let cpus = |s| CpuSet::parse_list(s).unwrap();
    let topo = Topology::builder()
        .node(Node::new(0, cpus("0-3")).with_memory(Some(64 << 30), None))
        .node(Node::new(1, cpus("4-7")).with_memory(Some(64 << 30), None))
        .node(
            Node::new(2, CpuSet::new())
                .with_kind(MemoryKind::Cxl)
                .with_memory(Some(256 << 30), None),
        )
        .node(Node::new(3, cpus("8-9")).with_memory(Some(0), Some(0)))
        .distances(
            Distances::from_rows(
                vec![0, 1, 2, 3],
                vec![
                    vec![10, 21, 14, 20],
                    vec![21, 10, 24, 21],
                    vec![14, 24, 10, 12],
                    vec![20, 21, 12, 10],
                ],
            )
            .unwrap(),
        )
        .package(Package::new(0, cpus("0-3,8-9")))
        .package(Package::new(1, cpus("4-7")))
        .build()
        .unwrap();
    let d = ok(&Request::new(64 * MIB).from_cpu(8), &topo);
    assert_eq!(
        outcome(&d),
        (Strategy::Numa { node: 0 }, Some(0), Rule::MultiSocket)
    );
    assert!(d.reason.contains("node 3 has no memory"), "{d}");
    // Asked for capacity, the CXL node is the answer.
    let d = ok(&Request::new(GIB).capacity_bound(true).from_cpu(8), &topo);
    assert_eq!(outcome(&d), (Strategy::Cxl, Some(2), Rule::CapacityTier));
}
