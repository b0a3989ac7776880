//! The `io_uring` engine: spills and prefetches as positioned reads and writes on a ring.
//!
//! The ring lives on the store's thread. [`Ring::submit`] checksums a page to be written,
//! keeps its job (and with it the block's [`Capability`](crate::Capability)) in the ring's
//! table of operations, and hands the kernel one `IORING_OP_WRITE` or `IORING_OP_READ` of the
//! block's bytes at the slot's offset; the kernel's `io-wq` workers do the copy
//! (`IOSQE_ASYNC`), so the store's thread goes back to its work. Completions are reaped without
//! waiting ([`Ring::try_take`]) or by waiting for one ([`Ring::take`]): a short transfer is
//! resubmitted for the rest, `EINTR` and `EAGAIN` are retried, `0` bytes is an end of file
//! (read) or a refused write, a negative result is the error of the job. A finished read is
//! checksummed as the thread workers do it, so the store checks it the same way.
//!
//! Each submission first asks the fault seam about its call ([`OsCall::SpillWrite`],
//! [`OsCall::SpillRead`]) on the store's thread, and ring setup asks about
//! [`OsCall::UringSetup`], so fault-injection tests reach this engine too.
//!
//! # Invariants
//! 0. Every operation the kernel may still touch has its job in `ops` (at the index its
//!    `user_data` names), and that job's block is not read or written by anything but the
//!    kernel until its completion is reaped; the job's `Arc<SpillFile>` keeps its descriptor
//!    open as long.
//! 1. `pending` counts the operations handed to the kernel and not yet completed; a job leaves
//!    `ops` only when it has none pending (its last completion is reaped), and [`Ring`]'s drop
//!    waits for all of them before the jobs (and their blocks) are dropped.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use io_uring::{IoUring, Probe, opcode, squeue, types};

use super::checksum::page_checksum;
use super::io::{Direction, Done, Job};
use super::stats::Counters;
use crate::Residency;
use crate::backing::os::{OsCall, fault_point};

/// Retries of one operation that keeps failing with `EINTR` or `EAGAIN` before it is an error.
const MAX_RETRIES: u32 = 64;

/// One job on the ring: what has been transferred so far.
struct Op<R: Residency> {
    job: Job<R>,
    /// Bytes transferred so far.
    done: usize,
    /// The checksum of the page written (computed at submission).
    checksum: u32,
    retries: u32,
    start: Instant,
}

/// An `io_uring` and the jobs it carries (see the module docs for the invariants).
pub(crate) struct Ring<R: Residency> {
    ring: IoUring,
    ops: Vec<Option<Op<R>>>,
    free: Vec<usize>,
    /// Operations handed to the kernel and not yet completed (invariant 1).
    pending: usize,
    /// Jobs finished (or refused at submission) and not yet taken.
    ready: VecDeque<Done<R>>,
    counters: Arc<Counters>,
}

impl<R: Residency> Ring<R> {
    /// Sets up a ring for up to `depth` jobs in flight.
    ///
    /// # Errors
    /// What `io_uring_setup` said (`ENOSYS`: no `io_uring`; `EPERM`: forbidden by seccomp or
    /// `kernel.io_uring_disabled`; `ENOMEM`: no locked memory for the ring), or `ENOSYS` when
    /// the kernel's ring has no positioned read or write (before Linux 5.6).
    pub(crate) fn new(depth: usize, counters: &Arc<Counters>) -> io::Result<Ring<R>> {
        fault_point(OsCall::UringSetup)?;
        let entries = depth.clamp(1, 4096).next_power_of_two() as u32;
        let ring = IoUring::builder()
            .setup_cqsize(entries * 2)
            .build(entries)?;
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(opcode::Read::CODE) || !probe.is_supported(opcode::Write::CODE) {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        Ok(Ring {
            ring,
            ops: Vec::new(),
            free: Vec::new(),
            pending: 0,
            ready: VecDeque::new(),
            counters: counters.clone(),
        })
    }

    /// Starts `job`: its page is checksummed (a write) and handed to the kernel. A job the
    /// fault seam refuses is finished at once, with that error.
    pub(crate) fn submit(&mut self, mut job: Job<R>) {
        let call = match job.direction {
            Direction::Write => OsCall::SpillWrite,
            Direction::Read => OsCall::SpillRead,
        };
        if let Err(err) = fault_point(call) {
            self.ready.push_back(finish(job, Err(err)));
            return;
        }
        let checksum = match job.direction {
            Direction::Write => page_checksum(job.block.payload_bytes_mut()),
            Direction::Read => 0,
        };
        let op = Op {
            job,
            done: 0,
            checksum,
            retries: 0,
            start: Instant::now(),
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.ops[index] = Some(op);
                index
            }
            None => {
                self.ops.push(Some(op));
                self.ops.len() - 1
            }
        };
        self.push(index);
        self.flush();
    }

