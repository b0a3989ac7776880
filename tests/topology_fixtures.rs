//! The sysfs reader against sysfs-shaped trees this test writes itself,
//! each reproducing the facts of a real machine listed in
//! `shared/topologies/README.md` (no third-party file is copied), plus the
//! shapes no tarball has (memory tiers, CXL DAX, containers) and malformed
//! input.

mod common;

use common::fake_sysfs::{FakeSysfs, NODE};
use umrf::topology::{CpuSet, KindCue, MemoryKind, Source, Topology, TopologyError};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn ids(topo: &Topology) -> Vec<u32> {
    topo.nodes().iter().map(|n| n.id()).collect()
}

fn memonly(topo: &Topology) -> Vec<u32> {
    topo.memory_only_nodes().map(|n| n.id()).collect()
}

/// Writes a full distance matrix given as rows in node-id order.
fn distances(mut fake: FakeSysfs, node_ids: &[u32], rows: &[&[u32]]) -> FakeSysfs {
    for (id, row) in node_ids.iter().zip(rows) {
        fake = fake.distance(*id, row);
    }
    fake
}

fn assert_rows(topo: &Topology, node_ids: &[u32], rows: &[&[u32]]) {
    assert_eq!(topo.distances().node_ids(), node_ids);
    for (id, row) in node_ids.iter().zip(rows) {
        assert_eq!(topo.distances().row(*id), Some(*row), "row of node {id}");
    }
}

/// 2× Xeon Silver 4108 with SX-Aurora: empty `has_cpu`, 2048 huge pages
/// per node.
#[test]
fn intel_2s_empty_has_cpu_and_hugepages() {
    let fake = FakeSysfs::new("intel2s")
        .online_nodes("0-1")
        .file(&format!("{NODE}/has_cpu"), "\n")
        .file(&format!("{NODE}/has_memory"), "0-1\n")
        .node(0, "0-7,16-23", 47_925_628)
        .node(1, "8-15,24-31", 49_519_964)
        .distance(0, &[10, 21])
        .distance(1, &[21, 10])
        .node_hugepages(0, 2048, 2048, 2048)
        .node_hugepages(1, 2048, 2048, 2048)
        .node_hugepages(0, 1_048_576, 0, 0)
        .node_hugepages(1, 1_048_576, 0, 0)
        .global_hugepages(2048, 4096, 4096)
        .global_hugepages(1_048_576, 0, 0)
        .proc_meminfo(97_445_600, 2048)
        .cpu_online("0-31");
    let topo = fake.load();
    assert_eq!(ids(&topo), [0, 1]);
    assert!(
        topo.nodes().iter().all(|n| n.has_cpus()),
        "has_cpu must be ignored"
    );
    assert_eq!(topo.node(0).unwrap().cpus().to_string(), "0-7,16-23");
    assert_eq!(topo.node(1).unwrap().memory_total(), Some(49_519_964 * KIB));
    assert_eq!(
        topo.node(1).unwrap().memory_free(),
        Some(49_519_964 / 2 * KIB)
    );
    assert_eq!(topo.node_of_cpu(20), Some(0));
    assert_eq!(topo.node_of_cpu(24), Some(1));
    assert_eq!(topo.node_of_cpu(32), None);
    assert_rows(&topo, &[0, 1], &[&[10, 21], &[21, 10]]);
    assert_eq!(topo.nearest_nodes(1), Some(vec![1, 0]));
    let pool = topo.hugepage_pool(2 * MIB).expect("2 MiB pool");
    assert_eq!((pool.total, pool.free), (4096, Some(4096)));
    assert_eq!(
        pool.node(0).map(|n| (n.total, n.free)),
        Some((2048, Some(2048)))
    );
    assert_eq!(pool.node(1).map(|n| n.total), Some(2048));
    assert_eq!(pool.total_bytes(), 8 << 30);
    assert_eq!(topo.hugepage_pool(1 << 30).map(|p| p.total), Some(0));
    assert_eq!(topo.hugepage_pools().len(), 2);
    assert_eq!(topo.default_huge_page_size(), Some(2 * MIB));
    assert_eq!(
        topo.base_page_size(),
        None,
        "a fixture root has no page size"
    );
    assert!(topo.is_numa());
    assert_eq!(
        topo.source(),
        &Source::Sysfs {
            root: fake.path().to_path_buf()
        }
    );
    assert!(!topo.source().is_live());
}

