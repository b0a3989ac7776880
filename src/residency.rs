//! Residency markers: where a pool's memory lives, as a zero-sized type parameter.
//!
//! Every [`Pool`](crate::Pool), [`SharedBuffer`](crate::SharedBuffer) and
//! [`Capability`](crate::Capability) carries its residency `R` in its type, so code that needs
//! huge-page memory says `SharedBuffer<f32, Hugepage>` and the compiler refuses a buffer from any
//! other pool (invariant I2: a block's residency never changes and is visible in its type).
//!
//! A marker promises *how the region was obtained* (its [`Strategy`]); what the operating system
//! really gave is reported at run time by [`Pool::backing`](crate::Pool::backing).
//!
//! ```
//! use umrf::residency::{CpuLocal, Hugepage, Node1, NumaNode, Residency, Strategy};
//! use umrf::typenum::U1;
//!
//! assert_eq!(Hugepage::NAME, "Hugepage");
//! assert_eq!(<NumaNode<U1>>::STRATEGY, Strategy::Numa { node: 1 });
//! // `Node1` is an alias of `NumaNode<U1>`: the same type.
//! fn takes_node1(_: Node1) {}
//! takes_node1(NumaNode::<U1>::new());
//! assert_eq!(CpuLocal::STRATEGY, Strategy::CpuLocal);
//! ```

use core::fmt;
use core::marker::PhantomData;

use typenum::Unsigned;

/// How a region of memory with a given residency is obtained.
///
/// This is the runtime face of a residency marker: the backing layer reads it to decide which
/// system calls make a slot's region, and errors and metrics print it.
///
/// ```
/// use umrf::residency::{Cxl, Residency, Strategy};
/// assert_eq!(Cxl::STRATEGY, Strategy::Cxl);
/// assert_eq!(Strategy::Numa { node: 3 }.to_string(), "numa node 3");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Memory on the NUMA node of the CPU that owns the slot.
    CpuLocal,
    /// Memory bound to one NUMA node.
    Numa {
        /// The operating system's id of the node.
        node: u32,
    },
    /// Memory backed by huge pages (explicit, or transparent as a reported fallback).
    Hugepage,
    /// Memory on a CPU-less node that the topology classes as CXL-attached.
    Cxl,
    /// Page-locked host memory that a GPU can reach by DMA.
    GpuPinned,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::CpuLocal => f.write_str("cpu-local"),
            Strategy::Numa { node } => write!(f, "numa node {node}"),
            Strategy::Hugepage => f.write_str("huge pages"),
            Strategy::Cxl => f.write_str("cxl memory"),
            Strategy::GpuPinned => f.write_str("gpu-pinned"),
        }
    }
}

/// A memory residency: a zero-sized marker type naming how a pool's regions are obtained.
///
/// Implemented by the built-in markers [`CpuLocal`], [`NumaNode<N>`], [`Cxl`], [`GpuPinned`] and
/// [`Hugepage`], and by user markers through `#[derive(Residency)]`, which reuse a built-in
/// strategy under a distinct type and name:
///
/// ```
/// use umrf::residency::{Hugepage, Residency};
///
/// #[derive(umrf::Residency)]
/// #[residency(like = Hugepage, name = "staging")]
/// struct Staging;
///
/// assert_eq!(Staging::NAME, "staging");
/// assert_eq!(Staging::STRATEGY, Hugepage::STRATEGY);
/// ```
///
/// No unsafe code trusts an implementation of this trait: a residency chooses system calls,
/// never the memory-safety of the pool.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a memory residency",
    label = "not a residency marker",
    note = "use one of `CpuLocal`, `NumaNode<N>`, `Cxl`, `GpuPinned`, `Hugepage`, or declare one with `#[derive(umrf::Residency)]`"
)]
pub trait Residency: Send + Sync + 'static {
    /// A short name for errors, `Debug` output and metrics labels.
    const NAME: &'static str;
    /// How regions of this residency are obtained.
    const STRATEGY: Strategy;

    /// The node of the built-in marker `NumaNode<N>`, `None` for every other type.
    ///
    /// Run-time residency checks use it to recognise `NumaNode<N>` by type, not by name. Its
    /// argument's type cannot be named outside this crate, so no other implementation can
    /// override it: a marker of any name stays a custom marker.
    #[doc(hidden)]
    fn builtin_numa_node(_: sealed::Token) -> Option<u32> {
        None
    }
}

