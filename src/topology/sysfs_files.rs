//! Parsers for the individual sysfs/procfs file formats the reader uses.
//!
//! Each takes the file's path (for the error message) and its text. Lines
//! and keys the reader does not use are skipped; a key it uses with a value
//! that does not parse is an error.

use std::path::Path;

use super::error::TopologyError;

/// Hint for a file whose format is not the kernel's.
const KERNEL_FORMAT: &str = "compare it with the same file on a live Linux system";

/// The fields of a `meminfo` file (`/proc/meminfo` or `nodeN/meminfo`) the
/// reader uses. Sizes in bytes, counts in pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meminfo {
    /// `MemTotal`.
    pub total: Option<u64>,
    /// `MemFree`.
    pub free: Option<u64>,
    /// `Hugepagesize` (`/proc/meminfo` only).
    pub huge_page_size: Option<u64>,
    /// `HugePages_Total`.
    pub huge_total: Option<u64>,
    /// `HugePages_Free`.
    pub huge_free: Option<u64>,
}

/// Parses `/proc/meminfo` (`MemTotal:  123 kB`) or a node's `meminfo`
/// (`Node 0 MemTotal:  123 kB`): the same keys, the latter prefixed.
pub(crate) fn parse_meminfo(path: &Path, text: &str) -> Result<Meminfo, TopologyError> {
    let mut info = Meminfo::default();
    for line in text.lines() {
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"Node") {
            words.drain(..words.len().min(2));
        }
        let Some((key, rest)) = words.split_first() else {
            continue;
        };
        let bad = |what: &str| {
            TopologyError::malformed(path, format!("line {line:?}: {what}"), KERNEL_FORMAT)
        };
        let slot = match *key {
            "MemTotal:" => &mut info.total,
            "MemFree:" => &mut info.free,
            "Hugepagesize:" => &mut info.huge_page_size,
            "HugePages_Total:" => &mut info.huge_total,
            "HugePages_Free:" => &mut info.huge_free,
            _ => continue,
        };
        let number = rest
            .first()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("expected a decimal number after the key"))?;
        let value = match rest.get(1..) {
            Some([]) | None => number,
            Some(["kB"]) => number
                .checked_mul(1024)
                .ok_or_else(|| bad("size overflows 64 bits"))?,
            Some(_) => return Err(bad("expected nothing or `kB` after the number")),
        };
        *slot = Some(value);
    }
    Ok(info)
}

/// Parses a node's `distance` file: one row of whitespace-separated
/// decimal distances.
pub(crate) fn parse_distance_row(path: &Path, text: &str) -> Result<Vec<u32>, TopologyError> {
    let row = text
        .split_whitespace()
        .map(|w| w.parse::<u32>())
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| {
            TopologyError::malformed(
                path,
                format!("{:?} is not a row of decimal distances", text.trim()),
                KERNEL_FORMAT,
            )
        })?;
    if row.is_empty() {
        return Err(TopologyError::malformed(
            path,
            "the distance row is empty",
            KERNEL_FORMAT,
        ));
    }
    Ok(row)
}

/// Parses a file holding one decimal count (`nr_hugepages`).
pub(crate) fn parse_count(path: &Path, text: &str) -> Result<u64, TopologyError> {
    text.trim().parse::<u64>().map_err(|_| {
        TopologyError::malformed(
            path,
            format!("{:?} is not a decimal count", text.trim()),
            KERNEL_FORMAT,
        )
    })
}

/// The page size in bytes named by a `hugepages-<size>kB` directory.
pub(crate) fn hugepage_dir_size(name: &str) -> Option<u64> {
    let kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?;
    if kb.is_empty() || !kb.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    kb.parse::<u64>().ok()?.checked_mul(1024)
}

