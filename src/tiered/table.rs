//! The page table and the moves between tiers: eviction, spills, reads, completions.
//!
//! Everything here runs on the store's thread (the table lives in the store's `RefCell`); the
//! I/O workers see only the jobs they are handed.
//!
//! # Invariants (of every live entry)
//! 0. `ram.is_some()` ⇒ `io.is_none()`: a block is either in the table or in a job.
//! 1. `pins > 0` ⇒ `ram.is_some()`: a pinned page is in RAM, and is never evicted, written or
//!    freed, so a guard's pointer into its block stays valid and unaliased by the store.
//! 2. A page in RAM is dirty exactly when it has no tier copy (`dirty == copy.is_none()`);
//!    a page not in RAM and not being written has a copy. Clean pages leave RAM unwritten.
//! 3. `ram_blocks` = pages in RAM + jobs in flight ≤ the pool's blocks; `writing` = the write jobs
//!    among them (each gives its block back when done, unless a pin waits for the page).

use std::time::{Duration, Instant};

use super::demote::Demoter;
use super::error::{PageId, SpillTier, TieredError};
use super::io::{Direction, Done, Job, Workers, transfer};
use super::pressure::{PressureMonitor, PressurePolicy};
use super::replace::Replacer;
use super::stats::Counters;
use super::tier_file::TierFile;
use crate::sync::Ordering;
use crate::{LocalPool, Residency, SharedBuffer};
use std::sync::Arc;

/// Where a page's tier copy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TierCopy {
    pub(crate) tier: SpillTier,
    pub(crate) slot: u64,
    pub(crate) checksum: u32,
}

/// One page.
pub(crate) struct Entry<R: Residency> {
    pub(crate) live: bool,
    pub(crate) ram: Option<SharedBuffer<u8, R>>,
    pub(crate) io: Option<(Direction, SpillTier)>,
    pub(crate) copy: Option<TierCopy>,
    pub(crate) pins: u32,
    /// Brought in by a prefetch and not pinned since.
    pub(crate) prefetched: bool,
    /// A pin waits for this page's write to finish: keep the block in RAM when it does.
    pub(crate) wanted: bool,
}

impl<R: Residency> Entry<R> {
    fn new(buffer: SharedBuffer<u8, R>) -> Entry<R> {
        Entry {
            live: true,
            ram: Some(buffer),
            io: None,
            copy: None,
            pins: 0,
            prefetched: false,
            wanted: false,
        }
    }
}

/// Where a page is now, as [`TieredStore::location`](super::TieredStore::location) tells it.
///
/// ```
/// use umrf::tiered::{Location, SpillTier};
/// assert_ne!(Location::Ram { dirty: true }, Location::Tier(SpillTier::Disk));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// In RAM; `dirty` when it has no up-to-date tier copy.
    Ram {
        /// No tier holds what RAM holds.
        dirty: bool,
    },
    /// Being written to `tier` by an I/O worker.
    Writing(SpillTier),
    /// Being read from `tier` by an I/O worker (a prefetch).
    Reading(SpillTier),
    /// Only on `tier`.
    Tier(SpillTier),
}

/// Whether a prefetch can have a block.
enum Room {
    Now,
    /// A spill or a read in flight will free one.
    Later,
    None,
}

/// The pressure watch of a store.
pub(crate) struct PressureWatch {
    pub(crate) monitor: PressureMonitor,
    pub(crate) policy: PressurePolicy,
    pub(crate) interval: Duration,
    pub(crate) last: Option<Instant>,
}

/// The page table, the tiers and the I/O workers of one store.
pub(crate) struct Table<R: Residency> {
    pub(crate) pages: Vec<Entry<R>>,
    pub(crate) free_ids: Vec<u32>,
    /// Prefetches waiting for a spill to make room.
    pub(crate) deferred: Vec<u32>,
    pub(crate) replacer: Replacer,
    pub(crate) tiers: [TierFile; 2],
    pub(crate) workers: Option<Workers<R>>,
    pub(crate) demoter: Demoter,
    pub(crate) ram_blocks: usize,
    /// Spills in flight (each frees a block when done).
    pub(crate) writing: usize,
    pub(crate) ram_limit: usize,
    pub(crate) max_blocks: usize,
    pub(crate) page_size: usize,
    pub(crate) read_ahead: usize,
    /// The first page past the sequential read-ahead window requested so far.
    pub(crate) ahead_next: u32,
    pub(crate) pressure: Option<PressureWatch>,
    pub(crate) counters: Arc<Counters>,
}