/// AMD EPYC 7401 ×2 (LLNL Corona): 8 nodes, 10 / 16 same package / 32.
#[test]
fn epyc_eight_node_distances() {
    let mut fake = FakeSysfs::new("epyc")
        .online_nodes("0-7")
        .cpu_online("0-95");
    let mut rows: Vec<Vec<u32>> = Vec::new();
    for i in 0..8u32 {
        let kb = if i == 0 { 33_440_596 } else { 33_553_920 };
        let cpus = format!("{}-{},{}-{}", 6 * i, 6 * i + 5, 48 + 6 * i, 48 + 6 * i + 5);
        fake = fake.node(i, &cpus, kb);
        rows.push(
            (0..8u32)
                .map(|j| {
                    if i == j {
                        10
                    } else if i / 4 == j / 4 {
                        16
                    } else {
                        32
                    }
                })
                .collect(),
        );
    }
    let ids8: Vec<u32> = (0..8).collect();
    let row_refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let fake = distances(fake, &ids8, &row_refs);
    let topo = fake.load();
    assert_eq!(ids(&topo), ids8);
    assert_rows(&topo, &ids8, &row_refs);
    assert_eq!(topo.distance(0, 3), Some(16));
    assert_eq!(topo.distance(3, 4), Some(32));
    assert_eq!(topo.nearest_nodes(5), Some(vec![5, 4, 6, 7, 0, 1, 2, 3]));
    assert_eq!(topo.node(7).unwrap().cpus().to_string(), "42-47,90-95");
    assert_eq!(topo.node_of_cpu(50), Some(0));
    assert_eq!(
        topo.memory_total(),
        Some((33_440_596 + 7 * 33_553_920) * KIB)
    );
    assert!(topo.hugepage_pools().is_empty());
}

/// The fake KNL (SNC4, hybrid): nodes 0-3 with CPUs, 4-7 memory-only;
/// per node only cpumap, distance and meminfo; no `online` file.
#[test]
fn knl_cpumap_only_memory_only_nodes() {
    let rows: [&[u32]; 8] = [
        &[10, 21, 21, 21, 41, 41, 41, 31],
        &[21, 10, 21, 21, 31, 41, 41, 41],
        &[21, 21, 10, 21, 41, 31, 41, 41],
        &[21, 21, 21, 10, 41, 41, 31, 41],
        &[41, 31, 41, 41, 10, 41, 41, 41],
        &[41, 41, 31, 41, 41, 10, 41, 41],
        &[41, 41, 41, 31, 41, 41, 10, 41],
        &[31, 41, 41, 41, 41, 41, 41, 10],
    ];
    // Node i has CPUs 4i..4i+3 in each of the four 16-CPU quarters.
    let masks = [
        "000f000f,000f000f",
        "00f000f0,00f000f0",
        "0f000f00,0f000f00",
        "f000f000,f000f000",
    ];
    let mut fake = FakeSysfs::new("knl");
    for (i, mask) in masks.iter().enumerate() {
        fake = fake.node_cpumap(i as u32, mask, 1_048_576);
    }
    for i in 4..8 {
        fake = fake.node_cpumap(i, "00000000,00000000", 2_097_152);
    }
    let ids8: Vec<u32> = (0..8).collect();
    let fake = distances(fake, &ids8, &rows);
    let topo = fake.load();
    assert_eq!(ids(&topo), ids8);
    assert_eq!(memonly(&topo), [4, 5, 6, 7]);
    assert_eq!(
        topo.node(0).unwrap().cpus().to_string(),
        "0-3,16-19,32-35,48-51"
    );
    assert_eq!(
        topo.node(3).unwrap().cpus().to_string(),
        "12-15,28-31,44-47,60-63"
    );
    for n in 4..8 {
        let node = topo.node(n).unwrap();
        assert_eq!(node.memory_total(), Some(2 * 1024 * MIB));
        // No documented sysfs cue marks MCDRAM: stays Unknown.
        assert_eq!(node.kind(), MemoryKind::Unknown);
        assert_eq!(node.classification().cue, KindCue::MemoryOnlyNoEvidence);
    }
    // Nearest MCDRAM of each cluster: 0→7, 1→4, 2→5, 3→6.
    for (cpu_node, mcdram) in [(0, 7), (1, 4), (2, 5), (3, 6)] {
        let near = topo.nearest_nodes(cpu_node).unwrap();
        let first_memonly = near
            .iter()
            .find(|&&n| topo.node(n).unwrap().is_memory_only());
        assert_eq!(first_memonly, Some(&mcdram), "from node {cpu_node}");
    }
    assert!(topo.hugepage_pools().is_empty());
    assert_eq!(topo.default_huge_page_size(), None);
    assert_eq!(topo.online_cpus().to_string(), "0-63", "union of node CPUs");
}

