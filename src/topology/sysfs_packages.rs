//! Processor packages from sysfs: `cpuN/topology/physical_package_id`.

use std::collections::BTreeMap;

use super::cpuset::CpuSet;
use super::error::TopologyError;
use super::package::Package;
use super::rooted::Rooted;
use super::sysfs::CPU_DIR;
use super::sysfs_files::numbered;

/// The packages of the `cpuN` directories under `CPU_DIR`, sorted by id;
/// empty where no CPU has a `topology/physical_package_id` file. A CPU
/// whose file says `-1` (the kernel's "unknown", on some virtual machines)
/// is in no package.
///
/// # Errors
///
/// [`TopologyError::Malformed`] naming the file, if an id is not a number.
pub(crate) fn read_packages(fs: &Rooted) -> Result<Vec<Package>, TopologyError> {
    let Some(names) = fs.list(CPU_DIR)? else {
        return Ok(Vec::new());
    };
    let mut packages: BTreeMap<u32, Package> = BTreeMap::new();
    for cpu in names.iter().filter_map(|n| numbered(n, "cpu")) {
        if cpu >= CpuSet::MAX_CPUS {
            continue;
        }
        let rel = format!("{CPU_DIR}/cpu{cpu}/topology/physical_package_id");
        let Some(text) = fs.read(&rel)? else {
            continue;
        };
        let text = text.trim();
        if text == "-1" {
            continue;
        }
        let id = text.parse::<u32>().map_err(|_| {
            TopologyError::malformed(
                fs.shown(&rel),
                format!("{text:?} is not a package id"),
                "the kernel writes a decimal id (or -1); compare it with the same file on a \
                 live Linux system",
            )
        })?;
        packages
            .entry(id)
            .or_insert_with(|| Package::new(id, CpuSet::new()))
            .insert(cpu);
    }
    Ok(packages.into_values().collect())
}
