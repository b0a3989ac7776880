//! The recording side: a pool's log (rings, sinks, clock) and each slot's per-block record.

use core::fmt;
use std::io;
use std::sync::PoisonError;
use std::time::Instant;

use super::config::{EventSink, LogConfig};
use super::event::{Event, EventKind, NONE, RawEvent};
use super::ring::Ring;
use crate::error::{Error, PoolName};
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex, Ordering};

fn kind_index(kind: EventKind) -> usize {
    EventKind::ALL.iter().position(|&k| k == kind).unwrap_or(0)
}

/// Everything a logging pool shares between its slots: its identity, its clock, the rings and
/// the sinks. Kept alive by the slots and by every [`OwnershipLog`] handle, so the rings can
/// be read after the pool is gone.
pub(crate) struct PoolLog {
    pool: PoolName,
    pool_id: u64,
    residency: String,
    epoch: Instant,
    rings: Box<[Mutex<Ring>]>,
    sinks: Vec<std::sync::Arc<dyn EventSink>>,
    counts: [AtomicU64; EventKind::ALL.len()],
    sink_panics: AtomicU64,
}

impl PoolLog {
    /// The log of a pool of `slots` slots, its clock starting now.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the rings (`slots * ring_capacity` events) cannot be
    /// allocated.
    pub(crate) fn new(
        pool: PoolName,
        pool_id: u64,
        residency: String,
        slots: usize,
        config: LogConfig,
    ) -> Result<Arc<PoolLog>, Error> {
        let capacity = config.ring_capacity;
        let rings = if capacity == 0 {
            Box::default()
        } else {
            let refused = || Error::InvalidConfig {
                reason: format!(
                    "ownership log rings of {capacity} events for each of {slots} slots need {} bytes, which the system allocator refused: use a smaller LogConfig::ring_capacity (the default is {}), or 0 and a sink",
                    Ring::bytes_for(capacity).saturating_mul(slots),
                    LogConfig::DEFAULT_RING_CAPACITY,
                ),
            };
            (0..slots)
                .map(|_| Ring::try_new(capacity).map(Mutex::new).ok_or_else(refused))
                .collect::<Result<_, _>>()?
        };
        Ok(Arc::new(PoolLog {
            pool,
            pool_id,
            residency,
            epoch: Instant::now(),
            rings,
            sinks: config.sinks,
            counts: core::array::from_fn(|_| AtomicU64::new(0)),
            sink_panics: AtomicU64::new(0),
        }))
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records one event into the acting slot's ring (the home's when no slot of this pool
    /// acted) and counts it; the sinks get it when the returned [`Pending`] is published.
    ///
    /// Nothing here runs code from outside the crate, so it may be called in the middle of a
    /// block's state change; the sinks may not (see [`Pending`]).
    fn emit(
        log: &Arc<PoolLog>,
        kind: EventKind,
        slot: u32,
        home: u32,
        block: u32,
        seq: u32,
        peer: u32,
    ) -> Pending {
        let raw = RawEvent {
            ts_ns: log.now_ns(),
            kind,
            slot,
            home,
            block,
            seq,
            peer,
        };
        log.counts[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        let ring = if (slot as usize) < log.rings.len() {
            slot
        } else {
            home
        };
        if let Some(ring) = log.rings.get(ring as usize) {
            ring.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(raw);
        }
        if log.sinks.is_empty() {
            Pending(None)
        } else {
            Pending(Some((Arc::clone(log), raw)))
        }
    }

    /// Gives `raw` to every sink.
    fn publish(&self, raw: &RawEvent) {
        let event = raw.with_context(self.pool.as_str(), self.pool_id, &self.residency);
        for sink in &self.sinks {
            // A panicking sink must not unwind through the pool's bookkeeping (STYLE rule
            // 6): it is counted and the event goes on to the other sinks.
            let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sink.record(&event);
            }));
            if recorded.is_err() {
                self.sink_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Flushes every sink; the first error, after trying them all.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let mut first = Ok(());
        for sink in &self.sinks {
            let result = sink.flush();
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    /// Every ring's events with the pool's context, slot by slot; `clear` empties the rings.
    fn collect(&self, clear: bool) -> Vec<Event<'static>> {
        let mut events = Vec::new();
        for ring in self.rings.iter() {
            let mut ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
            events.extend(ring.iter().map(|raw| {
                raw.with_context(self.pool.as_str(), self.pool_id, &self.residency)
                    .into_owned()
            }));
            if clear {
                ring.clear();
            }
        }
        events.sort_by_key(|e| (e.ts_ns, e.home, e.block, e.seq));
        events
    }
}

/// An event already in its ring, not yet given to the sinks.
///
/// Sinks are code from outside the crate: they may panic, call back into the pool, or drop
/// the thread's lease or the last handle of the pool. So no sink runs while a block's state
/// or a slot's free list is half updated, nor while an operation still relies on holding a
/// lease: every recording method returns a `Pending`, and the operation publishes it only once
/// its state change is complete. A `Pending` keeps the pool's log alive, so publishing is safe
/// even if the operation has just released the pool's memory.
#[must_use = "publish the event once the state change is complete"]
pub(crate) struct Pending(Option<(Arc<PoolLog>, RawEvent)>);

impl Pending {
    /// No event (a pool without logging, or without sinks).
    #[inline(always)]
    pub(crate) fn none() -> Pending {
        Pending(None)
    }

    /// Gives the event to the sinks. Call it when nothing after it, in the operation that
    /// recorded the event, touches state the lease protects.
    #[inline]
    pub(crate) fn publish(self) {
        if let Some((log, raw)) = self.0 {
            publish_cold(&log, &raw);
        }
    }
}

#[cold]
#[inline(never)]
fn publish_cold(log: &PoolLog, raw: &RawEvent) {
    log.publish(raw);
}

/// Where a block is, as the log last recorded it (the low half of a per-block record word).
const HOLDER_FREE: u32 = u32::MAX;
/// Set in the holder while the block is in flight; the rest is the sender's slot.
const IN_FLIGHT: u32 = 1 << 31;

/// One slot's part of the log: the pool's log, and a record word per block of this slot.
///
/// # Invariants
/// 0. `blocks[i]` is `seq << 32 | holder`: the number of block `i`'s next event, and who holds
///    it (a slot, [`HOLDER_FREE`], or [`IN_FLIGHT`] with the sender's slot).
/// 1. Only the block's current owner writes its word (I1: one owner at a time), and ownership
///    passes with a happens-before edge (a message, a remote-free push and its drain, a lease
///    hand-over), so a relaxed load and store per event suffice: each owner sees the word its
///    predecessor wrote, and the event numbers of one block are consecutive.
/// 2. `parked` is the number of free blocks a logging slot keeps on its owner's stack; only
///    the slot's lease holder writes it (Slot invariant 6).
pub(crate) struct SlotLog {
    pool: Arc<PoolLog>,
    home: u32,
    blocks: Box<[AtomicU64]>,
    parked: AtomicU32,
}

impl SlotLog {
    /// The log of slot `home`, with `blocks` blocks, none seen yet.
    pub(crate) fn new(pool: Arc<PoolLog>, home: usize, blocks: u32) -> Box<SlotLog> {
        let free = u64::from(HOLDER_FREE);
        Box::new(SlotLog {
            pool,
            home: home as u32,
            blocks: (0..blocks).map(|_| AtomicU64::new(free)).collect(),
            parked: AtomicU32::new(0),
        })
    }

    /// Free blocks the slot keeps parked (see Slot invariant 6).
    pub(crate) fn parked(&self) -> u32 {
        self.parked.load(Ordering::Relaxed)
    }

    /// Sets the parked count; only on the slot's lease holder.
    pub(crate) fn set_parked(&self, parked: u32) {
        self.parked.store(parked, Ordering::Relaxed);
    }

    /// Advances block `block`'s record to `holder`; returns the event number and the holder
    /// before.
    fn step(&self, block: u32, holder: u32) -> (u32, u32) {
        let word = &self.blocks[block as usize];
        let old = word.load(Ordering::Relaxed);
        let seq = (old >> 32) as u32;
        word.store(
            (u64::from(seq.wrapping_add(1)) << 32) | u64::from(holder),
            Ordering::Relaxed,
        );
        (seq, old as u32)
    }

    /// The home slot's lease handed `block` out.
    #[cold]
    #[inline(never)]
    pub(crate) fn allocate(&self, block: u32) -> Pending {
        self.at_home(EventKind::Allocate, block, self.home)
    }

    /// The home slot's lease took `block` back on its free list.
    #[cold]
    #[inline(never)]
    pub(crate) fn freed_local(&self, block: u32) -> Pending {
        self.at_home(EventKind::FreedLocal, block, HOLDER_FREE)
    }

    /// An event of the home slot's lease on `block`, which leaves the block with `holder`.
    fn at_home(&self, kind: EventKind, block: u32, holder: u32) -> Pending {
        let (seq, _) = self.step(block, holder);
        PoolLog::emit(&self.pool, kind, self.home, self.home, block, seq, NONE)
    }

    /// `block`'s owner made a capability of it (`state` `InFlight` or `Frozen`), or handed it
    /// to a tiered store's I/O worker to spill (`Spilled`).
    #[cold]
    #[inline(never)]
    pub(crate) fn sent(&self, block: u32, state: crate::BlockState) -> Pending {
        let kind = match state {
            crate::BlockState::Spilled => EventKind::Spilled,
            _ => EventKind::TransferSent,
        };
        let word = self.blocks[block as usize].load(Ordering::Relaxed);
        let owner = word as u32;
        let (seq, _) = self.step(block, IN_FLIGHT | (owner & !IN_FLIGHT));
        PoolLog::emit(&self.pool, kind, owner, self.home, block, seq, NONE)
    }

    /// The lease of slot `owner` accepted `block`.
    #[cold]
    #[inline(never)]
    pub(crate) fn accepted(&self, block: u32, owner: usize) -> Pending {
        let owner = owner as u32;
        let (seq, before) = self.step(block, owner);
        let sender = if before & IN_FLIGHT != 0 && before != HOLDER_FREE {
            before & !IN_FLIGHT
        } else {
            NONE
        };
        PoolLog::emit(
            &self.pool,
            EventKind::Accepted,
            owner,
            self.home,
            block,
            seq,
            sender,
        )
    }

    /// `block` goes home as a remote free, from its owner or from a dropped capability.
    #[cold]
    #[inline(never)]
    pub(crate) fn freed_remote(&self, block: u32) -> Pending {
        let (seq, before) = self.step(block, HOLDER_FREE);
        let actor = if before & IN_FLIGHT != 0 {
            NONE
        } else {
            before
        };
        PoolLog::emit(
            &self.pool,
            EventKind::FreedRemote,
            actor,
            self.home,
            block,
            seq,
            self.home,
        )
    }

    /// An allocation found this slot empty.
    #[cold]
    #[inline(never)]
    pub(crate) fn exhausted(&self) -> Pending {
        let home = self.home;
        PoolLog::emit(&self.pool, EventKind::Exhausted, home, NONE, NONE, 0, NONE)
    }

    /// Slot `fallback_slot` of the fallback pool served an allocation of this slot.
    #[cold]
    #[inline(never)]
    pub(crate) fn fallback_used(&self, fallback_slot: usize) -> Pending {
        let home = self.home;
        PoolLog::emit(
            &self.pool,
            EventKind::FallbackUsed,
            home,
            NONE,
            NONE,
            0,
            fallback_slot as u32,
        )
    }
}

/// A handle to a logging pool's event rings and sinks. From
/// [`Pool::ownership_log`](crate::Pool::ownership_log); it stays readable after the pool is
/// gone.
///
/// ```
/// use umrf::events::{validate, EventKind, LogConfig};
/// use umrf::{Pool, residency::CpuLocal};
///
/// let pool = Pool::<CpuLocal>::builder()
///     .block_size(64).blocks_per_slot(4).slots(2)
///     .log_ownership(LogConfig::new())
///     .build()?;
/// let log = pool.ownership_log().expect("built with logging");
/// let (home, away) = (pool.attach_slot(0)?, pool.attach_slot(1)?);
/// let cap = home.alloc::<u8>(8)?.into_capability();
/// drop(cap.accept(&away).unwrap()); // a remote free home
///
/// let events = log.events();
/// let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
/// assert_eq!(kinds, [EventKind::Allocate, EventKind::TransferSent, EventKind::Accepted, EventKind::FreedRemote]);
/// assert_eq!(events[2].peer, Some(0)); // accepted from slot 0
/// assert!(validate(events).is_ok());
/// assert_eq!(log.count(EventKind::Accepted), 1);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone)]
pub struct OwnershipLog {
    log: Arc<PoolLog>,
}

impl OwnershipLog {
    pub(crate) fn new(log: Arc<PoolLog>) -> Self {
        OwnershipLog { log }
    }

    /// Every event still in the rings, in time order (each ring keeps its slot's newest
    /// events; see [`overwritten`](Self::overwritten)).
    pub fn events(&self) -> Vec<Event<'static>> {
        self.log.collect(false)
    }

    /// As [`events`](Self::events), and empties the rings.
    pub fn drain(&self) -> Vec<Event<'static>> {
        self.log.collect(true)
    }