fn power9(with_nvidia_status: bool) -> FakeSysfs {
    let mut fake = FakeSysfs::new("power9")
        .online_nodes("0,8,250-255")
        .file(&format!("{NODE}/has_cpu"), "0,8\n")
        .file(&format!("{NODE}/has_normal_memory"), "0,8\n")
        .node(0, "0-87", 129_839_104)
        .node(8, "88-175", 133_952_000)
        .cpu_online("0-15,88-103")
        .proc_meminfo(358_162_944, 2048);
    let all = [0u32, 8, 250, 251, 252, 253, 254, 255];
    for (i, &id) in all.iter().enumerate() {
        if id >= 250 {
            fake = fake.node(id, "", 15_728_640);
        }
        let row: Vec<u32> = all
            .iter()
            .enumerate()
            .map(|(j, &other)| match (i == j, id < 250 && other < 250) {
                (true, _) => 10,
                (false, true) => 40,
                (false, false) => 80,
            })
            .collect();
        fake = fake
            .distance(id, &row)
            .node_hugepages(id, 2048, 0, 0)
            .node_hugepages(id, 1_048_576, 0, 0);
    }
    fake = fake
        .global_hugepages(2048, 0, 0)
        .global_hugepages(1_048_576, 0, 0);
    if with_nvidia_status {
        let buses = ["0035:05:00.0", "0035:04:00.0", "0007:00:00.0"];
        let more = ["0006:00:00.0", "0004:06:00.0", "0004:05:00.0"];
        for (bus, node) in buses.iter().chain(&more).zip(250..=255) {
            fake = fake.file(
                &format!("proc/driver/nvidia/gpus/{bus}/numa_status"),
                &format!("Node:      {node}\nStatus:    online\nAddress:   40000000000\n"),
            );
        }
    }
    fake
}

/// IBM AC922 (POWER9 + V100): nodes 0, 8, 250-255; GPU memory nodes; only
/// some CPUs online.
#[test]
fn power9_gpu_memory_nodes() {
    let fake = power9(true);
    let topo = fake.load();
    assert_eq!(ids(&topo), [0, 8, 250, 251, 252, 253, 254, 255]);
    assert_eq!(memonly(&topo), [250, 251, 252, 253, 254, 255]);
    assert_eq!(topo.online_cpus().to_string(), "0-15,88-103");
    let node0 = topo.node(0).unwrap();
    assert_eq!(node0.cpus().to_string(), "0-87");
    assert_eq!(
        node0.cpus().intersection(topo.online_cpus()).to_string(),
        "0-15"
    );
    assert_eq!(topo.node_of_cpu(100), Some(8));
    assert_eq!(topo.distance(0, 8), Some(40));
    assert_eq!(topo.distance(8, 253), Some(80));
    assert_eq!(topo.distance(252, 252), Some(10));
    for gpu in 250..=255 {
        let node = topo.node(gpu).unwrap();
        assert_eq!(node.kind(), MemoryKind::Gpu);
        assert_eq!(node.classification().cue, KindCue::NvidiaNumaStatus);
        assert!(node.kind_reason().contains("numa_status"));
        assert_eq!(node.memory_total(), Some(15 * 1024 * MIB));
    }
    assert_eq!(node0.kind(), MemoryKind::Dram);
    assert_eq!(topo.nearest_nodes(0).unwrap()[..2], [0, 8]);
    assert_eq!(
        topo.hugepage_pools()
            .iter()
            .map(|p| p.page_size)
            .collect::<Vec<_>>(),
        [2 * MIB, 1 << 30]
    );
}