/// The `N` of a directory named `<prefix>N` (`node12`, `memory_tier4`).
pub(crate) fn numbered(name: &str, prefix: &str) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The node named by an NVIDIA `numa_status` file (`Node:      255`).
pub(crate) fn parse_numa_status(path: &Path, text: &str) -> Result<Option<u32>, TopologyError> {
    let Some(line) = text.lines().find(|l| l.trim_start().starts_with("Node:")) else {
        return Ok(None);
    };
    let value = line.trim_start().trim_start_matches("Node:").trim();
    // The driver writes -1 when GPU memory is not onlined.
    if value.starts_with('-') {
        return Ok(None);
    }
    value.parse::<u32>().map(Some).map_err(|_| {
        TopologyError::malformed(
            path,
            format!("line {line:?}: expected `Node: <number>`"),
            "this file is written by the NVIDIA driver; compare it with a live system",
        )
    })
}

/// The first `KernelPageSize` of a `smaps` file, in bytes.
pub(crate) fn smaps_page_size(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("KernelPageSize:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kb = words.next()?.parse::<u64>().ok()?;
    (words.next() == Some("kB")).then_some(kb.checked_mul(1024)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("/x/meminfo")
    }

    #[test]
    fn meminfo_both_forms() {
        let node = "Node 3 MemTotal:       129839104 kB\nNode 3 MemFree:  1024 kB\n\
                    Node 3 HugePages_Total:     7\nNode 3 HugePages_Free:  2\n";
        let info = parse_meminfo(p(), node).unwrap();
        assert_eq!(info.total, Some(129_839_104 * 1024));
        assert_eq!(info.free, Some(1024 * 1024));
        assert_eq!((info.huge_total, info.huge_free), (Some(7), Some(2)));
        let proc = "MemTotal:     1603993424 kB\nHugepagesize:    262144 kB\nFoo: bar\n";
        let info = parse_meminfo(p(), proc).unwrap();
        assert_eq!(info.huge_page_size, Some(256 << 20));
        assert_eq!(info.free, None);
        assert_eq!(parse_meminfo(p(), "").unwrap(), Meminfo::default());
    }

    #[test]
    fn meminfo_errors_name_the_file() {
        for bad in [
            "MemTotal: lots kB",
            "MemTotal:",
            "MemTotal: 5 MB",
            "Node 0 MemFree: 99999999999999999999 kB",
            "MemTotal: 18446744073709551615 kB",
        ] {
            let err = parse_meminfo(p(), bad).unwrap_err().to_string();
            assert!(err.contains("/x/meminfo"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn small_formats() {
        assert_eq!(
            parse_distance_row(p(), "10 21 11 21\n").unwrap(),
            [10, 21, 11, 21]
        );
        assert!(parse_distance_row(p(), "\n").is_err());
        assert!(parse_distance_row(p(), "10 x").is_err());
        assert_eq!(parse_count(p(), "2048\n").unwrap(), 2048);
        assert!(parse_count(p(), "-1").is_err());
        assert_eq!(hugepage_dir_size("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(hugepage_dir_size("hugepages-64kB"), Some(64 << 10));
        assert_eq!(hugepage_dir_size("hugepages-kB"), None);
        assert_eq!(hugepage_dir_size("hugepages-2MB"), None);
        assert_eq!(numbered("node250", "node"), Some(250));
        assert_eq!(numbered("node", "node"), None);
        assert_eq!(numbered("node1a", "node"), None);
        assert_eq!(numbered("nodes", "node"), None);
        assert_eq!(
            smaps_page_size("Size: 4 kB\nKernelPageSize:  64 kB\n"),
            Some(65536)
        );
        assert_eq!(smaps_page_size("Size: 4 kB\n"), None);
    }

    #[test]
    fn numa_status() {
        let text = "Node:      255\nStatus:    online\n";
        assert_eq!(parse_numa_status(p(), text).unwrap(), Some(255));
        assert_eq!(parse_numa_status(p(), "Node: -1\n").unwrap(), None);
        assert_eq!(parse_numa_status(p(), "Status: x\n").unwrap(), None);
        assert!(parse_numa_status(p(), "Node: x\n").is_err());
    }
}
