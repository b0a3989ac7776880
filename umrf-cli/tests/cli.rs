//! The `umrf` binary, run as a user runs it: on the real machines' sysfs tarballs in
//! `../shared/topologies` (relative to the workspace root), on ownership logs written by a real
//! pool, and with the allocator workloads. Where data or tools are missing a test prints a
//! SKIPPED line with the reason and checks nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use umrf::events::{EventSink, JsonLines, LogConfig};
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, mailbox};

fn umrf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_umrf"))
        .args(args)
        .output()
        .expect("the umrf binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{name}", std::process::id()))
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Extracts the sysfs tarballs this file uses, once; `None` with a SKIPPED line when the data
/// or `tar`/`bzip2` is missing.
fn extracted(name: &str) -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/topologies");
        if !data.is_dir() {
            eprintln!(
                "SKIPPED: {} not found; real-machine topology runs not checked",
                data.display()
            );
            return None;
        }
        if !runs("tar") || !runs("bzip2") {
            eprintln!("SKIPPED: tar or bzip2 missing (Debian: apt-get install tar bzip2)");
            return None;
        }
        let out = tmp("topologies");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        for tarball in [
            "memorysidecaches",
            "nvidiagpunumanodes",
            "fakeheteromemtiers",
        ] {
            let status = Command::new("tar")
                .arg("xjf")
                .arg(data.join(format!("{tarball}.tar.bz2")))
                .arg("-C")
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "tar xjf {tarball}");
        }
        Some(out)
    });
    dir.as_ref().map(|d| d.join(name))
}

