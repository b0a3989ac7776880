//! The readers against the original machine data in `../shared/topologies`
//! (relative to the crate root), asserting the facts its README lists.
//! When that folder is absent the tests print a SKIPPED line and pass.

mod common;

use common::sysfs;
use umrf::topology::{KindCue, MemoryKind, Topology};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn ids(topo: &Topology) -> Vec<u32> {
    topo.nodes().iter().map(|n| n.id()).collect()
}

fn memonly(topo: &Topology) -> Vec<u32> {
    topo.memory_only_nodes().map(|n| n.id()).collect()
}

fn totals_kb(topo: &Topology) -> Vec<u64> {
    topo.nodes()
        .iter()
        .map(|n| n.memory_total().unwrap() / KIB)
        .collect()
}

fn rows(topo: &Topology) -> Vec<Vec<u32>> {
    let d = topo.distances();
    d.node_ids()
        .iter()
        .map(|&id| d.row(id).unwrap().to_vec())
        .collect()
}

fn pool_sizes(topo: &Topology) -> Vec<u64> {
    topo.hugepage_pools().iter().map(|p| p.page_size).collect()
}

fn cpus(topo: &Topology, id: u32) -> String {
    topo.node(id).unwrap().cpus().to_string()
}

#[test]
fn sysfs_memorysidecaches() {
    let Some(t) = sysfs("memorysidecaches") else {
        return;
    };
    assert_eq!(ids(&t), [0, 1, 2, 3]);
    assert!(memonly(&t).is_empty());
    let stride4 = |first: u32| -> String {
        (first..80)
            .step_by(4)
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    for id in 0..4 {
        assert_eq!(cpus(&t, id), stride4(id));
    }
    assert_eq!(
        totals_kb(&t),
        [388_492_316, 390_163_848, 390_163_840, 390_162_812]
    );
    assert_eq!(
        rows(&t),
        [
            [10, 21, 11, 21],
            [21, 10, 21, 11],
            [11, 21, 10, 21],
            [21, 11, 21, 10]
        ]
    );
    assert_eq!(pool_sizes(&t), [2 * MIB, GIB]);
    assert!(
        t.hugepage_pools()
            .iter()
            .all(|p| p.total == 0 && p.per_node.len() == 4)
    );
    assert_eq!(t.default_huge_page_size(), Some(2 * MIB));
    assert_eq!(t.online_cpus().to_string(), "0-79");
}

#[test]
fn sysfs_intel_sx_aurora() {
    let Some(t) = sysfs("32intel64-2p8co2t+8ve") else {
        return;
    };
    assert_eq!(ids(&t), [0, 1]);
    assert!(
        memonly(&t).is_empty(),
        "empty has_cpu must not make nodes memory-only"
    );
    assert_eq!(cpus(&t, 0), "0-7,16-23");
    assert_eq!(cpus(&t, 1), "8-15,24-31");
    assert_eq!(totals_kb(&t), [47_925_628, 49_519_964]);
    assert_eq!(rows(&t), [[10, 21], [21, 10]]);
    let pool = t.hugepage_pool(2 * MIB).unwrap();
    assert_eq!((pool.total, pool.free), (4096, Some(4096)));
    for node in [0, 1] {
        assert_eq!(
            pool.node(node).map(|n| (n.total, n.free)),
            Some((2048, Some(2048)))
        );
    }
    assert_eq!(t.hugepage_pool(GIB).map(|p| p.total), Some(0));
}

#[test]
fn sysfs_amd_opteron_asymmetric() {
    let Some(t) = sysfs("64amd64-4s2n4ca2co") else {
        return;
    };
    assert_eq!(ids(&t), (0..8).collect::<Vec<_>>());
    for i in 0..8 {
        assert_eq!(cpus(&t, i), format!("{}-{}", 8 * i, 8 * i + 7));
    }
    assert_eq!(
        totals_kb(&t),
        [
            16_769_836, 16_777_216, 16_777_216, 16_777_216, 16_777_216, 8_388_608, 16_777_216,
            16_760_832
        ]
    );
    assert_eq!(
        rows(&t),
        [
            [10, 16, 16, 22, 16, 22, 16, 22],
            [16, 10, 22, 16, 16, 22, 22, 16],
            [16, 22, 10, 16, 16, 16, 16, 16],
            [22, 16, 16, 10, 16, 16, 22, 22],
            [16, 16, 16, 16, 10, 16, 16, 22],
            [22, 22, 16, 16, 16, 10, 22, 16],
            [16, 22, 16, 22, 16, 22, 10, 16],
            [22, 16, 16, 22, 22, 16, 16, 10],
        ]
    );
    assert_eq!(pool_sizes(&t), [2 * MIB]);
    assert_eq!(t.nearest_nodes(2), Some(vec![2, 0, 3, 4, 5, 6, 7, 1]));
}

#[test]
fn sysfs_arm_kunpeng() {
    let Some(t) = sysfs("128arm-2pa2n8cluster4co") else {
        return;
    };
    assert_eq!(ids(&t), [0, 1, 2, 3]);
    for i in 0..4 {
        assert_eq!(cpus(&t, i), format!("{}-{}", 32 * i, 32 * i + 31));
    }
    assert_eq!(
        totals_kb(&t),
        [131_732_940, 132_117_940, 132_117_936, 131_062_408]
    );
    assert_eq!(
        rows(&t),
        [
            [10, 16, 32, 33],
            [16, 10, 25, 32],
            [32, 25, 10, 16],
            [33, 32, 16, 10]
        ]
    );
    assert_eq!(pool_sizes(&t), [64 * KIB, 2 * MIB, 32 * MIB, GIB]);
    assert!(
        t.hugepage_pools()
            .iter()
            .all(|p| p.total == 0 && p.per_node.len() == 4)
    );
}

#[test]
fn sysfs_power9_gpu_nodes() {
    let Some(t) = sysfs("nvidiagpunumanodes") else {
        return;
    };
    assert_eq!(ids(&t), [0, 8, 250, 251, 252, 253, 254, 255]);
    assert_eq!(memonly(&t), [250, 251, 252, 253, 254, 255]);
    assert_eq!(cpus(&t, 0), "0-87");
    assert_eq!(cpus(&t, 8), "88-175");
    assert_eq!(t.online_cpus().to_string(), "0-15,88-103");
    assert_eq!(
        totals_kb(&t),
        [
            129_839_104,
            133_952_000,
            15_728_640,
            15_728_640,
            15_728_640,
            15_728_640,
            15_728_640,
            15_728_640
        ]
    );
    let r = rows(&t);
    assert_eq!(r[0], [10, 40, 80, 80, 80, 80, 80, 80]);
    assert_eq!(r[1], [40, 10, 80, 80, 80, 80, 80, 80]);
    for (i, row) in r.iter().enumerate().skip(2) {
        for (j, &d) in row.iter().enumerate() {
            assert_eq!(d, if i == j { 10 } else { 80 });
        }
    }
    for gpu in 250..=255 {
        let c = t.node(gpu).unwrap().classification();
        assert_eq!(
            (c.kind, c.cue),
            (MemoryKind::Gpu, KindCue::NvidiaNumaStatus)
        );
    }
    assert_eq!(pool_sizes(&t), [2 * MIB, GIB]);
    assert_eq!(t.hugepage_pool(2 * MIB).unwrap().per_node.len(), 8);
}

#[test]
fn sysfs_itanium_17_nodes() {
    let Some(t) = sysfs("128ia64-17n4s2c") else {
        return;
    };
    assert_eq!(ids(&t), (0..17).collect::<Vec<_>>());
    assert_eq!(memonly(&t), [16]);
    for i in 0..16 {
        assert_eq!(t.node(i).unwrap().cpus().len(), 8, "node {i}");
    }
    let kb = totals_kb(&t);
    assert_eq!(
        (kb[0], kb[1], kb[16]),
        (100_057_088, 100_073_472, 1_020_176)
    );
    assert!(
        kb[2..16].iter().all(|&k| k.abs_diff(100_597_760) < 8192),
        "{kb:?}"
    );
    for a in 0..17u32 {
        for b in 0..17u32 {
            let expect = match (a, b) {
                _ if a == b => 10,
                (16, _) | (_, 16) => 14,
                _ if a / 4 == b / 4 => 17,
                _ => 20,
            };
            assert_eq!(t.distance(a, b), Some(expect), "{a}->{b}");
        }
    }
    assert_eq!(t.default_huge_page_size(), Some(256 * MIB));
    assert_eq!(
        pool_sizes(&t),
        [256 * MIB],
        "from /proc/meminfo: no /sys/kernel/mm"
    );
    assert_eq!(t.online_cpus().len(), 128);
}

#[test]
fn sysfs_fake_knl() {
    let Some(t) = sysfs("64intel64-fakeKNL-SNC4-hybrid") else {
        return;
    };
    assert_eq!(ids(&t), (0..8).collect::<Vec<_>>());
    assert_eq!(memonly(&t), [4, 5, 6, 7]);
    assert_eq!(
        totals_kb(&t),
        [
            1_048_576, 1_048_576, 1_048_576, 1_048_576, 2_097_152, 2_097_152, 2_097_152, 2_097_152
        ]
    );
    let r = rows(&t);
    assert_eq!(r[0], [10, 21, 21, 21, 41, 41, 41, 31]);
    assert_eq!(r[4], [41, 31, 41, 41, 10, 41, 41, 41]);
    assert_eq!(r[7], [31, 41, 41, 41, 41, 41, 41, 10]);
    for (cpu_node, mcdram) in [(0, 7), (1, 4), (2, 5), (3, 6)] {
        let near = t.nearest_nodes(cpu_node).unwrap();
        let first_memonly = near
            .into_iter()
            .find(|&n| t.node(n).unwrap().is_memory_only());
        assert_eq!(
            first_memonly,
            Some(mcdram),
            "nearest MCDRAM of node {cpu_node}"
        );
    }
    assert!(t.hugepage_pools().is_empty());
    assert_eq!(t.online_cpus().len(), 64);
}

#[test]
fn sysfs_qemu_heterogeneous_tiers() {
    let Some(t) = sysfs("fakeheteromemtiers") else {
        return;
    };
    assert_eq!(ids(&t), [0, 1, 2, 4, 6, 8, 9]);
    assert_eq!(memonly(&t), [4, 6, 8, 9]);
    assert_eq!(
        (cpus(&t, 0), cpus(&t, 1), cpus(&t, 2)),
        ("0-1".into(), "2-3".into(), "4-5".into())
    );
    assert_eq!(
        totals_kb(&t),
        [
            3_005_392, 1_002_460, 524_288, 524_288, 393_216, 393_216, 393_216
        ]
    );
    for row in rows(&t) {
        assert_eq!(row.iter().filter(|&&d| d == 10).count(), 1);
        assert_eq!(row.iter().filter(|&&d| d == 20).count(), 6);
    }
    let local = |id| t.node(id).unwrap().local_cpus().to_string();
    assert_eq!(
        (local(8), local(4), local(6), local(9)),
        ("0-1".into(), "2-3".into(), "2-3".into(), "4-5".into())
    );
    assert_eq!(pool_sizes(&t), [2 * MIB]);
    assert!(t.memory_tiers().is_empty());
}

#[cfg(feature = "hwloc")]
mod hwloc_xml {
    use super::*;
    use common::hwloc_xml as xml;

    fn bytes(topo: &Topology) -> Vec<u64> {
        topo.nodes()
            .iter()
            .map(|n| n.memory_total().unwrap())
            .collect()
    }

    #[test]
    fn xml_sandy_bridge() {
        let Some(t) = xml("32em64t-2n8c2t-pci-normalio.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0, 1]);
        assert_eq!(
            (cpus(&t, 0), cpus(&t, 1)),
            ("0-7,16-23".into(), "8-15,24-31".into())
        );
        assert_eq!(bytes(&t), [34_330_173_440, 34_359_738_368]);
        assert_eq!(rows(&t), [[10, 20], [20, 10]]);
        assert_eq!(t.base_page_size(), Some(4 * KIB));
        assert_eq!(pool_sizes(&t), [2 * MIB]);
    }

    #[test]
    fn xml_memorysidecaches() {
        let Some(t) = xml("memorysidecaches.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0, 1, 2, 3]);
        assert!(memonly(&t).is_empty());
        assert_eq!(t.node(2).unwrap().cpus().first(), Some(2));
        assert_eq!(t.node(3).unwrap().cpus().len(), 20);
        assert_eq!(
            bytes(&t),
            [
                397_816_131_584,
                399_527_780_352,
                399_527_772_160,
                399_526_719_488
            ]
        );
        assert_eq!(
            rows(&t),
            [
                [10, 21, 11, 21],
                [21, 10, 21, 11],
                [11, 21, 10, 21],
                [21, 11, 21, 10]
            ]
        );
        assert_eq!(pool_sizes(&t), [2 * MIB, GIB]);
    }

    #[test]
    fn xml_fake_knl_hybrid() {
        let Some(t) = xml("64intel64-fakeKNL-SNC4-hybrid.xml") else {
            return;
        };
        assert_eq!(ids(&t), (0..8).collect::<Vec<_>>());
        assert_eq!(memonly(&t), [4, 5, 6, 7]);
        for (dram, mcdram) in [(0, 7), (1, 4), (2, 5), (3, 6)] {
            let d = t.node(dram).unwrap();
            let m = t.node(mcdram).unwrap();
            assert_eq!(
                m.local_cpus(),
                d.cpus(),
                "MCDRAM {mcdram} pairs with {dram}"
            );
            assert_eq!((d.kind(), m.kind()), (MemoryKind::Dram, MemoryKind::Hbm));
            assert_eq!(m.classification().cue, KindCue::HwlocSubtype);
            assert_eq!((d.tier(), m.tier()), (Some(1), Some(0)));
            assert_eq!(d.memory_total(), Some(GIB));
            assert_eq!(m.memory_total(), Some(2 * GIB));
        }
        assert!(!t.distances().is_known());
        assert_eq!(t.memory_tiers().len(), 2);
    }

    #[test]
    fn xml_cxl_qemu() {
        let Some(t) = xml("cxlmem+dax.v2.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0], "CXL memory is not onlined as a NUMA node");
        assert_eq!(cpus(&t, 0), "0-3");
        assert_eq!(bytes(&t), [3_061_719_040]);
        assert!(!t.distances().is_known());
        assert_eq!(t.base_page_size(), Some(4 * KIB));
        assert_eq!(pool_sizes(&t), [2 * MIB]);
    }

    #[test]
    fn xml_epyc_corona() {
        let Some(t) = xml("epyc-corona.xml") else {
            return;
        };
        assert_eq!(ids(&t), (0..8).collect::<Vec<_>>());
        assert_eq!(cpus(&t, 0), "0-5,48-53");
        assert_eq!(cpus(&t, 7), "42-47,90-95");
        let b = bytes(&t);
        assert_eq!(b[0], 34_243_170_304);
        assert!(b[1..].iter().all(|&x| x == 34_359_214_080));
        for a in 0..8u32 {
            for c in 0..8u32 {
                let expect = if a == c {
                    10
                } else if a / 4 == c / 4 {
                    16
                } else {
                    32
                };
                assert_eq!(t.distance(a, c), Some(expect));
            }
        }
    }

    #[test]
    fn xml_tioga() {
        let Some(t) = xml("eas-tioga.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0, 1, 2, 3]);
        assert_eq!(cpus(&t, 3), "48-63,112-127");
        assert_eq!(
            bytes(&t),
            [
                134_731_067_392,
                135_237_062_656,
                135_282_954_240,
                135_265_234_944
            ]
        );
        assert_eq!(rows(&t)[2], [12, 12, 10, 12]);
    }

    #[test]
    fn xml_knl_snc4_flat_v1() {
        let Some(t) = xml("knl-snc4-flat-hwloc1.xml") else {
            return;
        };
        assert_eq!(ids(&t), (0..8).collect::<Vec<_>>());
        assert_eq!(memonly(&t), [4, 5, 6, 7]);
        assert_eq!(cpus(&t, 0), "0-17,68-85,136-153,204-221");
        assert_eq!(cpus(&t, 3), "52-67,120-135,188-203,256-271");
        assert_eq!(
            bytes(&t)[..4],
            [
                25_668_947_968,
                25_769_803_776,
                25_769_803_776,
                25_769_803_776
            ]
        );
        for m in 4..8 {
            let node = t.node(m).unwrap();
            assert_eq!(node.memory_total(), Some(4 * GIB));
            assert_eq!(node.kind(), MemoryKind::Hbm);
            // Cluster pairs 0+4, 1+5, 2+6, 3+7.
            assert_eq!(node.local_cpus(), t.node(m - 4).unwrap().cpus());
        }
        assert!(!t.distances().is_known());
        assert_eq!(pool_sizes(&t), [2 * MIB, GIB]);
    }

    #[test]
    fn xml_knl_quad_flat_v1() {
        let Some(t) = xml("knl-quad-flat-hwloc1.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0, 1]);
        assert_eq!(memonly(&t), [1]);
        assert_eq!(cpus(&t, 0), "0-271");
        assert_eq!(bytes(&t), [102_978_359_296, 17_179_869_184]);
        assert_eq!(t.node(1).unwrap().kind(), MemoryKind::Hbm);
    }

    #[test]
    fn xml_lassen_v1_gpu_nodes() {
        let Some(t) = xml("coral-lassen-hwloc1.xml") else {
            return;
        };
        assert_eq!(ids(&t), [0, 8, 252, 253, 254, 255]);
        assert_eq!(memonly(&t), [252, 253, 254, 255]);
        assert_eq!((cpus(&t, 0), cpus(&t, 8)), ("8-87".into(), "96-175".into()));
        let b = bytes(&t);
        assert_eq!(b[..2], [137_100_066_816, 137_166_913_536]);
        assert!(b[2..].iter().all(|&x| x == 16_911_433_728));
        assert_eq!(t.distance(0, 0), Some(10));
        assert_eq!(t.distance(0, 8), Some(40));
        for gpu in 252..=255 {
            assert_eq!(t.distance(0, gpu), Some(80));
            assert_eq!(t.distance(gpu, 8), Some(80));
            // hwloc 1.x had no subtype: no documented cue, so Unknown.
            assert_eq!(t.node(gpu).unwrap().kind(), MemoryKind::Unknown);
        }
        assert_eq!(t.distance(252, 255), Some(80));
        assert_eq!(t.base_page_size(), Some(64 * KIB));
        assert_eq!(pool_sizes(&t), [2 * MIB, GIB]);
    }
}
