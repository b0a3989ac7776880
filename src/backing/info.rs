//! What a region really is: the report of the backing layer for one slot.

use core::fmt;

use crate::residency::Strategy;

/// What the operating system really gave for one slot's region.
///
/// The residency type states the strategy that was asked for; this says what was obtained and
/// how it was checked, so a fallback is never silent. Returned by
/// [`Pool::backing`](crate::Pool::backing), one per slot.
///
/// ```
/// use umrf::{Pool, residency::{CpuLocal, Strategy}};
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(4).slots(1).build()?;
/// let info = &pool.backing()[0];
/// assert_eq!(info.strategy, Strategy::CpuLocal);
/// assert!(info.bytes >= 4 * 4096);
/// assert!(info.page_size >= 4096);
/// assert!(!info.emulated && !info.locked);
/// println!("{info}"); // one line: mechanism, pages, nodes, and why
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackingInfo {
    /// The strategy the residency asked for.
    pub strategy: Strategy,
    /// The mechanism that produced the memory.
    pub mechanism: Mechanism,
    /// Size of the region in bytes (a whole number of pages).
    pub bytes: usize,
    /// The page size the region was mapped with, in bytes: the base page, the explicit huge
    /// page size, or for transparent huge pages the huge page size asked for (see
    /// [`huge_page_bytes`](Self::huge_page_bytes) for what the kernel really gave).
    pub page_size: usize,
    /// Bytes of the region that sit in huge pages, as read back from `/proc/self/smaps`
    /// (explicit huge pages count in full once faulted in). Zero where not verified.
    pub huge_page_bytes: usize,
    /// Whether every page was faulted in when the pool was built.
    pub prefaulted: bool,
    /// The CPU this slot serves (slot `i` serves the `i`-th CPU of the builder's list, by
    /// default the `i`-th online CPU); `None` where the CPUs are unknown.
    pub cpu: Option<u32>,
    /// The NUMA memory policy set on the region before its first touch.
    pub policy: NodePolicy,
    /// The NUMA nodes that hold the region's pages, as the kernel reported them
    /// (`move_pages`), sorted; empty when not verified (see [`verified`](Self::verified)).
    pub nodes: Vec<u32>,
    /// Whether placement was read back from the kernel: the nodes of the pages (or, for pages
    /// not yet touched, the policy of the mapping), and for huge pages `/proc/self/smaps`.
    pub verified: bool,
    /// Whether the region is locked in RAM (`mlock`).
    pub locked: bool,
    /// Whether the region is registered with the CUDA driver (`cuMemHostRegister`).
    pub registered: bool,
    /// Whether this is an emulated stand-in for the residency (for example CXL memory emulated
    /// by ordinary DRAM, which the builder must opt into).
    pub emulated: bool,
    /// Why this mechanism, node and page size were used, in words.
    pub reason: String,
}

impl fmt::Display for BackingInfo {
    /// One line: `EMULATED` first where it applies, then the strategy, the mechanism, the
    /// pages, the nodes and the reason.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(1).slots(1).build()?;
    /// let line = pool.backing()[0].to_string();
    /// assert!(line.starts_with("cpu-local"), "{line}");
    /// # Ok::<(), umrf::Error>(())
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.emulated {
            f.write_str("EMULATED ")?;
        }
        write!(f, "{}", self.strategy)?;
        if let Some(cpu) = self.cpu {
            write!(f, " for CPU {cpu}")?;
        }
        write!(
            f,
            ": {}, {} in {} pages",
            self.mechanism,
            Bytes(self.bytes),
            Bytes(self.page_size)
        )?;
        if self.huge_page_bytes > 0 && self.mechanism == Mechanism::TransparentHugePages {
            write!(f, " ({} huge)", Bytes(self.huge_page_bytes))?;
        }
        write!(f, ", policy {}", self.policy)?;
        if !self.nodes.is_empty() {
            let nodes: Vec<String> = self.nodes.iter().map(u32::to_string).collect();
            write!(f, ", pages on node {}", nodes.join(","))?;
        }
        f.write_str(if self.verified {
            " (verified)"
        } else {
            " (not verified)"
        })?;
        for (flag, word) in [
            (self.locked, "locked"),
            (self.registered, "CUDA-registered"),
        ] {
            if flag {
                write!(f, ", {word}")?;
            }
        }
        write!(f, "; {}", self.reason)
    }
}