/// Without the driver's file, distance 80 and a GPU-sized node are not
/// evidence enough: the GPU nodes stay Unknown.
#[test]
fn power9_without_driver_file_is_unknown() {
    let topo = power9(false).load();
    for gpu in 250..=255 {
        assert_eq!(topo.node(gpu).unwrap().kind(), MemoryKind::Unknown);
    }
}

/// HP Superdome sx2000 (Itanium): 17 nodes, cpumap only, memory-only
/// node 16 at distance 14, no `online` files, no `/sys/kernel/mm`.
#[test]
fn itanium_17_nodes_old_kernel_layout() {
    let mut fake = FakeSysfs::new("ia64").proc_meminfo(1_603_993_424, 262_144);
    for cpu in 0..128u32 {
        fake = fake.dir(&format!("sys/devices/system/cpu/cpu{cpu}"));
        if cpu > 0 {
            fake = fake.file(&format!("sys/devices/system/cpu/cpu{cpu}/online"), "1\n");
        }
    }
    let mask_of = |node: u32| -> String {
        // 4096-bit mask, 128 words; node n owns CPUs 8n..8n+7.
        let mut words = vec![0u32; 128];
        if node < 16 {
            let first = 8 * node;
            words[(first / 32) as usize] |= 0xff << (first % 32);
        }
        let text: Vec<String> = words.iter().rev().map(|w| format!("{w:08x}")).collect();
        text.join(",")
    };
    for node in 0..17u32 {
        let kb = match node {
            0 => 100_057_088,
            1 => 100_073_472,
            16 => 1_020_176,
            _ => 100_597_760,
        };
        let row: Vec<u32> = (0..17u32)
            .map(|j| match (node, j) {
                (a, b) if a == b => 10,
                (16, _) | (_, 16) => 14,
                (a, b) if a / 4 == b / 4 => 17,
                _ => 20,
            })
            .collect();
        fake = fake
            .node_cpumap(node, &mask_of(node), kb)
            .distance(node, &row)
            .file(
                &format!("{NODE}/node{node}/meminfo"),
                &format!(
                    "Node {node} MemTotal:     {kb} kB\nNode {node} HugePages_Total:     0\n\
                 Node {node} HugePages_Free:      0\n"
                ),
            );
    }
    let topo = fake.load();
    assert_eq!(ids(&topo), (0..17).collect::<Vec<_>>());
    assert_eq!(memonly(&topo), [16]);
    assert_eq!(topo.node(3).unwrap().cpus().to_string(), "24-31");
    assert_eq!(topo.node(16).unwrap().memory_total(), Some(1_020_176 * KIB));
    assert_eq!(topo.node(16).unwrap().memory_free(), None);
    assert_eq!(topo.distance(0, 3), Some(17));
    assert_eq!(topo.distance(0, 4), Some(20));
    assert_eq!(topo.distance(7, 16), Some(14));
    assert_eq!(topo.distance(16, 12), Some(14));
    assert_eq!(topo.online_cpus().to_string(), "0-127");
    assert_eq!(topo.default_huge_page_size(), Some(256 * MIB));
    // No hugepage directories: the default-size pool from meminfo.
    let pools = topo.hugepage_pools();
    assert_eq!(pools.len(), 1);
    assert_eq!((pools[0].page_size, pools[0].total), (256 * MIB, 0));
    assert_eq!(pools[0].per_node.len(), 17);
}

