//! Replays an ownership log and checks invariant I1: every block has exactly one owner at
//! every step.
//!
//! Events are merged across slots, rings, threads and files by block: `(pool_id, home, block)`
//! names a block and `seq` numbers its events (see [`Event`]). The replay sorts on that key and
//! walks each block's events in order through a model of its holder (free in its pool, owned by
//! a slot, or in flight from a slot); every event must be one the current holder may cause.

use core::fmt;
use std::collections::BTreeMap;

use super::event::{Event, EventKind};

/// Who holds a block in the replay's model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holder {
    /// In its pool (never allocated, or freed).
    Free,
    /// Owned by a buffer of the lease of this slot.
    Slot(u32),
    /// Inside a capability sent by this slot.
    InFlight {
        /// The slot that sent it.
        sender: u32,
    },
    /// Not known: the log does not reach back to the block's earlier events (only with
    /// [`Validator::allow_truncated_history`]).
    Unknown,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Free => f.write_str("free in its pool"),
            Holder::Slot(slot) => write!(f, "owned by slot {slot}"),
            Holder::InFlight { sender } => write!(f, "in flight from slot {sender}"),
            Holder::Unknown => f.write_str("unknown"),
        }
    }
}

/// What an event did wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A block event without `home`, `block` or `seq`, or a slot event without `slot`.
    Incomplete,
    /// The block's events skip or repeat a number: an event is missing or recorded twice.
    Sequence {
        /// The number that should come next.
        expected: u32,
        /// The number found.
        found: u32,
    },
    /// An allocation of a block that was not free: two owners at once.
    DoubleAllocation {
        /// Who held it.
        holder: Holder,
    },
    /// An allocation by another slot than the block's home.
    AllocationAwayFromHome {
        /// The allocating slot.
        slot: Option<u32>,
    },
    /// A capability made by a slot that did not own the block.
    SendByNonOwner {
        /// Who held it.
        holder: Holder,
        /// Who sent it.
        slot: Option<u32>,
    },
    /// An accept of a block that was not in flight.
    AcceptWithoutSend {
        /// Who held it.
        holder: Holder,
    },
    /// An accept naming another sender than the one that sent the block.
    WrongSender {
        /// The slot that sent it.
        sender: u32,
        /// The sender the event names.
        peer: Option<u32>,
    },
    /// A free by a slot that did not own the block (or of a block already free).
    FreeByNonOwner {
        /// Who held it.
        holder: Holder,
        /// Who freed it.
        slot: Option<u32>,
    },
    /// A local free on another slot than the block's home.
    LocalFreeAwayFromHome {
        /// The freeing slot.
        slot: Option<u32>,
    },
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot =
            |s: &Option<u32>| s.map_or_else(|| "no slot".to_owned(), |s| format!("slot {s}"));
        match self {
            ViolationKind::Incomplete => f.write_str("the event lacks a field its kind needs"),
            ViolationKind::Sequence { expected, found } => write!(
                f,
                "event number {found} where {expected} was due: an event is missing or repeated"
            ),
            ViolationKind::DoubleAllocation { holder } => {
                write!(f, "allocated while {holder}: two owners at once")
            }
            ViolationKind::AllocationAwayFromHome { slot: s } => {
                write!(f, "allocated by {} instead of its home slot", slot(s))
            }
            ViolationKind::SendByNonOwner { holder, slot: s } => {
                write!(f, "sent by {} while {holder}", slot(s))
            }
            ViolationKind::AcceptWithoutSend { holder } => {
                write!(f, "accepted while {holder}: accept without send")
            }
            ViolationKind::WrongSender { sender, peer } => {
                write!(f, "accepted from {} but sent by slot {sender}", slot(peer))
            }
            ViolationKind::FreeByNonOwner { holder, slot: s } => {
                write!(f, "freed by {} while {holder}", slot(s))
            }
            ViolationKind::LocalFreeAwayFromHome { slot: s } => {
                write!(f, "freed locally by {}, not its home slot", slot(s))
            }
        }
    }
}

