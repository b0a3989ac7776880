//! One ownership event: the record every sink receives and the JSON-lines schema.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The version of the event schema, written in every record as `"v"`.
///
/// Version 1 is the schema documented on [`Event`]. A reader accepts records of this version
/// and refuses others with a clear error.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to a block (or to a slot, for [`Exhausted`](Self::Exhausted) and
/// [`FallbackUsed`](Self::FallbackUsed)). Written in JSON in `snake_case`.
///
/// ```
/// use umrf::events::EventKind;
/// assert_eq!(serde_json::to_string(&EventKind::TransferSent).unwrap(), "\"transfer_sent\"");
/// assert!(EventKind::FreedRemote.is_block_event());
/// assert!(!EventKind::Exhausted.is_block_event());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The home slot's lease handed the block out: it is owned by a buffer on that thread.
    Allocate,
    /// The owner turned the buffer into a capability: the block is in flight. Freezing a
    /// buffer is logged as this too: the block leaves its buffer for a group of
    /// [`Frozen`](crate::Frozen) readers on any threads.
    TransferSent,
    /// A lease accepted the capability: its slot owns the block now. `peer` is the sender.
    /// Thawing a [`Frozen`](crate::Frozen) group back into a buffer is logged as this too.
    Accepted,
    /// The owner freed the block on the home slot's thread, onto its local free list.
    FreedLocal,
    /// The block went home as a remote free, from a buffer owned away from home (`slot` is its
    /// owner) or from a capability dropped unaccepted (`slot` is `null`). `peer` is the home.
    FreedRemote,
    /// An allocation found the slot empty (no block, no remote free to take back).
    Exhausted,
    /// An allocation of the slot was served by its fallback pool; `peer` is the slot of the
    /// fallback pool that served it.
    FallbackUsed,
    /// The owner (a [`TieredStore`](crate::tiered::TieredStore)) handed the block to an I/O
    /// worker to write its page to a lower tier: the block is in flight, as after
    /// `transfer_sent`, and comes back with `accepted` or goes home with `freed_remote`.
    Spilled,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 8] = [
        EventKind::Allocate,
        EventKind::TransferSent,
        EventKind::Accepted,
        EventKind::FreedLocal,
        EventKind::FreedRemote,
        EventKind::Exhausted,
        EventKind::FallbackUsed,
        EventKind::Spilled,
    ];

    /// Whether the event concerns one block (and so carries `home`, `block` and `seq`).
    pub fn is_block_event(self) -> bool {
        !matches!(self, EventKind::Exhausted | EventKind::FallbackUsed)
    }

    /// The name used in JSON and in metrics labels.
    ///
    /// ```
    /// use umrf::events::EventKind;
    /// assert_eq!(EventKind::FreedLocal.as_str(), "freed_local");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Allocate => "allocate",
            EventKind::TransferSent => "transfer_sent",
            EventKind::Accepted => "accepted",
            EventKind::FreedLocal => "freed_local",
            EventKind::FreedRemote => "freed_remote",
            EventKind::Exhausted => "exhausted",
            EventKind::FallbackUsed => "fallback_used",
            EventKind::Spilled => "spilled",
        }
    }
}

/// One ownership event, as sinks receive it and as one JSON line holds it.
///
/// # Schema (version 1)
///
/// One JSON object per line, with these fields (absent values are `null`):
///
/// | field | type | meaning |
/// |---|---|---|
/// | `v` | integer | schema version, [`SCHEMA_VERSION`] |
/// | `ts_ns` | integer | nanoseconds since the pool was built (a monotonic clock) |
/// | `pool` | string | the pool's name |
/// | `pool_id` | integer | the pool's id, unique in the process |
/// | `residency` | string | the residency's name |
/// | `slot` | integer or null | the slot of the lease that acted (the owner after `allocate` and `accepted`, the owner before `transfer_sent`, `freed_local` and `freed_remote`); null for a capability dropped unaccepted |
/// | `home` | integer or null | the block's home slot; null for slot events |
/// | `block` | integer or null | the block's index in its home slot; null for slot events |
/// | `seq` | integer or null | the block's event number: 0 for its first event since the pool was built, then +1 per event; null for slot events |
/// | `event` | string | an [`EventKind`] in `snake_case` |
/// | `peer` | integer or null | the other slot: the sender for `accepted`, the home for `freed_remote`, the fallback pool's slot for `fallback_used` |
///
/// `(pool_id, home, block)` names a block, and its `seq` orders that block's events totally,
/// whichever slots' rings or threads they were recorded on: the owner writes the next number,
/// and ownership only passes on with a happens-before edge (a mailbox, a remote-free push). So
/// logs are merged by sorting on `(pool_id, home, block, seq)`, and no cross-thread clock is
/// needed; `ts_ns` orders events for people, approximately across threads.
///
/// For a fallback pool's block taken or accepted through another pool's lease, `slot` is that
/// lease's slot in its own pool (as in [`BlockState::Owned`](crate::BlockState::Owned)).
///
/// ```
/// use umrf::events::{Event, EventKind};
/// let line = r#"{"v":1,"ts_ns":1500,"pool":"ingest","pool_id":3,"residency":"CpuLocal","slot":0,"home":0,"block":7,"seq":0,"event":"allocate","peer":null}"#;
/// let event: Event = serde_json::from_str(line)?;
/// assert_eq!(event.event, EventKind::Allocate);
/// assert_eq!((event.home, event.block, event.seq), (Some(0), Some(7), Some(0)));
/// assert_eq!(serde_json::to_string(&event)?, line);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event<'a> {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// Nanoseconds since the pool was built.
    pub ts_ns: u64,
    /// The pool's name.
    pub pool: Cow<'a, str>,
    /// The pool's id.
    pub pool_id: u64,
    /// The residency's name.
    pub residency: Cow<'a, str>,
    /// The slot whose lease acted, if any.
    pub slot: Option<u32>,
    /// The block's home slot (block events).
    pub home: Option<u32>,
    /// The block's index in its home slot (block events).
    pub block: Option<u32>,
    /// The block's event number (block events).
    pub seq: Option<u32>,
    /// What happened.
    pub event: EventKind,
    /// The other slot involved, if any.
    pub peer: Option<u32>,
}

