//! Each residency on this machine: what the pool really got, read back from the kernel, and the
//! errors for what the machine lacks (I7: an unavailable residency is an `Err` with a reason,
//! or an explicit, observable fallback).

use umrf::backing::{CxlFallback, HugePageMode, Mechanism, NodePolicy};
use umrf::residency::{CpuLocal, Cxl, GpuPinned, Hugepage, Node0, NumaNode, Strategy};
use umrf::topology::{CpuSet, MemoryKind, Node, Topology};
use umrf::typenum::{U1, U7};
use umrf::{Error, Pool};

fn live() -> Topology {
    Topology::detect().expect("sysfs is readable")
}

/// The nodes with memory on this machine.
fn memory_nodes(topo: &Topology) -> Vec<u32> {
    topo.nodes()
        .iter()
        .filter(|n| n.memory_total() != Some(0))
        .map(|n| n.id())
        .collect()
}

#[test]
fn cpu_local_slots_prefer_their_cpus_node_and_say_where_pages_are() {
    let topo = live();
    let cpus: Vec<u32> = topo.online_cpus().iter().collect();
    let pool = Pool::<CpuLocal>::builder()
        .block_size(4096)
        .blocks_per_slot(8)
        .build()
        .unwrap();
    assert_eq!(pool.slots(), cpus.len());
    for (slot, info) in pool.backing().iter().enumerate() {
        let cpu = cpus[slot];
        let node = topo.node_of_cpu(cpu).unwrap();
        assert_eq!(info.cpu, Some(cpu));
        assert_eq!(info.mechanism, Mechanism::AnonymousMmap);
        assert!(info.prefaulted && !info.locked && !info.emulated && !info.registered);
        assert_eq!(info.huge_page_bytes, 0);
        // On a machine that allows mbind the policy is set; where a sandbox forbids it the
        // report says so instead.
        match info.policy {
            NodePolicy::Preferred { node: n } => assert_eq!(n, node),
            NodePolicy::Default => assert!(info.reason.contains("refused"), "{info}"),
            other => panic!("unexpected policy {other}"),
        }
        if info.verified {
            assert_eq!(info.nodes, [node], "{info}");
        } else {
            assert!(info.reason.contains("move_pages unavailable"), "{info}");
        }
        let line = info.to_string();
        assert!(
            line.starts_with(&format!("cpu-local for CPU {cpu}: anonymous mmap")),
            "{line}"
        );
    }
}

#[test]
fn numa_node_0_is_bound_and_verified() {
    let pool = Pool::<Node0>::builder()
        .block_size(4096)
        .blocks_per_slot(64)
        .slots(2)
        .build()
        .unwrap();
    for info in pool.backing() {
        assert_eq!(info.strategy, Strategy::Numa { node: 0 });
        assert!(
            info.policy == NodePolicy::Bind { node: 0 } || info.reason.contains("only node"),
            "{info}"
        );
        if info.verified {
            assert_eq!(info.nodes, [0]);
        }
    }
}

#[test]
fn numa_policy_is_read_back_when_pages_are_not_touched() {
    let pool = Pool::<Node0>::builder()
        .block_size(4096)
        .blocks_per_slot(16)
        .slots(1)
        .prefault(false)
        .build()
        .unwrap();
    let info = &pool.backing()[0];
    assert!(!info.prefaulted);
    assert!(info.nodes.is_empty(), "no page to count yet");
    if info.policy == (NodePolicy::Bind { node: 0 }) {
        assert!(info.verified, "{info}");
        assert!(info.reason.contains("policy was read back"), "{info}");
    }
    // The pages arrive on first touch, from node 0.
    let lease = pool.attach().unwrap();
    let mut buf = lease.alloc_zeroed::<u8>(4096).unwrap();
    buf[4095] = 1;
}

