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
        "element type `{type_name}` needs {align}-byte alignment but blocks of pool `{pool}` are {block_align}-byte aligned: {}",
        misaligned_remedy(*align, crate::pool::max_block_align())
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

    /// A mailbox capacity outside `1..=MAX_CAPACITY`
    /// ([`mailbox::MAX_CAPACITY`](crate::mailbox::MAX_CAPACITY)).
    #[error(
        "mailbox capacity {capacity} is out of range: a mailbox holds 1..={max} messages; ask for a capacity in that range, or use `umrf::mailbox`, which clamps it"
    )]
    MailboxCapacity {
        /// The capacity asked for.
        capacity: usize,
        /// The largest capacity a mailbox may have.
        max: usize,
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

    /// Reading the machine's topology failed (from
    /// [`TopologyError`](crate::topology::TopologyError), for `?`).
    #[error(transparent)]
    Topology(Box<crate::topology::TopologyError>),

    /// An input or output operation failed: a log file, a metrics socket (from
    /// [`io::Error`], for `?`).
    #[error("{0}")]
    Io(#[from] io::Error),

    /// A JSON-lines ownership log could not be read back (from
    /// [`ReadError`](crate::events::ReadError), for `?`).
    #[error(transparent)]
    EventLog(Box<crate::events::ReadError>),

    /// Replaying an ownership log found violations of I1 (from
    /// [`ReplayError`](crate::events::ReplayError), for `?`).
    #[error(transparent)]
    Replay(Box<crate::events::ReplayError>),

    /// A capability was refused (from [`AcceptError`](crate::AcceptError), for `?`). The
    /// conversion drops the capability, so its block has gone home.
    #[error(
        "{kind} (the capability was dropped by `?` and its block went home; match the AcceptError and call `into_inner` to keep it)"
    )]
    NotAccepted {
        /// Why it was refused.
        kind: Box<crate::capability::AcceptErrorKind>,
    },

    /// A frozen block could not be thawed (from [`ThawError`](crate::ThawError), for `?`).
    /// The conversion drops the reader handle.
    #[error("{reason} (the reader handle was dropped by `?`)")]
    NotThawed {
        /// Why, and what to do.
        reason: String,
    },

    /// No placement fits the request (from
    /// [`PlacementError`](crate::placement::PlacementError), for `?`).
    #[error(transparent)]
    Placement(Box<crate::placement::PlacementError>),

    /// A buffer could not be mapped for a device (from
    /// [`MapError`](crate::coherence::MapError), for `?`). The conversion drops the buffer,
    /// so its block has gone home.
    #[error("{reason} (the buffer was dropped by `?` and its block went home)")]
    NotMapped {
        /// Why, and what to do.
        reason: String,
    },

    /// A run-time residency check failed (from
    /// [`IntoTypedError`](crate::placement::IntoTypedError), for `?`).
    #[error(
        "pool `{pool}` has residency {found}, not {expected}: ask for `{found}`, or check `AnyPool::is` before converting"
    )]
    WrongResidency {
        /// The pool's name.
        pool: PoolName,
        /// The residency asked for.
        expected: &'static str,
        /// The pool's residency (with the node for `NumaNode`).
        found: Box<str>,
    },

    /// A mailbox's other end is gone (from the mailbox's send and receive errors, for `?`).
    /// A message that was not delivered is dropped by the conversion.
    #[error(
        "the mailbox is disconnected: {0}; keep the other end alive, or match the error to take the message back"
    )]
    Disconnected(&'static str),

    /// A per-core worker panicked (from [`WorkerPanic`](crate::cores::WorkerPanic), for `?`).
    #[error("{0}")]
    WorkerPanicked(String),

    /// A cache-maintenance instruction is not available on this CPU (from
    /// [`UnsupportedInstruction`](crate::coherence::UnsupportedInstruction), for `?`).
    #[error(transparent)]
    Coherence(#[from] crate::coherence::UnsupportedInstruction),

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

/// `From` for the error types that are boxed inside [`Error`] (to keep it small: it is
/// returned on the allocation fast path).
macro_rules! from_boxed {
    ($($source:ty => $variant:ident),* $(,)?) => {
        $(impl From<$source> for Error {
            fn from(error: $source) -> Self {
                Error::$variant(Box::new(error))
            }
        })*
    };
}

from_boxed!(
    crate::topology::TopologyError => Topology,
    crate::events::ReadError => EventLog,
    crate::events::ReplayError => Replay,
    crate::placement::PlacementError => Placement,
);

impl<T: bytemuck::Pod, R: crate::Residency> From<crate::AcceptError<T, R>> for Error {
    fn from(error: crate::AcceptError<T, R>) -> Self {
        Error::NotAccepted {
            kind: Box::new(error.kind().clone()),
        }
    }
}

impl<T: bytemuck::Pod, R: crate::Residency> From<crate::coherence::MapError<T, R>> for Error {
    fn from(error: crate::coherence::MapError<T, R>) -> Self {
        Error::NotMapped {
            reason: error.to_string(),
        }
    }
}

impl<T: bytemuck::Pod, R: crate::Residency> From<crate::ThawError<T, R>> for Error {
    fn from(error: crate::ThawError<T, R>) -> Self {
        Error::NotThawed {
            reason: error.to_string(),
        }
    }
}

impl From<crate::placement::IntoTypedError> for Error {
    fn from(error: crate::placement::IntoTypedError) -> Self {
        Error::WrongResidency {
            pool: error.pool().name().clone(),
            expected: error.expected(),
            found: error.pool().residency_name().into(),
        }
    }
}

impl<M> From<crate::mailbox::SendError<M>> for Error {
    fn from(_: crate::mailbox::SendError<M>) -> Self {
        Error::Disconnected("the receiver is gone, so the message was not delivered")
    }
}

impl From<crate::mailbox::RecvError> for Error {
    fn from(_: crate::mailbox::RecvError) -> Self {
        Error::Disconnected("every sender is gone and nothing is queued")
    }
}

impl From<crate::cores::WorkerPanic> for Error {
    fn from(panic: crate::cores::WorkerPanic) -> Self {
        Error::WorkerPanicked(panic.to_string())
    }
}

/// What to do about [`Error::Misaligned`] for an alignment of `align` bytes on a machine whose
/// pages are `page` bytes: a block is aligned to the largest power of two dividing its size, up
/// to the page size (regions start on a page), so no block size helps above that.
fn misaligned_remedy(align: usize, page: usize) -> String {
    if align <= page {
        format!("use a block_size that is a multiple of {align}")
    } else {
        format!(
            "no block_size helps, as pool blocks are aligned to at most the {page}-byte page size; use an element type aligned to at most {page} bytes"
        )
    }
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

#[cfg(test)]
mod tests {
    use super::misaligned_remedy;

    #[test]
    fn the_misaligned_remedy_recommends_a_block_size_only_where_one_helps() {
        assert_eq!(
            misaligned_remedy(128, 4096),
            "use a block_size that is a multiple of 128"
        );
        assert_eq!(
            misaligned_remedy(4096, 4096),
            "use a block_size that is a multiple of 4096"
        );
        let above = misaligned_remedy(8192, 4096);
        assert!(!above.contains("multiple of"), "{above}");
        assert!(above.contains("at most 4096 bytes"), "{above}");
    }
}
