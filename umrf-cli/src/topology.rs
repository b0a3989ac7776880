//! `umrf topology`: what the machine has, as readable text or JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use umrf::topology::{Node, Topology};

/// Reads the topology under `root` (`/` for this machine).
///
/// # Errors
/// The reader's error, with the root named and a remedy.
pub fn load(root: &Path) -> Result<Topology, String> {
    Topology::from_sysfs(root).map_err(|e| {
        format!(
            "cannot read the topology under {}: {e}; pass --sysfs-root with a directory that \
             holds sys/devices/system and proc/meminfo (an extracted hwloc sysfs tarball, or /)",
            root.display()
        )
    })
}

/// Bytes in a human unit: `16.0 GiB`, `2 MiB`, `512 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let shown = format!("{value:.1}");
    format!(
        "{} {}",
        shown.strip_suffix(".0").unwrap_or(&shown),
        UNITS[unit]
    )
}

fn optional_bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_owned(), bytes)
}

/// The readable report: source, nodes (CPUs, memory, kind, tier), distances, tiers, huge pages.
pub fn render_text(topo: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "source: {}", topo.source());
    let _ = writeln!(
        out,
        "online CPUs: {} ({})",
        topo.online_cpus().len(),
        topo.online_cpus()
    );
    let _ = writeln!(
        out,
        "memory: {}   base page: {}   default huge page: {}",
        optional_bytes(topo.memory_total()),
        optional_bytes(topo.base_page_size()),
        optional_bytes(topo.default_huge_page_size())
    );
    let _ = writeln!(out, "nodes: {}", topo.nodes().len());
    for node in topo.nodes() {
        let _ = writeln!(out, "  {}", node_line(node));
    }
    let distances = topo.distances();
    if distances.is_known() {
        let _ = writeln!(out, "distances:");
        let ids = distances.node_ids();
        let header: Vec<String> = ids.iter().map(|id| format!("{id:>4}")).collect();
        let _ = writeln!(out, "  node{}", header.join(""));
        for &from in ids {
            let row: Vec<String> = distances
                .row(from)
                .unwrap_or_default()
                .iter()
                .map(|d| format!("{d:>4}"))
                .collect();
            let _ = writeln!(out, "  {from:>4}{}", row.join(""));
        }
    } else {
        let _ = writeln!(out, "distances: unknown");
    }
    if topo.memory_tiers().is_empty() {
        let _ = writeln!(out, "memory tiers: none reported");
    } else {
        let _ = writeln!(out, "memory tiers:");
        for tier in topo.memory_tiers() {
            let nodes: Vec<String> = tier.nodes.iter().map(u32::to_string).collect();
            let _ = writeln!(out, "  tier {}: nodes {}", tier.id, nodes.join(","));
        }
    }
    if topo.hugepage_pools().is_empty() {
        let _ = writeln!(out, "huge pages: none");
    } else {
        let _ = writeln!(out, "huge pages:");
        for pool in topo.hugepage_pools() {
            let free = pool.free.map_or_else(|| "?".to_owned(), |f| f.to_string());
            let _ = write!(
                out,
                "  {}: {} pages, {free} free",
                bytes(pool.page_size),
                pool.total
            );
            let per_node: Vec<String> = pool
                .per_node
                .iter()
                .map(|n| format!("node {}: {}", n.node, n.total))
                .collect();
            if !per_node.is_empty() {
                let _ = write!(out, " ({})", per_node.join(", "));
            }
            out.push('\n');
        }
    }
    out
}

fn node_line(node: &Node) -> String {
    let cpus = if node.has_cpus() {
        format!("{} CPUs ({})", node.cpus().len(), node.cpus())
    } else {
        "memory only".to_owned()
    };
    let tier = node
        .tier()
        .map_or_else(String::new, |t| format!(", tier {t}"));
    format!(
        "node {}: {cpus}, {} {}{tier} — {}",
        node.id(),
        optional_bytes(node.memory_total()),
        node.kind(),
        node.kind_reason()
    )
}

/// The same facts as JSON, for scripts.
pub fn render_json(topo: &Topology) -> Value {
    let distances = topo.distances();
    let rows: Vec<Value> = distances
        .node_ids()
        .iter()
        .map(|&id| json!(distances.row(id).unwrap_or_default()))
        .collect();
    json!({
        "source": topo.source().to_string(),
        "online_cpus": topo.online_cpus().iter().collect::<Vec<u32>>(),
        "memory_total": topo.memory_total(),
        "base_page_size": topo.base_page_size(),
        "default_huge_page_size": topo.default_huge_page_size(),
        "nodes": topo.nodes().iter().map(|n| json!({
            "id": n.id(),
            "cpus": n.cpus().iter().collect::<Vec<u32>>(),
            "memory_total": n.memory_total(),
            "memory_free": n.memory_free(),
            "kind": n.kind().to_string(),
            "kind_reason": n.kind_reason(),
            "tier": n.tier(),
            "memory_only": n.is_memory_only(),
        })).collect::<Vec<_>>(),
        "distances": if distances.is_known() {
            json!({ "nodes": distances.node_ids(), "rows": rows })
        } else {
            Value::Null
        },
        "memory_tiers": topo.memory_tiers().iter().map(|t| json!({
            "id": t.id, "nodes": t.nodes,
        })).collect::<Vec<_>>(),
        "huge_pages": topo.hugepage_pools().iter().map(|p| json!({
            "page_size": p.page_size,
            "total": p.total,
            "free": p.free,
            "per_node": p.per_node.iter().map(|n| json!({
                "node": n.node, "total": n.total, "free": n.free,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_readable() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(2 * 1024 * 1024), "2 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(1_026_555_904), "979 MiB");
    }
}
