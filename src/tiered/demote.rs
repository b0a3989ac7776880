//! Demotion: the coldest pages of the tmpfs tier move to the disk tier in the background.
//!
//! Pages spilled to tmpfs are queued oldest first. When tmpfs has fewer free slots than its
//! headroom (it is at its budget, or its file system is full), the store's next spill starts
//! demotions: for the oldest queued pages that are not in RAM (a page in RAM is in use: it is
//! queued again), a disk slot is reserved and a demotion thread copies the page, through its
//! own page buffer: it reads the tmpfs slot, checks the page against its checksum, writes the
//! disk slot ([`OsCall::Demote`](crate::backing::fault::OsCall::Demote)). Only when the write
//! is done does the page's copy move to disk and its tmpfs slot go back; until then the page
//! is read from tmpfs, and a failed demotion (read, checksum, write) leaves it there and gives
//! the disk slot back. A page written or freed meanwhile gives its tmpfs copy up as usual, and
//! its demotion, stale, is dropped when it completes.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use super::checksum::page_checksum;
use super::error::SpillTier;
use super::stats::Counters;
use super::table::{Table, TierCopy};
use super::tier_file::SpillFile;
use crate::Residency;
use crate::backing::os::OsCall;
use crate::sync::Ordering;

/// Demotions in flight at most.
const MAX_IN_FLIGHT: usize = 8;

/// One page to copy from tmpfs to disk.
struct Copy {
    page: u32,
    from: Arc<SpillFile>,
    from_slot: u64,
    to: Arc<SpillFile>,
    to_slot: u64,
    checksum: u32,
}

/// A copy done (or failed).
struct Copied {
    page: u32,
    to_slot: u64,
    result: io::Result<()>,
}

/// A demotion in flight.
struct InFlight {
    page: u32,
    from_slot: u64,
    /// The page gave its tmpfs copy up meanwhile: drop the result.
    stale: bool,
}

/// The demotion queue and thread of one store.
pub(crate) struct Demoter {
    /// Pages spilled to tmpfs and their slots, oldest first (entries whose page moved on are
    /// skipped when they come up).
    queue: VecDeque<(u32, u64)>,
    in_flight: Vec<InFlight>,
    /// Free tmpfs slots the store keeps, demoting when there are fewer.
    headroom: u64,
    copies: Option<Sender<Copy>>,
    copied: Option<Receiver<Copied>>,
    thread: Option<JoinHandle<()>>,
}

impl Demoter {
    /// No demotion: tmpfs pages stay there until they are read or freed.
    pub(crate) fn off() -> Demoter {
        Demoter {
            queue: VecDeque::new(),
            in_flight: Vec::new(),
            headroom: 0,
            copies: None,
            copied: None,
            thread: None,
        }
    }

    /// Demotion for a tmpfs tier of `tmpfs_slots` slots, with a thread copying pages of
    /// `page_size` bytes (off when the thread cannot be started).
    pub(crate) fn start(page_size: usize, tmpfs_slots: u64, counters: &Arc<Counters>) -> Demoter {
        let (copies, jobs) = channel::<Copy>();
        let (done, copied) = channel::<Copied>();
        let counters = counters.clone();
        #[cfg(any(test, feature = "fault-injection"))]
        let plan = crate::backing::fault::inherit();
        let thread = std::thread::Builder::new()
            .name("umrf-tiered-demote".to_owned())
            .spawn(move || {
                #[cfg(any(test, feature = "fault-injection"))]
                let _plan = plan.install();
                let mut buffer = vec![0u8; page_size];
                for copy in jobs.iter() {
                    let result = demote_page(&copy, &mut buffer, &counters);
                    let _ = done.send(Copied {
                        page: copy.page,
                        to_slot: copy.to_slot,
                        result,
                    });
                }
            });
        match thread {
            Ok(thread) => Demoter {
                headroom: (tmpfs_slots / 16).clamp(1, 64),
                copies: Some(copies),
                copied: Some(copied),
                thread: Some(thread),
                queue: VecDeque::new(),
                in_flight: Vec::new(),
            },
            Err(_) => Demoter::off(),
        }
    }

    /// `page` gave its tier copy up (written again, or freed): a demotion of it is stale.
    pub(crate) fn forget(&mut self, page: u32) {
        for d in self.in_flight.iter_mut().filter(|d| d.page == page) {
            d.stale = true;
        }
    }

    fn demoting(&self, page: u32) -> bool {
        self.in_flight.iter().any(|d| d.page == page && !d.stale)
    }
}

impl Drop for Demoter {
    fn drop(&mut self) {
        self.copies = None; // the thread's loop ends
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The copy of one page, on the demotion thread: read, check, write.
fn demote_page(copy: &Copy, buffer: &mut [u8], counters: &Counters) -> io::Result<()> {
    let start = Instant::now();
    copy.from.read_page(copy.from_slot, buffer)?;
    counters.read(SpillTier::Tmpfs, start.elapsed());
    let found = page_checksum(buffer);
    if found != copy.checksum {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "tmpfs slot {} fails its checksum ({found:#010x}, written as {:#010x})",
                copy.from_slot, copy.checksum
            ),
        ));
    }
    let start = Instant::now();
    copy.to
        .write_page_as(OsCall::Demote, copy.to_slot, buffer)?;
    counters.wrote(SpillTier::Disk, start.elapsed());
    Ok(())
}