    /// Queues the (rest of the) transfer of `ops[index]` on the submission queue.
    fn push(&mut self, index: usize) {
        let op = self.ops[index]
            .as_mut()
            .expect("a pushed operation is in the table");
        let fd = types::Fd(op.job.file.raw_fd());
        let offset = op.job.file.offset(op.job.slot) + op.done as u64;
        let bytes = &mut op.job.block.payload_bytes_mut()[op.done..];
        let (buf, len) = (bytes.as_mut_ptr(), bytes.len() as u32);
        let entry = match op.job.direction {
            Direction::Write => opcode::Write::new(fd, buf, len).offset(offset).build(),
            Direction::Read => opcode::Read::new(fd, buf, len).offset(offset).build(),
        }
        .flags(squeue::Flags::ASYNC)
        .user_data(index as u64);
        loop {
            // SAFETY: the entry names `len` bytes in the block of the job at `ops[index]` and
            // its file's descriptor; invariant 0 keeps both alive and left to the kernel until
            // this `user_data`'s completion is reaped (the job stays in `ops`; drop waits).
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                break;
            }
            // The submission queue is full: hand what is queued to the kernel, and push again.
            self.enter(0);
        }
        self.pending += 1;
    }

    /// Hands what is queued to the kernel without waiting.
    fn flush(&mut self) {
        self.enter(0);
    }

    /// `io_uring_enter`: submits what is queued and waits for `want` completions; an
    /// interrupted or busy call (a full completion queue) returns, for the caller to reap and
    /// call again.
    fn enter(&mut self, want: usize) {
        match self.ring.submit_and_wait(want) {
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                ) => {}
            // With operations in flight the ring cannot be given up: their buffers are the
            // kernel's until they complete.
            Err(err) => panic!("io_uring_enter failed with operations in flight: {err}"),
        }
    }

    /// Reaps the completions there are, without waiting.
    fn reap(&mut self) {
        let completions: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        let mut again = false;
        for (user_data, result) in completions {
            self.pending -= 1;
            again |= self.completed(user_data as usize, result);
        }
        if again {
            self.flush();
        }
    }

    /// Applies one completion; returns whether the rest was pushed again.
    fn completed(&mut self, index: usize, result: i32) -> bool {
        let op = self.ops[index]
            .as_mut()
            .expect("a completion names an operation of the table");
        let page = op.job.block.payload_bytes_mut().len();
        let outcome = match result {
            n if n > 0 => {
                op.done += n as usize;
                if op.done < page {
                    None // short: the rest goes again
                } else {
                    Some(Ok(()))
                }
            }
            0 => Some(Err(match op.job.direction {
                Direction::Read => io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the tier file ends inside the page",
                ),
                Direction::Write => io::Error::from(io::ErrorKind::WriteZero),
            })),
            e if (e == -libc::EINTR || e == -libc::EAGAIN) && op.retries < MAX_RETRIES => {
                op.retries += 1;
                None
            }
            e => Some(Err(io::Error::from_raw_os_error(-e))),
        };
        let Some(outcome) = outcome else {
            self.push(index);
            return true;
        };
        let op = self.ops[index].take().expect("checked above");
        self.free.push(index);
        let Op {
            mut job,
            checksum,
            start,
            ..
        } = op;
        let result = outcome.map(|()| match job.direction {
            Direction::Write => {
                self.counters.wrote(job.tier, start.elapsed());
                checksum
            }
            Direction::Read => {
                self.counters.read(job.tier, start.elapsed());
                page_checksum(job.block.payload_bytes_mut())
            }
        });
        self.ready.push_back(finish(job, result));
        false
    }

    /// A finished job, if one is there.
    pub(crate) fn try_take(&mut self) -> Option<Done<R>> {
        if self.ready.is_empty() && self.pending > 0 {
            self.reap();
        }
        self.ready.pop_front()
    }

    /// The next finished job, waiting for it (`None` when no job is on the ring).
    pub(crate) fn take(&mut self) -> Option<Done<R>> {
        loop {
            if let Some(done) = self.try_take() {
                return Some(done);
            }
            if self.pending == 0 {
                return None;
            }
            self.enter(1);
        }
    }
}

