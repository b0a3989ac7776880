//! One spill tier: an anonymous file in the tier's directory, cut into page-sized slots.
//!
//! The file is opened with `O_TMPFILE` (mode 0600): it has no name, so nothing of it survives
//! the process, and no other user can open it. Where the file system refuses `O_TMPFILE`, a
//! file is created with a unique name, mode 0600 and `O_EXCL`, and unlinked at once. Reads and
//! writes are `pread`/`pwrite` at `slot × page_size`, each first asking the fault seam
//! ([`OsCall::SpillOpen`], [`OsCall::SpillWrite`], [`OsCall::SpillRead`]) whether to fail.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{SpillTier, TieredError};
use crate::backing::os::OsCall;
use crate::backing::os::fault_point;

/// The open file of one tier, shared by the store and its I/O workers.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: File,
    page_size: u64,
}

impl SpillFile {
    /// Writes one page into `slot`.
    pub(crate) fn write_page(&self, slot: u64, bytes: &[u8]) -> io::Result<()> {
        self.write_page_as(OsCall::SpillWrite, slot, bytes)
    }

    /// Writes one page into `slot`, asking the fault seam about `call` first (a spill's
    /// [`OsCall::SpillWrite`], a demotion's [`OsCall::Demote`]).
    pub(crate) fn write_page_as(&self, call: OsCall, slot: u64, bytes: &[u8]) -> io::Result<()> {
        fault_point(call)?;
        self.file.write_all_at(bytes, self.offset(slot))
    }

    /// The byte offset of `slot` in the file.
    pub(crate) fn offset(&self, slot: u64) -> u64 {
        slot * self.page_size
    }

    /// The file's descriptor, for submissions to an I/O ring (valid while `self` lives).
    #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }

    /// Cuts or grows the file to `bytes` (tests of short transfers).
    #[cfg(all(test, target_os = "linux", not(miri)))]
    pub(crate) fn set_len(&self, bytes: u64) -> io::Result<()> {
        self.file.set_len(bytes)
    }

    /// Reads one page from `slot`.
    pub(crate) fn read_page(&self, slot: u64, bytes: &mut [u8]) -> io::Result<()> {
        fault_point(OsCall::SpillRead)?;
        self.file.read_exact_at(bytes, self.offset(slot))
    }

    /// The file's metadata (mode, link count), for checks.
    #[cfg(all(test, not(miri)))]
    pub(crate) fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }
}

/// One tier: its file, its budget in slots, and which slots are free (owned by the store).
#[derive(Debug)]
pub(crate) struct TierFile {
    pub(crate) tier: SpillTier,
    pub(crate) dir: PathBuf,
    file: Option<Arc<SpillFile>>,
    page_size: usize,
    /// Slots the budget allows; lowered when the file system reports it is full.
    capacity: u64,
    /// Slots ever handed out (`0..next` exist in the file).
    next: u64,
    /// Slots handed out and given back.
    free: Vec<u64>,
    /// The file system said it is full: only slots written before are reused.
    full: bool,
    /// Slots whose first write found the file system full (never reused).
    lost: u64,
}

impl TierFile {
    /// A tier of `budget` bytes in `dir`; the file is created on the first spill.
    pub(crate) fn new(tier: SpillTier, dir: PathBuf, budget: u64, page_size: usize) -> TierFile {
        TierFile {
            tier,
            dir,
            file: None,
            page_size,
            capacity: budget / page_size as u64,
            next: 0,
            free: Vec::new(),
            full: false,
            lost: 0,
        }
    }

    /// Slots in use.
    #[cfg(all(test, not(miri)))]
    pub(crate) fn used(&self) -> u64 {
        self.next - self.free.len() as u64 - self.lost
    }

    /// Slots that could be had now (free ones, and the budget left unless found full).
    pub(crate) fn room(&self) -> u64 {
        let fresh = if self.full {
            0
        } else {
            self.capacity - self.next
        };
        self.free.len() as u64 + fresh
    }

    /// Slots the budget allows.
    pub(crate) fn slots(&self) -> u64 {
        self.capacity
    }

