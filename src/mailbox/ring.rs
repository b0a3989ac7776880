//! A bounded multi-producer, single-consumer ring of messages.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue ("Bounded MPMC queue", 1024cores.net),
//! in the exact-capacity form of `crossbeam-channel`'s array flavour: each cell carries a stamp
//! that tells which lap may write or read it next, so producers and the consumer meet only on
//! the cell they hand over. With one consumer, popping needs no CAS.
//!
//! A position packs `lap | index`, where `one_lap` is the power of two above `capacity`.

use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicUsize, Backoff, Ordering, UnsafeCell, fence};

/// One cell of the ring.
struct Cell<T> {
    /// `position` when the cell may be written at that position; `position + 1` when it holds
    /// the message written there.
    stamp: AtomicUsize,
    message: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded MPSC ring.
///
/// # Invariants
/// 0. A cell's message is initialised exactly when its stamp is `position + 1` for the
///    position the consumer will read it at; the producer that won the `tail` CAS for that
///    position is the only writer, and the consumer the only reader, ordered by the stamp.
/// 1. `pop` runs on one thread at a time (the caller's promise), so `head` has one writer.
pub(crate) struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    cells: Box<[Cell<T>]>,
    capacity: usize,
    one_lap: usize,
}

// SAFETY: messages move between threads through the ring (so T: Send), and every shared access
// is ordered by the cell stamps (invariant 0).
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above: `&Ring` allows pushes from many threads and pops from one (invariant 1).
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// An empty ring of exactly `capacity` cells (`capacity >= 1`).
    #[cfg(all(test, umrf_loom))]
    pub(crate) fn new(capacity: usize) -> Self {
        Self::try_new(capacity).expect("a small ring")
    }

    /// An empty ring of exactly `capacity` cells (`capacity >= 1`), or `None` when the system
    /// allocator cannot provide its cells (the size in bytes is checked before asking).
    pub(crate) fn try_new(capacity: usize) -> Option<Self> {
        assert!(capacity >= 1, "ring capacity checked by the caller");
        capacity.checked_mul(size_of::<Cell<T>>())?;
        let mut cells = Vec::new();
        cells.try_reserve_exact(capacity).ok()?;
        cells.extend((0..capacity).map(|i| Cell {
            stamp: AtomicUsize::new(i),
            message: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        let cells = cells.into_boxed_slice();
        Some(Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            cells,
            capacity,
            one_lap: (capacity + 1).next_power_of_two(),
        })
    }

    /// Bytes the cells of a ring of `capacity` messages take (saturated).
    pub(crate) fn bytes_for(capacity: usize) -> usize {
        capacity.saturating_mul(size_of::<Cell<T>>())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether no position has been claimed beyond `head`: nothing is published and no
    /// producer is between its claim and its publication. `SeqCst`, to pair with the producers'
    /// `SeqCst` claim in the mailbox's sleep protocol.
    pub(crate) fn is_unclaimed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) == self.head.load(Ordering::Relaxed)
    }

    /// The position after `position`.
    #[inline(always)]
    fn advance(&self, position: usize) -> usize {
        let index = position & (self.one_lap - 1);
        if index + 1 < self.capacity {
            position + 1
        } else {
            (position & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Claims the next position for writing, or `None` if the ring is full. One attempt inline;
    /// contention and the full check go to [`claim_contended`](Self::claim_contended).
    ///
    /// Pushing is a claim then a [`publish`](Self::publish): only positions cross the outlined
    /// slow path, never the message, so a large message is written once, into its cell.
    #[inline]
    pub(crate) fn claim(&self) -> Option<usize> {
        let tail = self.tail.load(Ordering::Relaxed);
        let cell = &self.cells[tail & (self.one_lap - 1)];
        if cell.stamp.load(Ordering::Acquire) == tail
            && self
                .tail
                .compare_exchange_weak(
                    tail,
                    self.advance(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(tail);
        }
        self.claim_contended()
    }

    #[cold]
    #[inline(never)]
    fn claim_contended(&self) -> Option<usize> {
        let mut backoff = Backoff::default();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let cell = &self.cells[tail & (self.one_lap - 1)];
            let stamp = cell.stamp.load(Ordering::Acquire);
            if stamp == tail {
                let next = self.advance(tail);
                match self.tail.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(tail),
                    Err(now) => {
                        tail = now;
                        backoff.snooze();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The cell still holds last lap's message: full, unless the consumer moved on.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return None;
                }
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer claimed this position; catch up.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Writes `message` at a position this thread claimed, and publishes it.
    #[inline]
    pub(crate) fn publish(&self, position: usize, message: T) {
        let cell = &self.cells[position & (self.one_lap - 1)];
        cell.message.with_mut(|slot| {
            // SAFETY: invariant 0: winning the CAS for `position` makes this thread the cell's
            // only writer until it publishes the stamp below.
            unsafe { (*slot).write(message) };
        });
        cell.stamp.store(position + 1, Ordering::Release);
    }

    /// Whether at least half the ring (and at least one cell) is free: what a sender that found
    /// it full waits for. Waiting for a batch of room, rather than the first free cell, keeps
    /// the receiver busy while the sender wakes, and reads the two indices (each on its own
    /// line) rather than the cell the receiver is working on.
    pub(crate) fn has_room_for_a_batch(&self) -> bool {
        self.len() <= self.capacity - (self.capacity / 2).max(1)
    }

    /// Whether the oldest message is published and ready to pop.
    pub(crate) fn is_ready(&self) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        self.cells[head & (self.one_lap - 1)]
            .stamp
            .load(Ordering::Acquire)
            == head + 1
    }

    /// Pops the oldest message, or `None` if none is ready.
    ///
    /// # Safety
    /// No other thread calls `pop` at the same time (invariant 1).
    #[inline]
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        let cell = &self.cells[head & (self.one_lap - 1)];
        if cell.stamp.load(Ordering::Acquire) != head + 1 {
            return None;
        }
        self.head.store(self.advance(head), Ordering::Relaxed);
        let message = cell.message.with(|slot| {
            // SAFETY: invariant 0: stamp `head + 1` means the message at `head` is written
            // (the Acquire load saw its Release), and the caller is the only reader.
            unsafe { slot.cast::<T>().read() }
        });
        cell.stamp
            .store(head.wrapping_add(self.one_lap), Ordering::Release);
        Some(message)
    }

    /// Messages in the ring now (a snapshot).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                let mask = self.one_lap - 1;
                let (hix, tix) = (head & mask, tail & mask);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.capacity - hix + tix
                } else if tail == head {
                    0
                } else {
                    self.capacity
                };
            }
        }
    }
}

