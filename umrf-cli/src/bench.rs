//! `umrf bench`: the allocator workloads of `benches/c/` (re-implementations of mimalloc-bench's
//! xmalloc-test, larson, cache-scratch, mstress, rptest and glibc-simple), each run under every
//! allocator found, in one run, reporting elapsed time and peak resident memory of each child.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The helpers every workload includes.
const WORKLOAD_H: &str = include_str!("../../benches/c/workload.h");

/// One workload: its name, its C source, and its arguments for a quick and a full run.
pub struct Workload {
    /// The program's name (as in mimalloc-bench).
    pub name: &'static str,
    source: &'static str,
    quick: &'static [&'static str],
    full: &'static [&'static str],
}

/// The workloads, in mimalloc-bench's order.
pub const WORKLOADS: [Workload; 6] = [
    Workload {
        name: "xmalloc-test",
        source: include_str!("../../benches/c/xmalloc-test.c"),
        quick: &["4", "2000"],
        full: &["4", "20000"],
    },
    Workload {
        name: "larson",
        source: include_str!("../../benches/c/larson.c"),
        quick: &["4", "4", "2000", "20000"],
        full: &["4", "8", "5000", "200000"],
    },
    Workload {
        name: "cache-scratch",
        source: include_str!("../../benches/c/cache-scratch.c"),
        quick: &["4", "200", "8", "5000"],
        full: &["4", "1000", "8", "20000"],
    },
    Workload {
        name: "mstress",
        source: include_str!("../../benches/c/mstress.c"),
        quick: &["4", "50", "4"],
        full: &["4", "500", "20"],
    },
    Workload {
        name: "rptest",
        source: include_str!("../../benches/c/rptest.c"),
        quick: &["4", "100", "500"],
        full: &["4", "400", "1000"],
    },
    Workload {
        name: "glibc-simple",
        source: include_str!("../../benches/c/glibc-simple.c"),
        quick: &["30"],
        full: &["300"],
    },
];

/// An allocator to compare: glibc's (nothing preloaded) or a library to preload.
#[derive(Clone, Debug)]
pub struct Allocator {
    /// Its name in the table.
    pub name: String,
    /// The library to preload; `None` for the system allocator.
    pub preload: Option<PathBuf>,
}

/// The peers this machine has: glibc always, then Debian's `libjemalloc2`, `libmimalloc2.0`
/// and `libtcmalloc-minimal4` where installed, then umrf if its preload library is given.
pub fn allocators(umrf: Option<PathBuf>) -> (Vec<Allocator>, Vec<String>) {
    const PEERS: [(&str, &str, &str); 3] = [
        ("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
        ("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
        (
            "tcmalloc",
            "libtcmalloc_minimal.so.4",
            "libtcmalloc-minimal4",
        ),
    ];
    const LIB_DIRS: [&str; 3] = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ];
    let mut found = vec![Allocator {
        name: "glibc".to_owned(),
        preload: None,
    }];
    let mut missing = Vec::new();
    for (name, file, package) in PEERS {
        match LIB_DIRS
            .iter()
            .map(|d| Path::new(d).join(file))
            .find(|p| p.is_file())
        {
            Some(path) => found.push(Allocator {
                name: name.to_owned(),
                preload: Some(path),
            }),
            None => missing.push(format!(
                "{name}: {file} not found (Debian: apt-get install {package})"
            )),
        }
    }
    if let Some(path) = umrf {
        found.push(Allocator {
            name: "umrf".to_owned(),
            preload: Some(path),
        });
    }
    (found, missing)
}

/// Compiles every workload with `cc -O2 -pthread` into `dir`.
///
/// # Errors
/// `cc` is missing or a workload does not compile (its diagnostics are included).
pub fn build(dir: &Path) -> Result<Vec<(&'static Workload, PathBuf)>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the build directory {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("cannot write {} in {}: {e}", name, dir.display()))
    };
    write("workload.h", WORKLOAD_H)?;
    let mut built = Vec::new();
    for workload in &WORKLOADS {
        let source = format!("{}.c", workload.name);
        write(&source, workload.source)?;
        let exe = dir.join(workload.name);
        let output = Command::new("cc")
            .args(["-O2", "-pthread", "-o"])
            .arg(&exe)
            .arg(dir.join(&source))
            .output()
            .map_err(|e| {
                format!(
                    "cannot run the C compiler `cc`: {e}; install one (Debian: apt-get install gcc)"
                )
            })?;
        if !output.status.success() {
            return Err(format!(
                "{source} does not compile: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        built.push((workload, exe));
    }
    Ok(built)
}

/// One child run: elapsed time, peak resident set, and its result line.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
    /// The child's peak resident set size in bytes (`ru_maxrss` from `wait4`).
    pub peak_rss: u64,
    /// What the workload printed (its checksum line).
    pub output: String,
}

/// Runs `exe args` with `preload` in `LD_PRELOAD` and measures it.
///
/// # Errors
/// The program cannot start, or exits unsuccessfully (a corrupt block, a crash).
pub fn measure(exe: &Path, args: &[&str], preload: Option<&Path>) -> Result<Measurement, String> {
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.env_remove("LD_PRELOAD");
    if let Some(lib) = preload {
        command.env("LD_PRELOAD", lib);
    }
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    // Read the pipes before reaping: a child blocked on a full pipe would never exit.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    let (status, usage) = reap(child.id())?;
    let elapsed = start.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!(
            "{} {} failed ({}): {}{}",
            exe.display(),
            args.join(" "),
            describe_status(status),
            stdout.trim(),
            stderr.trim()
        ));
    }
    Ok(Measurement {
        elapsed,
        // Linux reports ru_maxrss in KiB.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        output: stdout.trim().to_owned(),
    })
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// Waits for the child `pid` with `wait4`, which also returns that child's own resource usage
/// (std's `Child::wait` does not).
fn reap(pid: u32) -> Result<(libc::c_int, libc::rusage), String> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("child id {pid} out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct of integers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child (spawned above, never waited by std, whose
        // `Child` drop does not reap); `status` and `usage` are live, writable locals of the
        // types wait4 writes.
        let rc = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if rc == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}) failed: {err}"));
        }
    }
}

