//! Sysfs data no kernel writes is an error naming its file; data that is legal but rare is a
//! warning in [`Topology::warnings`]. Fixtures are written by the test; the distances follow the
//! 2-socket Xeon Silver 4108 of `shared/topologies/README.md` (`10 21` / `21 10`).

mod common;

use common::fake_sysfs::{FakeSysfs, NODE};
use umrf::topology::{Topology, TopologyError};

/// Two nodes of 8 CPUs each with distance rows `row0` and `row1`.
fn two_nodes(tag: &str, row0: &[u32], row1: &[u32]) -> FakeSysfs {
    FakeSysfs::new(tag)
        .online_nodes("0-1")
        .node(0, "0-7", 47_925_628)
        .node(1, "8-15", 49_519_964)
        .distance(0, row0)
        .distance(1, row1)
}

fn malformed(err: &TopologyError) -> String {
    assert!(matches!(err, TopologyError::Malformed { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn the_real_rows_load_cleanly() {
    let topo = two_nodes("clean", &[10, 21], &[21, 10]).load();
    assert_eq!(topo.distance(0, 1), Some(21));
    assert!(topo.warnings().is_empty(), "{:?}", topo.warnings());
}

#[test]
fn a_self_distance_other_than_ten_is_an_error_naming_the_file() {
    let zero = two_nodes("self-zero", &[0, 21], &[21, 10]);
    let err = malformed(&zero.load_err());
    assert!(
        err.contains(&format!("{NODE}/node0/distance")) && err.contains("itself is 0"),
        "{err}"
    );
    let eleven = two_nodes("self-eleven", &[10, 21], &[21, 11]);
    let err = malformed(&eleven.load_err());
    assert!(
        err.contains("node1/distance") && err.contains("itself is 11"),
        "{err}"
    );
}

#[test]
fn another_node_at_ten_or_less_is_an_error() {
    let err = malformed(&two_nodes("near", &[10, 10], &[21, 10]).load_err());
    assert!(
        err.contains("node0/distance") && err.contains("node 1 is 10"),
        "{err}"
    );
    let err = malformed(&two_nodes("zero", &[10, 21], &[0, 10]).load_err());
    assert!(
        err.contains("node1/distance") && err.contains("node 0 is 0"),
        "{err}"
    );
}

#[test]
fn an_asymmetric_matrix_loads_with_a_warning() {
    let topo = two_nodes("asym", &[10, 21], &[31, 10]).load();
    assert_eq!(
        (topo.distance(0, 1), topo.distance(1, 0)),
        (Some(21), Some(31))
    );
    let warnings = topo.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(NODE)
            && warnings[0].contains("asymmetric")
            && warnings[0].contains("0 -> 1 is 21 but 1 -> 0 is 31"),
        "{warnings:?}"
    );
}

#[test]
fn two_nodes_with_the_same_cpus_are_an_error_naming_both_files() {
    let fixture = FakeSysfs::new("same-cpus")
        .online_nodes("0-1")
        .node(0, "0-7", 1 << 20)
        .node(1, "0-7", 1 << 20);
    let err = malformed(&fixture.load_err());
    assert!(
        err.contains("node0/cpulist") && err.contains("node1/cpulist") && err.contains("CPU 0"),
        "{err}"
    );
    let overlap = FakeSysfs::new("overlap-cpumap")
        .online_nodes("0-1")
        .node(0, "0-7", 1 << 20)
        .node_cpumap(1, "0000ff80", 1 << 20);
    let err = malformed(&overlap.load_err());
    assert!(
        err.contains("node1/cpumap") && err.contains("CPU 7"),
        "{err}"
    );
}

#[test]
fn parts_that_do_not_fit_name_the_tree_they_came_from() {
    // Two kernel memory tiers listing the same node.
    let fixture = two_nodes("tier", &[10, 21], &[21, 10])
        .tier(4, "0-1")
        .tier(5, "1");
    let err = malformed(&fixture.load_err());
    assert!(
        err.contains(NODE) && err.contains("node 1 is in two memory tiers"),
        "{err}"
    );
    assert!(err.contains(&fixture.path().display().to_string()), "{err}");
}

#[test]
fn builder_errors_still_say_to_fix_the_builder() {
    let err = Topology::builder().build().unwrap_err();
    assert!(matches!(err, TopologyError::Inconsistent { .. }), "{err:?}");
}
