//! The hwloc reader against small hwloc v2 XML files this test writes
//! itself: shapes the shared data lacks (Xeon Max flat HBM without subtype,
//! kept NVIDIA GPU nodes, interleaved memory at the root, CXL subtypes,
//! HBM-only nodes with CPUs). Runs with `--features hwloc`.
#![cfg(feature = "hwloc")]

use std::fmt::Write as _;
use std::path::PathBuf;

use umrf::topology::{KindCue, MemoryKind, Topology, TopologyError};

/// One NUMA node to write.
struct Numa {
    id: u32,
    gib: u64,
    subtype: Option<&'static str>,
    tier: Option<u32>,
}

fn numa(id: u32, gib: u64, subtype: Option<&'static str>, tier: Option<u32>) -> Numa {
    Numa {
        id,
        gib,
        subtype,
        tier,
    }
}

/// One package: its PUs and the NUMA nodes attached to it.
struct Package {
    pus: std::ops::Range<u32>,
    nodes: Vec<Numa>,
}

/// hwloc bitmap text: 32-bit words, most significant first.
fn bitmap(bits: impl IntoIterator<Item = u32>) -> String {
    let mut words = vec![0u32; 1];
    for bit in bits {
        let w = (bit / 32) as usize;
        if words.len() <= w {
            words.resize(w + 1, 0);
        }
        words[w] |= 1 << (bit % 32);
    }
    let text: Vec<String> = words.iter().rev().map(|w| format!("0x{w:08x}")).collect();
    text.join(",")
}

fn sets(cpus: &str, nodes: &str) -> String {
    format!(
        r#"cpuset="{cpus}" complete_cpuset="{cpus}" nodeset="{nodes}" complete_nodeset="{nodes}""#
    )
}