/// Huawei Kunpeng 920 ×2: four huge page sizes, global and per node.
#[test]
fn arm_four_hugepage_sizes() {
    let mut fake = FakeSysfs::new("arm")
        .online_nodes("0-3")
        .proc_meminfo(527_031_224, 2048);
    let rows: [&[u32]; 4] = [
        &[10, 16, 32, 33],
        &[16, 10, 25, 32],
        &[32, 25, 10, 16],
        &[33, 32, 16, 10],
    ];
    let kbs = [131_732_940, 132_117_940, 132_117_936, 131_062_408];
    for node in 0..4u32 {
        fake = fake.node(
            node,
            &format!("{}-{}", 32 * node, 32 * node + 31),
            kbs[node as usize],
        );
        for size in [64, 2048, 32768, 1_048_576] {
            fake = fake.node_hugepages(node, size, 0, 0);
        }
    }
    for size in [64, 2048, 32768, 1_048_576] {
        fake = fake.global_hugepages(size, 0, 0);
    }
    let fake = distances(fake, &[0, 1, 2, 3], &rows);
    let topo = fake.load();
    let sizes: Vec<u64> = topo.hugepage_pools().iter().map(|p| p.page_size).collect();
    assert_eq!(sizes, [64 * KIB, 2 * MIB, 32 * MIB, 1 << 30]);
    assert!(
        topo.hugepage_pools()
            .iter()
            .all(|p| p.per_node.len() == 4 && p.total == 0)
    );
    assert_rows(&topo, &[0, 1, 2, 3], &rows);
    assert_eq!(topo.nearest_nodes(1), Some(vec![1, 0, 2, 3]));
    assert_eq!(
        topo.node(3).unwrap().memory_total(),
        Some(131_062_408 * KIB)
    );
}

/// QEMU with DRAM + HBM + NVM: sparse node ids, memory-only nodes whose
/// local CPUs come from HMAT initiators.
#[test]
fn qemu_sparse_ids_and_hmat_initiators() {
    let mut fake = FakeSysfs::new("qemu")
        .file(&format!("{NODE}/possible"), "0-9\n")
        .file(&format!("{NODE}/online"), "0-2,4,6,8-9\n")
        .file(&format!("{NODE}/has_memory"), "0-2,4,6,8-9\n")
        .file(&format!("{NODE}/has_cpu"), "0-2\n")
        .file(&format!("{NODE}/has_generic_initiator"), "\n")
        .node(0, "0-1", 3_005_392)
        .node(1, "2-3", 1_002_460)
        .node(2, "4-5", 524_288)
        .node(4, "", 524_288)
        .node(6, "", 393_216)
        .node(8, "", 393_216)
        .node(9, "", 393_216)
        .cpu_online("0-5")
        .proc_meminfo(6_254_296, 2048);
    let all = [0u32, 1, 2, 4, 6, 8, 9];
    for (i, &id) in all.iter().enumerate() {
        let row: Vec<u32> = (0..all.len())
            .map(|j| if i == j { 10 } else { 20 })
            .collect();
        let initiator = match id {
            0 | 8 => 0,
            1 | 4 | 6 => 1,
            _ => 2,
        };
        fake = fake
            .distance(id, &row)
            .node_hugepages(id, 2048, 0, 0)
            .symlink(
                &format!("{NODE}/node{id}/access1/initiators/node{initiator}"),
                &format!("../../../node{initiator}"),
            )
            .file(
                &format!("{NODE}/node{id}/access1/initiators/read_latency"),
                "10\n",
            );
    }
    let topo = fake.load();
    assert_eq!(ids(&topo), all);
    assert!(topo.node(3).is_none() && topo.node(5).is_none() && topo.node(7).is_none());
    assert_eq!(memonly(&topo), [4, 6, 8, 9]);
    assert_eq!(topo.distance(4, 9), Some(20));
    assert_eq!(topo.distance(3, 0), None);
    assert_eq!(topo.node(8).unwrap().local_cpus().to_string(), "0-1");
    assert_eq!(topo.node(4).unwrap().local_cpus().to_string(), "2-3");
    assert_eq!(topo.node(6).unwrap().local_cpus().to_string(), "2-3");
    assert_eq!(topo.node(9).unwrap().local_cpus().to_string(), "4-5");
    assert_eq!(topo.node(2).unwrap().local_cpus().to_string(), "4-5");
    assert_eq!(topo.node(4).unwrap().memory_total(), Some(524_288 * KIB));
    assert!(
        topo.memory_tiers().is_empty(),
        "this VM has no memory_tiering"
    );
    assert_eq!(topo.hugepage_pool(2 * MIB).unwrap().per_node.len(), 7);
}

