//! The machine this test runs on: `Topology::detect()` and, with the
//! `hwloc` feature, agreement between the sysfs and hwloc models.

use umrf::topology::Topology;

#[test]
fn detect_finds_the_current_cpu() {
    let topo = Topology::detect().expect("detect works on Linux");
    assert!(!topo.nodes().is_empty());
    assert!(topo.source().is_live());
    let cpu = Topology::current_cpu().expect("sched_getcpu works on Linux");
    assert!(
        topo.online_cpus().contains(cpu),
        "cpu {cpu} not online in {topo:?}"
    );
    let node = topo
        .current_node()
        .expect("the current CPU belongs to a node");
    assert!(topo.node(node).unwrap().cpus().contains(cpu));
    let page = topo
        .base_page_size()
        .expect("the live machine has a page size");
    assert!(page.is_power_of_two() && page >= 4096);
    assert_eq!(topo.nearest_nodes(node).unwrap()[0], node);
    if !topo.source().is_fallback() {
        for n in topo.nodes() {
            assert!(n.memory_total().is_some(), "node {} has a meminfo", n.id());
        }
    }
}

#[cfg(feature = "hwloc")]
#[test]
fn sysfs_and_hwloc_agree_on_this_machine() {
    let before = Topology::detect().unwrap();
    let hw = Topology::from_hwloc().expect("hwloc works here");
    let after = Topology::detect().unwrap();
    let ids = |t: &Topology| t.nodes().iter().map(|n| n.id()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&hw));
    for node in hw.nodes() {
        let a = before.node(node.id()).unwrap();
        let b = after.node(node.id()).unwrap();
        assert_eq!(node.cpus(), a.cpus(), "cpus of node {}", node.id());
        assert_eq!(node.is_memory_only(), a.is_memory_only());
        // Memory can be hot-plugged while the test runs: hwloc's reading
        // must lie within the two sysfs readings around it, give or take 2%.
        let hw_total = node.memory_total().expect("hwloc reports local memory");
        let (t1, t2) = (a.memory_total().unwrap(), b.memory_total().unwrap());
        let (lo, hi) = (t1.min(t2), t1.max(t2));
        assert!(
            hw_total >= lo - lo / 50 && hw_total <= hi + hi / 50,
            "node {}: hwloc {hw_total} outside sysfs {lo}..{hi}",
            node.id()
        );
    }
    // hwloc drops a trivial 1x1 matrix; otherwise the matrices must match.
    if hw.distances().is_known() {
        assert_eq!(hw.distances(), before.distances());
    } else {
        assert_eq!(
            before.nodes().len(),
            1,
            "hwloc lost the distances of a NUMA machine"
        );
    }
    let sizes = |t: &Topology| {
        t.hugepage_pools()
            .iter()
            .map(|p| p.page_size)
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&hw), sizes(&before));
    for pool in hw.hugepage_pools() {
        let sys = before.hugepage_pool(pool.page_size).unwrap();
        let later = after.hugepage_pool(pool.page_size).unwrap();
        assert!(pool.total == sys.total || pool.total == later.total);
    }
    assert_eq!(hw.base_page_size(), before.base_page_size());
    assert_eq!(hw.online_cpus(), before.online_cpus());
}