impl<R: Residency> Drop for Ring<R> {
    fn drop(&mut self) {
        // Invariant 1: no job (and no block) is dropped while the kernel may still use it.
        while self.pending > 0 {
            self.enter(1);
            self.reap();
        }
    }
}

/// The job's outcome, with its block back.
fn finish<R: Residency>(job: Job<R>, result: io::Result<u32>) -> Done<R> {
    Done {
        page: job.page,
        direction: job.direction,
        tier: job.tier,
        slot: job.slot,
        block: job.block,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pool;
    use crate::residency::CpuLocal;
    use crate::tiered::error::SpillTier;
    use crate::tiered::tier_file::TierFile;

    const PAGE: usize = 4096;

    /// A page written and read back on the ring, then a read of a slot the file holds half of:
    /// the short read is resubmitted for the rest, and the end of the file is the job's error.
    #[test]
    fn pages_round_trip_and_a_short_file_is_an_error() {
        let counters = Counters::new("ring".into(), PAGE, PAGE as u64);
        let Ok(mut ring) = Ring::<CpuLocal>::new(4, &counters) else {
            eprintln!("io_uring is refused here");
            return;
        };
        let pool = Pool::<CpuLocal>::builder()
            .block_size(PAGE)
            .blocks_per_slot(1)
            .slots(1)
            .build()
            .unwrap();
        let lease = pool.attach_slot(0).unwrap();
        let mut tier = TierFile::new(SpillTier::Disk, std::env::temp_dir(), 1 << 20, PAGE);
        let file = tier.file().unwrap();
        let job = |direction, slot, block| Job {
            page: 0,
            direction,
            tier: SpillTier::Disk,
            slot,
            file: file.clone(),
            block,
        };
        let block = lease.alloc_from_slice(&[7u8; PAGE]).unwrap();
        ring.submit(job(Direction::Write, 1, block.into_capability()));
        let done = ring.take().unwrap();
        let written = done.result.unwrap();
        assert_eq!(written, page_checksum(&[7u8; PAGE]));
        let mut block = done.block.accept(&lease).unwrap();
        block.as_bytes_mut().fill(0);
        ring.submit(job(Direction::Read, 1, block.into_capability()));
        let done = ring.take().unwrap();
        assert_eq!(done.result.unwrap(), written);
        let block = done.block.accept(&lease).unwrap();
        assert!(block.iter().all(|&x| x == 7));
        file.set_len((PAGE + PAGE / 2) as u64).unwrap();
        ring.submit(job(Direction::Read, 1, block.into_capability()));
        let done = ring.take().unwrap();
        let err = done.result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(ring.take().is_none(), "nothing is left on the ring");
        drop(done.block.accept(&lease).unwrap());
    }
}