/// Kernel memory tiers (no tarball has them): DRAM nodes in the default
/// tier 4, a CPU-less node in a faster tier (HBM), one in a slower tier
/// (unknown), and one onlined from a CXL region through DAX (CXL), the
/// latter reached through an absolute symlink that must be re-rooted.
#[test]
fn memory_tiers_and_cxl_dax() {
    let cxl_dev = "sys/devices/platform/ACPI0017:00/root0/decoder0.0/region0/dax_region0/dax0.0";
    let cxl_dev2 = "sys/devices/pci0000:00/0000:00:01.0/mem1/region1/dax_region1/dax1.0";
    let rows: [&[u32]; 5] = [
        &[10, 21, 14, 24, 12],
        &[21, 10, 24, 14, 22],
        &[14, 24, 10, 26, 20],
        &[24, 14, 26, 10, 20],
        &[12, 22, 20, 20, 10],
    ];
    let fake = FakeSysfs::new("tiers")
        .online_nodes("0-4")
        .node(0, "0-7", 64 * 1024 * 1024)
        .node(1, "8-15", 64 * 1024 * 1024)
        .node(2, "", 128 * 1024 * 1024)
        .node(3, "", 128 * 1024 * 1024)
        .node(4, "", 16 * 1024 * 1024)
        .tier(4, "0-1")
        .tier(1, "4")
        .tier(22, "2-3")
        // Node 2: DAX under the CXL root device ACPI0017 (absolute link).
        .file(&format!("{cxl_dev}/target_node"), "2\n")
        .symlink("sys/bus/dax/devices/dax0.0", &format!("/{cxl_dev}"))
        // Node 3: DAX below a device whose subsystem is the cxl bus.
        .file(&format!("{cxl_dev2}/target_node"), "3\n")
        .dir("sys/bus/cxl")
        .symlink(
            "sys/devices/pci0000:00/0000:00:01.0/mem1/region1/subsystem",
            "../../../../../bus/cxl",
        )
        .symlink(
            "sys/bus/dax/devices/dax1.0",
            &format!("../../../{}", cxl_dev2.trim_start_matches("sys/")),
        )
        // An hmem (soft-reserved) DAX for node 4 is not a kind cue.
        .file("sys/devices/platform/hmem.0/dax2.0/target_node", "4\n")
        .symlink(
            "sys/bus/dax/devices/dax2.0",
            "../../../devices/platform/hmem.0/dax2.0",
        );
    let fake = distances(fake, &[0, 1, 2, 3, 4], &rows);
    let topo = fake.load();
    let tiers: Vec<(u32, Vec<u32>)> = topo
        .memory_tiers()
        .iter()
        .map(|t| (t.id, t.nodes.clone()))
        .collect();
    assert_eq!(tiers, [(1, vec![4]), (4, vec![0, 1]), (22, vec![2, 3])]);
    assert_eq!(topo.node(0).unwrap().tier(), Some(4));
    assert_eq!(topo.node(2).unwrap().tier(), Some(22));
    let kind = |id| topo.node(id).unwrap().classification();
    assert_eq!(kind(0).kind, MemoryKind::Dram);
    assert_eq!(
        (kind(2).kind, kind(2).cue),
        (MemoryKind::Cxl, KindCue::CxlDax)
    );
    assert_eq!(
        (kind(3).kind, kind(3).cue),
        (MemoryKind::Cxl, KindCue::CxlDax)
    );
    assert_eq!(
        (kind(4).kind, kind(4).cue),
        (MemoryKind::Hbm, KindCue::FasterMemoryTier)
    );
    // Nearest CXL expander of node 1 is node 3.
    assert_eq!(topo.nearest_nodes(1).unwrap()[1], 3);
}

