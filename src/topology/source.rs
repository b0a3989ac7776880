//! [`Source`]: where a [`Topology`](super::Topology) came from.

use std::path::{Path, PathBuf};

/// Which source produced a topology.
///
/// # Examples
///
/// ```
/// use std::path::PathBuf;
/// use umrf::topology::Source;
///
/// let live = Source::Sysfs { root: PathBuf::from("/") };
/// assert!(live.is_live() && !live.is_fallback());
/// let fixture = Source::Sysfs { root: PathBuf::from("/tmp/x") };
/// assert!(!fixture.is_live());
/// assert_eq!(fixture.to_string(), "sysfs at /tmp/x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Linux sysfs/procfs under `root` (`/` for this machine).
    Sysfs {
        /// The root the `sys/` and `proc/` trees were read under.
        root: PathBuf,
    },
    /// `root/sys/devices/system/node` was absent (a container, or a kernel
    /// without NUMA): one node made from `proc/meminfo` and the online CPUs.
    SysfsSingleNodeFallback {
        /// The root the `sys/` and `proc/` trees were read under.
        root: PathBuf,
    },
    /// hwloc's discovery of this machine.
    Hwloc,
    /// hwloc's discovery pointed at another machine by hwloc's own
    /// environment (`HWLOC_FSROOT`, `HWLOC_XMLFILE`, `HWLOC_SYNTHETIC`, …):
    /// hwloc says the result is not this system.
    HwlocElsewhere {
        /// The setting that pointed it elsewhere (`HWLOC_FSROOT=/srv/dump`),
        /// or what hwloc was told where no variable says.
        setting: String,
    },
    /// An hwloc XML file (v1 or v2 format).
    HwlocXml {
        /// The file.
        path: PathBuf,
    },
    /// Built by hand with [`TopologyBuilder`](super::TopologyBuilder).
    Synthetic,
}

impl Source {
    /// Whether the topology describes the machine this process runs on
    /// (sysfs at `/`, or hwloc's own discovery of this system). Only then do
    /// [`Topology::current_node`](super::Topology::current_node) and the base
    /// page size from `sysconf` mean anything.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Source;
    /// assert!(Source::Hwloc.is_live());
    /// assert!(!Source::Synthetic.is_live());
    /// let dump = Source::HwlocElsewhere { setting: "HWLOC_FSROOT=/srv/dump".into() };
    /// assert!(!dump.is_live());
    /// ```
    #[must_use]
    pub fn is_live(&self) -> bool {
        match self {
            Self::Sysfs { root } | Self::SysfsSingleNodeFallback { root } => is_root_dir(root),
            Self::Hwloc => true,
            Self::HwlocElsewhere { .. } | Self::HwlocXml { .. } | Self::Synthetic => false,
        }
    }

    /// Whether this is the single-node fallback for a machine without NUMA
    /// sysfs.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Source;
    /// let s = Source::SysfsSingleNodeFallback { root: "/".into() };
    /// assert!(s.is_fallback());
    /// ```
    #[must_use]
    pub fn is_fallback(&self) -> bool {
        matches!(self, Self::SysfsSingleNodeFallback { .. })
    }
}

/// Whether `path` names the file system root (after resolving symlinks).
pub(crate) fn is_root_dir(path: &Path) -> bool {
    path == Path::new("/") || path.canonicalize().is_ok_and(|p| p == Path::new("/"))
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sysfs { root } => write!(f, "sysfs at {}", root.display()),
            Self::SysfsSingleNodeFallback { root } => write!(
                f,
                "single-node fallback ({}sys/devices/system/node absent)",
                with_slash(root)
            ),
            Self::Hwloc => f.write_str("hwloc"),
            Self::HwlocElsewhere { setting } => write!(f, "hwloc, not this system ({setting})"),
            Self::HwlocXml { path } => write!(f, "hwloc XML {}", path.display()),
            Self::Synthetic => f.write_str("synthetic"),
        }
    }
}

/// `root` displayed with a trailing slash.
fn with_slash(root: &Path) -> String {
    let s = root.display().to_string();
    if s.ends_with('/') { s } else { s + "/" }
}