    /// Whether a slot could be had (budget left, and the file system not found full).
    pub(crate) fn has_room(&self) -> bool {
        !self.free.is_empty() || (!self.full && self.next < self.capacity)
    }

    /// The file, created if this is the first use.
    ///
    /// # Errors
    /// [`TieredError::TierUnavailable`] when the directory refuses the file.
    pub(crate) fn file(&mut self) -> Result<Arc<SpillFile>, TieredError> {
        if let Some(file) = &self.file {
            return Ok(file.clone());
        }
        let file = open_anonymous(&self.dir).map_err(|source| TieredError::TierUnavailable {
            tier: self.tier,
            dir: self.dir.clone(),
            source,
        })?;
        let file = Arc::new(SpillFile {
            file,
            page_size: self.page_size as u64,
        });
        self.file = Some(file.clone());
        Ok(file)
    }

    /// A free slot, if the budget allows one.
    pub(crate) fn take_slot(&mut self) -> Option<u64> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        if !self.full && self.next < self.capacity {
            self.next += 1;
            return Some(self.next - 1);
        }
        None
    }

    /// Gives a slot back.
    pub(crate) fn give_slot(&mut self, slot: u64) {
        debug_assert!(slot < self.next && !self.free.contains(&slot));
        self.free.push(slot);
    }

    /// A write into `slot` found the file system full: the slot is dropped, and from now on
    /// only slots written before (and given back) are handed out, as their space is the file's.
    pub(crate) fn mark_full(&mut self, slot: u64) {
        self.full = true;
        self.lost += 1;
        debug_assert!(slot < self.next);
    }
}

/// Opens an anonymous file, mode 0600, in `dir`: `O_TMPFILE`, else a created-and-unlinked one.
fn open_anonymous(dir: &Path) -> io::Result<File> {
    fault_point(OsCall::SpillOpen)?;
    let tmpfile = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir);
    match tmpfile {
        Ok(file) => Ok(file),
        // EOPNOTSUPP (file system without O_TMPFILE), EISDIR/EINVAL (kernels before 3.11).
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            open_unlinked(dir)
        }
        Err(e) => Err(e),
    }
}

/// Creates a uniquely named file (`O_EXCL`, 0600) in `dir` and unlinks it at once.
pub(crate) fn open_unlinked(dir: &Path) -> io::Result<File> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for attempt in 0u32.. {
        let name = format!(".umrf-spill-{}-{nanos}-{attempt}", std::process::id());
        let path = dir.join(name);
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tier(budget_pages: u64) -> TierFile {
        TierFile::new(
            SpillTier::Disk,
            std::env::temp_dir(),
            budget_pages * 4096,
            4096,
        )
    }

    #[test]
    fn files_are_private_and_nameless() {
        let mut t = tier(2);
        let file = t.file().unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 0, "a spill file must have no name");
        let fallback = open_unlinked(&std::env::temp_dir()).unwrap();
        let meta = fallback.metadata().unwrap();
        assert_eq!((meta.mode() & 0o777, meta.nlink()), (0o600, 0));
    }

    #[test]
    fn slots_round_trip_and_respect_the_budget() {
        let mut t = tier(2);
        let file = t.file().unwrap();
        let (a, b) = (t.take_slot().unwrap(), t.take_slot().unwrap());
        assert_eq!(t.take_slot(), None);
        file.write_page(b, &[9u8; 4096]).unwrap();
        file.write_page(a, &[3u8; 4096]).unwrap();
        let mut back = vec![0u8; 4096];
        file.read_page(b, &mut back).unwrap();
        assert!(back.iter().all(|&x| x == 9));
        t.give_slot(a);
        assert_eq!(t.used(), 1);
        t.mark_full(b);
        assert_eq!(t.used(), 0);
        assert_eq!(t.take_slot(), Some(a));
        assert!(!t.has_room());
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let mut t = TierFile::new(SpillTier::Tmpfs, "/proc/umrf-no-such".into(), 1 << 20, 4096);
        let err = t.file().unwrap_err();
        assert!(err.to_string().contains("/proc/umrf-no-such"), "{err}");
    }
}
