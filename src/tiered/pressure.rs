//! Memory pressure: PSI, cgroup (v1 and v2) limits and usage, `MemAvailable`.
//!
//! A [`PressureMonitor`] reads, under a root directory (`/` on a live system, a directory of
//! fake files in tests, as the [`topology`](crate::topology) readers do):
//!
//! - `proc/pressure/memory`: the `some avg10` share of time tasks stalled on memory (PSI,
//!   kernel 4.20+, `Documentation/accounting/psi.rst`);
//! - `proc/meminfo`: `MemAvailable` (kernel 3.14+);
//! - `proc/self/cgroup`, then for cgroup v2 (`0::/path`) `sys/fs/cgroup/<path>/memory.max` and
//!   `memory.current`, for v1 (`N:memory:/path`) `sys/fs/cgroup/memory/<path>/`
//!   `memory.limit_in_bytes` and `memory.usage_in_bytes`.
//!
//! A file that does not exist is a reading left out (`None`), not an error: kernels without
//! PSI, machines without cgroups. A file that exists but cannot be parsed is an `Err`.
//! [`PressurePolicy::ram_limit`] turns a reading into the RAM limit a store should keep.

use std::io;
use std::path::{Path, PathBuf};

use super::error::TieredError;

/// What the memory files said at one moment (or a reading made by hand, to feed a
/// [`PressurePolicy`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryPressure {
    /// PSI `some avg10`: percent of the last 10 s in which some task stalled on memory.
    pub psi_some_avg10: Option<f64>,
    /// `MemAvailable`, in bytes.
    pub mem_available: Option<u64>,
    /// The cgroup's memory limit in bytes (`None`: no limit, or no cgroup memory controller).
    pub cgroup_limit: Option<u64>,
    /// The cgroup's memory usage in bytes.
    pub cgroup_usage: Option<u64>,
    /// The cgroup version the limit came from (1 or 2), 0 when none was found.
    pub cgroup_version: u8,
}

impl MemoryPressure {
    /// Bytes the cgroup may still grow by (`None` without a limit).
    ///
    /// ```
    /// let mut p = umrf::tiered::MemoryPressure::default();
    /// assert_eq!(p.cgroup_headroom(), None);
    /// p.cgroup_limit = Some(100);
    /// p.cgroup_usage = Some(130);
    /// assert_eq!(p.cgroup_headroom(), Some(0));
    /// ```
    pub fn cgroup_headroom(&self) -> Option<u64> {
        Some(
            self.cgroup_limit?
                .saturating_sub(self.cgroup_usage.unwrap_or(0)),
        )
    }
}

/// Reads [`MemoryPressure`] from the files under a root directory.
///
/// ```
/// use umrf::tiered::PressureMonitor;
/// let dir = std::env::temp_dir().join(format!("umrf-psi-doc-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("proc/pressure"))?;
/// std::fs::write(dir.join("proc/pressure/memory"),
///     "some avg10=12.50 avg60=3.00 avg300=1.00 total=100\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=5\n")?;
/// std::fs::write(dir.join("proc/meminfo"), "MemTotal: 1000 kB\nMemAvailable: 250 kB\n")?;
/// let p = PressureMonitor::with_root(&dir).read()?;
/// assert_eq!(p.psi_some_avg10, Some(12.5));
/// assert_eq!(p.mem_available, Some(250 * 1024));
/// assert_eq!(p.cgroup_limit, None); // no cgroup files there
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PressureMonitor {
    root: PathBuf,
}

impl Default for PressureMonitor {
    fn default() -> Self {
        PressureMonitor::live()
    }
}

impl PressureMonitor {
    /// The live system's files (root `/`).
    pub fn live() -> PressureMonitor {
        PressureMonitor::with_root("/")
    }

    /// The files under `root` (for tests: a directory laid out like `/`).
    pub fn with_root(root: impl AsRef<Path>) -> PressureMonitor {
        PressureMonitor {
            root: root.as_ref().to_path_buf(),
        }
    }

