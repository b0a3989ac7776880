//! Choices a pool builder passes to the backing layer.

/// What a [`Cxl`](crate::residency::Cxl) pool does on a machine without CXL memory nodes.
///
/// ```
/// use umrf::backing::CxlFallback;
/// use umrf::{Error, Pool, residency::Cxl};
/// use umrf::topology::{CpuSet, Node, Topology};
///
/// // A machine with one DRAM node and no CXL memory.
/// let topo = Topology::builder().node(Node::new(0, CpuSet::first_n(1))).build()?;
/// let err = Pool::<Cxl>::builder().slots(1).topology(topo.clone()).build().unwrap_err();
/// assert!(matches!(err, Error::NoCxlNode { .. }));
///
/// let pool = Pool::<Cxl>::builder()
///     .block_size(4096)
///     .blocks_per_slot(4)
///     .slots(1)
///     .topology(topo)
///     .cxl_fallback(CxlFallback::Emulate)
///     .build()?;
/// assert!(pool.backing()[0].emulated);
/// assert!(pool.stats().emulated);
/// assert!(format!("{pool:?}").contains("EMULATED"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CxlFallback {
    /// Fail with [`Error::NoCxlNode`](crate::Error::NoCxlNode) (the default).
    #[default]
    Fail,
    /// Build anyway from the memory node farthest from each slot's CPU, marked as emulated in
    /// [`BackingInfo::emulated`](super::BackingInfo::emulated), the pool's stats and its
    /// `Debug` output.
    Emulate,
}

/// Which kind of huge pages a [`Hugepage`](crate::residency::Hugepage) pool may use.
///
/// ```
/// use umrf::backing::{HugePageMode, Mechanism};
/// use umrf::{Pool, residency::Hugepage};
/// let pool = Pool::<Hugepage>::builder()
///     .block_size(4096)
///     .blocks_per_slot(8)
///     .slots(1)
///     .huge_pages(HugePageMode::Transparent)
///     .build()?;
/// assert_eq!(pool.backing()[0].mechanism, Mechanism::TransparentHugePages);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HugePageMode {
    /// Explicit huge pages when the reserved pool has enough free pages, else transparent huge
    /// pages; [`BackingInfo`](super::BackingInfo) says which (the default).
    #[default]
    Auto,
    /// Explicit huge pages only; fail with
    /// [`Error::HugePagesUnavailable`](crate::Error::HugePagesUnavailable) when too few are
    /// reserved.
    Explicit,
    /// Transparent huge pages only; fail when the kernel has them disabled.
    Transparent,
}

/// The builder's backing choices, as the backing layer reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BackingOptions {
    pub(crate) cxl_fallback: CxlFallback,
    pub(crate) huge_pages: HugePageMode,
}
