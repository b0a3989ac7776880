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
    /// An empty ring with room for `capacity` events (at least 1).
    pub(crate) fn new(capacity: usize) -> Ring {
        let capacity = capacity.max(1);
        Ring {
            events: VecDeque::with_capacity(capacity),
            capacity,
            overwritten: 0,
        }
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
