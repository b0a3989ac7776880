//! Reading one mapping's entry in `/proc/self/smaps`: how much of it sits in huge pages.
//!
//! Regions are bracketed by `PROT_NONE` guard areas (see `region.rs`), so the kernel never
//! merges a region's mapping with a neighbour and its smaps entry describes exactly that
//! region. Format: `Documentation/filesystems/proc.rst`, "The /proc/PID/smaps".

use std::io;

/// The figures of one mapping, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vma {
    /// First address.
    pub(crate) start: usize,
    /// One past the last address.
    pub(crate) end: usize,
    /// `KernelPageSize`: the page size the kernel maps the area with.
    pub(crate) kernel_page: usize,
    /// `AnonHugePages`: anonymous memory in transparent huge pages.
    pub(crate) anon_huge: usize,
    /// `Private_Hugetlb` + `Shared_Hugetlb`: memory in explicit huge pages.
    pub(crate) hugetlb: usize,
    /// `Locked`: memory locked in RAM.
    pub(crate) locked: usize,
}

/// The entries of the mappings that start at one of `starts` in smaps text.
pub(crate) fn find(text: &str, starts: &[usize]) -> Vec<Vma> {
    let mut found = Vec::new();
    let mut current: Option<Vma> = None;
    for line in text.lines() {
        if let Some((lo, hi)) = header(line) {
            found.extend(current.take());
            if starts.contains(&lo) {
                current = Some(Vma {
                    start: lo,
                    end: hi,
                    ..Vma::default()
                });
            }
            continue;
        }
        let Some(vma) = current.as_mut() else {
            continue;
        };
        let Some((key, kb)) = field(line) else {
            continue;
        };
        let bytes = kb.saturating_mul(1024);
        match key {
            "KernelPageSize" => vma.kernel_page = bytes,
            "AnonHugePages" => vma.anon_huge = bytes,
            "Private_Hugetlb" | "Shared_Hugetlb" => vma.hugetlb += bytes,
            "Locked" => vma.locked = bytes,
            _ => {}
        }
    }
    found.extend(current);
    found
}

/// Reads this process's smaps once and returns the mappings that start at one of `starts`.
///
/// # Errors
/// When `/proc/self/smaps` cannot be read (no procfs).
pub(crate) fn read_many(starts: &[usize]) -> io::Result<Vec<Vma>> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    Ok(find(&text, starts))
}

/// `start-end perms …`: the address range of a mapping's header line.
fn header(line: &str) -> Option<(usize, usize)> {
    let range = line.split_ascii_whitespace().next()?;
    let (lo, hi) = range.split_once('-')?;
    Some((
        usize::from_str_radix(lo, 16).ok()?,
        usize::from_str_radix(hi, 16).ok()?,
    ))
}

/// `Key:   123 kB`: a size field.
fn field(line: &str) -> Option<(&str, usize)> {
    let (key, rest) = line.split_once(':')?;
    let mut words = rest.split_ascii_whitespace();
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
7f0000000000-7f0000001000 ---p 00000000 00:00 0 
Size:                  4 kB
KernelPageSize:        4 kB
AnonHugePages:         0 kB
7f0000200000-7f0000600000 rw-p 00000000 00:00 0 
Size:               4096 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                4096 kB
AnonHugePages:      2048 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Locked:             4096 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac hg 
7f0000600000-7f0000a00000 rw-p 00000000 00:0f 1234 /anon_hugepage (deleted)
Size:               4096 kB
KernelPageSize:     2048 kB
AnonHugePages:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:    4096 kB
Locked:                0 kB
";

    fn one(text: &str, start: usize) -> Option<Vma> {
        let found = find(text, &[start]);
        assert!(found.len() <= 1);
        found.into_iter().next()
    }

    #[test]
    fn finds_the_mappings_by_their_starts() {
        let both = find(SAMPLE, &[0x7f00_0060_0000, 0x7f00_0020_0000, 0x1000]);
        assert_eq!(both.len(), 2);
        let thp = one(SAMPLE, 0x7f00_0020_0000).unwrap();
        assert_eq!(thp.end - thp.start, 4 << 20);
        assert_eq!(
            (thp.kernel_page, thp.anon_huge, thp.hugetlb, thp.locked),
            (4096, 2 << 20, 0, 4 << 20)
        );
        let tlb = one(SAMPLE, 0x7f00_0060_0000).unwrap();
        assert_eq!((tlb.kernel_page, tlb.hugetlb), (2 << 20, 4 << 20));
        assert!(one(SAMPLE, 0x7f00_0020_1000).is_none());
        assert!(one("", 0).is_none());
    }

    #[test]
    fn reads_this_process() {
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let first = text.lines().next().and_then(header).unwrap();
        assert_eq!(one(&text, first.0).map(|v| v.end), Some(first.1));
    }
}
