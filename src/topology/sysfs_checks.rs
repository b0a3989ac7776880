//! Checks of sysfs data that no kernel writes: a node's distance to itself
//! other than 10, another node at distance 10 or less, two nodes listing
//! the same CPU. Those are errors naming the file. An asymmetric distance
//! matrix is allowed by ACPI (SLIT) but rare, so it is a warning.
//!
//! The kernel's own checks are the reference: Linux's ACPI `slit_valid()`
//! and `numa_set_distance()` reject a self distance other than
//! `LOCAL_DISTANCE` (10) and any other distance of 10 or less.

use std::path::PathBuf;

use super::cpuset::CpuSet;
use super::error::TopologyError;

/// Distance of a node to itself (Linux `LOCAL_DISTANCE`, ACPI SLIT).
const LOCAL_DISTANCE: u32 = 10;
/// Hint for data the kernel never writes.
const IMPOSSIBLE: &str = "no Linux kernel writes this; the dump is corrupt or was edited by hand";
/// Asymmetric pairs named in a warning before "and N more".
const SHOWN_PAIRS: usize = 4;

/// Checks the distance rows (`rows[i]` of node `ids[i]`, read from
/// `files[i]`); returns the warnings.
///
/// # Errors
///
/// [`TopologyError::Malformed`] naming the row's file for a self distance
/// other than 10, or a distance to another node of 10 or less.
pub(crate) fn check_distances(
    ids: &[u32],
    rows: &[Vec<u32>],
    files: &[PathBuf],
) -> Result<Vec<String>, TopologyError> {
    for (i, row) in rows.iter().enumerate() {
        for (j, &d) in row.iter().enumerate() {
            let (from, to) = (ids[i], ids[j]);
            if i == j && d != LOCAL_DISTANCE {
                return Err(TopologyError::malformed(
                    &files[i],
                    format!(
                        "node {from}'s distance to itself is {d}; the kernel always writes \
                         {LOCAL_DISTANCE} there"
                    ),
                    IMPOSSIBLE,
                ));
            }
            if i != j && d <= LOCAL_DISTANCE {
                return Err(TopologyError::malformed(
                    &files[i],
                    format!(
                        "node {from}'s distance to node {to} is {d}, no more than its distance \
                         to itself ({LOCAL_DISTANCE}); the kernel rejects such tables"
                    ),
                    IMPOSSIBLE,
                ));
            }
        }
    }
    let mut asymmetric = Vec::new();
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            if rows[i][j] != rows[j][i] {
                asymmetric.push(format!(
                    "{} -> {} is {} but {} -> {} is {}",
                    ids[i], ids[j], rows[i][j], ids[j], ids[i], rows[j][i]
                ));
            }
        }
    }
    if asymmetric.is_empty() {
        return Ok(Vec::new());
    }
    let more = asymmetric.len().saturating_sub(SHOWN_PAIRS);
    asymmetric.truncate(SHOWN_PAIRS);
    let dir = files[0].parent().and_then(|p| p.parent());
    Ok(vec![format!(
        "{}: the distance matrix is asymmetric (node {}{}); ACPI allows it, but it is rare \
         and often a firmware error: nearest-node choices follow the requester's own row",
        dir.unwrap_or(&files[0]).display(),
        asymmetric.join("; node "),
        if more > 0 {
            format!("; and {more} more pairs")
        } else {
            String::new()
        }
    )])
}

/// Checks that no two nodes list the same CPU (`cpus[i]` of node `ids[i]`,
/// read from `files[i]`).
///
/// # Errors
///
/// [`TopologyError::Malformed`] naming both files.
pub(crate) fn check_cpus_disjoint(
    ids: &[u32],
    cpus: &[&CpuSet],
    files: &[PathBuf],
) -> Result<(), TopologyError> {
    for i in 0..cpus.len() {
        for j in i + 1..cpus.len() {
            if let Some(cpu) = cpus[i].intersection(cpus[j]).first() {
                return Err(TopologyError::malformed(
                    &files[i],
                    format!(
                        "nodes {} and {} both list CPU {cpu} (also in {}); the kernel gives \
                         each CPU to exactly one node",
                        ids[i],
                        ids[j],
                        files[j].display()
                    ),
                    IMPOSSIBLE,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| PathBuf::from(format!("/r/sys/devices/system/node/node{i}/distance")))
            .collect()
    }

    #[test]
    fn impossible_distances_are_errors_naming_the_file() {
        let bad = [
            (
                vec![vec![0, 20], vec![20, 10]],
                "node0/distance",
                "itself is 0",
            ),
            (
                vec![vec![10, 20], vec![20, 11]],
                "node1/distance",
                "itself is 11",
            ),
            (
                vec![vec![10, 10], vec![20, 10]],
                "node0/distance",
                "node 1 is 10",
            ),
            (
                vec![vec![10, 20], vec![0, 10]],
                "node1/distance",
                "node 0 is 0",
            ),
        ];
        for (rows, file, what) in bad {
            let err = check_distances(&[0, 1], &rows, &files(2))
                .unwrap_err()
                .to_string();
            assert!(err.contains(file) && err.contains(what), "{err}");
        }
    }

    #[test]
    fn asymmetry_is_a_warning() {
        let rows = vec![vec![10, 20, 30], vec![21, 10, 20], vec![30, 20, 10]];
        let warnings = check_distances(&[0, 1, 2], &rows, &files(3)).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("/r/sys/devices/system/node:")
                && warnings[0].contains("0 -> 1 is 20 but 1 -> 0 is 21"),
            "{warnings:?}"
        );
        let sym = vec![vec![10, 20], vec![20, 10]];
        assert!(
            check_distances(&[0, 1], &sym, &files(2))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn shared_cpus_are_errors_naming_both_files() {
        let a = CpuSet::parse_list("0-3").unwrap();
        let b = CpuSet::parse_list("3-5").unwrap();
        let paths = [
            PathBuf::from("/r/node0/cpulist"),
            PathBuf::from("/r/node1/cpulist"),
        ];
        let err = check_cpus_disjoint(&[0, 1], &[&a, &b], &paths)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/r/node0/cpulist") && err.contains("/r/node1/cpulist"),
            "{err}"
        );
        assert!(err.contains("CPU 3"), "{err}");
        let c = CpuSet::parse_list("4-5").unwrap();
        assert!(check_cpus_disjoint(&[0, 1], &[&a, &c], &paths).is_ok());
    }
}