    /// Reads every source there is.
    ///
    /// # Errors
    /// [`TieredError::Pressure`] naming the file, when one exists but cannot be read or parsed.
    pub fn read(&self) -> Result<MemoryPressure, TieredError> {
        let mut p = MemoryPressure {
            psi_some_avg10: self.psi()?,
            mem_available: self.mem_available()?,
            ..MemoryPressure::default()
        };
        if let Some((version, limit, usage)) = self.cgroup()? {
            p.cgroup_version = version;
            p.cgroup_limit = limit;
            p.cgroup_usage = usage;
        }
        Ok(p)
    }

    fn psi(&self) -> Result<Option<f64>, TieredError> {
        let path = self.root.join("proc/pressure/memory");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let some = text.lines().find(|l| l.starts_with("some "));
        let avg10 = some
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("avg10=")))
            .and_then(|v| v.parse::<f64>().ok());
        avg10
            .map(Some)
            .ok_or_else(|| bad(&path, "no `some avg10=` field"))
    }

    fn mem_available(&self) -> Result<Option<u64>, TieredError> {
        let path = self.root.join("proc/meminfo");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let Some(line) = text.lines().find(|l| l.starts_with("MemAvailable:")) else {
            return Ok(None); // kernels before 3.14
        };
        let kib = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| bad(&path, "`MemAvailable:` is not a number of kB"))?;
        Ok(Some(kib * 1024))
    }

    /// `(version, limit, usage)` of this process's memory cgroup.
    #[allow(clippy::type_complexity)]
    fn cgroup(&self) -> Result<Option<(u8, Option<u64>, Option<u64>)>, TieredError> {
        let path = self.root.join("proc/self/cgroup");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let fs = self.root.join("sys/fs/cgroup");
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(group)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(&path, "a line is not `id:controllers:path`"));
            };
            let group = group.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                let dir = fs.join("memory").join(group);
                let limit =
                    read_bytes(&dir.join("memory.limit_in_bytes"))?.filter(|&l| l < 1 << 62); // v1 writes "unlimited" as a page-rounded i64::MAX
                let usage = read_bytes(&dir.join("memory.usage_in_bytes"))?;
                return Ok(Some((1, limit, usage)));
            }
            if id == "0" && controllers.is_empty() {
                let dir = fs.join(group);
                let limit = read_bytes(&dir.join("memory.max"))?;
                let usage = read_bytes(&dir.join("memory.current"))?;
                if limit.is_some() || usage.is_some() {
                    return Ok(Some((2, limit, usage)));
                }
            }
        }
        Ok(None)
    }
}

/// When and how far pressure lowers a store's RAM limit.
///
/// ```
/// use umrf::tiered::{MemoryPressure, PressurePolicy};
/// let policy = PressurePolicy::default();
/// let calm = MemoryPressure::default();
/// assert_eq!(policy.ram_limit(1 << 30, &calm), 1 << 30);
/// let stalled = MemoryPressure { psi_some_avg10: Some(40.0), ..calm };
/// assert_eq!(policy.ram_limit(1 << 30, &stalled), 1 << 29);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PressurePolicy {
    /// PSI `some avg10` (percent) at or above which the limit is halved.
    pub psi_some_avg10_high: f64,
    /// The store keeps its RAM below what would leave the machine (`MemAvailable`) or the
    /// cgroup (limit − usage) with less than this many bytes.
    pub min_free: u64,
}

impl Default for PressurePolicy {
    /// Halve at 10 % stall time; keep 256 MiB free.
    fn default() -> Self {
        PressurePolicy {
            psi_some_avg10_high: 10.0,
            min_free: 256 << 20,
        }
    }
}

impl PressurePolicy {
    /// The RAM limit for a store with budget `budget`, under `pressure`.
    ///
    /// Each source lowers the limit on its own; the lowest wins: PSI at or above the
    /// threshold halves it, and free memory (machine or cgroup) under `min_free` takes the
    /// shortfall off the budget.
    pub fn ram_limit(&self, budget: u64, pressure: &MemoryPressure) -> u64 {
        let mut limit = budget;
        if pressure
            .psi_some_avg10
            .is_some_and(|avg| avg >= self.psi_some_avg10_high)
        {
            limit = limit.min(budget / 2);
        }
        for free in [pressure.mem_available, pressure.cgroup_headroom()]
            .into_iter()
            .flatten()
        {
            let short = self.min_free.saturating_sub(free);
            limit = limit.min(budget.saturating_sub(short));
        }
        limit
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, TieredError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bad(path, &e.to_string())),
    }
}