/// The one real `memory_tiering` fact (hmsdk issue #2): CXL nodes in the
/// default tier together with DRAM. Nothing says they are CXL.
#[test]
fn cxl_nodes_in_the_default_tier_stay_unknown() {
    let fake = FakeSysfs::new("hmsdk")
        .online_nodes("0-3")
        .node(0, "0-23", 256 * 1024 * 1024)
        .node(1, "24-47", 256 * 1024 * 1024)
        .node(2, "", 128 * 1024 * 1024)
        .node(3, "", 128 * 1024 * 1024)
        .tier(4, "0-3");
    let topo = fake.load();
    assert_eq!(topo.memory_tiers().len(), 1);
    assert_eq!(topo.node(2).unwrap().kind(), MemoryKind::Unknown);
    assert_eq!(topo.node(3).unwrap().tier(), Some(4));
    assert!(!topo.distances().is_known());
    assert_eq!(topo.nearest_nodes(0), None, "no distances, several nodes");
}

/// A container: no `sys/devices/system/node`.
#[test]
fn container_fallback_single_node() {
    let fake = FakeSysfs::new("container")
        .proc_meminfo(8 * 1024 * 1024, 2048)
        .cpu_online("0-3")
        .global_hugepages(2048, 16, 8);
    let topo = fake.load();
    assert!(topo.source().is_fallback());
    assert_eq!(topo.nodes().len(), 1);
    let node = &topo.nodes()[0];
    assert_eq!(node.id(), 0);
    assert_eq!(node.cpus().to_string(), "0-3");
    assert_eq!(node.memory_total(), Some(8 * 1024 * MIB));
    assert_eq!(node.classification().cue, KindCue::SingleNodeFallback);
    assert_eq!(
        topo.hugepage_pool(2 * MIB).map(|p| (p.total, p.free)),
        Some((16, Some(8)))
    );
    assert_eq!(topo.nearest_nodes(0), Some(vec![0]));
    assert!(topo.source().to_string().contains("fallback"));
}

/// Base page size from `proc/self/smaps` when the root has it.
#[test]
fn base_page_size_from_smaps() {
    let fake = FakeSysfs::new("smaps")
        .online_nodes("0")
        .node(0, "0-3", 1024)
        .file(
            "proc/self/smaps",
            "10000000-10010000 r-xp 00000000 08:02 1 /bin/x\nSize: 64 kB\nKernelPageSize:       64 kB\n",
        );
    assert_eq!(fake.load().base_page_size(), Some(64 * KIB));
}

/// Offline CPUs from per-CPU `online` files, and node dirs reached
/// through absolute symlinks.
#[test]
fn per_cpu_online_files_and_absolute_node_links() {
    let fake = FakeSysfs::new("links")
        .file("elsewhere/node1/cpulist", "2-3\n")
        .file("elsewhere/node1/meminfo", "Node 1 MemTotal: 100 kB\n")
        .symlink(&format!("{NODE}/node1"), "/elsewhere/node1")
        .node(0, "0-1", 100)
        .dir("sys/devices/system/cpu/cpu0")
        .file("sys/devices/system/cpu/cpu1/online", "1\n")
        .file("sys/devices/system/cpu/cpu2/online", "0\n")
        .file("sys/devices/system/cpu/cpu3/online", "1\n");
    let topo = fake.load();
    assert_eq!(ids(&topo), [0, 1]);
    assert_eq!(topo.node(1).unwrap().cpus().to_string(), "2-3");
    assert_eq!(topo.online_cpus().to_string(), "0-1,3");
}

