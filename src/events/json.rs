//! The JSON-lines sink, and the reader that parses its output back.

use core::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;

use super::config::EventSink;
use super::event::{Event, SCHEMA_VERSION};
use crate::sync::Mutex;

/// Writes each event as one line of JSON (schema: [`Event`]) through a buffer.
///
/// A write error never reaches the pool operation that recorded the event: the sink counts
/// it, keeps the first one, and returns it from the next [`flush`](EventSink::flush).
///
/// **The output is buffered.** To read the log back in the same process, flush first: call
/// [`flush`](EventSink::flush) (or [`OwnershipLog::flush`](super::OwnershipLog::flush)), or
/// drop the pool: when its last handle (a `Pool` clone or a lease) goes, the pool flushes
/// every sink. Events recorded after that (buffers still out coming home) are flushed by the
/// next `flush`, or when the sink itself is dropped.
///
/// ```
/// use std::sync::Arc;
/// use umrf::events::{read_json_lines, EventKind, EventSink, JsonLines, LogConfig};
/// use umrf::{Pool, residency::CpuLocal};
///
/// let sink = Arc::new(JsonLines::new(Vec::new()));
/// let pool = Pool::<CpuLocal>::builder()
///     .block_size(64).blocks_per_slot(2).slots(1)
///     .log_ownership(LogConfig::new().ring_capacity(0).sink(sink.clone()))
///     .build()?;
/// drop(pool.attach()?.alloc::<u8>(8)?);
/// sink.flush()?;
/// let bytes = sink.with_writer(|out| out.clone());
/// let events = read_json_lines(&bytes[..])?;
/// let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
/// assert_eq!(kinds, [EventKind::Allocate, EventKind::FreedLocal]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLines<W: Write + Send + 'static> {
    state: Mutex<JsonState<W>>,
}

struct JsonState<W: Write> {
    out: BufWriter<W>,
    failures: u64,
    first_error: Option<io::Error>,
}

impl<W: Write + Send + 'static> JsonLines<W> {
    /// A sink writing to `writer` (buffered).
    pub fn new(writer: W) -> Self {
        JsonLines {
            state: Mutex::new(JsonState {
                out: BufWriter::new(writer),
                failures: 0,
                first_error: None,
            }),
        }
    }

    /// Writes that failed since the sink was made.
    pub fn failures(&self) -> u64 {
        self.lock().failures
    }

    /// Runs `f` on the underlying writer (after the buffered lines were flushed into it, when
    /// that succeeded), for example to read an in-memory log back.
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut W) -> T) -> T {
        let mut state = self.lock();
        if let Err(error) = state.out.flush() {
            state.note(error);
        }
        f(state.out.get_mut())
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, JsonState<W>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl JsonLines<File> {
    /// A sink writing to a new file at `path` (truncated if it exists).
    ///
    /// # Errors
    /// The operating system's error when the file cannot be created.
    ///
    /// ```
    /// use umrf::events::JsonLines;
    /// let dir = std::env::temp_dir().join(format!("umrf-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let sink = JsonLines::create(dir.join("ownership.jsonl"))?;
    /// assert_eq!(sink.failures(), 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(JsonLines::new(File::create(path)?))
    }
}

impl<W: Write> JsonState<W> {
    fn note(&mut self, error: io::Error) {
        self.failures += 1;
        self.first_error.get_or_insert(error);
    }
}

impl<W: Write + Send + 'static> EventSink for JsonLines<W> {
    fn record(&self, event: &Event<'_>) {
        let mut state = self.lock();
        let written = serde_json::to_writer(&mut state.out, event)
            .map_err(io::Error::from)
            .and_then(|()| state.out.write_all(b"\n"));
        if let Err(error) = written {
            state.note(error);
        }
    }

    fn flush(&self) -> io::Result<()> {
        let mut state = self.lock();
        if let Err(error) = state.out.flush() {
            state.note(error);
        }
        match state.first_error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl<W: Write + Send + 'static> fmt::Debug for JsonLines<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

/// Why a JSON-lines log could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The reader failed.
    #[error("reading line {line} of the ownership log failed: {source}")]
    Io {
        /// The 1-based line number.
        line: usize,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// A line is not an event of the documented schema.
    #[error("line {line} of the ownership log is not a valid event: {source}")]
    Parse {
        /// The 1-based line number.
        line: usize,
        /// What the JSON parser found.
        #[source]
        source: serde_json::Error,
    },
    /// A line has a schema version this reader does not know.
    #[error(
        "line {line} of the ownership log has schema version {found}; this reader knows version {SCHEMA_VERSION}: read it with a matching umrf version"
    )]
    Version {
        /// The 1-based line number.
        line: usize,
        /// The version found.
        found: u32,
    },
}

/// The version field alone, read before the rest of a record.
#[derive(serde::Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Reads a JSON-lines ownership log (blank lines are skipped).
///
/// # Errors
/// [`ReadError`] naming the first line that could not be read or parsed.
///
/// ```
/// use umrf::events::{read_json_lines, ReadError};
/// let log = "{\"v\":1,\"ts_ns\":0,\"pool\":\"p\",\"pool_id\":1,\"residency\":\"CpuLocal\",\"slot\":0,\"home\":null,\"block\":null,\"seq\":null,\"event\":\"exhausted\",\"peer\":null}\n\nnot json\n";
/// match read_json_lines(log.as_bytes()) {
///     Err(ReadError::Parse { line, .. }) => assert_eq!(line, 3),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn read_json_lines(reader: impl BufRead) -> Result<Vec<Event<'static>>, ReadError> {
    let mut events = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|source| ReadError::Io {
            line: line_no,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        // The version first: a record of another version may not parse as this one.
        let version = serde_json::from_str::<VersionOnly>(&line).map(|v| v.v);
        if let Ok(found) = version.as_ref().copied()
            && found != SCHEMA_VERSION
        {
            return Err(ReadError::Version {
                line: line_no,
                found,
            });
        }
        let event: Event<'static> =
            serde_json::from_str(&line).map_err(|source| ReadError::Parse {
                line: line_no,
                source,
            })?;
        events.push(event);
    }
    Ok(events)
}
