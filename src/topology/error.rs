//! Errors of topology detection and of CPU-set parsing.
//!
//! Every message names the file (or the input) and what was wrong with it,
//! and says what to do about it. Malformed input is always an `Err`, never a
//! panic (DESIGN.md, invariant I7).

use std::io;
use std::path::PathBuf;

/// Why a CPU list or CPU mask string could not be parsed.
///
/// Produced by [`CpuSet::parse_list`](super::CpuSet::parse_list) and
/// [`CpuSet::parse_mask`](super::CpuSet::parse_mask); the topology readers
/// wrap it in [`TopologyError::CpuSet`] together with the file it came from.
///
/// # Examples
///
/// ```
/// use umrf::topology::{CpuSet, CpuSetError};
///
/// let err = CpuSet::parse_list("3-1").unwrap_err();
/// assert!(matches!(err, CpuSetError::ReversedRange { start: 3, end: 1 }));
/// assert!(err.to_string().contains("3-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpuSetError {
    /// A comma-separated item of a CPU list was empty (`"0,,2"`, `"0,"`).
    #[error(
        "empty item at position {position} of CPU list {input:?}; a Linux cpulist is \
         comma-separated items like `0-3,8,10-11` with no empty items"
    )]
    EmptyItem {
        /// The whole input, as given.
        input: String,
        /// Zero-based index of the empty item.
        position: usize,
    },
    /// Something that should have been a decimal CPU number was not.
    #[error(
        "{text:?} in CPU list {input:?} is not a CPU number; expected decimal ids, \
         ranges `a-b` or strided ranges `a-b:used/group`"
    )]
    InvalidNumber {
        /// The whole input, as given.
        input: String,
        /// The offending piece.
        text: String,
    },
    /// A range `a-b` with `a > b`.
    #[error("range {start}-{end} is reversed; write the smaller CPU id first")]
    ReversedRange {
        /// First id of the range.
        start: u32,
        /// Last id of the range.
        end: u32,
    },
    /// A strided range `a-b:used/group` with `used == 0`, `group == 0` or
    /// `used > group`.
    #[error(
        "strided range {text:?} needs 0 < used <= group size (`a-b:used/group`, as in \
         the kernel's cpulist syntax)"
    )]
    InvalidStride {
        /// The offending item.
        text: String,
    },
    /// A CPU id at or above [`CpuSet::MAX_CPUS`](super::CpuSet::MAX_CPUS).
    #[error(
        "CPU id {cpu} is too large: this crate supports ids below {max}; the input is \
         probably corrupt"
    )]
    TooLarge {
        /// The id that was too large.
        cpu: u64,
        /// The bound, [`CpuSet::MAX_CPUS`](super::CpuSet::MAX_CPUS).
        max: u32,
    },
    /// A word of a hex CPU mask was empty, longer than 8 digits or not hex.
    #[error(
        "word {word:?} of CPU mask {input:?} is not a 32-bit hex word; a Linux cpumap is \
         comma-separated words of 1 to 8 hex digits, most significant first \
         (`00000000,0000ffff`)"
    )]
    InvalidMaskWord {
        /// The whole input, as given.
        input: String,
        /// The offending word.
        word: String,
    },
}

/// Why a topology could not be built.
///
/// Each message names the file involved and what was wrong with it, and says
/// what to do.
///
/// # Examples
///
/// ```
/// use umrf::topology::{Topology, TopologyError};
///
/// let dir = std::env::temp_dir().join("umrf-doc-error-example-missing-root");
/// let err = Topology::from_sysfs(&dir).unwrap_err();
/// assert!(matches!(err, TopologyError::Io { .. }));
/// assert!(err.to_string().contains("umrf-doc-error-example-missing-root"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// A file or directory that had to be read could not be.
    #[error(
        "cannot read {}: {source}; check that the path (or the sysfs/procfs root it \
         lies under) exists and is readable",
        path.display()
    )]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file holds a CPU or node list or mask that does not parse.
    #[error(
        "{}: {source}; the file is corrupt or not a Linux sysfs file of the expected kind",
        path.display()
    )]
    CpuSet {
        /// The file.
        path: PathBuf,
        /// What was wrong with its contents.
        #[source]
        source: CpuSetError,
    },
    /// A file's contents are not what the kernel writes there.
    #[error("{}: {what}; the file is corrupt or was edited by hand: {hint}", path.display())]
    Malformed {
        /// The file (or directory).
        path: PathBuf,
        /// What was wrong.
        what: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// Resolving symbolic links inside a sysfs root did not terminate.
    #[error(
        "{}: more than {limit} symbolic links while resolving it inside the root; \
         the tree has a symlink loop",
        path.display()
    )]
    SymlinkLoop {
        /// The path being resolved.
        path: PathBuf,
        /// How many links were followed before giving up.
        limit: u32,
    },
    /// The parts given to [`TopologyBuilder`](super::TopologyBuilder) do not
    /// form a consistent topology.
    #[error("inconsistent topology: {what}; fix the parts given to the builder")]
    Inconsistent {
        /// What is inconsistent.
        what: String,
    },
    /// The hwloc library failed, or described something this model cannot
    /// hold.
    #[error("hwloc: {what}; {hint}")]
    Hwloc {
        /// What failed.
        what: String,
        /// What to do about it.
        hint: &'static str,
    },
}

impl TopologyError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A malformed-file error.
    pub(crate) fn malformed(
        path: impl Into<PathBuf>,
        what: impl Into<String>,
        hint: &'static str,
    ) -> Self {
        Self::Malformed {
            path: path.into(),
            what: what.into(),
            hint,
        }
    }
}
