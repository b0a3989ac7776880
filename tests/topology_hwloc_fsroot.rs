//! `Topology::from_hwloc` pointed at a sysfs tarball by `HWLOC_FSROOT` (hwloc's own variable),
//! against the sysfs reader on the same tree: the IBM AC922 of `../shared/topologies`, whose
//! six V100s' memory is onlined as NUMA nodes 250-255 and which hwloc 2.x hides by default.
//!
//! The environment is read by hwloc at discovery, so each case runs this test binary again as a
//! child process with the variables set (setting them in this multi-threaded process would not
//! be sound). Runs with `--features hwloc`.
#![cfg(feature = "hwloc")]

mod common;

use std::path::PathBuf;
use std::process::Command;

use umrf::placement::{Request, Rule, decide};
use umrf::residency::Strategy;
use umrf::topology::{MemoryKind, Source, Topology};

/// Set in the child: the case to check.
const CASE: &str = "UMRF_TEST_HWLOC_FSROOT_CASE";
const KEEP: &str = "HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES";
const TEST: &str = "hwloc_and_sysfs_agree_on_the_ac922_tarball";

#[test]
fn hwloc_and_sysfs_agree_on_the_ac922_tarball() {
    match std::env::var(CASE) {
        Ok(case) => check_in_child(&case),
        Err(_) => {
            let Some(dir) = common::extracted() else {
                return;
            };
            for case in ["unset", "kept"] {
                let mut child = Command::new(std::env::current_exe().unwrap());
                child
                    .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
                    .env(CASE, case)
                    .env("HWLOC_FSROOT", dir.join("nvidiagpunumanodes"))
                    .env_remove(KEEP)
                    .env_remove("HWLOC_XMLFILE")
                    .env_remove("HWLOC_SYNTHETIC");
                if case == "kept" {
                    child.env(KEEP, "1");
                }
                let out = child.output().expect("the test binary runs again");
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.status.success(), "case {case}:\n{text}");
                assert!(
                    text.contains("1 passed"),
                    "case {case} did not run:\n{text}"
                );
            }
        }
    }
}

/// The checks, in a child whose environment points hwloc at the tarball.
fn check_in_child(case: &str) {
    let root = PathBuf::from(std::env::var_os("HWLOC_FSROOT").unwrap());
    let hw = Topology::from_hwloc().unwrap();
    let sys = Topology::from_sysfs(&root).unwrap();
    let ids = |t: &Topology| t.nodes().iter().map(|n| n.id()).collect::<Vec<_>>();
    assert_eq!(ids(&sys), [0, 8, 250, 251, 252, 253, 254, 255]);
    assert_eq!(ids(&hw), ids(&sys), "{case}: {:?}", hw.warnings());
    for node in sys.nodes() {
        let other = hw.node(node.id()).unwrap();
        assert_eq!(
            other.memory_total(),
            node.memory_total(),
            "node {}",
            node.id()
        );
        // hwloc lists the CPUs the dump has directories for; sysfs's node cpulist names all
        // 176 (the hwloc developers trimmed cpuN directories): compare the online ones.
        let online = node.cpus().intersection(sys.online_cpus());
        assert_eq!(other.cpus(), &online, "node {}", node.id());
        assert_eq!(other.kind(), node.kind(), "{case}: node {}", node.id());
    }
    assert_eq!(hw.node(250).unwrap().kind(), MemoryKind::Gpu);
    assert_eq!(hw.distances(), sys.distances(), "{case}");
    let packages = |t: &Topology| t.packages().iter().map(|p| p.id()).collect::<Vec<_>>();
    assert_eq!(packages(&hw), [0, 8]);
    assert_eq!(packages(&sys), [0, 8]);
    let restored = hw.warnings().iter().any(|w| w.contains("hid NVIDIA GPU"));
    assert_eq!(restored, case == "unset", "{case}: {:?}", hw.warnings());

    // Another machine: the calling thread's CPU is not one of its CPUs.
    assert!(
        matches!(hw.source(), Source::HwlocElsewhere { setting } if setting.starts_with("HWLOC_FSROOT=")),
        "{}",
        hw.source()
    );
    assert!(!hw.source().is_live());
    assert_eq!(hw.current_node(), None);
    for topo in [&hw, &sys] {
        let d = decide(&Request::new(4 << 30), topo).unwrap();
        assert_eq!(
            (d.strategy, d.rule),
            (Strategy::Numa { node: 0 }, Rule::MultiSocket),
            "{d}"
        );
        assert!(d.reason.contains("node 0"), "{d}");
        let d = decide(&Request::new(4 << 30).from_cpu(95), topo).unwrap();
        assert_eq!(d.strategy, Strategy::Numa { node: 8 }, "{d}");
    }
}