#[test]
fn an_absent_node_is_an_error_that_names_the_nodes_there_are() {
    let topo = live();
    let absent = topo.nodes().iter().map(|n| n.id()).max().unwrap() + 1;
    if absent != 1 {
        eprintln!("SKIPPED: this machine has node 1; NodeAbsent is checked with node 7 only");
    } else {
        let err = Pool::<NumaNode<U1>>::builder()
            .slots(1)
            .build()
            .unwrap_err();
        match &err {
            Error::NodeAbsent {
                node: 1, available, ..
            } => {
                let list: Vec<String> = memory_nodes(&topo).iter().map(u32::to_string).collect();
                assert_eq!(available, &list.join(", "));
            }
            other => panic!("expected NodeAbsent, got {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("NUMA node 1 is not on this machine")
        );
    }
    if topo.node(7).is_none() {
        let err = Pool::<NumaNode<U7>>::builder()
            .slots(1)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::NodeAbsent { node: 7, .. }), "{err:?}");
    }
}

#[test]
fn a_node_the_given_topology_has_but_the_machine_lacks_fails_in_the_kernel() {
    if live().node(5).is_some() {
        eprintln!("SKIPPED: this machine has a node 5");
        return;
    }
    let fake = Topology::builder()
        .node(Node::new(0, live().online_cpus().clone()))
        .node(Node::new(5, CpuSet::new()))
        .build()
        .unwrap();
    let err = Pool::<NumaNode<umrf::typenum::U5>>::builder()
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .topology(fake)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Backing { operation, .. } if operation.contains("mbind")),
        "{err:?}"
    );
}

#[test]
fn cxl_without_a_cxl_node_fails_unless_emulation_is_chosen_and_then_says_so() {
    let topo = live();
    if topo.nodes().iter().any(|n| n.kind() == MemoryKind::Cxl) {
        eprintln!("SKIPPED: this machine has CXL memory");
        return;
    }
    let err = Pool::<Cxl>::builder().slots(1).build().unwrap_err();
    assert!(matches!(err, Error::NoCxlNode { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("CxlFallback::Emulate") && message.contains("daxctl"),
        "{message}"
    );

    let pool = Pool::<Cxl>::builder()
        .name("cold")
        .block_size(4096)
        .blocks_per_slot(8)
        .slots(2)
        .cxl_fallback(CxlFallback::Emulate)
        .build()
        .unwrap();
    for info in pool.backing() {
        assert!(info.emulated);
        assert!(info.reason.starts_with("EMULATED"), "{}", info.reason);
        assert!(
            info.to_string().starts_with("EMULATED cxl memory"),
            "{info}"
        );
    }
    assert!(pool.stats().emulated);
    let debug = format!("{pool:?}");
    assert!(debug.contains("EMULATED"), "{debug}");
    // It still allocates.
    let lease = pool.attach().unwrap();
    assert_eq!(lease.alloc_zeroed::<u64>(512).unwrap().len(), 512);
}

#[test]
fn cxl_binds_to_the_cxl_node_of_a_topology_that_has_one() {
    // A topology claiming node 0 is CXL memory: the pool binds there (and this machine's node 0
    // exists, so the kernel agrees).
    let topo = Topology::builder()
        .node(Node::new(0, live().online_cpus().clone()).with_kind(MemoryKind::Cxl))
        .build()
        .unwrap();
    let pool = Pool::<Cxl>::builder()
        .block_size(4096)
        .blocks_per_slot(4)
        .slots(1)
        .topology(topo)
        .build()
        .unwrap();
    let info = &pool.backing()[0];
    assert!(!info.emulated);
    assert!(
        info.policy == NodePolicy::Bind { node: 0 } || info.reason.contains("only node"),
        "{info}"
    );
    assert!(info.reason.contains("node 0 is CXL memory"), "{info}");
}

#[test]
fn hugepage_pools_report_which_huge_pages_they_got() {
    let pool = Pool::<Hugepage>::builder()
        .block_size(64 << 10)
        .blocks_per_slot(64)
        .slots(1)
        .build()
        .unwrap();
    let info = &pool.backing()[0];
    assert!(
        info.bytes >= 4 << 20 && info.bytes.is_multiple_of(info.page_size),
        "{info}"
    );
    match info.mechanism {
        Mechanism::ExplicitHugePages => {
            assert!(info.page_size >= 2 << 20);
            assert_eq!(info.huge_page_bytes, info.bytes, "{info}");
        }
        Mechanism::TransparentHugePages => {
            assert_eq!(info.page_size, 2 << 20);
            assert!(info.verified, "smaps is readable here: {info}");
            let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                .unwrap_or_default();
            if thp.contains("[never]") {
                assert_eq!(info.huge_page_bytes, 0);
                assert!(info.reason.contains("disabled"), "{info}");
            } else {
                // The kernel may be short of contiguous memory, but the report is exact.
                assert!(info.huge_page_bytes <= info.bytes);
                assert!(info.reason.contains("/proc/self/smaps"), "{info}");
            }
        }
        other => panic!("unexpected mechanism {other}: {info}"),
    }
    let lease = pool.attach().unwrap();
    let mut buf = lease.alloc_zeroed::<u8>(64 << 10).unwrap();
    buf[0] = 1;
}

#[test]
fn transparent_only_mode_gives_aligned_advised_memory() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let built = Pool::<Hugepage>::builder()
        .block_size(1 << 20)
        .blocks_per_slot(4)
        .slots(1)
        .huge_pages(HugePageMode::Transparent)
        .build();
    if thp.contains("[always]") || thp.contains("[madvise]") {
        let pool = built.unwrap();
        let info = &pool.backing()[0];
        assert_eq!(info.mechanism, Mechanism::TransparentHugePages);
        let lease = pool.attach().unwrap();
        let buf = lease.alloc::<u8>(1).unwrap();
        assert_eq!(
            buf.as_ptr() as usize % (2 << 20),
            0,
            "first block on a huge page boundary"
        );
    } else {
        assert!(matches!(built, Err(Error::HugePagesUnavailable { .. })));
    }
}

#[test]
fn explicit_only_mode_without_reserved_pages_is_an_error_with_the_remedy() {
    let free = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if free > 0 {
        eprintln!("SKIPPED: {free} explicit huge pages are free here");
        return;
    }
    let err = Pool::<Hugepage>::builder()
        .block_size(1 << 20)
        .blocks_per_slot(4)
        .slots(1)
        .huge_pages(HugePageMode::Explicit)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::HugePagesUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("nr_hugepages"), "{err}");
}

