//! A bounded ring of events: keeps the newest, counts what it overwrote.

use std::collections::VecDeque;

use super::event::RawEvent;

/// The last `capacity` events recorded for one slot.
///
/// # Invariants
/// 0. `events.len() <= capacity`, and `events` was allocated with room for `capacity`, so a
///    push never calls the system allocator.
pub(crate) struct Ring {
    events: VecDeque<RawEvent>,
    capacity: usize,
    overwritten: u64,
}

impl Ring {
    /// An empty ring with room for `capacity` events (at least 1), or `None` when the system
    /// allocator refuses the room (or its size in bytes overflows).
    pub(crate) fn try_new(capacity: usize) -> Option<Ring> {
        let capacity = capacity.max(1);
        let mut events = VecDeque::new();
        events.try_reserve_exact(capacity).ok()?;
        Some(Ring {
            events,
            capacity,
            overwritten: 0,
        })
    }

    /// Bytes a ring of `capacity` events takes (saturated).
    pub(crate) fn bytes_for(capacity: usize) -> usize {
        capacity.saturating_mul(size_of::<RawEvent>())
    }

    /// Appends `event`, dropping the oldest when full.
    pub(crate) fn push(&mut self, event: RawEvent) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.overwritten += 1;
        }
        self.events.push_back(event);
    }

    /// The events, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &RawEvent> {
        self.events.iter()
    }

    /// Removes every event (the room stays allocated).
    pub(crate) fn clear(&mut self) {
        self.events.clear();
    }

    /// Events dropped to make room, all time.
    pub(crate) fn overwritten(&self) -> u64 {
        self.overwritten
    }
}