impl<R: Residency> Table<R> {
    /// `page` was written to tmpfs `slot`: it is the newest there. The queue is cleared of
    /// entries whose page moved on when it holds twice the tier's slots.
    pub(crate) fn note_tmpfs(&mut self, page: u32, slot: u64) {
        if self.demoter.copies.is_none() {
            return;
        }
        self.demoter.queue.push_back((page, slot));
        let slots = self.tiers[SpillTier::Tmpfs.index()].slots();
        if self.demoter.queue.len() as u64 > 2 * slots + 64 {
            let pages = &self.pages;
            self.demoter.queue.retain(|&(p, s)| {
                pages[p as usize].copy.is_some_and(|c| {
                    pages[p as usize].live && c.tier == SpillTier::Tmpfs && c.slot == s
                })
            });
        }
    }

    /// Starts demotions while tmpfs has fewer free slots than its headroom (called before each
    /// spill picks its tier).
    pub(crate) fn start_demotions(&mut self) {
        let (tmpfs, disk) = (SpillTier::Tmpfs.index(), SpillTier::Disk.index());
        let mut looked = 0;
        while self.demoter.copies.is_some()
            && self.demoter.in_flight.len() < MAX_IN_FLIGHT
            && self.tiers[tmpfs].room() + (self.demoter.in_flight.len() as u64)
                < self.demoter.headroom
            && looked < self.demoter.queue.len()
            && self.tiers[disk].has_room()
        {
            let Some((page, slot)) = self.demoter.queue.pop_front() else {
                break;
            };
            looked += 1;
            let Some(entry) = self.pages.get(page as usize) else {
                continue;
            };
            let copy = match entry.copy {
                Some(c) if entry.live && c.tier == SpillTier::Tmpfs && c.slot == slot => c,
                _ => continue, // moved on: the entry is stale
            };
            if entry.ram.is_some() || entry.io.is_some() || self.demoter.demoting(page) {
                self.demoter.queue.push_back((page, slot)); // in use: not cold
                continue;
            }
            let (Ok(from), Ok(to)) = (self.tiers[tmpfs].file(), self.tiers[disk].file()) else {
                self.demoter.queue.push_front((page, slot));
                break;
            };
            let Some(to_slot) = self.tiers[disk].take_slot() else {
                self.demoter.queue.push_front((page, slot));
                break;
            };
            let job = Copy {
                page,
                from,
                from_slot: slot,
                to,
                to_slot,
                checksum: copy.checksum,
            };
            let sent = self
                .demoter
                .copies
                .as_ref()
                .is_some_and(|c| c.send(job).is_ok());
            if !sent {
                // The thread is gone (it cannot be unless it panicked): demote no more.
                self.tiers[disk].give_slot(to_slot);
                self.demoter.copies = None;
                break;
            }
            self.demoter.in_flight.push(InFlight {
                page,
                from_slot: slot,
                stale: false,
            });
        }
    }

    /// Applies the demotions done, without waiting.
    pub(crate) fn reap_demotions(&mut self) {
        while let Some(copied) = self.demoter.copied.as_ref().and_then(|c| c.try_recv().ok()) {
            self.demoted(copied);
        }
    }

    /// Waits for every demotion in flight.
    pub(crate) fn drain_demotions(&mut self) {
        while !self.demoter.in_flight.is_empty() {
            let Some(copied) = self.demoter.copied.as_ref().and_then(|c| c.recv().ok()) else {
                // The thread is gone: its copies will not complete; their pages stay on tmpfs.
                self.demoter.in_flight.clear();
                return;
            };
            self.demoted(copied);
        }
    }

    /// One demotion done: the page's copy moves to disk, or stays on tmpfs.
    fn demoted(&mut self, copied: Copied) {
        let Copied {
            page,
            to_slot,
            result,
        } = copied;
        let at = self
            .demoter
            .in_flight
            .iter()
            .position(|d| d.page == page)
            .expect("a finished demotion is in flight");
        let InFlight {
            from_slot, stale, ..
        } = self.demoter.in_flight.swap_remove(at);
        let disk = SpillTier::Disk;
        if stale || result.is_err() {
            self.tiers[disk.index()].give_slot(to_slot);
            self.counters
                .demotion_failures
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let entry = &mut self.pages[page as usize];
        let copy = entry
            .copy
            .expect("a page not stale still has its tmpfs copy");
        debug_assert_eq!((copy.tier, copy.slot), (SpillTier::Tmpfs, from_slot));
        entry.copy = Some(TierCopy {
            tier: disk,
            slot: to_slot,
            checksum: copy.checksum,
        });
        self.tiers[SpillTier::Tmpfs.index()].give_slot(from_slot);
        let c = &self.counters;
        c.tier(SpillTier::Tmpfs)
            .pages
            .fetch_sub(1, Ordering::Relaxed);
        c.tier(disk).pages.fetch_add(1, Ordering::Relaxed);
        c.demotions.fetch_add(1, Ordering::Relaxed);
    }
}
