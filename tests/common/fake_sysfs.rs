//! `FakeSysfs`: a sysfs/procfs tree that a test writes into a temporary directory, to stand
//! for a machine described in `shared/topologies/README.md` (no third-party file is copied) or
//! for input no real machine has.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use umrf::topology::{Topology, TopologyError};

/// A sysfs/procfs tree in a temporary directory, removed on drop.
pub struct FakeSysfs {
    root: PathBuf,
}

pub const NODE: &str = "sys/devices/system/node";

impl FakeSysfs {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("umrf-fake-sysfs-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    /// Writes `content` to `rel`, creating directories.
    pub fn file(self, rel: &str, content: &str) -> Self {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        self
    }

    pub fn dir(self, rel: &str) -> Self {
        fs::create_dir_all(self.root.join(rel)).unwrap();
        self
    }

    pub fn symlink(self, rel: &str, target: &str) -> Self {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path).unwrap();
        self
    }

    /// `node/online` (and `possible`).
    pub fn online_nodes(self, list: &str) -> Self {
        self.file(&format!("{NODE}/online"), &format!("{list}\n"))
            .file(&format!("{NODE}/possible"), &format!("{list}\n"))
    }

    fn meminfo_text(id: u32, kb: u64) -> String {
        format!(
            "Node {id} MemTotal:       {kb} kB\nNode {id} MemFree:        {} kB\nNode {id} MemUsed: 0 kB\n",
            kb / 2
        )
    }

    /// `nodeN/cpulist` + `nodeN/meminfo`.
    pub fn node(self, id: u32, cpulist: &str, kb: u64) -> Self {
        self.file(&format!("{NODE}/node{id}/cpulist"), &format!("{cpulist}\n"))
            .file(
                &format!("{NODE}/node{id}/meminfo"),
                &Self::meminfo_text(id, kb),
            )
    }

    /// `nodeN/cpumap` only (no cpulist) + `nodeN/meminfo`.
    pub fn node_cpumap(self, id: u32, cpumap: &str, kb: u64) -> Self {
        self.file(&format!("{NODE}/node{id}/cpumap"), &format!("{cpumap}\n"))
            .file(
                &format!("{NODE}/node{id}/meminfo"),
                &Self::meminfo_text(id, kb),
            )
    }

    pub fn distance(self, id: u32, row: &[u32]) -> Self {
        let text: Vec<String> = row.iter().map(u32::to_string).collect();
        self.file(
            &format!("{NODE}/node{id}/distance"),
            &format!("{}\n", text.join(" ")),
        )
    }

    pub fn hugepages_at(self, dir: &str, size_kb: u64, nr: u64, free: u64) -> Self {
        let d = format!("{dir}/hugepages-{size_kb}kB");
        self.file(&format!("{d}/nr_hugepages"), &format!("{nr}\n"))
            .file(&format!("{d}/free_hugepages"), &format!("{free}\n"))
            .file(&format!("{d}/surplus_hugepages"), "0\n")
    }

    pub fn node_hugepages(self, id: u32, size_kb: u64, nr: u64, free: u64) -> Self {
        self.hugepages_at(&format!("{NODE}/node{id}/hugepages"), size_kb, nr, free)
    }

    pub fn global_hugepages(self, size_kb: u64, nr: u64, free: u64) -> Self {
        self.hugepages_at("sys/kernel/mm/hugepages", size_kb, nr, free)
    }

    pub fn proc_meminfo(self, total_kb: u64, hugepagesize_kb: u64) -> Self {
        self.file(
            "proc/meminfo",
            &format!(
                "MemTotal:       {total_kb} kB\nMemFree:        {} kB\nHugePages_Total:       0\n\
                 HugePages_Free:        0\nHugePages_Rsvd:        0\nHugepagesize:       {hugepagesize_kb} kB\n",
                total_kb / 2
            ),
        )
    }

    pub fn cpu_online(self, list: &str) -> Self {
        self.file("sys/devices/system/cpu/online", &format!("{list}\n"))
    }

    pub fn tier(self, id: u32, nodelist: &str) -> Self {
        self.file(
            &format!("sys/devices/virtual/memory_tiering/memory_tier{id}/nodelist"),
            &format!("{nodelist}\n"),
        )
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn load(&self) -> Topology {
        Topology::from_sysfs(&self.root)
            .unwrap_or_else(|e| panic!("fixture {} did not load: {e}", self.root.display()))
    }

    pub fn load_err(&self) -> TopologyError {
        match Topology::from_sysfs(&self.root) {
            Ok(t) => panic!(
                "fixture {} loaded but should not: {t:?}",
                self.root.display()
            ),
            Err(e) => e,
        }
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