/// A file holding a byte count, or `max` (no limit: `None`).
fn read_bytes(path: &Path) -> Result<Option<u64>, TieredError> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| bad(path, &format!("`{text}` is not a byte count or `max`")))
}

fn bad(path: &Path, reason: &str) -> TieredError {
    TieredError::Pressure {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    struct Fake(PathBuf);
    impl Fake {
        fn new(tag: &str) -> Fake {
            let dir =
                std::env::temp_dir().join(format!("umrf-pressure-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Fake(dir)
        }
        fn file(&self, rel: &str, text: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn cgroup_v2_limit_and_usage() {
        let fake = Fake::new("v2");
        fake.file("proc/self/cgroup", "0::/user.slice/job\n");
        fake.file("sys/fs/cgroup/user.slice/job/memory.max", "1073741824\n");
        fake.file(
            "sys/fs/cgroup/user.slice/job/memory.current",
            "1000000000\n",
        );
        let p = PressureMonitor::with_root(&fake.0).read().unwrap();
        assert_eq!((p.cgroup_version, p.cgroup_limit), (2, Some(1 << 30)));
        assert_eq!(p.cgroup_headroom(), Some((1 << 30) - 1_000_000_000));
        assert_eq!(p.psi_some_avg10, None);
        // 73 MB of headroom, 256 MiB wanted: the shortfall comes off the budget.
        let limit = PressurePolicy::default().ram_limit(512 << 20, &p);
        assert_eq!(
            limit,
            (512 << 20) - ((256 << 20) - ((1 << 30) - 1_000_000_000))
        );
        fake.file("sys/fs/cgroup/user.slice/job/memory.max", "max\n");
        let p = PressureMonitor::with_root(&fake.0).read().unwrap();
        assert_eq!((p.cgroup_version, p.cgroup_limit), (2, None));
    }

    #[test]
    fn cgroup_v1_memory_controller() {
        let fake = Fake::new("v1");
        fake.file(
            "proc/self/cgroup",
            "12:cpu,cpuacct:/a\n4:memory:/docker/abc\n",
        );
        fake.file(
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "536870912\n",
        );
        fake.file(
            "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes",
            "536870000\n",
        );
        let p = PressureMonitor::with_root(&fake.0).read().unwrap();
        assert_eq!(p.cgroup_version, 1);
        assert_eq!(p.cgroup_headroom(), Some(912));
        fake.file(
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        assert_eq!(
            PressureMonitor::with_root(&fake.0)
                .read()
                .unwrap()
                .cgroup_limit,
            None
        );
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file() {
        let fake = Fake::new("bad");
        fake.file("proc/pressure/memory", "garbage\n");
        let err = PressureMonitor::with_root(&fake.0).read().unwrap_err();
        assert!(err.to_string().contains("proc/pressure/memory"), "{err}");
        fake.file(
            "proc/pressure/memory",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        );
        fake.file("proc/self/cgroup", "0::/\n");
        fake.file("sys/fs/cgroup/memory.max", "lots\n");
        let err = PressureMonitor::with_root(&fake.0).read().unwrap_err();
        assert!(err.to_string().contains("memory.max"), "{err}");
    }

    #[test]
    fn the_live_system_reads_without_error() {
        let p = PressureMonitor::live().read().unwrap();
        assert!(
            p.mem_available.is_some(),
            "Linux has had MemAvailable since 3.14"
        );
    }

    #[test]
    fn policy_halves_on_psi_and_subtracts_shortfalls() {
        let policy = PressurePolicy {
            psi_some_avg10_high: 5.0,
            min_free: 1000,
        };
        let mut p = MemoryPressure {
            psi_some_avg10: Some(4.9),
            mem_available: Some(5000),
            ..MemoryPressure::default()
        };
        assert_eq!(policy.ram_limit(800, &p), 800);
        p.psi_some_avg10 = Some(5.0);
        assert_eq!(policy.ram_limit(800, &p), 400);
        p.mem_available = Some(900);
        assert_eq!(policy.ram_limit(800, &p), 400);
        p.mem_available = Some(100);
        assert_eq!(policy.ram_limit(800, &p), 0);
    }
}
