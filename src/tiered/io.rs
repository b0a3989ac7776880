//! Background I/O: the engine that writes spilled pages and reads prefetched ones.
//!
//! [`Workers`] is the store's view of its engine: I/O threads (below) or an `io_uring`
//! ([`super::uring`]), as [`IoBackend`] asks and the kernel allows. Either takes jobs and
//! gives back the same [`Done`]s, so the store's table does not know which runs.
//!
//! The store hands a worker thread a job holding the page's block as a [`Capability`] (the block is
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

use super::backend::{IoBackend, IoEngine, IoFallback};
use super::checksum::page_checksum;
use super::error::{SpillTier, TieredError};
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

/// The background I/O engine of one store.
pub(crate) struct Workers<R: Residency> {
    engine: Engine<R>,
    /// Jobs submitted and not yet taken back.
    pub(crate) in_flight: usize,
}

enum Engine<R: Residency> {
    Threads(Threads<R>),
    #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
    Uring(Box<super::uring::Ring<R>>),
}

/// What [`Workers::start`] set up: the engine (none: inline I/O), and why `io_uring` was
/// refused, when [`IoBackend::Auto`] fell back to threads.
pub(crate) struct Started<R: Residency> {
    pub(crate) workers: Option<Workers<R>>,
    pub(crate) fallback: Option<IoFallback>,
}

impl<R: Residency> Workers<R> {
    /// Starts the engine `backend` asks for, with `threads` threads (0: none, I/O inline) for
    /// jobs of up to `depth` blocks in flight.
    ///
    /// # Errors
    /// [`TieredError::IoUnavailable`] when [`IoBackend::IoUring`] was asked for and the kernel
    /// refused the ring. Threads that cannot be started leave the store doing its I/O inline,
    /// observably ([`IoEngine::Inline`]).
    pub(crate) fn start(
        backend: IoBackend,
        threads: usize,
        depth: usize,
        counters: &Arc<Counters>,
    ) -> Result<Started<R>, TieredError> {
        if threads == 0 {
            return Ok(Started {
                workers: None,
                fallback: None,
            });
        }
        let mut fallback = None;
        if backend != IoBackend::Threads {
            match Self::ring(depth, counters) {
                Ok(engine) => {
                    return Ok(Started {
                        workers: Some(Workers {
                            engine,
                            in_flight: 0,
                        }),
                        fallback: None,
                    });
                }
                Err(source) if backend == IoBackend::IoUring => {
                    return Err(TieredError::IoUnavailable { source });
                }
                Err(source) => {
                    fallback = Some(IoFallback {
                        errno: source.raw_os_error().unwrap_or(libc::ENOSYS),
                    });
                }
            }
        }
        let workers = Threads::spawn(threads, depth, counters)
            .ok()
            .map(|threads| Workers {
                engine: Engine::Threads(threads),
                in_flight: 0,
            });
        Ok(Started { workers, fallback })
    }

    /// An `io_uring` engine (refused with `ENOSYS` where this build has none).
    fn ring(depth: usize, counters: &Arc<Counters>) -> io::Result<Engine<R>> {
        #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
        {
            super::uring::Ring::new(depth, counters).map(|ring| Engine::Uring(Box::new(ring)))
        }
        #[cfg(not(all(target_os = "linux", not(miri), not(umrf_loom))))]
        {
            let _ = (depth, counters);
            Err(io::Error::from_raw_os_error(libc::ENOSYS))
        }
    }

    /// The engine running.
    pub(crate) fn engine(&self) -> IoEngine {
        match self.engine {
            Engine::Threads(_) => IoEngine::Threads,
            #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
            Engine::Uring(_) => IoEngine::IoUring,
        }
    }

    /// Starts `job` in the background.
    ///
    /// # Errors
    /// The job back when a worker thread is gone (it panicked); the caller does it inline.
    pub(crate) fn submit(&mut self, job: Job<R>) -> Result<(), Job<R>> {
        match &mut self.engine {
            Engine::Threads(threads) => threads.submit(job)?,
            #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
            Engine::Uring(ring) => ring.submit(job),
        }
        self.in_flight += 1;
        Ok(())
    }

    /// A finished job, if one is there.
    pub(crate) fn try_take(&mut self) -> Option<Done<R>> {
        let done = match &mut self.engine {
            Engine::Threads(threads) => threads.done.try_recv().ok(),
            #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
            Engine::Uring(ring) => ring.try_take(),
        }?;
        self.in_flight -= 1;
        Some(done)
    }

    /// The next finished job, waiting for it (`None` only if the engine has none to give).
    pub(crate) fn take(&mut self) -> Option<Done<R>> {
        let done = match &mut self.engine {
            Engine::Threads(threads) => threads.done.recv().ok(),
            #[cfg(all(target_os = "linux", not(miri), not(umrf_loom)))]
            Engine::Uring(ring) => ring.take(),
        }?;
        self.in_flight -= 1;
        Some(done)
    }
}

/// The I/O worker threads of one store.
struct Threads<R: Residency> {
    jobs: Vec<Sender<Job<R>>>,
    next: usize,
    done: Receiver<Done<R>>,
    threads: Vec<JoinHandle<()>>,
}

impl<R: Residency> Threads<R> {
    /// Starts `threads` workers, each with mailboxes of `depth` messages.
    ///
    /// # Errors
    /// The spawn error when a thread could not be started (the store then does its I/O on the
    /// caller's thread).
    fn spawn(threads: usize, depth: usize, counters: &Arc<Counters>) -> io::Result<Threads<R>> {
        let (done_tx, done) = mailbox::<Done<R>>(depth.max(1));
        let mut workers = Threads {
            jobs: Vec::new(),
            next: 0,
            done,
            threads: Vec::new(),
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
    fn submit(&mut self, job: Job<R>) -> Result<(), Job<R>> {
        let worker = self.next % self.jobs.len();
        self.next = self.next.wrapping_add(1);
        self.jobs[worker].send(job).map_err(|err| err.into_inner())
    }
}

impl<R: Residency> Drop for Threads<R> {
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