impl<R: Residency> Table<R> {
    /// Invariant 3 (debug builds): the blocks counted are the pages in RAM and the jobs.
    pub(crate) fn check_blocks(&self) {
        if cfg!(debug_assertions) {
            let resident = self.pages.iter().filter(|e| e.ram.is_some()).count();
            let in_flight = self.workers.as_ref().map_or(0, |w| w.in_flight);
            debug_assert_eq!(
                resident + in_flight,
                self.ram_blocks,
                "the blocks counted must be the pages in RAM and in flight"
            );
        }
    }

    fn note_ram(&self) {
        self.check_blocks();
        self.counters
            .ram_pages
            .store(self.ram_blocks as u64, Ordering::Relaxed);
    }

    fn tier_pages(&self, tier: SpillTier, delta: i64) {
        let pages = &self.counters.tier(tier).pages;
        if delta >= 0 {
            pages.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            pages.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// A new page, zeroed, dirty, in RAM.
    pub(crate) fn create(&mut self, lease: &LocalPool<R>) -> Result<u32, TieredError> {
        let next = self
            .free_ids
            .last()
            .copied()
            .unwrap_or(self.pages.len() as u32);
        self.make_room(lease, next, 1)?;
        let buffer = lease.alloc_zeroed::<u8>(self.page_size)?;
        self.ram_blocks += 1;
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.pages[id as usize] = Entry::new(buffer);
                id
            }
            None => {
                self.pages.push(Entry::new(buffer));
                (self.pages.len() - 1) as u32
            }
        };
        self.replacer.insert(id);
        self.note_ram();
        Ok(id)
    }

