//! Which I/O engine a store asks for ([`IoBackend`]), which one runs ([`IoEngine`]), and why
//! `io_uring` was not used when it was refused ([`IoFallback`]).

use core::fmt;

/// The background I/O engine asked of [`TieredBuilder::io`](super::TieredBuilder::io).
///
/// ```
/// use umrf::tiered::{IoBackend, IoEngine, TieredStore};
/// use umrf::residency::CpuLocal;
/// let store = TieredStore::<CpuLocal>::builder().io(IoBackend::Threads).build()?;
/// assert_eq!(store.stats().io_engine, IoEngine::Threads);
/// assert_eq!(store.stats().io_fallback, None);
/// # Ok::<(), umrf::tiered::TieredError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoBackend {
    /// `io_uring` where the kernel allows it, else I/O threads; a refusal is recorded in
    /// [`TieredStats::io_fallback`](super::TieredStats::io_fallback). The default.
    #[default]
    Auto,
    /// [`io_threads`](super::TieredBuilder::io_threads) worker threads doing `pread`/`pwrite`.
    Threads,
    /// One `io_uring` on the store's thread; the build fails if the kernel refuses it.
    IoUring,
}

/// The I/O engine a store runs ([`TieredStats::io_engine`](super::TieredStats::io_engine)).
///
/// ```
/// assert_eq!(umrf::tiered::IoEngine::IoUring.as_str(), "io_uring");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoEngine {
    /// No background I/O: spills are written on the caller's thread, prefetches are dropped
    /// (`io_threads(0)`, or threads that could not be started).
    #[default]
    Inline,
    /// I/O worker threads.
    Threads,
    /// An `io_uring`: the kernel's workers do the copies.
    IoUring,
}

impl IoEngine {
    /// The engine's name in messages and the `engine` label of metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            IoEngine::Inline => "inline",
            IoEngine::Threads => "threads",
            IoEngine::IoUring => "io_uring",
        }
    }

    pub(crate) fn code(self) -> u64 {
        self as u64
    }

    pub(crate) fn from_code(code: u64) -> IoEngine {
        match code {
            1 => IoEngine::Threads,
            2 => IoEngine::IoUring,
            _ => IoEngine::Inline,
        }
    }
}

impl fmt::Display for IoEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`IoBackend::Auto`] runs threads: the error the kernel gave when the ring was set up.
///
/// ```
/// use umrf::tiered::IoFallback;
/// let why = IoFallback { errno: libc::EPERM };
/// assert!(why.to_string().contains("io_uring_disabled"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoFallback {
    /// The `errno` of the refusal.
    pub errno: i32,
}

impl IoFallback {
    /// A short name of the reason, for the `reason` label of metrics.
    ///
    /// ```
    /// assert_eq!(umrf::tiered::IoFallback { errno: libc::ENOSYS }.reason(), "unsupported");
    /// ```
    pub fn reason(self) -> &'static str {
        match self.errno {
            libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP => "unsupported",
            libc::EPERM | libc::EACCES => "forbidden",
            libc::ENOMEM => "locked_memory",
            _ => "other",
        }
    }
}

impl fmt::Display for IoFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = std::io::Error::from_raw_os_error(self.errno);
        match self.reason() {
            "unsupported" => write!(
                f,
                "the kernel has no usable io_uring ({err}): Linux 5.6 or later is needed"
            ),
            "forbidden" => write!(
                f,
                "io_uring is forbidden ({err}): a seccomp filter (containers) or the \
                 kernel.io_uring_disabled sysctl"
            ),
            "locked_memory" => write!(
                f,
                "no locked memory for the ring ({err}): raise RLIMIT_MEMLOCK (ulimit -l)"
            ),
            _ => write!(f, "io_uring setup failed ({err})"),
        }
    }
}