/// Writes a NUMA node object.
fn numa_xml(out: &mut String, n: &Numa, cpus: &str, gp: &mut u32) {
    *gp += 1;
    let subtype = n
        .subtype
        .map(|s| format!(r#" subtype="{s}""#))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        r#"<object type="NUMANode" os_index="{}" {} gp_index="{gp}"{subtype} local_memory="{}">"#,
        n.id,
        sets(cpus, &bitmap([n.id])),
        n.gib << 30
    );
    if let Some(t) = n.tier {
        let _ = writeln!(out, r#"<info name="MemoryTier" value="{t}"/>"#);
    }
    let _ = writeln!(
        out,
        r#"<page_type size="4096" count="{}"/>"#,
        (n.gib << 30) / 4096
    );
    let _ = writeln!(out, r#"<page_type size="2097152" count="0"/></object>"#);
}

/// An hwloc v2 XML machine with `packages`, NUMA nodes `root_nodes`
/// attached to the machine itself, and a NUMALatency matrix over all nodes
/// in increasing id order.
fn machine(packages: &[Package], root_nodes: &[Numa], latency: &[&[u64]]) -> String {
    let all_pus: Vec<u32> = packages.iter().flat_map(|p| p.pus.clone()).collect();
    let mut all_nodes: Vec<u32> = packages
        .iter()
        .flat_map(|p| p.nodes.iter().map(|n| n.id))
        .chain(root_nodes.iter().map(|n| n.id))
        .collect();
    all_nodes.sort_unstable();
    let machine_cpus = bitmap(all_pus.iter().copied());
    let mut gp = 1;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n\
         <topology version=\"2.0\">\n",
    );
    let _ = writeln!(
        out,
        r#"<object type="Machine" os_index="0" {} allowed_cpuset="{machine_cpus}" allowed_nodeset="{}" gp_index="1">"#,
        sets(&machine_cpus, &bitmap(all_nodes.iter().copied())),
        bitmap(all_nodes.iter().copied()),
    );
    for n in root_nodes {
        numa_xml(&mut out, n, &machine_cpus, &mut gp);
    }
    for (i, pkg) in packages.iter().enumerate() {
        let cpus = bitmap(pkg.pus.clone());
        let nodes = bitmap(pkg.nodes.iter().map(|n| n.id));
        gp += 1;
        let _ = writeln!(
            out,
            r#"<object type="Package" os_index="{i}" {} gp_index="{gp}">"#,
            sets(&cpus, &nodes)
        );
        for n in &pkg.nodes {
            numa_xml(&mut out, n, &cpus, &mut gp);
        }
        for pu in pkg.pus.clone() {
            gp += 1;
            let _ = writeln!(
                out,
                r#"<object type="PU" os_index="{pu}" {} gp_index="{gp}"/>"#,
                sets(&bitmap([pu]), &nodes)
            );
        }
        out.push_str("</object>\n");
    }
    out.push_str("</object>\n");
    if !latency.is_empty() {
        let n = all_nodes.len();
        let indexes: String = all_nodes.iter().map(|i| format!("{i} ")).collect();
        let _ = writeln!(
            out,
            r#"<distances2 type="NUMANode" nbobjs="{n}" kind="5" name="NUMALatency" indexing="os">"#
        );
        let _ = writeln!(
            out,
            r#"<indexes length="{}">{indexes}</indexes>"#,
            indexes.len()
        );
        for row in latency {
            let values: String = row.iter().map(|v| format!("{v} ")).collect();
            let _ = writeln!(
                out,
                r#"<u64values length="{}">{values}</u64values>"#,
                values.len()
            );
        }
        out.push_str("</distances2>\n");
    }
    out.push_str("</topology>\n");
    out
}

/// Writes `xml` to a temporary file and loads it.
fn load(tag: &str, xml: &str) -> Topology {
    let path: PathBuf =
        std::env::temp_dir().join(format!("umrf-hwloc-synth-{tag}-{}.xml", std::process::id()));
    std::fs::write(&path, xml).unwrap();
    let topo = Topology::from_hwloc_xml(&path);
    let _ = std::fs::remove_file(&path);
    topo.unwrap_or_else(|e| panic!("{tag}: {e}\n{xml}"))
}

fn memonly(topo: &Topology) -> Vec<u32> {
    topo.memory_only_nodes().map(|n| n.id()).collect()
}

/// Xeon Max 9462 flat mode (facts from ParaStation's dump): DDR nodes with
/// CPUs, CPU-less HBM nodes without subtype sharing each DDR node's parent.
#[test]
fn xeon_max_flat_hbm_without_subtype() {
    let xml = machine(
        &[
            Package {
                pus: 0..4,
                nodes: vec![numa(0, 126, None, None), numa(2, 16, None, None)],
            },
            Package {
                pus: 4..8,
                nodes: vec![numa(1, 126, None, None), numa(3, 16, None, None)],
            },
        ],
        &[],
        &[
            &[10, 21, 13, 23],
            &[21, 10, 23, 13],
            &[13, 23, 10, 23],
            &[23, 13, 23, 10],
        ],
    );
    let t = load("xeonmax", &xml);
    assert_eq!(memonly(&t), [2, 3]);
    assert_eq!(t.node(0).unwrap().cpus().to_string(), "0-3");
    assert_eq!(t.node(1).unwrap().cpus().to_string(), "4-7");
    let hbm = t.node(2).unwrap();
    assert_eq!(hbm.local_cpus().to_string(), "0-3");
    assert_eq!(hbm.memory_total(), Some(16 << 30));
    // No subtype: hwloc gives no cue, so the kind is not guessed.
    assert_eq!(hbm.kind(), MemoryKind::Unknown);
    assert_eq!(t.distance(0, 2), Some(13));
    assert_eq!(t.nearest_nodes(1), Some(vec![1, 3, 0, 2]));
    assert_eq!(t.base_page_size(), Some(4096));
    assert_eq!(t.hugepage_pool(2 << 20).map(|p| p.per_node.len()), Some(4));
}

/// POWER9 with GPU nodes kept (`GPUMemory`, MemoryTier 1) and an
/// interleaved-memory node attached to the machine root.
#[test]
fn gpu_memory_and_root_attached_node() {
    let xml = machine(
        &[
            Package {
                pus: 0..4,
                nodes: vec![
                    numa(0, 128, None, Some(0)),
                    numa(253, 16, Some("GPUMemory"), Some(1)),
                ],
            },
            Package {
                pus: 4..8,
                nodes: vec![numa(8, 128, None, Some(0))],
            },
        ],
        &[numa(16, 1, None, None)],
        &[
            &[10, 40, 14, 80],
            &[40, 10, 14, 80],
            &[14, 14, 10, 80],
            &[80, 80, 80, 10],
        ],
    );
    let t = load("gpu", &xml);
    assert_eq!(
        t.nodes().iter().map(|n| n.id()).collect::<Vec<_>>(),
        [0, 8, 16, 253]
    );
    assert_eq!(memonly(&t), [16, 253]);
    let gpu = t.node(253).unwrap().classification();
    assert_eq!(
        (gpu.kind, gpu.cue),
        (MemoryKind::Gpu, KindCue::HwlocSubtype)
    );
    assert_eq!(t.node(253).unwrap().tier(), Some(1));
    assert_eq!(t.node(16).unwrap().local_cpus().to_string(), "0-7");
    assert_eq!(t.node(16).unwrap().kind(), MemoryKind::Unknown);
    assert_eq!(t.distance(253, 0), Some(80));
    assert_eq!(t.distance(16, 8), Some(14));
    let tiers: Vec<(u32, Vec<u32>)> = t
        .memory_tiers()
        .iter()
        .map(|x| (x.id, x.nodes.clone()))
        .collect();
    assert_eq!(tiers, [(0, vec![0, 8]), (1, vec![253])]);
}

/// CXL subtypes never own CPUs; an HBM node alone with its CPUs (HBM-only
/// mode) does.
#[test]
fn cxl_subtype_and_hbm_only_package() {
    let xml = machine(
        &[
            Package {
                pus: 0..2,
                nodes: vec![
                    numa(0, 64, Some("DRAM"), None),
                    numa(2, 256, Some("CXL-DRAM"), None),
                ],
            },
            Package {
                pus: 2..4,
                nodes: vec![numa(1, 64, Some("HBM"), None)],
            },
        ],
        &[],
        &[],
    );
    let t = load("cxl", &xml);
    assert_eq!(memonly(&t), [2]);
    assert_eq!(t.node(2).unwrap().kind(), MemoryKind::Cxl);
    assert_eq!(t.node(0).unwrap().kind(), MemoryKind::Dram);
    let hbm = t.node(1).unwrap();
    assert_eq!(
        (hbm.kind(), hbm.cpus().to_string()),
        (MemoryKind::Hbm, "2-3".into())
    );
    assert!(!t.distances().is_known());
    assert_eq!(t.online_cpus().to_string(), "0-3");
}

#[test]
fn malformed_xml_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!("umrf-bad-{}.xml", std::process::id()));
    std::fs::write(&path, "<topology version=\"2.0\"><object type=").unwrap();
    let err = Topology::from_hwloc_xml(&path).unwrap_err().to_string();
    let _ = std::fs::remove_file(&path);
    assert!(err.contains("umrf-bad-") && err.contains("lstopo"), "{err}");
    let missing = Topology::from_hwloc_xml("/nonexistent/umrf.xml").unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/umrf.xml"));
    let dir = Topology::from_hwloc_xml(std::env::temp_dir()).unwrap_err();
    assert!(matches!(dir, TopologyError::Io { .. }), "{dir:?}");
    let nul = std::env::temp_dir().join(format!("umrf-nul-{}.xml", std::process::id()));
    std::fs::write(&nul, "<topology\0>").unwrap();
    let err = Topology::from_hwloc_xml(&nul).unwrap_err();
    let _ = std::fs::remove_file(&nul);
    assert!(matches!(err, TopologyError::Hwloc { .. }), "{err:?}");
}