/// One event that breaks I1, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The position of the event in the input (0-based).
    pub index: usize,
    /// The pool's id.
    pub pool_id: u64,
    /// The block's home slot and index, for block events.
    pub block: Option<(u32, u32)>,
    /// The event's number.
    pub seq: Option<u32>,
    /// The event.
    pub event: EventKind,
    /// Its timestamp.
    pub ts_ns: u64,
    /// What is wrong.
    pub kind: ViolationKind,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event {} (pool {}", self.index, self.pool_id)?;
        if let Some((home, block)) = self.block {
            write!(f, ", block {block} of slot {home}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, ", seq {seq}")?;
        }
        write!(
            f,
            ", {} at {} ns): {}",
            self.event.as_str(),
            self.ts_ns,
            self.kind
        )
    }
}

/// What a successful replay saw.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// Events replayed.
    pub events: usize,
    /// Distinct blocks seen.
    pub blocks: usize,
    /// Blocks not free at the end of the log (owned or in flight when it was taken).
    pub outstanding: usize,
}

/// A replay that found violations of I1. Its `Display` lists the first few.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError {
    /// Every violation, ordered by block then event number.
    pub violations: Vec<Violation>,
    /// What the replay saw.
    pub summary: ReplaySummary,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violation(s) of I1 (one owner per block) in {} events",
            self.violations.len(),
            self.summary.events
        )?;
        for violation in self.violations.iter().take(5) {
            write!(f, "; {violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ReplayError {}

/// Replays ownership logs. [`validate`] is `Validator::new().validate`.
///
/// ```
/// use umrf::events::{Event, EventKind, Validator, ViolationKind};
/// let e = |seq, event, slot, peer| Event::block_event("p", 1, "CpuLocal", (0, 0), seq, event, slot, peer);
/// // Slot 1 accepts a block that was never sent: caught.
/// let log = [e(0, EventKind::Allocate, Some(0), None), e(1, EventKind::Accepted, Some(1), Some(0))];
/// let err = Validator::new().validate(log).unwrap_err();
/// assert!(matches!(err.violations[0].kind, ViolationKind::AcceptWithoutSend { .. }));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Validator {
    allow_truncated: bool,
}

impl Validator {
    /// A strict validator: every block's events must start at number 0 and have no gap.
    pub fn new() -> Self {
        Validator::default()
    }

    /// Accepts logs that miss some of a block's events (rings that overwrote their oldest
    /// events): where a block's numbers skip, its holder becomes unknown and the next event
    /// sets it. Repeated numbers and impossible steps between consecutive events are still
    /// violations.
    pub fn allow_truncated_history(mut self, allow: bool) -> Self {
        self.allow_truncated = allow;
        self
    }

    /// Replays `events` (in any order) and checks I1 at every step of every block.
    ///
    /// # Errors
    /// [`ReplayError`] listing every violation.
    pub fn validate<'a>(
        &self,
        events: impl IntoIterator<Item = Event<'a>>,
    ) -> Result<ReplaySummary, ReplayError> {
        let events: Vec<Event<'a>> = events.into_iter().collect();
        let mut violations = Vec::new();
        let mut by_block: BTreeMap<(u64, u32, u32), Vec<usize>> = BTreeMap::new();
        for (index, event) in events.iter().enumerate() {
            if event.event.is_block_event() {
                match (event.home, event.block, event.seq) {
                    (Some(home), Some(block), Some(_)) => {
                        by_block
                            .entry((event.pool_id, home, block))
                            .or_default()
                            .push(index);
                    }
                    _ => violations.push(violation(index, event, ViolationKind::Incomplete)),
                }
            } else if event.slot.is_none() {
                violations.push(violation(index, event, ViolationKind::Incomplete));
            }
        }
        let mut summary = ReplaySummary {
            events: events.len(),
            blocks: by_block.len(),
            outstanding: 0,
        };
        for ((_, home, _), mut indices) in by_block {
            indices.sort_by_key(|&i| events[i].seq);
            let mut holder = Holder::Free;
            let mut expected = 0u32;
            for (position, &index) in indices.iter().enumerate() {
                let event = &events[index];
                let seq = event.seq.unwrap_or(0);
                if seq != expected {
                    let gap_allowed = self.allow_truncated && (seq > expected || position == 0);
                    if gap_allowed {
                        holder = Holder::Unknown;
                    } else {
                        violations.push(violation(
                            index,
                            event,
                            ViolationKind::Sequence {
                                expected,
                                found: seq,
                            },
                        ));
                        if seq < expected {
                            continue; // a repeat: the model stays where it was
                        }
                    }
                }
                expected = seq.wrapping_add(1);
                let (next, wrong) = step(holder, home, event);
                if let Some(kind) = wrong {
                    violations.push(violation(index, event, kind));
                }
                holder = next;
            }
            if holder != Holder::Free {
                summary.outstanding += 1;
            }
        }
        if violations.is_empty() {
            Ok(summary)
        } else {
            Err(ReplayError {
                violations,
                summary,
            })
        }
    }
}

