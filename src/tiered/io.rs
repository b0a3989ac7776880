//! Background I/O: worker threads that write spilled pages and read prefetched ones.
//!
//! The store hands a worker a job holding the page's block as a [`Capability`] (the block is
//! out of the store's hands, so nothing else touches it), the tier file and the slot; the
//! worker does the `pwrite`/`pread`, checksums the page, and sends the capability back on the
//! completion mailbox. Jobs go round-robin to one mailbox per worker; the completion mailbox
//! is shared. Both are bounded by the number of RAM pages (a job always carries a block), so a
//! send never waits for long.
//!
//! Workers copy the spawning thread's fault plan, so fault-injection tests reach their calls.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::checksum::page_checksum;
use super::error::SpillTier;
use super::stats::Counters;
use super::tier_file::SpillFile;
use crate::mailbox::{Receiver, Sender, mailbox};
use crate::{Capability, Residency, Transferable};

/// Write a page out, or read one in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Write,
    Read,
}

/// One page of I/O for a worker.
pub(crate) struct Job<R: Residency> {
    pub(crate) page: u32,
    pub(crate) direction: Direction,
    pub(crate) tier: SpillTier,
    pub(crate) slot: u64,
    pub(crate) file: Arc<SpillFile>,
    pub(crate) block: Capability<u8, R>,
}

impl<R: Residency> Job<R> {
    /// Does the job's I/O (timed into `counters`) and hands the block back with the outcome.
    pub(crate) fn run(self, counters: &Counters) -> Done<R> {
        let Job {
            page,
            direction,
            tier,
            slot,
            file,
            mut block,
        } = self;
        let result = transfer(
            direction,
            tier,
            slot,
            &file,
            block.payload_bytes_mut(),
            counters,
        );
        Done {
            page,
            direction,
            tier,
            slot,
            block,
            result,
        }
    }
}

// SAFETY: the capability owns its block alone (Capability invariant 1); the file is an open
// descriptor used only with positioned reads and writes, at a slot the store reserved for this
// job alone, so no memory and no byte range is shared mutably with any other value.
unsafe impl<R: Residency> Transferable for Job<R> {}

/// A job done: the block back, and the checksum of the page (written or read), or the error.
pub(crate) struct Done<R: Residency> {
    pub(crate) page: u32,
    pub(crate) direction: Direction,
    pub(crate) tier: SpillTier,
    pub(crate) slot: u64,
    pub(crate) block: Capability<u8, R>,
    pub(crate) result: io::Result<u32>,
}

// SAFETY: the capability owns its block alone (Capability invariant 1); the rest is plain data
// and an owned error.
unsafe impl<R: Residency> Transferable for Done<R> {}

/// The I/O workers of one store.
pub(crate) struct Workers<R: Residency> {
    jobs: Vec<Sender<Job<R>>>,
    next: usize,
    pub(crate) done: Receiver<Done<R>>,
    threads: Vec<JoinHandle<()>>,
    /// Jobs sent and not yet taken back from `done`.
    pub(crate) in_flight: usize,
}

impl<R: Residency> Workers<R> {
    /// Starts `threads` workers, each with mailboxes of `depth` messages.
    ///
    /// # Errors
    /// The spawn error when a thread could not be started (the store then does its I/O on the
    /// caller's thread).
    pub(crate) fn spawn(
        threads: usize,
        depth: usize,
        counters: &Arc<Counters>,
    ) -> io::Result<Workers<R>> {
        let (done_tx, done) = mailbox::<Done<R>>(depth.max(1));
        let mut workers = Workers {
            jobs: Vec::new(),
            next: 0,
            done,
            threads: Vec::new(),
            in_flight: 0,
        };
        for i in 0..threads {
            let (tx, rx) = mailbox::<Job<R>>(depth.max(1));
            let done_tx = done_tx.clone();
            let counters = counters.clone();
            #[cfg(any(test, feature = "fault-injection"))]
            let plan = crate::backing::fault::inherit();
            let thread = std::thread::Builder::new()
                .name(format!("umrf-tiered-io-{i}"))
                .spawn(move || {
                    #[cfg(any(test, feature = "fault-injection"))]
                    let _plan = plan.install();
                    work(&rx, &done_tx, &counters);
                })?;
            workers.jobs.push(tx);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Hands `job` to the next worker.
    ///
    /// # Errors
    /// The job back when the worker is gone (it panicked); the caller does it inline.
    pub(crate) fn submit(&mut self, job: Job<R>) -> Result<(), Job<R>> {
        let worker = self.next % self.jobs.len();
        self.next = self.next.wrapping_add(1);
        match self.jobs[worker].send(job) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(err) => Err(err.into_inner()),
        }
    }
}

impl<R: Residency> Workers<R> {
    /// A finished job, if one is there.
    pub(crate) fn try_take(&mut self) -> Option<Done<R>> {
        let done = self.done.try_recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }

    /// The next finished job, waiting for it (`None` only if every worker is gone).
    pub(crate) fn take(&mut self) -> Option<Done<R>> {
        let done = self.done.recv().ok()?;
        self.in_flight -= 1;
        Some(done)
    }
}

impl<R: Residency> Drop for Workers<R> {
    fn drop(&mut self) {
        self.jobs.clear(); // each worker's loop ends
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A worker's loop: until the store drops its job senders.
fn work<R: Residency>(jobs: &Receiver<Job<R>>, done: &Sender<Done<R>>, counters: &Counters) {
    for job in jobs.iter() {
        // A store that is gone drops the message, and with it the block: it goes home.
        let _ = done.send(job.run(counters));
    }
}

/// One page of I/O between `bytes` and `slot` of `file`, timed into `counters`; returns the
/// page's checksum (of what was written, or of what was read).
pub(crate) fn transfer(
    direction: Direction,
    tier: SpillTier,
    slot: u64,
    file: &SpillFile,
    bytes: &mut [u8],
    counters: &Counters,
) -> io::Result<u32> {
    let start = Instant::now();
    match direction {
        Direction::Write => {
            let sum = page_checksum(bytes);
            file.write_page(slot, bytes)?;
            counters.wrote(tier, start.elapsed());
            Ok(sum)
        }
        Direction::Read => {
            file.read_page(slot, bytes)?;
            counters.read(tier, start.elapsed());
            Ok(page_checksum(bytes))
        }
    }
}