impl<T> Ring<T> {
    /// Pops the oldest message, waiting for a producer that claimed its position to publish it;
    /// `None` once no position is claimed and unread.
    ///
    /// # Safety
    /// As for [`pop`](Self::pop): no other thread pops at the same time.
    pub(crate) unsafe fn pop_claimed(&self) -> Option<T> {
        let mut backoff = Backoff::default();
        loop {
            // SAFETY: caller's promise.
            if let Some(message) = unsafe { self.pop() } {
                return Some(message);
            }
            if self.is_unclaimed() {
                return None;
            }
            backoff.snooze();
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // `&mut self`: no push or pop runs, so every message between head and tail is written.
        // SAFETY: exclusive access satisfies pop's single-consumer promise.
        while unsafe { self.pop() }.is_some() {}
    }
}

#[cfg(all(test, umrf_loom))]
mod loom_tests {
    //! loom models of the ring alone: claims, publications and pops over every interleaving.
    //! The message cells are loom `UnsafeCell`s, so a read not ordered after its write (or a
    //! write racing a read) is reported as a data race.

    use loom::sync::Arc;
    use loom::thread;

    use super::Ring;

    /// Pushes `message`, yielding while the ring is full.
    fn push(ring: &Ring<Arc<u32>>, message: u32) {
        let message = Arc::new(message);
        loop {
            if let Some(position) = ring.claim() {
                ring.publish(position, message);
                return;
            }
            thread::yield_now();
        }
    }

    /// Two producers each try to push one message through a one-cell ring while the consumer
    /// pops once: the claim either succeeds or finds the ring full (never both producers
    /// writing one cell), each message is read once and only after it was written, and a
    /// refused message fits once the ring is drained.
    #[test]
    fn loom_two_producers_hand_over_through_one_cell() {
        let outcomes = crate::sync::model("loom_two_producers_hand_over_through_one_cell", || {
            let ring = Arc::new(Ring::new(1));
            let producers: Vec<_> = (1..=2)
                .map(|message| {
                    let ring = ring.clone();
                    thread::spawn(move || match ring.claim() {
                        Some(position) => {
                            ring.publish(position, Arc::new(message));
                            None
                        }
                        None => Some(message), // full: refused, handed back
                    })
                })
                .collect();
            thread::yield_now(); // producers first in loom's default schedule (loom#392)
            // SAFETY: this thread is the ring's only consumer.
            let mut got: Vec<u32> = unsafe { ring.pop() }.map(|m| *m).into_iter().collect();
            let popped_while_racing = got.len();
            let refused: Vec<u32> = producers
                .into_iter()
                .filter_map(|p| p.join().unwrap())
                .collect();
            let refused_count = refused.len();
            assert!(
                refused_count <= 1,
                "one cell, and one pop: at most one refusal"
            );
            // SAFETY: as above.
            while let Some(message) = unsafe { ring.pop() } {
                got.push(*message);
            }
            for message in refused {
                push(&ring, message);
                // SAFETY: as above.
                got.push(*unsafe { ring.pop() }.expect("just pushed"));
            }
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert_eq!(ring.len(), 0);
            (popped_while_racing, refused_count)
        });
        // A pop before and after a publication, and a producer finding the cell full.
        assert!(
            outcomes.iter().any(|&(popped, _)| popped == 0),
            "{outcomes:?}"
        );
        assert!(
            outcomes.iter().any(|&(popped, _)| popped == 1),
            "{outcomes:?}"
        );
        assert!(
            outcomes.iter().any(|&(_, refused)| refused == 1),
            "{outcomes:?}"
        );
    }

    /// Messages left in the ring when it is dropped are dropped with it (loom reports a leaked
    /// `Arc` otherwise), including one published concurrently with a pop.
    #[test]
    fn loom_a_dropped_ring_drops_what_it_holds() {
        let outcomes = crate::sync::model("loom_a_dropped_ring_drops_what_it_holds", || {
            let ring = Arc::new(Ring::new(2));
            let producer = {
                let ring = ring.clone();
                thread::spawn(move || {
                    push(&ring, 1);
                    push(&ring, 2);
                })
            };
            thread::yield_now(); // the producer first in loom's default schedule (loom#392)
            // SAFETY: this thread is the ring's only consumer.
            let first = unsafe { ring.pop() };
            producer.join().unwrap();
            assert_eq!(ring.len(), 2 - usize::from(first.is_some()));
            first.map(|m| *m)
        });
        assert!(
            outcomes.contains(&None) && outcomes.contains(&Some(1)),
            "{outcomes:?}"
        );
    }
}
