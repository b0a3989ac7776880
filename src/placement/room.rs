//! Which nodes have room for a request: free memory where the topology knows it, else the
//! node's size.

use crate::backing;
use crate::topology::{Node, Topology};

/// The bytes a node can give: its free memory where the source says it (sysfs `MemFree`, a
/// snapshot), else its total; `None` where neither is known.
pub(super) fn room(node: &Node) -> Option<u64> {
    node.memory_free().or(node.memory_total())
}

/// Whether `node` has memory and room for `bytes` (an unknown size counts as room: nothing
/// says otherwise).
pub(super) fn fits(node: &Node, bytes: usize) -> bool {
    backing::has_memory(node) && room(node).is_none_or(|r| r >= bytes as u64)
}

/// The nodes satisfying `wanted`, nearest to `home` first: `home` itself, then by distance
/// (unknown distances last), then the nodes whose local CPUs include `home`'s (a memory-only
/// node attached next to it, where the source has no distances), then by id.
pub(super) fn by_distance(
    topology: &Topology,
    home: Option<u32>,
    wanted: impl Fn(&Node) -> bool,
) -> Vec<&Node> {
    let home_cpus = home.and_then(|h| topology.node(h)).map(Node::cpus);
    let mut nodes: Vec<&Node> = topology.nodes().iter().filter(|n| wanted(n)).collect();
    nodes.sort_by_key(|n| {
        let d = home.and_then(|h| topology.distance(h, n.id()));
        let local = home_cpus.is_some_and(|c| !c.is_empty() && c.is_subset(n.local_cpus()));
        (Some(n.id()) != home, d.unwrap_or(u32::MAX), !local, n.id())
    });
    nodes
}

/// The first of `nodes` with room for `bytes`.
pub(super) fn first_fitting(nodes: &[&Node], bytes: usize) -> Option<u32> {
    nodes.iter().find(|n| fits(n, bytes)).map(|n| n.id())
}

/// The summed room of `nodes`, if every one's is known.
pub(super) fn total_room(nodes: &[&Node]) -> Option<u64> {
    nodes
        .iter()
        .try_fold(0u64, |sum, n| Some(sum.saturating_add(room(n)?)))
}

/// `bytes` in binary units, one decimal where not whole: `16 GiB`, `1.5 GiB`, `300 KiB`.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && bytes >= 1 << (10 * (unit + 1)) {
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} bytes");
    }
    let scale = 1u64 << (10 * unit);
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        // Display only: the precision lost converting to f64 is far below one decimal.
        #[allow(clippy::cast_precision_loss)]
        let value = bytes as f64 / scale as f64;
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What a node offers, for a reason: `node 5 (8 GiB free)`, `node 2 (1 GiB)`, `node 3 (size
/// unknown)`.
pub(super) fn describe(node: &Node) -> String {
    match (node.memory_free(), node.memory_total()) {
        (Some(free), _) => format!("node {} ({} free)", node.id(), size(free)),
        (None, Some(total)) => format!("node {} ({})", node.id(), size(total)),
        (None, None) => format!("node {} (size unknown)", node.id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::CpuSet;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(16 << 30), "16 GiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
        assert_eq!(size(300 << 10), "300 KiB");
    }

    #[test]
    fn room_is_free_memory_else_size() {
        let free = Node::new(0, CpuSet::first_n(1)).with_memory(Some(8 << 30), Some(1 << 30));
        let total = Node::new(1, CpuSet::first_n(1)).with_memory(Some(8 << 30), None);
        let unknown = Node::new(2, CpuSet::first_n(1));
        let empty = Node::new(3, CpuSet::first_n(1)).with_memory(Some(0), None);
        assert_eq!(
            (room(&free), room(&total), room(&unknown)),
            (Some(1 << 30), Some(8 << 30), None)
        );
        assert!(!fits(&free, 2 << 30) && fits(&total, 2 << 30) && fits(&unknown, usize::MAX));
        assert!(!fits(&empty, 1));
        assert_eq!(describe(&free), "node 0 (1 GiB free)");
        assert_eq!(describe(&unknown), "node 2 (size unknown)");
    }
}
