//! What the library says: errors on standard error, and with `UMRF_STATS=1` a summary at exit.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::heap::{self, COUNTERS};

use crate::real;

/// Where the exit summary goes: a private duplicate of standard error taken at load, because
/// programs may close fd 2 in their own exit handlers (coreutils' `close_stdout` does), which
/// run before ours.
static SUMMARY_FD: AtomicI32 = AtomicI32::new(2);

/// Keeps a duplicate of standard error for the exit summary.
pub fn keep_stderr() {
    // SAFETY: F_DUPFD_CLOEXEC on fd 2 has no memory preconditions; failure returns -1.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    if fd >= 0 {
        SUMMARY_FD.store(fd, Ordering::Relaxed);
    }
}

/// Writes `line` and a newline to standard error with one `write(2)` (no stdio, which may be
/// closed or locked when this runs).
pub fn say(line: &str) {
    say_to(2, line);
}

fn say_to(fd: i32, line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: `rest` is a live byte slice; write reads at most `rest.len()` bytes of it.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        let Ok(n) = usize::try_from(n) else { return };
        if n == 0 {
            return;
        }
        rest = &rest[n..];
    }
}

/// The summary `UMRF_STATS=1` prints at exit.
pub fn summary() -> String {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::from("umrf: malloc statistics\n");
    let stats = heap::POOL.stats();
    match &stats.sized {
        Some(sized) => {
            let remote: u64 = sized.classes.iter().map(|c| c.remote_frees).sum();
            let _ = writeln!(
                out,
                "umrf:   pools: {} thread rows, {} allocations served, {} blocks in use at exit, {remote} frees sent home",
                sized.rows_claimed,
                sized.allocations(),
                sized.in_use()
            );
        }
        None => out.push_str("umrf:   pools: not built\n"),
    }
    let _ = writeln!(
        out,
        "umrf:   next allocator: {} larger than 1 MiB, {} aligned above 4 KiB, {} when the pools had no row or memory, {} during start-up, {} from inside umrf",
        get(&COUNTERS.large),
        get(&COUNTERS.aligned),
        stats.system_allocations,
        get(&COUNTERS.early),
        stats.internal_allocations
    );
    let _ = write!(
        out,
        "umrf:   frees of other allocators' pointers: {}; refused frees (interior or double): {}; size overflows: {}; bad alignments: {}; start-up arena: {} bytes",
        get(&COUNTERS.foreign_frees),
        get(&COUNTERS.invalid_frees),
        get(&COUNTERS.overflows),
        get(&COUNTERS.bad_alignments),
        real::bootstrap::used()
    );
    out
}

/// The `atexit` handler registered when `UMRF_STATS` is set.
pub extern "C" fn at_exit() {
    say_to(SUMMARY_FD.load(Ordering::Relaxed), &summary());
}