/// A file exported inside a cgroup that allows only package 0 (PUs 0-3) and node 0: the
/// sysfs reader and `from_hwloc` keep disallowed CPUs and nodes, so the XML reader does too.
#[test]
fn disallowed_cpus_and_nodes_are_kept() {
    let packages = [
        Package {
            pus: 0..4,
            nodes: vec![numa(0, 8, None, None)],
        },
        Package {
            pus: 4..8,
            nodes: vec![numa(1, 8, None, None)],
        },
    ];
    let all = machine(&packages, &[], &[&[10, 21], &[21, 10]]);
    let whole = r#"allowed_cpuset="0x000000ff" allowed_nodeset="0x00000003""#;
    assert!(all.contains(whole), "{all}");
    let restricted = all.replace(
        whole,
        r#"allowed_cpuset="0x0000000f" allowed_nodeset="0x00000001""#,
    );
    for (tag, xml) in [("allowed-all", &all), ("allowed-half", &restricted)] {
        let topo = load(tag, xml);
        let ids: Vec<u32> = topo.nodes().iter().map(|n| n.id()).collect();
        assert_eq!(ids, [0, 1], "{tag}");
        assert_eq!(topo.online_cpus().to_string(), "0-7", "{tag}");
        assert_eq!(topo.node(1).unwrap().cpus().to_string(), "4-7", "{tag}");
        assert_eq!(topo.distance(0, 1), Some(21), "{tag}");
        let packages: Vec<u32> = topo.packages().iter().map(|p| p.id()).collect();
        assert_eq!(packages, [0, 1], "{tag}");
    }
}
