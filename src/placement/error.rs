//! [`PlacementError`]: a request no placement can satisfy.

use core::fmt;

use super::room::size;

/// Why [`decide`](super::decide) found no placement for a request.
///
/// ```
/// use umrf::placement::{decide, PlacementError, Request};
/// use umrf::topology::{CpuSet, Node, Package, Topology};
/// let topo = Topology::builder()
///     .node(Node::new(0, CpuSet::parse_list("0-3")?).with_memory(Some(8 << 30), None))
///     .node(Node::new(1, CpuSet::parse_list("4-7")?).with_memory(Some(8 << 30), None))
///     .package(Package::new(0, CpuSet::parse_list("0-3")?))
///     .package(Package::new(1, CpuSet::parse_list("4-7")?))
///     .build()?;
/// let err = decide(&Request::new(12 << 30).from_cpu(0), &topo).unwrap_err();
/// assert!(matches!(err, PlacementError::NoRoom { .. }));
/// assert!(err.to_string().contains("allow_spread"), "{err}");
/// assert!(decide(&Request::new(12 << 30).from_cpu(0).allow_spread(true), &topo).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlacementError {
    /// No node the request may use has room for it, and spreading is not allowed or would
    /// not fit either.
    NoRoom {
        /// Bytes asked for.
        bytes: usize,
        /// The node with the most room, if any reports memory.
        largest_node: Option<u32>,
        /// Its room in bytes (free memory where known, else size).
        largest_room: u64,
        /// The room of all nodes with CPUs together, where every one's is known.
        total_room: Option<u64>,
        /// How many nodes with CPUs there are.
        nodes: usize,
        /// Whether the request allowed spreading over nodes.
        spread_allowed: bool,
    },
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PlacementError::NoRoom {
            bytes,
            largest_node,
            largest_room,
            total_room,
            nodes,
            spread_allowed,
        } = self;
        let wanted = *bytes as u64;
        write!(f, "no NUMA node has room for {}: ", size(wanted))?;
        match largest_node {
            Some(node) => write!(f, "the largest is node {node} with {}", size(*largest_room))?,
            None => f.write_str("no node reports its memory")?,
        }
        match (total_room, nodes) {
            (Some(_), 1) => f.write_str(", the only node with CPUs")?,
            (Some(total), _) => write!(f, ", {} across the {nodes} nodes with CPUs", size(*total))?,
            (None, _) => {}
        }
        match total_room {
            Some(total) if *total >= wanted && !spread_allowed => write!(
                f,
                "; allow spreading it over several nodes (`Request::allow_spread(true)`), or ask \
                 for at most {} so one node holds it",
                size(*largest_room)
            ),
            Some(total) => write!(
                f,
                "; ask for at most {} in all, or free memory on the nodes (the room is a \
                 snapshot taken when the topology was read: read it again for a fresh one)",
                size(*total)
            ),
            None => f.write_str("; ask for less, or free memory on the nodes"),
        }
    }
}

impl std::error::Error for PlacementError {}
