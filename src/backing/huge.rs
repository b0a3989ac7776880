//! What huge pages this machine offers right now: the explicit pools' free pages and the
//! transparent-huge-page mode, read fresh from sysfs at each build (the topology's figures are
//! a snapshot, or describe another machine).
//!
//! Files: `/sys/kernel/mm/hugepages/hugepages-<size>kB/{free,resv}_hugepages` and
//! `/sys/kernel/mm/transparent_hugepage/{enabled,hpage_pmd_size}`
//! (`Documentation/admin-guide/mm/hugetlbpage.rst`, `…/transhuge.rst`).

use std::path::Path;

/// One explicit huge-page pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExplicitPool {
    /// Bytes per page.
    pub(crate) page_size: usize,
    /// Pages free and not reserved by another mapping.
    pub(crate) available: u64,
}

/// The transparent-huge-page mode (`enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThpMode {
    /// Every anonymous mapping may get huge pages.
    Always,
    /// Mappings advised with `MADV_HUGEPAGE` get huge pages.
    Madvise,
    /// Disabled.
    Never,
    /// The kernel has no transparent huge pages (no sysfs entry).
    Unavailable,
}

impl ThpMode {
    /// Whether `madvise(MADV_HUGEPAGE)` can give huge pages.
    pub(crate) fn usable(self) -> bool {
        matches!(self, ThpMode::Always | ThpMode::Madvise)
    }
}

/// The explicit pools under `root` (`/` for this machine), sorted by page size.
pub(crate) fn explicit_pools(root: &Path) -> Vec<ExplicitPool> {
    let dir = root.join("sys/kernel/mm/hugepages");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut pools: Vec<ExplicitPool> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let kb: usize = name
                .to_str()?
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let read = |file: &str| -> Option<u64> {
                std::fs::read_to_string(entry.path().join(file))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            let free = read("free_hugepages")?;
            let reserved = read("resv_hugepages").unwrap_or(0);
            Some(ExplicitPool {
                page_size: kb.checked_mul(1024)?,
                available: free.saturating_sub(reserved),
            })
        })
        .collect();
    pools.sort_by_key(|p| p.page_size);
    pools
}

/// The explicit page size to use for `bytes`: the largest size no larger than the request
/// (or the smallest size, for a request smaller than every size) whose pool has enough pages.
pub(crate) fn choose_explicit(pools: &[ExplicitPool], bytes: usize) -> Option<usize> {
    let smallest = pools.first()?.page_size;
    pools
        .iter()
        .rev()
        .filter(|p| p.page_size <= bytes.max(smallest))
        .find(|p| p.available >= bytes.div_ceil(p.page_size) as u64)
        .map(|p| p.page_size)
}

/// Why no explicit pool can hold `bytes`: pages needed and free, of the default size.
pub(crate) fn explicit_shortfall(pools: &[ExplicitPool], bytes: usize) -> String {
    let Some(default) = pools
        .iter()
        .find(|p| p.page_size == 2 << 20)
        .or(pools.first())
    else {
        return "this kernel has no explicit huge pages (no /sys/kernel/mm/hugepages)".to_owned();
    };
    format!(
        "{} explicit huge pages of {} KiB needed, {} free",
        bytes.div_ceil(default.page_size),
        default.page_size / 1024,
        default.available
    )
}

/// How to reserve explicit huge pages.
pub(crate) const RESERVE_REMEDY: &str = "reserve them as root: `echo N > /proc/sys/vm/nr_hugepages` (2 MiB pages), or `/sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages`";

/// The transparent-huge-page mode under `root`.
pub(crate) fn thp_mode(root: &Path) -> ThpMode {
    let Ok(text) = std::fs::read_to_string(root.join("sys/kernel/mm/transparent_hugepage/enabled"))
    else {
        return ThpMode::Unavailable;
    };
    // The active choice is in brackets: "always [madvise] never".
    let active = text
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'));
    match active {
        Some("always") => ThpMode::Always,
        Some("madvise") => ThpMode::Madvise,
        Some("never") => ThpMode::Never,
        _ => ThpMode::Unavailable,
    }
}

/// The transparent huge page size under `root` (2 MiB where the file is missing).
pub(crate) fn thp_size(root: &Path) -> usize {
    std::fs::read_to_string(root.join("sys/kernel/mm/transparent_hugepage/hpage_pmd_size"))
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok())
        .filter(|s| s.is_power_of_two())
        .unwrap_or(2 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn pool(page_size: usize, available: u64) -> ExplicitPool {
        ExplicitPool {
            page_size,
            available,
        }
    }

    #[test]
    fn explicit_choice_takes_the_largest_fitting_size() {
        let pools = [pool(2 * MIB, 600), pool(1024 * MIB, 1)];
        assert_eq!(choose_explicit(&pools, 1024 * MIB), Some(1024 * MIB));
        assert_eq!(choose_explicit(&pools, 1000 * MIB), Some(2 * MIB));
        assert_eq!(choose_explicit(&pools, 64 * 1024), Some(2 * MIB));
        assert_eq!(choose_explicit(&pools, 2048 * MIB), None);
        assert_eq!(choose_explicit(&[pool(2 * MIB, 0)], 4096), None);
        assert_eq!(choose_explicit(&[], 4096), None);
        let why = explicit_shortfall(&[pool(2 * MIB, 3)], 10 * MIB);
        assert_eq!(why, "5 explicit huge pages of 2048 KiB needed, 3 free");
    }

    fn fake_root(files: &[(&str, &str)]) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "umrf-huge-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    #[cfg_attr(miri, ignore = "file system")]
    fn sysfs_files_are_read() {
        let root = fake_root(&[
            (
                "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
                "10\n",
            ),
            (
                "sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages",
                "4\n",
            ),
            (
                "sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages",
                "0\n",
            ),
            (
                "sys/kernel/mm/transparent_hugepage/enabled",
                "always madvise [never]\n",
            ),
            (
                "sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
                "2097152\n",
            ),
        ]);
        assert_eq!(
            explicit_pools(&root),
            [pool(2 * MIB, 6), pool(1024 * MIB, 0)]
        );
        assert_eq!(thp_mode(&root), ThpMode::Never);
        assert_eq!(thp_size(&root), 2 * MIB);
        let empty = fake_root(&[]);
        assert!(explicit_pools(&empty).is_empty());
        assert_eq!(thp_mode(&empty), ThpMode::Unavailable);
        std::fs::remove_dir_all(root).unwrap();
    }
}