impl Event<'_> {
    /// A copy that owns its strings.
    ///
    /// ```
    /// use umrf::events::{Event, EventKind};
    /// let name = String::from("p");
    /// let borrowed = Event::slot_event(&name, 1, "CpuLocal", 0, EventKind::Exhausted, 10);
    /// let owned: Event<'static> = borrowed.into_owned();
    /// drop(name);
    /// assert_eq!(owned.pool, "p");
    /// ```
    pub fn into_owned(self) -> Event<'static> {
        Event {
            v: self.v,
            ts_ns: self.ts_ns,
            pool: Cow::Owned(self.pool.into_owned()),
            pool_id: self.pool_id,
            residency: Cow::Owned(self.residency.into_owned()),
            slot: self.slot,
            home: self.home,
            block: self.block,
            seq: self.seq,
            event: self.event,
            peer: self.peer,
        }
    }
}

impl<'a> Event<'a> {
    /// A slot event (one that names no block), for tools and tests that build logs by hand.
    pub fn slot_event(
        pool: &'a str,
        pool_id: u64,
        residency: &'a str,
        slot: u32,
        event: EventKind,
        ts_ns: u64,
    ) -> Self {
        Event {
            v: SCHEMA_VERSION,
            ts_ns,
            pool: Cow::Borrowed(pool),
            pool_id,
            residency: Cow::Borrowed(residency),
            slot: Some(slot),
            home: None,
            block: None,
            seq: None,
            event,
            peer: None,
        }
    }

    /// A block event, for tools and tests that build logs by hand: `home`/`block` name the
    /// block, `seq` is its event number, `slot` the acting slot and `peer` the other slot.
    ///
    /// ```
    /// use umrf::events::{Event, EventKind};
    /// let e = Event::block_event("p", 1, "CpuLocal", (0, 3), 2, EventKind::Accepted, Some(1), Some(0));
    /// assert_eq!((e.home, e.block, e.seq, e.slot, e.peer), (Some(0), Some(3), Some(2), Some(1), Some(0)));
    /// ```
    #[allow(clippy::too_many_arguments)] // one per schema field: a plain record constructor
    pub fn block_event(
        pool: &'a str,
        pool_id: u64,
        residency: &'a str,
        (home, block): (u32, u32),
        seq: u32,
        event: EventKind,
        slot: Option<u32>,
        peer: Option<u32>,
    ) -> Self {
        Event {
            v: SCHEMA_VERSION,
            ts_ns: 0,
            pool: Cow::Borrowed(pool),
            pool_id,
            residency: Cow::Borrowed(residency),
            slot,
            home: Some(home),
            block: Some(block),
            seq: Some(seq),
            event,
            peer,
        }
    }
}

/// "No slot" in a [`RawEvent`] field.
pub(crate) const NONE: u32 = u32::MAX;

/// An event as a ring stores it: fixed size, no strings (the pool's context is added on read).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEvent {
    pub(crate) ts_ns: u64,
    pub(crate) kind: EventKind,
    pub(crate) slot: u32,
    pub(crate) home: u32,
    pub(crate) block: u32,
    pub(crate) seq: u32,
    pub(crate) peer: u32,
}

impl RawEvent {
    /// The full event, borrowing the pool's strings.
    pub(crate) fn with_context<'a>(
        &self,
        pool: &'a str,
        pool_id: u64,
        residency: &'a str,
    ) -> Event<'a> {
        let some = |v: u32| (v != NONE).then_some(v);
        Event {
            v: SCHEMA_VERSION,
            ts_ns: self.ts_ns,
            pool: Cow::Borrowed(pool),
            pool_id,
            residency: Cow::Borrowed(residency),
            slot: some(self.slot),
            home: some(self.home),
            block: some(self.block),
            seq: if self.kind.is_block_event() {
                Some(self.seq)
            } else {
                None
            },
            event: self.kind,
            peer: some(self.peer),
        }
    }
}
