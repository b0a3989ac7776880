//! Real programs under `LD_PRELOAD=libumrf_preload.so` give the same output as without it:
//! Python with an allocation-heavy workload, git making a commit, sort on a large file, gcc
//! compiling a file, multithreaded C programs (the allocator workloads of `benches/c`, fork
//! while threads allocate), a C program checking the malloc family's POSIX contract, and one
//! whose double and interior frees must be refused.
//! A tool that is missing is reported with a SKIPPED line (CI installs them all).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "../../umrf-c/tests/support/cdylib.rs"]
mod cdylib;

/// `target/<profile>/libumrf_preload.so`, up to date.
fn library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| cdylib::build_c_libraries("umrf-preload").join("libumrf_preload.so"))
        .clone()
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("preload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIPPED: `{tool}` is not installed (Debian: apt-get install {tool}); its preload run is not checked"
        );
    }
    found
}

/// Runs `command` to completion within two minutes (a hang fails the test instead of
/// stalling it). The output is read while the program runs, so a full pipe never blocks it.
fn finish(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{command:?} did not finish in 120 s (a deadlock under the preload library?)");
        }
    }
}

/// Runs `make()` without and with the preload library (and `UMRF_STATS=1`), and checks both
/// succeed with the same standard output. Returns the preloaded run's standard error.
fn same_output(what: &str, make: impl Fn() -> Command) -> String {
    let plain = finish(make());
    assert!(
        plain.status.success(),
        "{what} fails even without umrf: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let mut preloaded = make();
    preloaded
        .env("LD_PRELOAD", library())
        .env("UMRF_STATS", "1");
    let under = finish(preloaded);
    let stderr = String::from_utf8_lossy(&under.stderr).into_owned();
    assert!(
        under.status.success(),
        "{what} fails under umrf ({:?}): {stderr}",
        under.status
    );
    assert!(
        plain.stdout == under.stdout,
        "{what}: output differs under umrf:\n--- without\n{}\n--- with\n{}",
        String::from_utf8_lossy(&plain.stdout),
        String::from_utf8_lossy(&under.stdout)
    );
    assert!(
        stderr.contains("umrf: malloc statistics"),
        "{what}: UMRF_STATS=1 printed nothing: {stderr}"
    );
    stderr
}

/// The number in `umrf:   pools: N cores, M allocations served`.
fn served(stats: &str) -> u64 {
    stats
        .split(" allocations served")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn compile(source: &Path, dir: &Path) -> PathBuf {
    let exe = dir.join(source.file_stem().unwrap());
    let out = Command::new("cc")
        .args(["-O2", "-pthread", "-Wall", "-o"])
        .arg(&exe)
        .arg(source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cc {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn here(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn python_workload() {
    if !have("python3") {
        return;
    }
    let script = "import collections, json\n\
        d = {str(i): [i] * (i % 50) for i in range(200000)}\n\
        c = collections.Counter(len(v) for v in d.values())\n\
        s = json.dumps(sorted(c.items()))\n\
        b = bytearray()\n\
        for i in range(20000): b += bytes(i % 300)\n\
        print(len(d), s[:80], len(b), sum(map(len, (x * 3 for x in d))))";
    let stats = same_output("python3", || {
        let mut c = Command::new("python3");
        c.args(["-c", script]);
        c
    });
    assert!(
        served(&stats) > 1000,
        "python's small objects come from the pools: {stats}"
    );
}

#[test]
fn git_commit_and_log() {
    if !have("git") {
        return;
    }
    let dir = tmp("git");
    std::fs::write(dir.join("a.txt"), "umrf\n".repeat(1000)).unwrap();
    let script = "git init -q -b main . && git add a.txt && git commit -q -m first && \
        echo more >> a.txt && git commit -q -am second && git log --format='%H %s' && \
        git diff HEAD~1 --stat && git fsck --no-progress && echo fsck clean";
    let make = || {
        let _ = std::fs::remove_dir_all(dir.join(".git"));
        std::fs::write(dir.join("a.txt"), "umrf\n".repeat(1000)).unwrap();
        let mut c = Command::new("sh");
        c.args(["-c", script]).current_dir(&dir);
        for (k, v) in [
            ("GIT_AUTHOR_NAME", "u"),
            ("GIT_AUTHOR_EMAIL", "u@example.org"),
            ("GIT_COMMITTER_NAME", "u"),
            ("GIT_COMMITTER_EMAIL", "u@example.org"),
            ("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z"),
            ("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"),
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("HOME", dir.to_str().unwrap()),
            // git never looks for a repository above the test's folder (the worktree).
            (
                "GIT_CEILING_DIRECTORIES",
                dir.parent().unwrap().to_str().unwrap(),
            ),
        ] {
            c.env(k, v);
        }
        c
    };
    same_output("git", make);
}

#[test]
fn sort_a_large_file() {
    if !have("sort") {
        return;
    }
    let dir = tmp("sort");
    let mut text = String::new();
    let mut x: u64 = 0x9e37_79b9;
    for i in 0..300_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!("{:016x} line {i}\n", x % 1_000_000_007));
    }
    let file = dir.join("big.txt");
    std::fs::write(&file, text).unwrap();
    same_output("sort", || {
        let mut c = Command::new("sort");
        c.arg(&file).env("LC_ALL", "C");
        c
    });
}

#[test]
fn gcc_compiles_a_file() {
    if !have("gcc") {
        return;
    }
    let source = here("../benches/c/larson.c");
    same_output("gcc", || {
        let mut c = Command::new("gcc");
        c.args(["-O2", "-S", "-o", "-", "-I"])
            .arg(here("../benches/c"))
            .arg(&source);
        c
    });
}

#[test]
fn multithreaded_c_programs() {
    if !have("cc") {
        return;
    }
    let dir = tmp("threads");
    for (name, args) in [
        ("xmalloc-test", &["4", "2000"][..]),
        ("larson", &["4", "4", "2000", "20000"]),
        ("mstress", &["4", "50", "4"]),
    ] {
        let exe = compile(&here(&format!("../benches/c/{name}.c")), &dir);
        let stats = same_output(name, || {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        });
        assert!(
            served(&stats) > 10_000,
            "{name}: blocks come from the pools: {stats}"
        );
    }
    let fork = compile(&here("tests/c/fork_threads.c"), &dir);
    same_output("fork while threads allocate", || Command::new(&fork));
}

#[test]
fn cpp_containers_on_threads() {
    if !have("c++") {
        return;
    }
    let dir = tmp("cpp");
    let exe = dir.join("containers");
    let out = Command::new("c++")
        .args(["-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(here("tests/c/containers.cpp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "c++: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = same_output("C++ containers", || Command::new(&exe));
    assert!(
        served(&stats) > 10_000,
        "operator new reaches the pools: {stats}"
    );
}

#[test]
fn posix_contract_and_bad_input() {
    if !have("cc") {
        return;
    }
    let dir = tmp("posix");
    let exe = compile(&here("tests/c/posix.c"), &dir);
    let stats = same_output("posix.c", || Command::new(&exe));
    assert!(
        stats.contains("size overflows: 2"),
        "calloc and reallocarray overflows are counted: {stats}"
    );
    assert!(
        stats.contains("bad alignments: 2") || stats.contains("bad alignments: 3"),
        "{stats}"
    );
}

#[test]
fn double_and_interior_frees_are_refused_and_counted() {
    if !have("cc") {
        return;
    }
    let dir = tmp("bad-frees");
    let exe = compile(&here("tests/c/bad_frees.c"), &dir);
    // Only under the preload library: the C library aborts on these frees.
    let out = finish({
        let mut c = Command::new(&exe);
        c.env("LD_PRELOAD", library()).env("UMRF_STATS", "1");
        c
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "refused");
    // One local double free, two interior pointers (free and realloc), two frees of a block
    // already freed remotely (one on the freeing thread, one at home).
    assert!(
        stderr.contains("refused frees (interior or double): 5"),
        "{stderr}"
    );
}

#[test]
fn umrf_run_serves_metrics_while_the_program_runs() {
    if !have("python3") {
        return;
    }
    // The program fetches its own metrics: the server lives inside it.
    let script = "import os, urllib.request\n\
        addr = os.environ['UMRF_METRICS_ADDR']\n\
        body = urllib.request.urlopen('http://' + addr + '/metrics', timeout=10).read().decode()\n\
        print('family=\"umrf-malloc\",class_bytes=\"64\"' in body)";
    let out = finish({
        let mut c = Command::new("python3");
        c.args(["-c", script])
            .env("LD_PRELOAD", library())
            .env("UMRF_METRICS_ADDR", "127.0.0.1:39171");
        c
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "True",
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
