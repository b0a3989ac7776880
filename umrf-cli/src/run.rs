//! `umrf run [--metrics ADDR] -- CMD ARGS`: runs a program with `libumrf_preload.so` in
//! `LD_PRELOAD`, so its `malloc` family (and C++ `new`/`delete`) is served by umrf.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// The file name of the preload library.
pub const PRELOAD_FILE: &str = "libumrf_preload.so";

/// The environment variable the preload library reads for the address to serve its pool
/// metrics on (Prometheus text at `/metrics`).
pub const METRICS_ENV: &str = "UMRF_METRICS_ADDR";

/// Where the preload library is: `explicit` if given, else `$UMRF_PRELOAD`, else next to this
/// executable (a `cargo build` puts both in `target/<profile>/`), else `../lib/` from it (an
/// installed layout).
///
/// # Errors
/// No candidate exists; the message lists where it looked and how to build it.
pub fn find_preload(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = explicit {
        candidates.push(path.to_path_buf());
    } else if let Some(path) = std::env::var_os("UMRF_PRELOAD") {
        candidates.push(PathBuf::from(path));
    } else if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join(PRELOAD_FILE));
        candidates.push(dir.join("../lib").join(PRELOAD_FILE));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!(
                "the umrf preload library {PRELOAD_FILE} was not found (looked at: {}); build it \
                 with `cargo build --release -p umrf-preload` and pass --preload PATH or set \
                 UMRF_PRELOAD",
                if looked.is_empty() {
                    "nowhere: the executable's directory is unknown".to_owned()
                } else {
                    looked.join(", ")
                }
            )
        })
}

/// `LD_PRELOAD` with `library` first, keeping whatever the caller already preloads.
pub fn preload_value(library: &Path) -> OsString {
    let mut value = OsString::from(library.as_os_str());
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

/// Runs `program args` under the preload library and waits for it.
///
/// # Errors
/// The program cannot be started (the message names it and the OS error).
pub fn run(
    library: &Path,
    metrics: Option<&str>,
    program: &OsString,
    args: &[OsString],
) -> Result<ExitStatus, String> {
    let mut command = Command::new(program);
    command.args(args).env("LD_PRELOAD", preload_value(library));
    if let Some(addr) = metrics {
        command.env(METRICS_ENV, addr);
    }
    command.status().map_err(|e| {
        format!(
            "cannot run {}: {e}; check that the program exists and is executable",
            Path::new(program).display()
        )
    })
}

/// The exit code a shell would report for `status`: the code, or 128 + the signal number.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
