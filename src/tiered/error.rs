//! What can go wrong in a tiered store, each with its cause and a remedy.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A page of a [`TieredStore`](super::TieredStore), by number (its allocation order).
///
/// ```
/// assert_eq!(umrf::tiered::PageId(7).to_string(), "page 7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId(pub u32);

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {}", self.0)
    }
}

/// A tier below RAM.
///
/// ```
/// assert_eq!(umrf::tiered::SpillTier::Tmpfs.to_string(), "tmpfs");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpillTier {
    /// A directory on a memory file system (`/dev/shm` by default): fast, but its pages count
    /// against the machine's memory.
    Tmpfs,
    /// A directory on a disk (the system temporary directory by default).
    Disk,
}

impl SpillTier {
    /// Both tiers, fastest first: the order a spill tries them in.
    pub const ALL: [SpillTier; 2] = [SpillTier::Tmpfs, SpillTier::Disk];

    /// The tier's name in messages and metric labels.
    ///
    /// ```
    /// assert_eq!(umrf::tiered::SpillTier::Disk.as_str(), "disk");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SpillTier::Tmpfs => "tmpfs",
            SpillTier::Disk => "disk",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for SpillTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the tiered store.
///
/// ```
/// use umrf::tiered::{PageId, SpillTier, TieredError};
/// let err = TieredError::Corrupt { page: PageId(3), tier: SpillTier::Disk, expected: 1, found: 2 };
/// assert!(err.to_string().contains("page 3"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TieredError {
    /// The RAM pool could not be built or a block could not be had.
    #[error(transparent)]
    Pool(#[from] crate::Error),
    /// A setting of the builder, or a request, cannot work.
    #[error("invalid tiered store configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A tier file could not be created in the tier's directory.
    #[error(
        "cannot create the {tier} tier's spill file in {}: {source}; point the tier at a \
         writable directory (TieredBuilder::{tier}) or give it a budget of 0 to leave it out",
        dir.display()
    )]
    TierUnavailable {
        /// The tier.
        tier: SpillTier,
        /// Its directory.
        dir: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A page could not be spilled: every tier refused it, so it stays in RAM, whole.
    #[error(
        "{page} stays in RAM: no tier could take it ({cause}); free space on the tier \
         directories, raise their budgets, or raise the RAM budget"
    )]
    SpillFailed {
        /// The page.
        page: PageId,
        /// Why each tier refused it.
        cause: String,
    },
    /// A page read back from a tier does not match the checksum taken when it was written.
    #[error(
        "{page} read from the {tier} tier is corrupt (crc32c {found:#010x}, written as \
         {expected:#010x}): its spill file was changed underneath the store; the page's \
         contents are lost and it is not handed out"
    )]
    Corrupt {
        /// The page.
        page: PageId,
        /// The tier it was read from.
        tier: SpillTier,
        /// The checksum taken when the page was written.
        expected: u32,
        /// The checksum of what was read.
        found: u32,
    },
    /// A page could not be read from its tier.
    #[error("{page} could not be read from the {tier} tier: {source}; it stays there, retry")]
    ReadFailed {
        /// The page.
        page: PageId,
        /// The tier.
        tier: SpillTier,
        /// What the operating system said.
        source: io::Error,
    },
    /// Every page in RAM is pinned or on its way to a tier, and there is no room for one more.
    #[error(
        "no room in RAM for {page}: all {resident} pages the RAM limit of {limit} bytes allows \
         are pinned; drop pins or raise the RAM budget"
    )]
    RamFull {
        /// The page that needed room.
        page: PageId,
        /// Pages in RAM now.
        resident: usize,
        /// The RAM limit in force (the budget, or less under memory pressure).
        limit: u64,
    },
    /// The handle belongs to another store.
    #[error("{page} belongs to another tiered store (id {store}); use the store that made it")]
    ForeignHandle {
        /// The page.
        page: PageId,
        /// The id of the store that made the handle.
        store: u64,
    },
    /// [`IoBackend::IoUring`](super::IoBackend::IoUring) was asked for and the kernel refused
    /// to set up the ring.
    #[error(
        "io_uring was asked for (TieredBuilder::io) and cannot be set up: {}; use \
         IoBackend::Auto to fall back to I/O threads",
        super::IoFallback { errno: source.raw_os_error().unwrap_or(libc::ENOSYS) }
    )]
    IoUnavailable {
        /// What `io_uring_setup` (or the probe of its operations) said.
        source: io::Error,
    },
    /// A pressure file could not be read or parsed.
    #[error("cannot read memory pressure from {}: {reason}", path.display())]
    Pressure {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
