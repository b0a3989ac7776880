//! The ownership event log: who allocated, sent, accepted and freed every block, and when.
//!
//! A pool built with [`PoolBuilder::log_ownership`](crate::PoolBuilder::log_ownership) records
//! one [`Event`] per change of ownership — [`Allocate`](EventKind::Allocate),
//! [`TransferSent`](EventKind::TransferSent), [`Accepted`](EventKind::Accepted),
//! [`FreedLocal`](EventKind::FreedLocal), [`FreedRemote`](EventKind::FreedRemote) — and per
//! slot event — [`Exhausted`](EventKind::Exhausted), [`FallbackUsed`](EventKind::FallbackUsed).
//! Events go to a bounded in-memory ring per slot (read through [`OwnershipLog`]) and to any
//! [`EventSink`], such as the [`JsonLines`] writer, whose schema (versioned,
//! [`SCHEMA_VERSION`]) is documented on [`Event`]. [`read_json_lines`] parses a log back and
//! [`validate`] replays it, checking invariant I1 (exactly one owner per block) at every step.
//!
//! Pools built without logging pay nothing measurable: each hook is one test of a read-only
//! pointer kept in the slot beside the fields the operation reads anyway (no store, no atomic
//! read-modify-write, no extra shared cache line), and the recording code is out of line and
//! `#[cold]` (`benches/logging.rs` measures both configurations).
//!
//! ```
//! use std::sync::Arc;
//! use umrf::events::{read_json_lines, validate, EventSink, JsonLines, LogConfig};
//! use umrf::{mailbox, Capability, Pool, residency::CpuLocal};
//!
//! let json = Arc::new(JsonLines::new(Vec::new()));
//! let pool = Pool::<CpuLocal>::builder()
//!     .block_size(256).blocks_per_slot(16).slots(2)
//!     .log_ownership(LogConfig::new().sink(json.clone()))
//!     .build()?;
//! let (tx, rx) = mailbox::<Capability<u8, CpuLocal>>(4);
//! let worker_pool = pool.clone();
//! let worker = std::thread::spawn(move || {
//!     let lease = worker_pool.attach_slot(1).unwrap();
//!     for cap in rx.iter() {
//!         drop(cap.accept(&lease).unwrap()); // freed remotely, home to slot 0
//!     }
//! });
//! let lease = pool.attach_slot(0)?;
//! for _ in 0..50 {
//!     tx.send(lease.alloc::<u8>(256)?.into_capability()).unwrap();
//! }
//! drop(tx);
//! worker.join().unwrap();
//!
//! json.flush()?;
//! let events = read_json_lines(&json.with_writer(|bytes| bytes.clone())[..])?;
//! assert_eq!(events.len(), 200); // allocate, transfer_sent, accepted, freed_remote, 50 times
//! let summary = validate(events)?;
//! assert_eq!(summary.outstanding, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod event;
mod json;
mod log;
mod replay;
mod ring;

pub use config::{EventSink, LogConfig};
pub use event::{Event, EventKind, SCHEMA_VERSION};
pub use json::{JsonLines, ReadError, read_json_lines};
pub use log::OwnershipLog;
pub(crate) use log::{Pending, PoolLog, SlotLog};
pub use replay::{
    Holder, ReplayError, ReplaySummary, Validator, Violation, ViolationKind, validate,
};