#[test]
fn topology_text_of_this_machine() {
    let out = umrf(&["topology"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("source: sysfs at /"), "{stdout}");
    for section in [
        "online CPUs:",
        "nodes:",
        "node 0:",
        "distances",
        "memory tiers",
        "huge pages",
    ] {
        assert!(stdout.contains(section), "missing {section}: {stdout}");
    }
}

#[test]
fn topology_of_real_machines_text_and_json() {
    let Some(root) = extracted("memorysidecaches") else {
        return;
    };
    let root = root.to_str().unwrap();
    let out = umrf(&["topology", "--sysfs-root", root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("nodes: 4"), "{stdout}");
    assert!(
        stdout.contains("     0  10  21  11  21"),
        "distance row of node 0: {stdout}"
    );
    assert!(
        stdout.contains("2 MiB: 0 pages") && stdout.contains("1 GiB: 0 pages"),
        "{stdout}"
    );

    let out = umrf(&["topology", "--json", "--sysfs-root", root]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[1]["memory_total"], 390_163_848u64 * 1024);
    assert_eq!(nodes[0]["kind"], "DRAM");
    assert_eq!(
        json["distances"]["rows"][1],
        serde_json::json!([21, 10, 21, 11])
    );
    let sizes: Vec<u64> = json["huge_pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["page_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [2 << 20, 1 << 30]);

    // GPU memory onlined as NUMA nodes: memory-only nodes of kind GPU.
    let gpu = extracted("nvidiagpunumanodes").unwrap();
    let out = umrf(&["topology", "--json", "--sysfs-root", gpu.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gpu_nodes: Vec<u64> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "GPU")
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    assert_eq!(gpu_nodes, [250, 251, 252, 253, 254, 255]);
    assert!(json["nodes"][2]["memory_only"].as_bool().unwrap());

    let tiers = extracted("fakeheteromemtiers").unwrap();
    let out = umrf(&["topology", "--sysfs-root", tiers.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("nodes: 7") && stdout.contains("node 9: memory only"),
        "{stdout}"
    );
}

#[test]
fn topology_of_a_missing_root_is_an_error_with_a_remedy() {
    let out = umrf(&["topology", "--sysfs-root", "/nonexistent/umrf-root"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/umrf-root") && stderr.contains("--sysfs-root"),
        "{stderr}"
    );
}

/// A log written by a real pool: one producer, one consumer, remote frees.
fn write_log(path: &Path) {
    let sink = Arc::new(JsonLines::create(path).unwrap());
    let pool = Pool::<CpuLocal>::builder()
        .name("cli-log")
        .block_size(64)
        .blocks_per_slot(32)
        .slots(2)
        .log_ownership(LogConfig::new().sink(sink.clone()))
        .build()
        .unwrap();
    let (tx, rx) = mailbox::<Capability<u8, CpuLocal>>(8);
    let worker_pool = pool.clone();
    let worker = std::thread::spawn(move || {
        let lease = worker_pool.attach_slot(1).unwrap();
        for cap in rx.iter() {
            drop(cap.accept(&lease).unwrap());
        }
    });
    let lease = pool.attach_slot(0).unwrap();
    for _ in 0..20 {
        tx.send(lease.alloc::<u8>(16).unwrap().into_capability())
            .unwrap();
        drop(lease.alloc::<u8>(8).unwrap());
    }
    drop(tx);
    worker.join().unwrap();
    sink.flush().unwrap();
}

#[test]
fn check_log_accepts_a_real_log_and_reports_the_first_violation() {
    let path = tmp("good.jsonl");
    write_log(&path);
    let out = umrf(&["check-log", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("valid:"),
        "{}",
        text(&out.stdout)
    );

    // Replaying one allocation twice: the second is a double allocation of a block.
    let log = std::fs::read_to_string(&path).unwrap();
    let first_alloc = log
        .lines()
        .find(|l| l.contains("\"allocate\""))
        .expect("the log has an allocation");
    let bad = tmp("bad.jsonl");
    std::fs::write(&bad, format!("{log}{first_alloc}\n")).unwrap();
    let out = umrf(&["check-log", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("violation(s) of I1") && stdout.contains("first: event"),
        "{stdout}"
    );

    let garbage = tmp("garbage.jsonl");
    std::fs::write(&garbage, "not json\n").unwrap();
    let out = umrf(&["check-log", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not an ownership log"),
        "{}",
        text(&out.stderr)
    );
    for p in [path, bad, garbage] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn run_sets_the_preload_and_metrics_and_passes_the_exit_status_through() {
    // Any existing shared object stands in for the preload library: this checks the plumbing.
    let stand_in = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file());
    let Some(stand_in) = stand_in else {
        eprintln!("SKIPPED: no libm.so.6 to stand in for the preload library");
        return;
    };
    let out = umrf(&[
        "run",
        "--preload",
        stand_in,
        "--metrics",
        "127.0.0.1:0",
        "--",
        "sh",
        "-c",
        "echo \"$LD_PRELOAD|$UMRF_METRICS_ADDR\"; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("{stand_in}|127.0.0.1:0"));
}

#[test]
fn run_without_the_preload_library_says_how_to_build_it() {
    let out = umrf(&[
        "run",
        "--preload",
        "/nonexistent/libumrf_preload.so",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cargo build --release -p umrf-preload"),
        "{stderr}"
    );
    let out = umrf(&["run", "--preload", "/bin/sh", "--", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot run /nonexistent/program"));
}

#[test]
fn bench_quick_runs_every_workload_under_every_peer_found() {
    if !runs("cc") {
        eprintln!("SKIPPED: no C compiler `cc` (Debian: apt-get install gcc); bench not run");
        return;
    }
    let dir = tmp("bench");
    let out = umrf(&["bench", "--json", "--build-dir", dir.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[1/"), "progress is reported: {stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let workloads: Vec<&str> = json["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        workloads,
        [
            "xmalloc-test",
            "larson",
            "cache-scratch",
            "mstress",
            "rptest",
            "glibc-simple"
        ]
    );
    let allocators = json["allocators"].as_array().unwrap();
    assert_eq!(allocators[0], "glibc");
    for row in json["workloads"].as_array().unwrap() {
        let results = row["results"].as_array().unwrap();
        assert_eq!(results.len(), allocators.len());
        assert!(
            results.iter().any(|r| r["ratio_to_fastest"] == 1.0),
            "{row}"
        );
        assert!(
            results
                .iter()
                .all(|r| r["peak_rss_bytes"].as_u64().unwrap() > 0),
            "{row}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[path = "../../umrf-c/tests/support/cdylib.rs"]
mod cdylib;

/// `target/<profile>/libumrf_preload.so`, up to date.
fn preload_library() -> PathBuf {
    cdylib::build_c_libraries("umrf-preload").join("libumrf_preload.so")
}

#[test]
fn run_with_the_real_preload_library() {
    let lib = preload_library();
    let script = "x=''; for i in $(seq 1 2000); do x=\"$x$i\"; done; echo ${#x}";
    let plain = Command::new("sh").args(["-c", script]).output().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_umrf"))
        .args([
            "run",
            "--preload",
            lib.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("UMRF_STATS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, plain.stdout, "same output under umrf");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("umrf: malloc statistics") && stderr.contains("allocations served"),
        "{stderr}"
    );
}
