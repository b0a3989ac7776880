//! # umrf — typed memory residency and move-only ownership over a per-core pool allocator
//!
//! umrf replaces "any thread may write any address" with ownership: every block of memory has
//! exactly one owner, its placement (residency) is part of its type, and it moves between cores
//! only as an explicit, move-only capability message. Underneath is one pre-allocated,
//! fixed-size, per-core pool: allocation and same-core free are a pop and a push with no
//! atomic read-modify-write, no lock and no system call; a free from another core is one
//! lock-free push onto the home slot's queue.
//!
//! ```
//! use umrf::{mailbox, Capability, Pool, residency::CpuLocal};
//!
//! // One pool of 4 KiB blocks, 64 per slot, two slots (one per core here).
//! let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(64).slots(2).build()?;
//! let (tx, rx) = mailbox::<Capability<f32, CpuLocal>>(16);
//!
//! let worker_pool = pool.clone();
//! let worker = std::thread::spawn(move || {
//!     let lease = worker_pool.attach().unwrap(); // this thread's slot
//!     let mut sum = 0.0;
//!     for cap in rx.iter() {
//!         let buf = cap.accept(&lease).unwrap(); // ownership arrives
//!         sum += buf.iter().sum::<f32>();
//!     } // each buffer's block goes home to the producer's slot: a remote free
//!     sum
//! });
//!
//! let lease = pool.attach()?;
//! for i in 0..10 {
//!     let mut buf = lease.alloc_zeroed::<f32>(1024)?;
//!     buf[0] = i as f32;
//!     tx.send(buf.into_capability()).unwrap(); // ownership leaves
//! }
//! drop(tx);
//! assert_eq!(worker.join().unwrap(), 45.0);
//! # Ok::<(), umrf::Error>(())
//! ```
//!
//! ## Index
//!
//! - **Residency** — [`residency`]: the markers [`CpuLocal`](residency::CpuLocal),
//!   [`NumaNode<N>`](residency::NumaNode), [`Cxl`](residency::Cxl),
//!   [`GpuPinned`](residency::GpuPinned), [`Hugepage`](residency::Hugepage), the [`Residency`]
//!   trait and `#[derive(Residency)]`.
//! - **Pools** — [`Pool`], [`PoolBuilder`], [`Exhaustion`], [`LocalPool`] (a thread's lease on
//!   one slot), [`PoolStats`], [`SlotStats`], [`BlockState`].
//! - **Ownership** — [`SharedBuffer`] (an owned block, one thread), [`Capability`] (a block in
//!   flight), [`AcceptError`].
//! - **Ownership patterns** — [`Arena`] (bump allocation, no free, only reset), [`Frozen`]
//!   (single writer, many readers), [`coherence`]: device mappings with cache maintenance as
//!   typestate ([`DeviceMapping`](coherence::DeviceMapping), [`Coherence`](coherence::Coherence)).
//! - **Messages** — [`mailbox()`], [`Sender`](mailbox::Sender), [`Receiver`](mailbox::Receiver),
//!   the [`Transferable`] trait and `#[derive(Message)]`.
//! - **Machine** — [`topology`]: NUMA nodes, distances, huge-page pools. [`backing`]: how a
//!   pool's memory is obtained, placed and verified, and what the operating system really gave
//!   ([`BackingInfo`](backing::BackingInfo)).
//! - **Placement** — [`placement`]: which residency a request should have, and why
//!   ([`decide`](placement::decide)); [`AnyPool`], a pool chosen at run time, with a checked
//!   downcast back to a typed one.
//! - **Per-core workers** — [`cores`]: pinned threads, each with its CPU's slot and a mailbox.
//! - **Observability** — [`provenance`]: which pool, slot and block an address belongs to, and
//!   its owner now ([`provenance::owner_of`]). [`events`]: the ownership event log (per-slot
//!   rings, JSON lines, a replay validator of I1). [`metrics`]: Prometheus exposition of pool
//!   health and a minimal `/metrics` endpoint. `tracing` events at pool build (with backing
//!   decisions), exhaustion and fallback, under the targets `umrf::pool` and `umrf::backing`;
//!   without a subscriber they cost nothing.
//! - **Tiered memory** — [`tiered`]: pages in RAM as pool blocks, spilled to tmpfs then disk
//!   ([`TieredStore`](tiered::TieredStore)), with pins, prefetch, checksums and pressure
//!   detection.
//! - **Errors** — [`Error`].
//!
//! ## The invariants
//!
//! I1 every block has exactly one owner; I2 a block's residency never changes and is in its
//! type; I3 a [`SharedBuffer`] stays on its thread and ownership crosses threads only as a
//! [`Capability`] inside a [`Transferable`] message; I4 no double free, no use after free;
//! I5 no external fragmentation and no system-allocator call on the hot path; I6 a freed block
//! goes home to its own slot, a remote free being a lock-free push; I7 exhaustion and bad input
//! are values, never panics. I4 also covers arenas: no allocation is used after its arena's
//! reset.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod arena;
pub mod backing;
mod buffer;
mod capability;
pub mod coherence;
pub mod cores;
mod error;
pub mod events;
mod frozen;
pub mod global;
pub mod mailbox;
pub mod metrics;
pub mod placement;
mod pool;
pub mod provenance;
pub mod residency;
pub mod sized;
mod sync;
mod thread_bound;
pub mod tiered;
pub mod topology;
mod transfer;

pub use arena::Arena;
pub use buffer::SharedBuffer;
pub use capability::{AcceptError, AcceptErrorKind, Capability};
pub use error::{Error, PoolName};
pub use frozen::{Frozen, ThawError, ThawErrorKind};
pub use global::{GlobalPool, GlobalStats, PointerKind};
pub use mailbox::{mailbox, try_mailbox};
pub use placement::AnyPool;
pub use pool::{
    BLOCK_GRANULE, BlockState, Exhaustion, LocalPool, Pool, PoolBuilder, PoolStats, SlotStats,
};
pub use residency::Residency;
pub use transfer::Transferable;
pub use typenum;
pub use umrf_macros::{Message, Residency};

/// The README's examples, compiled and run as doctests so the front door never lies.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