#[test]
fn gpu_pinned_memory_is_locked() {
    // Well under the 8 MiB RLIMIT_MEMLOCK of an unprivileged process.
    let pool = Pool::<GpuPinned>::builder()
        .block_size(4096)
        .blocks_per_slot(16)
        .slots(1)
        .build();
    let pool = match pool {
        Ok(pool) => pool,
        Err(Error::MemlockLimit { .. }) => {
            eprintln!("SKIPPED: RLIMIT_MEMLOCK is below 64 KiB here");
            return;
        }
        // With `cuda` on a machine without the driver (see tests/backing_cuda.rs).
        Err(Error::CudaUnavailable { .. }) if cfg!(feature = "cuda") => return,
        Err(e) => panic!("{e}"),
    };
    let info = &pool.backing()[0];
    assert!(info.locked && info.prefaulted);
    if cfg!(feature = "cuda") {
        assert!(
            info.registered,
            "a pool built with `cuda` is registered: {info}"
        );
    } else {
        assert!(!info.registered);
        assert!(info.reason.contains("without the `cuda` feature"), "{info}");
    }
}

#[test]
fn slots_serve_the_cpus_given_and_offline_cpus_are_refused() {
    let topo = live();
    let first = topo.online_cpus().first().unwrap();
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .cpus([first, first, first])
        .build()
        .unwrap();
    assert_eq!(pool.slots(), 3);
    assert!(pool.backing().iter().all(|b| b.cpu == Some(first)));

    let cycled = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .cpus([first])
        .slots(2)
        .build()
        .unwrap();
    assert_eq!(cycled.backing()[1].cpu, Some(first));

    let offline = (0..4096)
        .find(|&c| !topo.online_cpus().contains(c))
        .unwrap();
    let err = Pool::<CpuLocal>::builder()
        .cpus([first, offline])
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::CpuUnavailable { cpu, .. } if *cpu == offline),
        "{err:?}"
    );
    let err = Pool::<CpuLocal>::builder().cpus([]).build().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
}

#[test]
fn the_error_type_stays_small() {
    // Returned on the allocation fast path: big payloads are boxed or kept out.
    assert!(
        size_of::<Error>() <= 56,
        "Error is {} bytes",
        size_of::<Error>()
    );
}