    /// The events in slot `slot`'s ring, oldest first, or `None` if there is no such ring.
    ///
    /// A ring holds the events whose acting slot (the `slot` field) it is, and the events of
    /// its home blocks that no slot of this pool acted on.
    pub fn slot_events(&self, slot: usize) -> Option<Vec<Event<'static>>> {
        let ring = self.log.rings.get(slot)?;
        let ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
        let log = &self.log;
        Some(
            ring.iter()
                .map(|raw| {
                    raw.with_context(log.pool.as_str(), log.pool_id, &log.residency)
                        .into_owned()
                })
                .collect(),
        )
    }

    /// Events dropped from full rings to make room, all time (the sinks still got them).
    pub fn overwritten(&self) -> u64 {
        self.log
            .rings
            .iter()
            .map(|r| {
                r.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .overwritten()
            })
            .sum()
    }

    /// Events of kind `kind` recorded, all time.
    pub fn count(&self, kind: EventKind) -> u64 {
        self.log.counts[kind_index(kind)].load(Ordering::Relaxed)
    }

    /// Times a sink panicked while recording (the panic was caught; the pool went on).
    pub fn sink_panics(&self) -> u64 {
        self.log.sink_panics.load(Ordering::Relaxed)
    }

    /// The pool's name.
    pub fn pool(&self) -> &PoolName {
        &self.log.pool
    }

    /// Flushes every sink.
    ///
    /// # Errors
    /// The first sink error (the other sinks are still flushed).
    pub fn flush(&self) -> io::Result<()> {
        self.log.flush()
    }
}

impl fmt::Debug for OwnershipLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipLog")
            .field("pool", &self.log.pool)
            .field("rings", &self.log.rings.len())
            .field("sinks", &self.log.sinks.len())
            .finish()
    }
}