    /// Brings `page` into RAM (pinning is the caller's); counts the pin.
    pub(crate) fn fault_in(&mut self, lease: &LocalPool<R>, page: u32) -> Result<(), TieredError> {
        let c = &self.counters;
        c.pins.fetch_add(1, Ordering::Relaxed);
        self.reap(lease);
        let entry = &mut self.pages[page as usize];
        if entry.ram.is_some() {
            self.hit(page);
            return Ok(());
        }
        if let Some((direction, _)) = entry.io {
            entry.wanted = true;
            self.wait_for(lease, page);
            let entry = &mut self.pages[page as usize];
            entry.wanted = false;
            if entry.ram.is_some() {
                if direction == Direction::Read {
                    self.counters.prefetch_late.fetch_add(1, Ordering::Relaxed);
                    self.pages[page as usize].prefetched = false;
                    self.replacer.touch(page);
                } else {
                    self.hit(page);
                }
                return Ok(());
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        self.read_inline(lease, page)
    }

    fn hit(&mut self, page: u32) {
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        let entry = &mut self.pages[page as usize];
        if entry.prefetched {
            entry.prefetched = false;
            self.counters.prefetch_hits.fetch_add(1, Ordering::Relaxed);
        }
        self.replacer.touch(page);
    }

    /// A true miss: reads the page on the caller's thread.
    fn read_inline(&mut self, lease: &LocalPool<R>, page: u32) -> Result<(), TieredError> {
        let copy = self.pages[page as usize]
            .copy
            .expect("invariant 2: a page out of RAM has a tier copy");
        loop {
            self.make_room(lease, page, 1)?;
            // Making room may finish a spill, and a prefetch that waited for it may take the
            // room for this very page: wait for that read rather than read twice.
            if self.pages[page as usize].io.is_some() {
                self.wait_for(lease, page);
            }
            let entry = &mut self.pages[page as usize];
            if entry.ram.is_some() {
                entry.prefetched = false;
                self.replacer.touch(page);
                return Ok(());
            }
            if entry.io.is_none() {
                break;
            }
        }
        let mut buffer = lease.alloc::<u8>(self.page_size)?;
        let file = self.tiers[copy.tier.index()].file()?;
        let read = transfer(
            Direction::Read,
            copy.tier,
            copy.slot,
            &file,
            buffer.as_bytes_mut(),
            &self.counters,
        );
        let found = read.map_err(|source| TieredError::ReadFailed {
            page: PageId(page),
            tier: copy.tier,
            source,
        })?;
        if found != copy.checksum {
            self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            return Err(TieredError::Corrupt {
                page: PageId(page),
                tier: copy.tier,
                expected: copy.checksum,
                found,
            });
        }
        self.counters
            .tier(copy.tier)
            .promotions
            .fetch_add(1, Ordering::Relaxed);
        self.ram_blocks += 1;
        self.pages[page as usize].ram = Some(buffer);
        self.replacer.insert(page);
        self.note_ram();
        Ok(())
    }

    /// The page will be written (or is freed): its tier copy is given up.
    pub(crate) fn forget_copy(&mut self, page: u32) {
        if let Some(copy) = self.pages[page as usize].copy.take() {
            self.demoter.forget(page);
            self.tiers[copy.tier.index()].give_slot(copy.slot);
            self.tier_pages(copy.tier, -1);
        }
    }

    /// Starts reads of `pages` that are on a tier, as far as RAM has room without waiting; a
    /// page whose room is being made by a spill is read when the spill is done.
    pub(crate) fn prefetch(&mut self, lease: &LocalPool<R>, pages: impl IntoIterator<Item = u32>) {
        self.reap(lease);
        self.issue(lease, pages);
    }

    /// The sequential read-ahead after a pin of `page`: keeps pages `page+1 ..= page+window`
    /// requested, refilled once the pages still ahead fall to half the window, so the workers
    /// get their reads in batches (one wake-up moves many) and a pin of a page whose window is
    /// full costs one comparison. A pin outside the window (a jump, or a scan starting over)
    /// starts a new one at `page+1`; a page that could not be read (no room) stays the start.
    pub(crate) fn read_ahead(&mut self, lease: &LocalPool<R>, page: u32) {
        let window = self.read_ahead as u32;
        let Some(end) = (self.pages.len() as u32).checked_sub(1) else {
            return;
        };
        if window == 0 || page >= end {
            return;
        }
        let last = page.saturating_add(window).min(end);
        let next = self.ahead_next;
        let start = if next <= page || next > last.saturating_add(1) {
            page + 1
        } else {
            next
        };
        if start - (page + 1) > window / 2 || start > last {
            return;
        }
        self.issue(lease, start..=last);
        self.ahead_next = (start..=last)
            .find(|&p| {
                let e = &self.pages[p as usize];
                e.live
                    && e.ram.is_none()
                    && e.io.is_none()
                    && e.copy.is_some()
                    && !self.deferred.contains(&p)
            })
            .unwrap_or(last + 1);
    }

    fn issue(&mut self, lease: &LocalPool<R>, pages: impl IntoIterator<Item = u32>) {
        for page in pages {
            let Some(entry) = self.pages.get(page as usize) else {
                continue;
            };
            if entry.live && entry.ram.is_some() {
                // About to be used: keep it (a second chance under CLOCK, most recent in LRU).
                self.replacer.touch(page);
                continue;
            }
            if !entry.live || entry.io.is_some() {
                continue;
            }
            let Some(copy) = entry.copy else { continue };
            if self.workers.is_none() {
                self.counters
                    .prefetch_dropped
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match self.room_now(lease) {
                Room::Now => {}
                Room::Later => {
                    if !self.deferred.contains(&page) {
                        self.deferred.push(page);
                    }
                    continue;
                }
                Room::None => {
                    self.counters
                        .prefetch_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let (Ok(block), Ok(file)) = (
                lease.alloc::<u8>(self.page_size),
                self.tiers[copy.tier.index()].file(),
            ) else {
                self.counters
                    .prefetch_dropped
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.ram_blocks += 1;
            self.pages[page as usize].io = Some((Direction::Read, copy.tier));
            self.counters
                .prefetch_issued
                .fetch_add(1, Ordering::Relaxed);
            self.submit(
                lease,
                Job {
                    page,
                    direction: Direction::Read,
                    tier: copy.tier,
                    slot: copy.slot,
                    file,
                    block: block.into_capability(),
                },
            );
        }
        self.note_ram();
    }

    /// Whether a block can be had now: under the limit, or by dropping a clean page. A dirty
    /// victim is sent to be written (room comes later).
    fn room_now(&mut self, lease: &LocalPool<R>) -> Room {
        if self.ram_blocks < self.ram_limit {
            return Room::Now;
        }
        if self.writing > self.deferred.len() {
            return Room::Later; // a write in flight frees the block
        }
        let pages = &self.pages;
        let victim = self.replacer.victim(|p| {
            let e = &pages[p as usize];
            e.pins == 0 && !e.prefetched
        });
        match victim {
            Some(v) if self.pages[v as usize].copy.is_some() => {
                self.drop_clean(v);
                Room::Now
            }
            Some(v) => match self.spill(lease, v, None) {
                Ok(()) => Room::Later,
                Err(_) => Room::None,
            },
            None if self.in_flight() > 0 => Room::Later,
            None => Room::None,
        }
    }

    /// Starts the prefetches that waited for room.
    fn issue_deferred(&mut self, lease: &LocalPool<R>) {
        if !self.deferred.is_empty() && self.ram_blocks < self.ram_limit {
            let pages = core::mem::take(&mut self.deferred);
            self.issue(lease, pages);
        }
    }

    /// Evicts until `room_for` more blocks fit under the RAM limit (`page`, which needs the
    /// room, stays).
    fn make_room(
        &mut self,
        lease: &LocalPool<R>,
        page: u32,
        room_for: usize,
    ) -> Result<(), TieredError> {
        self.poll_pressure();
        let target = self.ram_limit.saturating_sub(room_for);
        let mut refused: Vec<u32> = Vec::new();
        let mut last_error = None;
        while self.ram_blocks > target {
            if self.writing > 0 && self.ram_blocks - self.writing <= target {
                // The writes in flight free enough blocks: wait for them, spill no more.
                if let Some(back) = self.wait_any(lease) {
                    refused.push(back.0);
                    last_error = Some(back.1);
                }
                continue;
            }
            let pages = &self.pages;
            // Pages a prefetch brought in and nobody pinned yet go last: they are about to be
            // used.
            let evictable =
                |p: u32, e: &Entry<R>| e.pins == 0 && p != page && !refused.contains(&p);
            let victim = self
                .replacer
                .victim(|p| evictable(p, &pages[p as usize]) && !pages[p as usize].prefetched)
                .or_else(|| self.replacer.victim(|p| evictable(p, &pages[p as usize])));
            match victim {
                Some(v) if self.pages[v as usize].copy.is_some() => self.drop_clean(v),
                Some(v) => {
                    if let Err(err) = self.spill(lease, v, None) {
                        refused.push(v);
                        last_error = Some(err);
                    }
                }
                None if self.in_flight() > 0 => {
                    if let Some(back) = self.wait_any(lease) {
                        refused.push(back.0);
                        last_error = Some(back.1);
                    }
                }
                None => {
                    return Err(last_error.unwrap_or(TieredError::RamFull {
                        page: PageId(page),
                        resident: self.ram_blocks,
                        limit: (self.ram_limit * self.page_size) as u64,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Reads the pressure files if the interval has passed; returns the new limit in blocks
    /// when they were read.
    fn poll_pressure(&mut self) -> Option<usize> {
        let watch = self.pressure.as_mut()?;
        if watch.last.is_some_and(|t| t.elapsed() < watch.interval) {
            return None;
        }
        watch.last = Some(Instant::now());
        // A failed automatic read leaves the limit as it was; `check_pressure` reports it.
        let reading = watch.monitor.read().ok()?;
        let bytes = watch.policy.ram_limit(self.counters.ram_budget, &reading);
        Some(self.set_limit(bytes))
    }

    /// Sets the RAM limit to `bytes` (whole pages, at least one, at most the budget); returns
    /// it in blocks.
    pub(crate) fn set_limit(&mut self, bytes: u64) -> usize {
        let blocks = ((bytes / self.page_size as u64) as usize).clamp(1, self.max_blocks);
        if blocks < self.ram_limit {
            self.counters
                .pressure_shrinks
                .fetch_add(1, Ordering::Relaxed);
        }
        self.ram_limit = blocks;
        self.counters
            .ram_limit
            .store((blocks * self.page_size) as u64, Ordering::Relaxed);
        blocks
    }

    /// Evicts down to the RAM limit now.
    pub(crate) fn shrink(&mut self, lease: &LocalPool<R>) -> Result<(), TieredError> {
        self.make_room(lease, u32::MAX, 0)
    }

    /// Forgets `page`: its block goes home, its tier slot is given back.
    pub(crate) fn release(&mut self, lease: &LocalPool<R>, page: u32) {
        self.wait_for(lease, page);
        if self.pages[page as usize].ram.take().is_some() {
            self.replacer.remove(page);
            self.ram_blocks -= 1;
            self.note_ram();
        }
        self.forget_copy(page);
        let entry = &mut self.pages[page as usize];
        entry.live = false;
        entry.prefetched = false;
        self.free_ids.push(page);
    }

    fn in_flight(&self) -> usize {
        self.workers.as_ref().map_or(0, |w| w.in_flight)
    }

    fn drop_clean(&mut self, page: u32) {
        self.replacer.remove(page);
        let entry = &mut self.pages[page as usize];
        entry.ram = None;
        entry.prefetched = false;
        self.ram_blocks -= 1;
        self.note_ram();
        self.counters
            .clean_evictions
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Picks a tier slot for a spill: tmpfs first, then disk.
    fn reserve(&mut self, below: Option<SpillTier>) -> Result<(SpillTier, u64), String> {
        self.start_demotions();
        let mut why = Vec::new();
        for tier in SpillTier::ALL {
            if below.is_some_and(|b| tier.index() <= b.index()) {
                continue;
            }
            let t = &mut self.tiers[tier.index()];
            if !t.has_room() {
                why.push(format!("{tier} is at its budget"));
                continue;
            }
            if let Err(err) = t.file() {
                why.push(err.to_string());
                continue;
            }
            if let Some(slot) = t.take_slot() {
                return Ok((tier, slot));
            }
        }
        Err(why.join("; "))
    }

    /// Writes dirty `page` to a tier (below `below`, if given): handed to a worker, or inline.
    /// On an inline write, the page leaves RAM when it succeeds and stays, whole, when every
    /// tier refuses it.
    fn spill(
        &mut self,
        lease: &LocalPool<R>,
        page: u32,
        mut below: Option<SpillTier>,
    ) -> Result<(), TieredError> {
        let mut why = Vec::new();
        loop {
            let (tier, slot) = match self.reserve(below) {
                Ok(pick) => pick,
                Err(reason) => {
                    if !reason.is_empty() {
                        why.push(reason);
                    }
                    self.counters.spill_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(TieredError::SpillFailed {
                        page: PageId(page),
                        cause: why.join("; "),
                    });
                }
            };
            let file = self.tiers[tier.index()].file()?;
            if self.workers.is_some() {
                self.replacer.remove(page);
                let entry = &mut self.pages[page as usize];
                let buffer = entry.ram.take().expect("a spilled page is in RAM");
                entry.io = Some((Direction::Write, tier));
                self.writing += 1;
                let block = buffer.into_spill_capability();
                self.submit(
                    lease,
                    Job {
                        page,
                        direction: Direction::Write,
                        tier,
                        slot,
                        file,
                        block,
                    },
                );
                return Ok(());
            }
            let entry = &mut self.pages[page as usize];
            let buffer = entry.ram.as_mut().expect("a spilled page is in RAM");
            let written = transfer(
                Direction::Write,
                tier,
                slot,
                &file,
                buffer.as_bytes_mut(),
                &self.counters,
            );
            match written {
                Ok(checksum) => {
                    self.written(page, tier, slot, checksum);
                    self.replacer.remove(page);
                    self.pages[page as usize].ram = None;
                    self.ram_blocks -= 1;
                    self.note_ram();
                    return Ok(());
                }
                Err(err) => {
                    why.push(self.refused(tier, slot, &err));
                    below = Some(tier);
                }
            }
        }
    }

    /// Records a page written to `slot` of `tier`.
    fn written(&mut self, page: u32, tier: SpillTier, slot: u64, checksum: u32) {
        self.pages[page as usize].copy = Some(TierCopy {
            tier,
            slot,
            checksum,
        });
        self.tier_pages(tier, 1);
        if tier == SpillTier::Tmpfs {
            self.note_tmpfs(page, slot);
        }
        let c = self.counters.tier(tier);
        c.spills.fetch_add(1, Ordering::Relaxed);
    }

    /// A write to `slot` of `tier` failed: the slot goes back. A full tmpfs stops growing, so
    /// later spills go to disk at once; a full disk is tried again by the next spill (space
    /// may come back, and there is no tier below to go to). Returns the reason, for the error.
    fn refused(&mut self, tier: SpillTier, slot: u64, err: &std::io::Error) -> String {
        let full = err.raw_os_error() == Some(libc::ENOSPC);
        if full {
            self.counters
                .tier(tier)
                .full
                .fetch_add(1, Ordering::Relaxed);
        }
        let t = &mut self.tiers[tier.index()];
        if full && tier == SpillTier::Tmpfs {
            t.mark_full(slot);
        } else {
            t.give_slot(slot);
        }
        format!("{tier}: write failed: {err}")
    }

    /// Sends `job` to a worker; a worker that is gone makes the store do its I/O inline.
    fn submit(&mut self, lease: &LocalPool<R>, job: Job<R>) {
        let Some(workers) = self.workers.as_mut() else {
            unreachable!("submit is only called with workers");
        };
        if let Err(job) = workers.submit(job) {
            // A worker died (it cannot unless it panicked): finish the job here, and do all
            // I/O inline from now on. A spill every tier refused leaves the page in RAM,
            // whole; the caller making room picks another victim or reports it.
            let done = job.run(&self.counters);
            self.workers = None;
            let _ = self.complete(lease, done);
        }
    }

    /// Takes every finished job back without waiting.
    pub(crate) fn reap(&mut self, lease: &LocalPool<R>) {
        while let Some(done) = self.workers.as_mut().and_then(Workers::try_take) {
            let _ = self.complete(lease, done);
        }
        self.reap_demotions();
        self.issue_deferred(lease);
    }

    /// Waits for one job to finish; returns the page and error of a spill every tier refused.
    fn wait_any(&mut self, lease: &LocalPool<R>) -> Option<(u32, TieredError)> {
        let done = self.workers.as_mut()?.take()?;
        let page = done.page;
        let result = self.complete(lease, done).err().map(|e| (page, e));
        self.issue_deferred(lease);
        result
    }

    /// Waits until no job is in flight (prefetches that waited for room are started on the way).
    pub(crate) fn quiesce(&mut self, lease: &LocalPool<R>) {
        while self.in_flight() > 0 {
            let _ = self.wait_any(lease);
        }
        self.drain_demotions();
    }

    /// Waits until `page` has no job in flight.
    pub(crate) fn wait_for(&mut self, lease: &LocalPool<R>, page: u32) {
        while self.pages[page as usize].io.is_some() && self.in_flight() > 0 {
            let _ = self.wait_any(lease);
        }
    }

    /// Applies a finished job.
    fn complete(&mut self, lease: &LocalPool<R>, done: Done<R>) -> Result<(), TieredError> {
        let Done {
            page,
            direction,
            tier,
            slot,
            block,
            result,
        } = done;
        let buffer = match block.accept(lease) {
            Ok(buffer) => buffer,
            Err(err) => unreachable!("the store's own block: {err:?}"),
        };
        let entry = &mut self.pages[page as usize];
        entry.io = None;
        if direction == Direction::Write {
            self.writing -= 1;
        }
        match (direction, result) {
            (Direction::Write, Ok(checksum)) => {
                self.written(page, tier, slot, checksum);
                let entry = &mut self.pages[page as usize];
                if entry.wanted {
                    entry.ram = Some(buffer);
                    self.replacer.insert(page);
                } else {
                    drop(buffer);
                    self.ram_blocks -= 1;
                }
                Ok(())
            }
            (Direction::Write, Err(err)) => {
                let reason = self.refused(tier, slot, &err);
                // The page is back in RAM, whole; try the tier below, inline if need be.
                self.pages[page as usize].ram = Some(buffer);
                self.replacer.insert(page);
                match self.spill(lease, page, Some(tier)) {
                    Ok(()) => Ok(()),
                    Err(TieredError::SpillFailed { page, cause }) => {
                        Err(TieredError::SpillFailed {
                            page,
                            cause: format!("{reason}; {cause}"),
                        })
                    }
                    Err(other) => Err(other),
                }
            }
            (Direction::Read, Ok(found)) => {
                debug_assert!(
                    entry.ram.is_none(),
                    "one read per page in flight, none resident"
                );
                let expected = entry.copy.map(|c| c.checksum);
                if expected == Some(found) && entry.live {
                    entry.ram = Some(buffer);
                    entry.prefetched = true;
                    self.replacer.insert(page);
                    self.counters
                        .tier(tier)
                        .promotions
                        .fetch_add(1, Ordering::Relaxed);
                } else {
                    // A corrupt prefetch is left for the pin to find (it reads again and
                    // reports the page); the block goes home.
                    drop(buffer);
                    self.ram_blocks -= 1;
                }
                Ok(())
            }
            (Direction::Read, Err(_)) => {
                drop(buffer);
                self.ram_blocks -= 1;
                Ok(())
            }
        }
        .inspect(|_| self.note_ram())
    }
}
