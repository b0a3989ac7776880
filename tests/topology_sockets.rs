//! Packages (sockets) and the "is this machine" question, on the real machine data in
//! `../shared/topologies` and on fixtures written from its README's facts.

mod common;

use common::fake_sysfs::FakeSysfs;
use common::sysfs;
use umrf::topology::{CpuSet, Node, Package, Topology};

fn package_ids(topo: &Topology) -> Vec<u32> {
    topo.packages().iter().map(Package::id).collect()
}

fn node_packages(topo: &Topology) -> Vec<Option<u32>> {
    topo.nodes()
        .iter()
        .map(|n| topo.package_of_node(n.id()))
        .collect()
}

#[test]
fn sysfs_packages_match_the_readme() {
    let Some(amd) = sysfs("64amd64-4s2n4ca2co") else {
        return;
    };
    // Four Opteron 6276 packages, two dies (NUMA nodes) each: package k holds nodes 2k, 2k+1.
    assert_eq!(package_ids(&amd), [0, 1, 2, 3]);
    assert_eq!(
        node_packages(&amd),
        [0, 0, 1, 1, 2, 2, 3, 3].map(Some).to_vec()
    );
    assert_eq!(amd.socket_count(), 4);

    let arm = sysfs("128arm-2pa2n8cluster4co").unwrap();
    assert_eq!(package_ids(&arm), [36, 8442]);
    assert_eq!(node_packages(&arm), [36, 36, 8442, 8442].map(Some).to_vec());

    // The AC922 dump lists only cpu0-15 and cpu88-103; the GPU memory nodes have no CPUs and
    // no local CPUs in sysfs, so no package.
    let power9 = sysfs("nvidiagpunumanodes").unwrap();
    assert_eq!(package_ids(&power9), [0, 8]);
    assert_eq!(power9.packages()[0].cpus().to_string(), "0-15");
    assert_eq!(
        node_packages(&power9),
        [Some(0), Some(8), None, None, None, None, None, None]
    );
    assert_eq!(power9.socket_count(), 2);

    let itanium = sysfs("128ia64-17n4s2c").unwrap();
    assert_eq!(itanium.packages().len(), 64);
    assert_eq!(itanium.node(16).map(Node::is_memory_only), Some(true));
    assert_eq!(itanium.package_of_node(16), None);

    for (name, sockets) in [
        ("32intel64-2p8co2t+8ve", 2),
        ("memorysidecaches", 2),
        // One socket with memory-only nodes: MCDRAM, or HBM/NVM behind QEMU.
        ("64intel64-fakeKNL-SNC4-hybrid", 1),
        ("fakeheteromemtiers", 1),
    ] {
        let topo = sysfs(name).unwrap();
        assert_eq!(topo.socket_count(), sockets, "{name}");
        assert!(topo.is_numa(), "{name} has several NUMA nodes");
    }
}

#[test]
fn real_sysfs_data_loads_without_warnings() {
    for name in common::SYSFS_TARBALLS {
        let Some(topo) = sysfs(name) else {
            return;
        };
        assert!(topo.warnings().is_empty(), "{name}: {:?}", topo.warnings());
    }
}

#[test]
fn a_topology_of_another_root_is_not_this_machine() {
    // Whatever CPU this thread runs on, a copy of another machine's trees must not map it to
    // one of that machine's nodes.
    let fixture = FakeSysfs::new("not-here")
        .online_nodes("0-1")
        .node(0, "0-1023", 1 << 20)
        .node(1, "1024-2047", 1 << 20);
    let topo = fixture.load();
    assert!(!topo.source().is_live());
    assert!(Topology::current_cpu().is_some_and(|cpu| topo.node_of_cpu(cpu).is_some()));
    assert_eq!(topo.current_node(), None);
    let live = Topology::detect().unwrap();
    assert!(live.source().is_live() && live.current_node().is_some());
}

#[test]
fn packages_come_from_physical_package_id() {
    let fixture = FakeSysfs::new("packages")
        .online_nodes("0-2")
        .node(0, "0-1", 1 << 20)
        .node(1, "2-3", 1 << 20)
        .node(2, "", 1 << 20)
        .file(
            "sys/devices/system/cpu/cpu0/topology/physical_package_id",
            "7\n",
        )
        .file(
            "sys/devices/system/cpu/cpu1/topology/physical_package_id",
            "7\n",
        )
        .file(
            "sys/devices/system/cpu/cpu2/topology/physical_package_id",
            "-1\n",
        )
        .file(
            "sys/devices/system/cpu/cpu3/topology/physical_package_id",
            "9\n",
        );
    let topo = fixture.load();
    assert_eq!(package_ids(&topo), [7, 9]);
    assert_eq!(topo.packages()[0].cpus().to_string(), "0-1");
    assert_eq!(node_packages(&topo), [Some(7), Some(9), None]);
    let bad = fixture.file(
        "sys/devices/system/cpu/cpu3/topology/physical_package_id",
        "x\n",
    );
    let err = bad.load_err().to_string();
    assert!(err.contains("cpu3/topology/physical_package_id"), "{err}");
}

#[test]
fn the_builder_refuses_shared_cpus() {
    let cpus = |s| CpuSet::parse_list(s).unwrap();
    let nodes = Topology::builder()
        .node(Node::new(0, cpus("0-3")))
        .node(Node::new(1, cpus("3-5")))
        .build()
        .unwrap_err();
    assert!(nodes.to_string().contains("both list CPU 3"), "{nodes}");
    let packages = Topology::builder()
        .node(Node::new(0, cpus("0-3")))
        .package(Package::new(0, cpus("0-1")))
        .package(Package::new(1, cpus("1-3")))
        .build()
        .unwrap_err();
    assert!(
        packages.to_string().contains("both list CPU 1"),
        "{packages}"
    );
    let twice = Topology::builder()
        .node(Node::new(0, cpus("0-3")))
        .package(Package::new(0, cpus("0-1")))
        .package(Package::new(0, cpus("2-3")))
        .build()
        .unwrap_err();
    assert!(
        twice.to_string().contains("package 0 appears twice"),
        "{twice}"
    );
}