mod sealed {
    /// Names a method no implementation outside the crate can override.
    #[derive(Clone, Copy, Debug)]
    pub struct Token;
}

/// The node of `R` if `R` is the built-in `NumaNode<N>` (by type, whatever its name).
pub(crate) fn builtin_numa_node<R: Residency>() -> Option<u32> {
    R::builtin_numa_node(sealed::Token)
}

macro_rules! marker {
    ($(#[$doc:meta])* $name:ident, $strategy:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl Residency for $name {
            const NAME: &'static str = stringify!($name);
            const STRATEGY: Strategy = $strategy;
        }
    };
}

marker!(
    /// Memory on the NUMA node of the core that owns the slot.
    ///
    /// Promises: each slot's region is given a local placement for the CPU the slot serves
    /// (slot `i` ↔ the `i`-th online CPU, or the builder's
    /// [`cpus`](crate::PoolBuilder::cpus)): `mbind(MPOL_PREFERRED)` to that CPU's node before
    /// the first touch, then every page faulted in under that policy at build. Where the node
    /// is short of memory or `mbind` is forbidden (a sandbox), pages come from elsewhere and
    /// [`Pool::backing`](crate::Pool::backing) says so. Does not promise: that the owning
    /// thread really runs on that CPU (pin it: [`cores`](crate::cores)), or that the kernel
    /// never migrates the pages later.
    ///
    /// ```
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(8).slots(1).build()?;
    /// assert_eq!(pool.residency_name(), "CpuLocal");
    /// # Ok::<(), umrf::Error>(())
    /// ```
    CpuLocal,
    Strategy::CpuLocal
);

marker!(
    /// Memory that sits on a CPU-less NUMA node the topology classes as CXL-attached.
    ///
    /// Promises: the region was bound (`MPOL_BIND`) to the CXL node nearest the slot's CPU and
    /// its pages were found there, or the pool was built with
    /// [`CxlFallback::Emulate`](crate::backing::CxlFallback::Emulate) and says "EMULATED" in
    /// its backing report, stats and `Debug` output. Without either, building fails with
    /// [`Error::NoCxlNode`](crate::Error::NoCxlNode). Does not promise: bandwidth or latency
    /// figures, which differ between devices.
    ///
    /// ```
    /// use umrf::residency::{Cxl, Residency};
    /// assert_eq!(Cxl::NAME, "Cxl");
    /// ```
    Cxl,
    Strategy::Cxl
);

marker!(
    /// Page-locked host memory that a GPU can reach by DMA.
    ///
    /// Promises: the region is locked in RAM (`mlock`; over `RLIMIT_MEMLOCK` building fails
    /// with [`Error::MemlockLimit`](crate::Error::MemlockLimit)) on the node of the slot's CPU
    /// where it can be, and with the `cuda` feature registered with the CUDA driver
    /// (`cuMemHostRegister`, portable and device-mapped; no driver is
    /// [`Error::CudaUnavailable`](crate::Error::CudaUnavailable)). Does not promise:
    /// write-combining (it is off: registered memory never is), or device residency — this is
    /// host memory.
    ///
    /// ```
    /// use umrf::residency::{GpuPinned, Residency};
    /// assert_eq!(GpuPinned::NAME, "GpuPinned");
    /// ```
    GpuPinned,
    Strategy::GpuPinned
);