/// The results of one bench run: for each workload, each allocator's best measurement.
pub struct Table {
    /// Allocator names, in column order.
    pub allocators: Vec<String>,
    /// `(workload, one result per allocator)`.
    pub rows: Vec<(String, Vec<Result<Measurement, String>>)>,
}

impl Table {
    /// The readable table: time (ratio to the fastest) and peak RSS per allocator.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<14}", "workload");
        for name in &self.allocators {
            let _ = write!(out, " | {name:>24}");
        }
        out.push('\n');
        for (workload, results) in &self.rows {
            let best = best_time(results);
            let _ = write!(out, "{workload:<14}");
            for result in results {
                let cell = match result {
                    Ok(m) => format!(
                        "{:.3}s x{:.2} {:>6}",
                        m.elapsed.as_secs_f64(),
                        ratio(m.elapsed, best),
                        crate::topology::bytes(m.peak_rss)
                    ),
                    Err(_) => "failed".to_owned(),
                };
                let _ = write!(out, " | {cell:>24}");
            }
            out.push('\n');
        }
        for (workload, results) in &self.rows {
            for (name, result) in self.allocators.iter().zip(results) {
                if let Err(e) = result {
                    let _ = writeln!(out, "{workload} under {name}: {e}");
                }
            }
        }
        out
    }

    /// The same as JSON: seconds, bytes and ratio per cell, or the error.
    pub fn render_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|(workload, results)| {
                let best = best_time(results);
                let cells: Vec<Value> = self
                    .allocators
                    .iter()
                    .zip(results)
                    .map(|(name, r)| match r {
                        Ok(m) => json!({
                            "allocator": name,
                            "seconds": m.elapsed.as_secs_f64(),
                            "ratio_to_fastest": ratio(m.elapsed, best),
                            "peak_rss_bytes": m.peak_rss,
                        }),
                        Err(e) => json!({ "allocator": name, "error": e }),
                    })
                    .collect();
                json!({ "workload": workload, "results": cells })
            })
            .collect();
        json!({ "allocators": self.allocators, "workloads": rows })
    }
}

fn best_time(results: &[Result<Measurement, String>]) -> Option<Duration> {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|m| m.elapsed)
        .min()
}

fn ratio(time: Duration, best: Option<Duration>) -> f64 {
    best.filter(|b| !b.is_zero())
        .map_or(1.0, |b| time.as_secs_f64() / b.as_secs_f64())
}

/// Runs every workload under every allocator, `repeats` times each (keeping the fastest run),
/// interleaving allocators so drift in the machine's load spreads over all of them. Reports
/// progress on standard error. A run whose result line differs from glibc's is an error.
pub fn run_all(
    built: &[(&'static Workload, PathBuf)],
    allocators: &[Allocator],
    full: bool,
    repeats: usize,
) -> Table {
    let total = built.len() * allocators.len() * repeats;
    let mut done = 0;
    let mut rows = Vec::new();
    for (workload, exe) in built {
        let args = if full { workload.full } else { workload.quick };
        let mut results: Vec<Result<Measurement, String>> =
            vec![Err("not run".to_owned()); allocators.len()];
        for _ in 0..repeats {
            for (column, allocator) in allocators.iter().enumerate() {
                done += 1;
                eprint!(
                    "[{done}/{total}] {} under {} ... ",
                    workload.name, allocator.name
                );
                let result = measure(exe, args, allocator.preload.as_deref());
                match &result {
                    Ok(m) => eprintln!("{:.3} s", m.elapsed.as_secs_f64()),
                    Err(e) => eprintln!("failed: {e}"),
                }
                results[column] = match (results[column].clone(), result) {
                    (Ok(old), Ok(new)) if old.elapsed <= new.elapsed => Ok(old),
                    (Ok(old), Err(_)) => Ok(old),
                    (_, new) => new,
                };
            }
        }
        // Every allocator must compute what the system allocator computed.
        if let Some(Ok(reference)) = results.first().cloned() {
            for (column, result) in results.iter_mut().enumerate().skip(1) {
                if let Ok(m) = result
                    && m.output != reference.output
                {
                    *result = Err(format!(
                        "wrong result under {}: `{}`, glibc gave `{}`",
                        allocators[column].name, m.output, reference.output
                    ));
                }
            }
        }
        rows.push((workload.name.to_owned(), results));
    }
    Table {
        allocators: allocators.iter().map(|a| a.name.clone()).collect(),
        rows,
    }
}