/// The mechanism that produced a region's memory.
///
/// ```
/// use umrf::backing::Mechanism;
/// assert_eq!(Mechanism::AnonymousMmap.to_string(), "anonymous mmap");
/// assert_eq!(Mechanism::ExplicitHugePages.to_string(), "explicit huge pages (MAP_HUGETLB)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// A private anonymous `mmap` of base pages.
    AnonymousMmap,
    /// A private anonymous `mmap` of explicit huge pages from the reserved pool
    /// (`MAP_HUGETLB`, `/proc/sys/vm/nr_hugepages`).
    ExplicitHugePages,
    /// A private anonymous `mmap`, aligned to the huge page size, with
    /// `madvise(MADV_HUGEPAGE)`: the kernel backs it with transparent huge pages where it can.
    TransparentHugePages,
    /// The global allocator, used where system calls cannot run (Miri, loom).
    Heap,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::AnonymousMmap => "anonymous mmap",
            Mechanism::ExplicitHugePages => "explicit huge pages (MAP_HUGETLB)",
            Mechanism::TransparentHugePages => "transparent huge pages (MADV_HUGEPAGE)",
            Mechanism::Heap => "heap allocation",
        })
    }
}

/// The NUMA memory policy a region was given before its first touch (`mbind(2)`).
///
/// ```
/// use umrf::backing::NodePolicy;
/// assert_eq!(NodePolicy::Bind { node: 1 }.to_string(), "bind to node 1");
/// assert_eq!(NodePolicy::Bind { node: 1 }.node(), Some(1));
/// assert_eq!(NodePolicy::Default.node(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodePolicy {
    /// The process's default policy (usually: the node of the CPU that first touches a page).
    Default,
    /// `MPOL_PREFERRED`: pages come from `node` while it has free memory, else from others.
    Preferred {
        /// The preferred node.
        node: u32,
    },
    /// `MPOL_BIND`: pages come from `node` only; the build fails if they cannot.
    Bind {
        /// The node.
        node: u32,
    },
}

impl NodePolicy {
    /// The node the policy names, if any.
    pub fn node(self) -> Option<u32> {
        match self {
            NodePolicy::Default => None,
            NodePolicy::Preferred { node } | NodePolicy::Bind { node } => Some(node),
        }
    }
}

impl fmt::Display for NodePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodePolicy::Default => f.write_str("default"),
            NodePolicy::Preferred { node } => write!(f, "prefer node {node}"),
            NodePolicy::Bind { node } => write!(f, "bind to node {node}"),
        }
    }
}

/// A pool's backing in one line for `Debug`: the first slot's report, and how many more slots
/// there are. An emulated backing starts with `EMULATED`.
pub(crate) struct Summary<'a>(pub(crate) &'a [BackingInfo]);

impl fmt::Debug for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("none"),
            [only] => write!(f, "{only}"),
            [first, rest @ ..] => write!(f, "{first} (+{} more slots)", rest.len()),
        }
    }
}

/// A byte count in the largest binary unit that divides it (`4 KiB`, `2 MiB`, `1.5 GiB`).
pub(crate) struct Bytes(pub(crate) usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (unit, size) in UNITS {
            if self.0 >= size {
                return if self.0.is_multiple_of(size) {
                    write!(f, "{} {unit}", self.0 / size)
                } else {
                    write!(f, "{:.1} {unit}", self.0 as f64 / size as f64)
                };
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_naturally() {
        let s = |n| Bytes(n).to_string();
        assert_eq!(s(4096), "4 KiB");
        assert_eq!(s(2 << 20), "2 MiB");
        assert_eq!(s(3 << 29), "1.5 GiB");
        assert_eq!(s(100), "100 B");
    }
}
