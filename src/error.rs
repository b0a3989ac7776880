//! The one error type of umrf's pools: every failure is a value with a reason and a remedy (I7).

use std::io;

/// What went wrong, and what to do about it.
///
/// Every fallible umrf operation returns this type; none of them panics, aborts, or leaves a
/// block stranded when it fails (invariant I7). Each variant's message says what to change.
///
/// ```
/// use umrf::{Error, Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
/// let lease = pool.attach()?;
/// let held = lease.alloc::<u8>(64)?;
/// match lease.alloc::<u8>(64) {
///     Err(Error::Exhausted { capacity, .. }) => assert_eq!(capacity, 1),
///     other => panic!("expected exhaustion, got {other:?}"),
/// }
/// drop(held);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An allocation asked for zero elements.
    #[error("zero-length allocation: ask for at least one element")]
    ZeroLength,

    /// The element type has size zero, so a block cannot be typed as a slice of it.
    #[error(
        "element type `{type_name}` is zero-sized: pool blocks hold sized `Pod` data; use a non-zero-sized element type"
    )]
    ZeroSizedElement {
        /// The element type.
        type_name: &'static str,
    },

    /// The request does not fit in one block of the pool.
    #[error(
        "request for {requested} bytes does not fit in one {block_size}-byte block of pool `{pool}`: build the pool with a larger block_size, or split the data"
    )]
    TooLarge {
        /// Bytes asked for (saturated at `usize::MAX` if the multiplication overflowed).
        requested: usize,
        /// The pool's block size in bytes.
        block_size: usize,
        /// The pool's name.
        pool: PoolName,
    },

    /// The element type needs a stricter alignment than the pool's blocks have.
    #[error(
        "element type `{type_name}` needs {align}-byte alignment but blocks of pool `{pool}` are {block_align}-byte aligned: use a block_size that is a multiple of {align}"
    )]
    Misaligned {
        /// The element type.
        type_name: &'static str,
        /// The alignment it needs.
        align: usize,
        /// The alignment every block has.
        block_align: usize,
        /// The pool's name.
        pool: PoolName,
    },

    /// Every block of the slot (and of each fallback pool) is in use.
    #[error(
        "slot {slot} of pool `{pool}` ({residency}) is exhausted: all {capacity} blocks are in use; drop buffers, build the pool with more blocks_per_slot, or give it a fallback pool"
    )]
    Exhausted {
        /// The pool's name.
        pool: PoolName,
        /// The residency's name.
        residency: &'static str,
        /// The slot that ran out.
        slot: usize,
        /// Blocks in that slot.
        capacity: usize,
    },

    /// An [`Arena`](crate::Arena) has no room left for the request until it is reset.
    #[error(
        "arena of {capacity} bytes from pool `{pool}` has no room for {requested} more bytes: reset it with `Arena::reset`, or make it larger"
    )]
    ArenaFull {
        /// The pool the arena's blocks come from.
        pool: PoolName,
        /// Bytes asked for.
        requested: usize,
        /// The arena's size in bytes (all its blocks).
        capacity: usize,
    },

    /// Another `LocalPool` already holds the slot.
    #[error(
        "slot {slot} of pool `{pool}` is already leased: drop the other LocalPool first, or attach to a free slot with `Pool::attach`"
    )]
    SlotBusy {
        /// The pool's name.
        pool: PoolName,
        /// The busy slot.
        slot: usize,
    },

    /// Every slot of the pool is leased.
    #[error(
        "all {slots} slots of pool `{pool}` are leased: drop a LocalPool, or build the pool with more slots"
    )]
    NoFreeSlot {
        /// The pool's name.
        pool: PoolName,
        /// The pool's slot count.
        slots: usize,
    },

    /// The slot index is out of range.
    #[error("pool `{pool}` has no slot {slot}: its slots are 0..{slots}")]
    NoSuchSlot {
        /// The pool's name.
        pool: PoolName,
        /// The index asked for.
        slot: usize,
        /// The pool's slot count.
        slots: usize,
    },

    /// A builder setting is out of range.
    #[error("invalid pool configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// The operating system refused memory for a region.
    #[error("could not obtain {bytes} bytes of {residency} memory: {operation} failed: {source}")]
    Backing {
        /// The residency asked for.
        residency: &'static str,
        /// The size of the region.
        bytes: usize,
        /// The call that failed, with advice where there is any.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A `NumaNode<N>` residency names a node this machine does not have, or one without
    /// memory.
    #[error(
        "NUMA node {node} {why}: this machine's nodes with memory are {available}; use a NumaNode<N> for one of them, or let `umrf::placement::decide` choose"
    )]
    NodeAbsent {
        /// The node asked for.
        node: u32,
        /// What is wrong with it.
        why: &'static str,
        /// The nodes that do have memory, comma separated.
        available: String,
    },

    /// Pages of a region bound to one node were found on other nodes after it was built.
    #[error(
        "a region bound to NUMA node {node} has {misplaced} of the {pages} pages checked on node(s) {found}: node {node} is short of free memory; free memory there, or build a smaller pool"
    )]
    Misplaced {
        /// The node the region was bound to.
        node: u32,
        /// Pages checked (every page of a small region, an even sample of a large one).
        pages: usize,
        /// Of those, pages found elsewhere.
        misplaced: usize,
        /// The nodes they were found on.
        found: String,
    },

    /// Locking pages in RAM failed, nearly always because of `RLIMIT_MEMLOCK`.
    #[error(
        "could not lock {bytes} bytes of {residency} memory in RAM (mlock: {source}): RLIMIT_MEMLOCK is {}; raise it (`ulimit -l`, `LimitMEMLOCK=` in a systemd unit, `memlock` in /etc/security/limits.conf), grant CAP_IPC_LOCK, or build a smaller pool",
        memlock_words(*limit)
    )]
    MemlockLimit {
        /// The residency asked for.
        residency: &'static str,
        /// The size of the region.
        bytes: usize,
        /// The soft limit in bytes when the call failed (`u64::MAX`: unlimited or unknown).
        limit: u64,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A `Cxl` residency on a machine whose topology has no CXL memory node.
    #[error(
        "no CXL memory node on this machine ({nodes}): online CXL memory as a NUMA node (for example `daxctl reconfigure-device --mode=system-ram`), or build with `.cxl_fallback(CxlFallback::Emulate)` to accept an emulated stand-in"
    )]
    NoCxlNode {
        /// What the machine's memory-only nodes are, in words.
        nodes: String,
    },

    /// CUDA host registration is unavailable or failed (feature `cuda`).
    #[error(
        "CUDA host registration failed: {operation}: {reason}; install the NVIDIA driver (libcuda.so.1) and check that a GPU is visible (`nvidia-smi`), or build without the `cuda` feature for mlock-only GpuPinned memory"
    )]
    CudaUnavailable {
        /// The driver call or step that failed.
        operation: &'static str,
        /// The driver's answer.
        reason: String,
    },

    /// Huge pages of the kind the pool requires cannot be had.
    #[error("huge pages unavailable: {reason}")]
    HugePagesUnavailable {
        /// What is missing and how to provide it.
        reason: String,
    },

    /// A CPU named for a slot or a worker cannot be used.
    #[error("CPU {cpu} cannot be used: {reason}")]
    CpuUnavailable {
        /// The CPU.
        cpu: u32,
        /// Why, and what to do.
        reason: String,
    },

    /// Pinning a thread to a CPU failed.
    #[error(
        "could not pin a thread to CPU {cpu} (sched_setaffinity: {source}): the CPU may be offline or outside this process's allowed set (cgroup cpuset, `taskset`); choose CPUs from `umrf::topology::Topology::detect()?.online_cpus()`"
    )]
    Affinity {
        /// The CPU.
        cpu: u32,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A request to a size-class pool needs a stricter alignment than its blocks and large
    /// regions have (at most a page).
    #[error(
        "a request aligned to {align} bytes exceeds the {max_align}-byte alignment of size-class blocks and large regions: align to at most {max_align} bytes, or build a Pool whose block_size is a multiple of {align}"
    )]
    OverAligned {
        /// The alignment asked for.
        align: usize,
        /// The largest alignment a size-class pool gives (the page size).
        max_align: usize,
    },
}

/// `RLIMIT_MEMLOCK` in words for [`Error::MemlockLimit`].
fn memlock_words(limit: u64) -> String {
    if limit == u64::MAX {
        "unlimited or unknown".to_owned()
    } else {
        format!("{limit} bytes ({} KiB)", limit / 1024)
    }
}

/// A pool's name, cheap to clone into errors and stats (a shared string, no allocation).
///
/// ```
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().name("ingest").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// assert_eq!(pool.name().as_str(), "ingest");
/// assert_eq!(pool.name().to_string(), "ingest");
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PoolName(std::sync::Arc<str>);

impl PoolName {
    pub(crate) fn new(name: &str) -> Self {
        PoolName(std::sync::Arc::from(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PoolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for PoolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}
