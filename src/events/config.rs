//! What a pool built with ownership logging records, and where.

use core::fmt;
use std::io;
use std::sync::Arc;

use super::event::Event;
use super::json::JsonLines;

/// A destination for ownership events, besides the per-slot rings.
///
/// `record` runs on the thread where the event happens, inside the pool's operation: keep it
/// short, and never call back into the pool from it. Report failures through the sink's own
/// state, as [`JsonLines`] does; a panic is caught, counted
/// ([`OwnershipLog::sink_panics`](super::OwnershipLog::sink_panics)) and never unwinds through
/// the pool.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use umrf::events::{Event, EventSink, LogConfig};
/// use umrf::{Pool, residency::CpuLocal};
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl EventSink for Count {
///     fn record(&self, _event: &Event<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let count = Arc::new(Count::default());
/// let pool = Pool::<CpuLocal>::builder()
///     .block_size(64).blocks_per_slot(2).slots(1)
///     .log_ownership(LogConfig::new().sink(count.clone()))
///     .build()?;
/// let lease = pool.attach()?;
/// drop(lease.alloc::<u8>(1)?); // allocate, then freed_local
/// assert_eq!(count.0.load(Ordering::Relaxed), 2);
/// # Ok::<(), umrf::Error>(())
/// ```
pub trait EventSink: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &Event<'_>);

    /// Pushes buffered events to their destination.
    ///
    /// # Errors
    /// The destination's error, if it failed (now or since the last flush).
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// How a pool records ownership events. Given to
/// [`PoolBuilder::log_ownership`](crate::PoolBuilder::log_ownership); pools built without it
/// record nothing and pay nothing.
///
/// Each slot keeps the last `ring_capacity` events it recorded in a bounded in-memory ring
/// (read with [`Pool::ownership_log`](crate::Pool::ownership_log)); every event also goes to
/// each sink, for example a [`JsonLines`] writer.
///
/// ```
/// use umrf::events::{JsonLines, LogConfig};
/// let config = LogConfig::new().ring_capacity(1 << 16).json_lines(JsonLines::new(Vec::new()));
/// assert_eq!(config.capacity(), 1 << 16);
/// ```
#[derive(Clone)]
#[must_use = "a LogConfig does nothing until given to PoolBuilder::log_ownership"]
pub struct LogConfig {
    pub(crate) ring_capacity: usize,
    pub(crate) sinks: Vec<Arc<dyn EventSink>>,
}

impl LogConfig {
    /// The default ring size per slot, in events.
    pub const DEFAULT_RING_CAPACITY: usize = 4096;

    /// Rings of [`DEFAULT_RING_CAPACITY`](Self::DEFAULT_RING_CAPACITY) events per slot, no sink.
    pub fn new() -> Self {
        LogConfig {
            ring_capacity: Self::DEFAULT_RING_CAPACITY,
            sinks: Vec::new(),
        }
    }

    /// Keeps the last `events` events of each slot in memory (0: no ring). The rings are
    /// allocated when the pool is built, so recording never calls the system allocator; a
    /// capacity the allocator cannot provide makes
    /// [`PoolBuilder::build`](crate::PoolBuilder::build) return
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig), never panic or abort.
    pub fn ring_capacity(mut self, events: usize) -> Self {
        self.ring_capacity = events;
        self
    }

    /// The ring size per slot.
    pub fn capacity(&self) -> usize {
        self.ring_capacity
    }

    /// Also sends every event to `sink`.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Also writes every event as one JSON line (see [`Event`] for the schema).
    pub fn json_lines<W: io::Write + Send + 'static>(self, writer: JsonLines<W>) -> Self {
        self.sink(Arc::new(writer))
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::new()
    }
}

impl fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogConfig")
            .field("ring_capacity", &self.ring_capacity)
            .field("sinks", &self.sinks.len())
            .finish()
    }
}
