//! Helpers shared by the integration tests: a seeded random sequence, and the real machine
//! topologies in `../shared/topologies` (relative to the crate root), extracted once per test
//! binary.
//! When that folder (or `tar`/`bzip2`) is missing, the loaders print a SKIPPED line and return
//! `None`, and the tests that need them pass without checking anything.

#![allow(dead_code)] // each test binary uses a subset

pub mod fake_sysfs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use umrf::Pool;
use umrf::residency::CpuLocal;
use umrf::topology::Topology;

/// A `CpuLocal` pool of 4 KiB blocks, `blocks` per slot, `slots` slots.
pub fn pool(blocks: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(4096)
        .blocks_per_slot(blocks)
        .slots(slots)
        .build()
        .unwrap()
}

/// The sysfs tarballs of `../shared/topologies`, by the folder each extracts to.
pub const SYSFS_TARBALLS: [&str; 8] = [
    "128arm-2pa2n8cluster4co",
    "128ia64-17n4s2c",
    "32intel64-2p8co2t+8ve",
    "64amd64-4s2n4ca2co",
    "64intel64-fakeKNL-SNC4-hybrid",
    "fakeheteromemtiers",
    "memorysidecaches",
    "nvidiagpunumanodes",
];

/// The hwloc XML files of `../shared/topologies`.
pub const HWLOC_XMLS: [&str; 9] = [
    "32em64t-2n8c2t-pci-normalio.xml",
    "64intel64-fakeKNL-SNC4-hybrid.xml",
    "coral-lassen-hwloc1.xml",
    "cxlmem+dax.v2.xml",
    "eas-tioga.xml",
    "epyc-corona.xml",
    "knl-quad-flat-hwloc1.xml",
    "knl-snc4-flat-hwloc1.xml",
    "memorysidecaches.xml",
];

/// `../shared/topologies`, if it exists.
pub fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/topologies");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: ../shared/topologies not found ({}); real-machine topology tests not run",
            dir.display()
        );
        None
    }
}

/// Whether `program --version` runs.
pub fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Extracts every tarball once into a temporary directory; `None` (with a
/// SKIPPED line) if the data or `tar`/`bzip2` is missing.
pub fn extracted() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let data = data_dir()?;
        for tool in ["tar", "bzip2"] {
            if !runs(tool) {
                eprintln!(
                    "SKIPPED: `{tool}` is not installed, so the sysfs tarballs in {} cannot be \
                     extracted; install it (Debian: apt-get install {tool}) to run these tests",
                    data.display()
                );
                return None;
            }
        }
        // Under target/ (removed by `cargo clean`), one folder per run.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("real-topologies-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let mut tarballs: Vec<PathBuf> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.bz2"))
            .collect();
        tarballs.sort();
        assert_eq!(
            tarballs.len(),
            8,
            "README lists 8 tarballs in {}",
            data.display()
        );
        for tarball in tarballs {
            let status = Command::new("tar")
                .arg("xjf")
                .arg(&tarball)
                .arg("-C")
                .arg(&out)
                .status()
                .expect("tar runs");
            assert!(status.success(), "tar xjf {} failed", tarball.display());
        }
        Some(out)
    })
    .as_deref()
}

/// Loads the extracted tarball `name` with the sysfs reader.
pub fn sysfs(name: &str) -> Option<Topology> {
    let root = extracted()?.join(name);
    Some(Topology::from_sysfs(&root).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// Loads the hwloc XML file `name` (feature `hwloc`).
#[cfg(feature = "hwloc")]
pub fn hwloc_xml(name: &str) -> Option<Topology> {
    let path = data_dir()?.join(name);
    Some(Topology::from_hwloc_xml(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// A counter-based pseudo-random sequence (SplitMix64, Steele, Lea and Flood 2014): cheap,
/// independent per thread when seeded per thread, and a failing run replays from its seed.
pub struct Draw(pub u64);

impl Draw {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