/// Replays `events` with a strict [`Validator`].
///
/// # Errors
/// [`ReplayError`] listing every violation of I1.
///
/// ```
/// use umrf::events::{validate, Event, EventKind, ViolationKind};
/// let e = |seq, event, slot| Event::block_event("p", 1, "CpuLocal", (0, 2), seq, event, slot, None);
/// let ok = [e(0, EventKind::Allocate, Some(0)), e(1, EventKind::FreedLocal, Some(0))];
/// assert_eq!(validate(ok).unwrap().blocks, 1);
/// let double = [e(0, EventKind::Allocate, Some(0)), e(1, EventKind::Allocate, Some(0))];
/// let err = validate(double).unwrap_err();
/// assert!(matches!(err.violations[0].kind, ViolationKind::DoubleAllocation { .. }));
/// ```
pub fn validate<'a>(
    events: impl IntoIterator<Item = Event<'a>>,
) -> Result<ReplaySummary, ReplayError> {
    Validator::new().validate(events)
}

fn violation(index: usize, event: &Event<'_>, kind: ViolationKind) -> Violation {
    Violation {
        index,
        pool_id: event.pool_id,
        block: event.home.zip(event.block),
        seq: event.seq,
        event: event.event,
        ts_ns: event.ts_ns,
        kind,
    }
}

/// One step of a block's model: the holder after `event`, and what was wrong with it.
///
/// The model always moves to the holder the event names, so one bad event is reported once
/// and the events after it are checked against what it did.
fn step(holder: Holder, home: u32, event: &Event<'_>) -> (Holder, Option<ViolationKind>) {
    let slot = event.slot;
    let owned_by_actor = matches!((holder, slot), (Holder::Slot(h), Some(s)) if h == s);
    let unknown = holder == Holder::Unknown;
    match event.event {
        EventKind::Allocate => {
            let wrong = if holder != Holder::Free && !unknown {
                Some(ViolationKind::DoubleAllocation { holder })
            } else if slot != Some(home) {
                Some(ViolationKind::AllocationAwayFromHome { slot })
            } else {
                None
            };
            (Holder::Slot(home), wrong)
        }
        EventKind::TransferSent | EventKind::Spilled => {
            let wrong = (!owned_by_actor && !unknown)
                .then_some(ViolationKind::SendByNonOwner { holder, slot });
            let next = slot.map_or(Holder::Unknown, |sender| Holder::InFlight { sender });
            (next, wrong)
        }
        EventKind::Accepted => {
            let wrong = match holder {
                Holder::InFlight { sender } if event.peer != Some(sender) => {
                    Some(ViolationKind::WrongSender {
                        sender,
                        peer: event.peer,
                    })
                }
                Holder::InFlight { .. } | Holder::Unknown => None,
                _ => Some(ViolationKind::AcceptWithoutSend { holder }),
            };
            (slot.map_or(Holder::Unknown, Holder::Slot), wrong)
        }
        EventKind::FreedLocal => {
            let wrong = if !owned_by_actor && !unknown {
                Some(ViolationKind::FreeByNonOwner { holder, slot })
            } else if slot != Some(home) {
                Some(ViolationKind::LocalFreeAwayFromHome { slot })
            } else {
                None
            };
            (Holder::Free, wrong)
        }
        EventKind::FreedRemote => {
            let dropped_in_flight = matches!(holder, Holder::InFlight { .. }) && slot.is_none();
            let wrong = (!owned_by_actor && !dropped_in_flight && !unknown)
                .then_some(ViolationKind::FreeByNonOwner { holder, slot });
            (Holder::Free, wrong)
        }
        // Slot events never reach here (they name no block).
        EventKind::Exhausted | EventKind::FallbackUsed => (holder, None),
    }
}