fn error_text(fake: &FakeSysfs) -> String {
    fake.load_err().to_string()
}

#[test]
fn malformed_input_is_a_clear_error() {
    let bad_list = FakeSysfs::new("e1").online_nodes("0").node(0, "0-x", 1);
    let err = bad_list.load_err();
    assert!(matches!(err, TopologyError::CpuSet { .. }), "{err:?}");
    assert!(err.to_string().contains("node0/cpulist"), "{err}");

    let bad_mask = FakeSysfs::new("e2").node_cpumap(0, "zz", 1);
    assert!(error_text(&bad_mask).contains("node0/cpumap"));

    let short_row = FakeSysfs::new("e3")
        .online_nodes("0-1")
        .node(0, "0", 1)
        .node(1, "1", 1)
        .distance(0, &[10, 20])
        .distance(1, &[20]);
    let text = error_text(&short_row);
    assert!(
        text.contains("node1/distance") && text.contains("1 distances for 2 nodes"),
        "{text}"
    );

    let partial = FakeSysfs::new("e4")
        .online_nodes("0-1")
        .node(0, "0", 1)
        .node(1, "1", 1)
        .distance(0, &[10, 20]);
    assert!(error_text(&partial).contains("node1/distance"));

    let missing_dir = FakeSysfs::new("e5").online_nodes("0-1").node(0, "0", 1);
    let text = error_text(&missing_dir);
    assert!(
        text.contains("node1") && text.contains("no directory"),
        "{text}"
    );

    let no_cpu_file = FakeSysfs::new("e6")
        .online_nodes("0")
        .file(&format!("{NODE}/node0/meminfo"), "Node 0 MemTotal: 1 kB\n");
    assert!(error_text(&no_cpu_file).contains("neither a cpulist nor a cpumap"));

    let bad_meminfo = FakeSysfs::new("e7").online_nodes("0").node(0, "0", 1).file(
        &format!("{NODE}/node0/meminfo"),
        "Node 0 MemTotal: many kB\n",
    );
    assert!(error_text(&bad_meminfo).contains("node0/meminfo"));

    let bad_online = FakeSysfs::new("e8").file(&format!("{NODE}/online"), "0-\n");
    assert!(error_text(&bad_online).contains("node/online"));

    let bad_huge = FakeSysfs::new("e9").online_nodes("0").node(0, "0", 1).file(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "lots\n",
    );
    assert!(error_text(&bad_huge).contains("nr_hugepages"));

    let bad_status = FakeSysfs::new("e10")
        .online_nodes("0")
        .node(0, "0", 1)
        .file(
            "proc/driver/nvidia/gpus/0000:01:00.0/numa_status",
            "Node: x\n",
        );
    assert!(error_text(&bad_status).contains("numa_status"));

    let looped = FakeSysfs::new("e11")
        .online_nodes("0")
        .symlink(&format!("{NODE}/node0"), "node0");
    assert!(matches!(
        looped.load_err(),
        TopologyError::SymlinkLoop { .. }
    ));

    let empty = FakeSysfs::new("e12").online_nodes("");
    assert!(error_text(&empty).contains("no NUMA node"));

    let nothing = FakeSysfs::new("e13");
    assert!(error_text(&nothing).contains("no CPU information"));

    let missing_root = std::env::temp_dir().join("umrf-no-such-root-for-topology-tests");
    let err = Topology::from_sysfs(&missing_root).unwrap_err();
    assert!(matches!(err, TopologyError::Io { .. }) && err.to_string().contains("no-such-root"));
}

#[test]
fn cpuset_public_api_edges() {
    assert!(CpuSet::parse_list("0-3,,4").is_err());
    assert_eq!(CpuSet::parse_mask("ffffffff,ffffffff").unwrap().len(), 64);
    assert_eq!(CpuSet::parse_list(" 0-3 \n").unwrap().to_string(), "0-3");
}