marker!(
    /// Memory backed by huge pages, to cut TLB misses on large working sets.
    ///
    /// Promises: explicit huge pages (`MAP_HUGETLB`) when the reserved pool has enough free
    /// pages, else a region aligned to the huge page size with transparent huge pages
    /// requested by `madvise(MADV_HUGEPAGE)`; [`Pool::backing`](crate::Pool::backing) says
    /// which, and how many bytes really sit in huge pages (read from `/proc/self/smaps`).
    /// [`HugePageMode`](crate::backing::HugePageMode) restricts the choice. Does not promise:
    /// that the kernel finds transparent huge pages (it may be out of contiguous memory, or
    /// have them disabled — the report says so), or keeps them intact under memory pressure.
    ///
    /// ```
    /// use umrf::residency::{Hugepage, Residency};
    /// assert_eq!(Hugepage::NAME, "Hugepage");
    /// ```
    Hugepage,
    Strategy::Hugepage
);

/// Memory bound to NUMA node `N`, where `N` is a [`typenum`] unsigned (`U0`, `U1`, …).
///
/// Promises: the region was bound to node `N` (`MPOL_BIND`) before its first touch, so its
/// pages come from that node, and after they are faulted in the kernel is asked where each one
/// is (`move_pages`): a page elsewhere fails the build with
/// [`Error::Misplaced`](crate::Error::Misplaced). A node the machine lacks is
/// [`Error::NodeAbsent`](crate::Error::NodeAbsent). Does not promise: that the kernel never
/// migrates the pages afterwards (only locking prevents that).
///
/// `NumaNode<U0>` and `NumaNode<U1>` are different types: a buffer bound to one node cannot be
/// passed where the other is expected.
///
/// ```
/// use umrf::residency::{NumaNode, Residency, Strategy};
/// use umrf::typenum::U12;
/// assert_eq!(<NumaNode<U12>>::STRATEGY, Strategy::Numa { node: 12 });
/// ```
pub struct NumaNode<N: Unsigned>(PhantomData<fn() -> N>);

impl<N: Unsigned> NumaNode<N> {
    /// The marker value (it carries no data).
    pub const fn new() -> Self {
        NumaNode(PhantomData)
    }
}

impl<N: Unsigned> Default for NumaNode<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: Unsigned> Clone for NumaNode<N> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N: Unsigned> Copy for NumaNode<N> {}

impl<N: Unsigned> PartialEq for NumaNode<N> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<N: Unsigned> Eq for NumaNode<N> {}

impl<N: Unsigned> fmt::Debug for NumaNode<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NumaNode<{}>", N::U32)
    }
}

impl<N: Unsigned + 'static> Residency for NumaNode<N> {
    const NAME: &'static str = "NumaNode";
    const STRATEGY: Strategy = Strategy::Numa { node: N::U32 };

    fn builtin_numa_node(_: sealed::Token) -> Option<u32> {
        Some(N::U32)
    }
}

/// NUMA node 0.
pub type Node0 = NumaNode<typenum::U0>;
/// NUMA node 1.
pub type Node1 = NumaNode<typenum::U1>;
/// NUMA node 2.
pub type Node2 = NumaNode<typenum::U2>;
/// NUMA node 3.
pub type Node3 = NumaNode<typenum::U3>;
/// NUMA node 4.
pub type Node4 = NumaNode<typenum::U4>;
/// NUMA node 5.
pub type Node5 = NumaNode<typenum::U5>;
/// NUMA node 6.
pub type Node6 = NumaNode<typenum::U6>;
/// NUMA node 7.
pub type Node7 = NumaNode<typenum::U7>;

/// The residency's name for messages: `NumaNode` markers add their node number.
pub(crate) fn describe<R: Residency>() -> String {
    match builtin_numa_node::<R>() {
        Some(node) => format!("NumaNode<{node}>"),
        None => R::NAME.to_owned(),
    }
}
