//! Reading files under a root directory as if it were `/`.
//!
//! A sysfs fixture (an extracted hwloc tarball, a test tree) holds symbolic
//! links written for the machine they came from: relative ones
//! (`../../../devices/system/node/node0`) and possibly absolute ones
//! (`/sys/devices/...`). Every path here is resolved one component at a
//! time: a relative target continues from the link's directory, an absolute
//! target restarts at the root, and `..` never climbs above the root. So
//! nothing under a fixture root can make the reader leave it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::error::TopologyError;

/// Symbolic links followed while resolving one path before giving up (the
/// kernel's `MAXSYMLINKS` is 40).
const MAX_LINKS: u32 = 40;

/// A directory that plays the part of `/`.
#[derive(Debug, Clone)]
pub(crate) struct Rooted {
    root: PathBuf,
}

impl Rooted {
    /// Opens `root`, which must be a readable directory.
    pub(crate) fn new(root: &Path) -> Result<Self, TopologyError> {
        let meta = fs::metadata(root).map_err(|e| TopologyError::io(root, e))?;
        if !meta.is_dir() {
            return Err(TopologyError::io(
                root,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The root as given.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` under the root, unresolved: for messages.
    pub(crate) fn shown(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Resolves `rel` (relative to the root) to a host path that stays under
    /// the root. Components past a missing one are appended unresolved.
    pub(crate) fn resolve(&self, rel: &str) -> Result<PathBuf, TopologyError> {
        let mut done: Vec<OsString> = Vec::new();
        let mut todo: VecDeque<OsString> = components(Path::new(rel)).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            let here = self.join(&done).join(&part);
            let meta = match fs::symlink_metadata(&here) {
                Ok(meta) => meta,
                Err(e) if is_missing(&e) => {
                    done.push(part);
                    done.extend(todo);
                    return Ok(self.join(&done));
                }
                Err(e) => return Err(TopologyError::io(here, e)),
            };
            if !meta.file_type().is_symlink() {
                done.push(part);
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(TopologyError::SymlinkLoop {
                    path: self.shown(rel),
                    limit: MAX_LINKS,
                });
            }
            let target = fs::read_link(&here).map_err(|e| TopologyError::io(&here, e))?;
            if target.is_absolute() {
                done.clear();
            }
            for (i, c) in components(&target).enumerate() {
                todo.insert(i, c);
            }
        }
        Ok(self.join(&done))
    }

    /// The root joined with resolved components.
    fn join(&self, parts: &[OsString]) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(parts);
        path
    }

    /// The contents of file `rel`, or `None` if it does not exist. Trailing
    /// NUL bytes are dropped: the kernel never writes them, but some dumps
    /// of sysfs (several of hwloc's test tarballs) pad files with one.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<String>, TopologyError> {
        let path = self.resolve(rel)?;
        match fs::read_to_string(&path) {
            Ok(mut text) => {
                let len = text.trim_end_matches('\0').len();
                text.truncate(len);
                Ok(Some(text))
            }
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(TopologyError::io(self.shown(rel), e)),
        }
    }

    /// The entry names of directory `rel`, sorted, or `None` if it does not
    /// exist.
    pub(crate) fn list(&self, rel: &str) -> Result<Option<Vec<String>>, TopologyError> {
        let path = self.resolve(rel)?;
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(TopologyError::io(self.shown(rel), e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| TopologyError::io(self.shown(rel), e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(Some(names))
    }

    /// Whether `rel` exists (after resolving links).
    pub(crate) fn exists(&self, rel: &str) -> Result<bool, TopologyError> {
        Ok(self.resolve(rel)?.exists())
    }

    /// `rel` resolved, as a path relative to the root (`/`-separated, no
    /// leading slash), or `None` if it does not exist.
    pub(crate) fn canonical(&self, rel: &str) -> Result<Option<String>, TopologyError> {
        let path = self.resolve(rel)?;
        if !path.exists() {
            return Ok(None);
        }
        let inner = path.strip_prefix(&self.root).unwrap_or(&path);
        Ok(Some(inner.to_string_lossy().into_owned()))
    }
}

/// The normal and `..` components of `path` (root and `.` dropped).
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(s) => Some(s.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Whether an error means "no such file" (including a path through a
/// regular file).
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("umrf-rooted-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn links_stay_inside_the_root() {
        let dir = tempdir("links");
        fs::create_dir_all(dir.join("sys/devices/x")).unwrap();
        fs::write(dir.join("sys/devices/x/file"), "inside").unwrap();
        fs::write(dir.join("sys/devices/x/padded"), "0-3\n\0\0").unwrap();
        fs::create_dir_all(dir.join("sys/bus")).unwrap();
        symlink("/sys/devices/x", dir.join("sys/bus/abs")).unwrap();
        symlink("../devices/x", dir.join("sys/bus/rel")).unwrap();
        symlink("../../../../../../../../etc", dir.join("sys/bus/up")).unwrap();
        symlink("loop2", dir.join("sys/bus/loop1")).unwrap();
        symlink("loop1", dir.join("sys/bus/loop2")).unwrap();
        let fs_ = Rooted::new(&dir).unwrap();
        assert_eq!(
            fs_.read("sys/bus/abs/file").unwrap().as_deref(),
            Some("inside")
        );
        assert_eq!(
            fs_.read("/sys/bus/rel/file").unwrap().as_deref(),
            Some("inside")
        );
        // `..` stops at the root: this is <root>/etc, which does not exist.
        assert_eq!(fs_.resolve("sys/bus/up").unwrap(), dir.join("etc"));
        assert_eq!(fs_.read("sys/bus/up/passwd").unwrap(), None);
        assert_eq!(
            fs_.canonical("sys/bus/abs").unwrap().as_deref(),
            Some("sys/devices/x")
        );
        assert!(matches!(
            fs_.read("sys/bus/loop1/f"),
            Err(TopologyError::SymlinkLoop { .. })
        ));
        assert_eq!(
            fs_.read("sys/bus/abs/padded").unwrap().as_deref(),
            Some("0-3\n")
        );
        assert_eq!(
            fs_.list("sys/bus/abs").unwrap(),
            Some(vec!["file".into(), "padded".into()])
        );
        assert_eq!(fs_.list("nope").unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn root_must_be_a_directory() {
        let dir = tempdir("notdir");
        fs::write(dir.join("f"), "").unwrap();
        assert!(matches!(
            Rooted::new(&dir.join("f")),
            Err(TopologyError::Io { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
