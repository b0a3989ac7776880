//! The machine a run was taken on, as the report states it: read from procfs, `sysconf` and
//! `rustc -V` once, before anything is measured.

use std::process::Command;

pub struct Machine {
    pub cpu: String,
    pub online_cpus: i64,
    pub memory_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub date: String,
}

fn first_line_after(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|line| line.starts_with(key))
        .and_then(|line| line.split_once(':'))
        .map(|(_, value)| value.trim().to_string())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = first_line_after(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        // SAFETY: sysconf has no preconditions.
        let online_cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as i64;
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
        Machine {
            cpu: first_line_after(&cpuinfo, "model name").unwrap_or_else(|| "unknown CPU".into()),
            online_cpus,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            rustc: command_output(&rustc, &["-V"]).unwrap_or_else(|| "rustc (unknown)".into()),
            date: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .unwrap_or_else(|| "unknown date".into()),
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} online CPUs, {:.0} GiB, Linux {}, {}",
            self.cpu, self.online_cpus, self.memory_gib, self.kernel, self.rustc
        )
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ")
        })
        .unwrap_or_else(|| "unknown".into())
}
