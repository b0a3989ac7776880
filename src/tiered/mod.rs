//! Tiered memory: RAM, then tmpfs, then disk, for data larger than the memory it may use.
//!
//! A [`TieredStore<R>`] holds fixed-size pages. Up to a RAM budget (bytes, the primary limit)
//! they are blocks of a [`Pool<R>`](crate::Pool), so residency, placement, backing and the
//! pool's observability apply; beyond it the coldest pages spill to a tmpfs directory
//! (`/dev/shm` by default), then to a disk directory, each with its own byte budget.
//!
//! - **Handles and pins**: [`Tiered<T, R>`] names a page (one handle per page, `Send`,
//!   [`Transferable`](crate::Transferable)); [`TieredStore::pin`] and
//!   [`TieredStore::pin_mut`] return guards ([`Pinned`], [`PinnedMut`]) that deref to the
//!   page in RAM and borrow the handle, so no pin outlives it and no writer sits beside a
//!   reader. A pinned page is never evicted.
//! - **Eviction**: [`Replacement::Lru`] (default) or [`Replacement::Clock`]; clean pages are
//!   dropped without a write; dirty ones are spilled to tmpfs, or to disk when tmpfs is at its
//!   budget or full (`ENOSPC`) or refuses the write; a page every tier refuses stays in RAM and
//!   the caller gets [`TieredError::SpillFailed`].
//! - **Background I/O**: spills and prefetches ([`TieredStore::prefetch`], the sequential
//!   [`read_ahead`](TieredBuilder::read_ahead)) run on an `io_uring` (the kernel's workers do
//!   the copies) or on I/O threads ([`IoBackend`]; [`IoBackend::Auto`] falls back to threads
//!   when the kernel refuses the ring, and says why in [`TieredStats::io_fallback`]). Either
//!   engine holds each page's block as a [`Capability`](crate::Capability) until its positioned
//!   read or write is done (state [`BlockState::Spilled`](crate::BlockState::Spilled) while
//!   written, logged as [`EventKind::Spilled`](crate::events::EventKind::Spilled)). Only a true
//!   miss reads on the caller's thread.
//! - **Demotion**: when tmpfs is at its budget or full, its coldest pages move to disk in the
//!   background ([`TieredBuilder::demote`]), so the data spilled last, the warmest, stays in
//!   the faster tier; a page stays readable on tmpfs until its disk copy is written.
//! - **Integrity**: tier files are mode 0600 and nameless (`O_TMPFILE`, or unlinked at once),
//!   so nothing survives the process; each page written is checksummed (CRC-32C) and verified
//!   when read: a corrupt page is [`TieredError::Corrupt`] naming it.
//! - **Pressure**: [`PressureMonitor`] reads PSI, cgroup v1/v2 limits and usage and
//!   `MemAvailable` under a root directory; [`PressurePolicy`] turns a reading into a RAM
//!   limit below the budget ([`TieredBuilder::pressure`], [`TieredStore::check_pressure`]).
//! - **Observability**: [`TieredStats`] (per tier pages, bytes, spills, promotions, I/O bytes
//!   and time; hit and prefetch-hit rates), and Prometheus series through
//!   [`Registry::register_tiered`](crate::metrics::Registry::register_tiered).
//!
//! ```
//! use umrf::tiered::{Location, TieredStore};
//! use umrf::residency::CpuLocal;
//!
//! let store = TieredStore::<CpuLocal>::builder()
//!     .page_size(64 << 10)
//!     .ram_budget(4 << 16) // four pages of RAM
//!     .read_ahead(2)
//!     .build()?;
//! let mut pages = Vec::new();
//! for i in 0..32 {
//!     let mut page = store.alloc::<f64>()?;
//!     store.pin_mut(&mut page)?.fill(i as f64);
//!     pages.push(page);
//! }
//! store.quiesce();
//! assert!(matches!(store.location(&pages[0])?, Location::Tier(_)));
//! let sum: f64 = pages.iter().map(|p| store.pin(p).map(|g| g[0])).sum::<Result<f64, _>>()?;
//! assert_eq!(sum, (0..32).sum::<i32>() as f64);
//! println!("hit rate {:.2}", store.stats().hit_rate());
//! # Ok::<(), umrf::tiered::TieredError>(())
//! ```

mod backend;
mod checksum;
mod config;
mod demote;
mod error;
mod handle;
mod io;
mod pressure;
mod replace;
mod stats;
mod store;
mod table;
mod tier_file;
#[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
mod uring;

pub use backend::{IoBackend, IoEngine, IoFallback};
pub use config::TieredBuilder;
pub use error::{PageId, SpillTier, TieredError};
pub use handle::{Pinned, PinnedMut, Tiered};
pub use pressure::{MemoryPressure, PressureMonitor, PressurePolicy};
pub use replace::Replacement;
pub use stats::{TierStats, TieredMetrics, TieredStats};
pub use store::TieredStore;
pub use table::Location;

#[cfg(test)]
mod tests;
