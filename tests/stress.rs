//! Stress and soak (invariants I1, I5, I6): millions of capability transfers with every CPU
//! busy, random sizes and random drop sites, then every block home, the pool's counters equal
//! to the operations counted by the threads, and resident memory flat.
//!
//! Ignored by default (it runs for seconds to minutes). Run it with
//!
//! ```text
//! cargo test --release --test stress -- --ignored --nocapture
//! UMRF_STRESS_TRANSFERS=1000000 UMRF_STRESS_THREADS=4 cargo test --release --test stress -- --ignored --nocapture
//! ```
//!
//! `UMRF_STRESS_TRANSFERS` (default 10 000 000) is the number of capabilities sent through
//! mailboxes, `UMRF_STRESS_THREADS` (default: one per online CPU, at least 2) the number of
//! workers, each on its own slot, `UMRF_STRESS_MAX_GROWTH_KIB` (default 4096) the resident
//! memory growth allowed over the run. A receiving worker drops each capability at a random site:
//! accepted and freed at once (a local free when it is the block's home slot, else a remote
//! one), dropped unaccepted, held for a while, forwarded to another worker, or handed to a
//! short-lived helper thread that never allocated and exits holding it. Workers exit holding
//! buffers too, after giving their lease back.

#![cfg(not(miri))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use common::Draw;
use umrf::mailbox::{Receiver, Sender, TrySendError};
use umrf::residency::CpuLocal;
use umrf::{Capability, Error, Pool, SharedBuffer};

const BLOCK: usize = 1024;
const MAX_LEN: u64 = (BLOCK / 8) as u64;
const BLOCKS_PER_SLOT: usize = 256;
const INBOX: usize = 64;
const HELD: usize = 16;
const HELPER_BATCH: usize = 64;

type Cap = Capability<u64, CpuLocal>;
type Buf = SharedBuffer<u64, CpuLocal>;

fn env_or(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// Resident memory of this process, in KiB (Linux `/proc/self/status`).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// What one worker counted; the pool's counters must equal the sums.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    allocations: u64,
    exhausted: u64,
    local_frees: u64,
    remote_frees: u64,
    helpers: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.sent += o.sent;
        self.allocations += o.allocations;
        self.exhausted += o.exhausted;
        self.local_frees += o.local_frees;
        self.remote_frees += o.remote_frees;
        self.helpers += o.helpers;
    }
}

/// The token a sender writes: checked by whoever accepts the buffer (I1: nobody else wrote it).
fn stamp(buf: &mut Buf, token: u64) {
    let len = buf.len();
    buf[len - 1] = token ^ len as u64;
    buf[0] = token;
}

fn check(buf: &Buf) {
    let len = buf.len();
    let token = buf[0];
    let tail = if len > 1 { token ^ len as u64 } else { token };
    assert_eq!(buf[len - 1], tail, "a buffer's contents changed in flight");
}

struct Worker {
    me: usize,
    draw: Draw,
    counts: Counts,
    outboxes: Vec<Sender<Cap>>,
    helper_batch: Vec<Cap>,
    helpers: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Frees a buffer held by this worker under its lease: local when its home is this slot.
    fn free(&mut self, buf: Buf) {
        if buf.home_slot() == self.me {
            self.counts.local_frees += 1;
        } else {
            self.counts.remote_frees += 1;
        }
        drop(buf);
    }

    /// Sends `cap` to a random worker; a full or closed inbox means the capability is dropped
    /// unaccepted (a remote free). Returns whether it was sent.
    fn send(&mut self, cap: Cap) -> bool {
        let to = self.draw.below(self.outboxes.len() as u64) as usize;
        match self.outboxes[to].try_send(cap) {
            Ok(()) => {
                self.counts.sent += 1;
                true
            }
            Err(TrySendError::Full(cap) | TrySendError::Disconnected(cap)) => {
                self.counts.remote_frees += 1;
                drop(cap);
                false
            }
        }
    }

    /// Hands the batch of capabilities to a new helper thread, which exits holding them.
    fn flush_helper_batch(&mut self) {
        if self.helper_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.helper_batch);
        self.counts.remote_frees += batch.len() as u64;
        self.counts.helpers += 1;
        if self.helpers.len() >= 4 {
            self.helpers.remove(0).join().expect("helper thread");
        }
        self.helpers.push(thread::spawn(move || {
            assert!(batch.iter().all(|cap| !cap.is_empty()));
            // Exits holding them: the thread's locals drop as it ends.
        }));
    }

    /// One received capability, dropped at a random site.
    fn receive(
        &mut self,
        cap: Cap,
        lease: &umrf::LocalPool<CpuLocal>,
        held: &mut Vec<Buf>,
        sending: bool,
    ) {
        match self.draw.below(20) {
            // Accepted and freed at once: by the owner (home slot) or a foreign thread.
            0..=5 => {
                let buf = cap.accept(lease).unwrap();
                check(&buf);
                self.free(buf);
            }
            // Dropped unaccepted.
            6..=8 => {
                self.counts.remote_frees += 1;
                drop(cap);
            }
            // Accepted and held for a while; an older held buffer is freed.
            9..=12 => {
                let buf = cap.accept(lease).unwrap();
                check(&buf);
                held.push(buf);
                if held.len() > HELD {
                    let old = held.swap_remove(self.draw.below(HELD as u64) as usize);
                    self.free(old);
                }
            }
            // Handed to a helper thread that never allocated; it exits holding the batch.
            // (Once this worker stops sending, nothing is batched: a batch that never fills
            // would keep its blocks from a worker that still needs them.)
            13..=14 if sending => {
                self.helper_batch.push(cap);
                if self.helper_batch.len() == HELPER_BATCH {
                    self.flush_helper_batch();
                }
            }
            13..=14 => {
                self.counts.remote_frees += 1;
                drop(cap);
            }
            // Forwarded to another worker (while this one still sends), else freed.
            _ => {
                if sending {
                    self.send(cap);
                } else {
                    let buf = cap.accept(lease).unwrap();
                    check(&buf);
                    self.free(buf);
                }
            }
        }
    }
}

/// Runs `transfers` sends over `workers` threads; returns the summed counts.
fn run_phase(pool: &Pool<CpuLocal>, workers: usize, transfers: u64, seed: u64) -> Counts {
    let (senders, receivers): (Vec<_>, Vec<Receiver<Cap>>) = (0..workers)
        .map(|_| umrf::try_mailbox::<Cap>(INBOX).unwrap())
        .unzip();
    let finished = Arc::new(AtomicUsize::new(0));
    let quota = transfers / workers as u64;
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| {
            let (pool, outboxes, finished) = (pool.clone(), senders.clone(), finished.clone());
            thread::spawn(move || {
                let mut held: Vec<Buf> = Vec::with_capacity(HELD + 1);
                let lease = pool.attach_slot(me).unwrap();
                let mut w = Worker {
                    me,
                    draw: Draw(seed ^ (me as u64) << 32),
                    counts: Counts::default(),
                    outboxes,
                    helper_batch: Vec::with_capacity(HELPER_BATCH),
                    helpers: Vec::new(),
                };
                let mut token = (me as u64) << 48;
                while w.counts.sent < quota {
                    for _ in 0..2 {
                        match inbox.try_recv() {
                            Ok(cap) => w.receive(cap, &lease, &mut held, true),
                            Err(_) => break,
                        }
                    }
                    let len = 1 + w.draw.below(MAX_LEN) as usize;
                    match lease.alloc::<u64>(len) {
                        Ok(mut buf) => {
                            w.counts.allocations += 1;
                            token += 1;
                            stamp(&mut buf, token);
                            w.send(buf.into_capability());
                        }
                        Err(Error::Exhausted { .. }) => {
                            w.counts.exhausted += 1;
                            // Make progress: give back what this thread holds.
                            while let Some(buf) = held.pop() {
                                w.free(buf);
                            }
                            w.flush_helper_batch();
                            thread::yield_now();
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                // Stop sending. What is batched goes now: a worker still sending may need
                // those blocks (the held buffers, at most HELD, stay until this thread exits).
                w.flush_helper_batch();
                finished.fetch_add(1, Ordering::AcqRel);
                // Keep receiving (no more sending) until every worker has stopped sending.
                loop {
                    let all_done = finished.load(Ordering::Acquire) == w.outboxes.len();
                    let mut got = false;
                    while let Ok(cap) = inbox.try_recv() {
                        w.receive(cap, &lease, &mut held, false);
                        got = true;
                    }
                    if all_done {
                        break;
                    }
                    if !got {
                        thread::yield_now();
                    }
                }
                // Leave: the lease first, then the held buffers (remote frees now), the helper
                // batch, and the inbox.
                drop(lease);
                w.counts.remote_frees += (held.len() + w.helper_batch.len()) as u64;
                drop(held);
                drop(std::mem::take(&mut w.helper_batch));
                for helper in w.helpers.drain(..) {
                    helper.join().expect("helper thread");
                }
                w.counts
            })
        })
        .collect();
    drop(senders);
    let mut total = Counts::default();
    for h in handles {
        total += h.join().expect("a worker panicked");
    }
    total
}

#[test]
#[ignore = "seconds to minutes: run with --ignored (see the module docs)"]
fn ten_million_transfers_leave_every_block_home_and_memory_flat() {
    let transfers = env_or("UMRF_STRESS_TRANSFERS", 10_000_000) as u64;
    let cpus = thread::available_parallelism().map_or(2, |n| n.get());
    let workers = env_or("UMRF_STRESS_THREADS", cpus.max(2));
    let pool = Pool::<CpuLocal>::builder()
        .name("stress")
        .block_size(BLOCK)
        .blocks_per_slot(BLOCKS_PER_SLOT)
        .slots(workers)
        .build()
        .unwrap();

    // Warm-up: 5% of the traffic, so thread stacks, allocator arenas and mailbox rings have
    // been made once before memory is measured.
    let warm = run_phase(&pool, workers, (transfers / 20).max(workers as u64), 1);
    let rss_before = resident_kib();
    let started = Instant::now();
    let counted = run_phase(&pool, workers, transfers, 2);
    let elapsed = started.elapsed();
    let rss_after = resident_kib();

    let mut all = warm;
    all += counted;
    let s = pool.stats();
    eprintln!(
        "stress: {} transfers over {workers} workers on {cpus} CPUs in {elapsed:.2?} \
         ({:.0} ns per transfer); {} helper threads; allocations {}, local frees {}, remote frees \
         {}, exhaustion events {}; resident {rss_before} KiB -> {rss_after} KiB",
        counted.sent,
        elapsed.as_nanos() as f64 / counted.sent.max(1) as f64,
        counted.helpers,
        counted.allocations,
        counted.local_frees,
        counted.remote_frees,
        counted.exhausted,
    );
    assert!(counted.sent >= transfers - workers as u64);
    // Every block home, nothing leaked.
    assert_eq!(s.in_use(), 0, "blocks still out: {s:#?}");
    assert_eq!(s.free(), s.capacity());
    // The pool's counters equal what the threads counted.
    assert_eq!(s.allocations(), all.allocations, "allocations");
    assert_eq!(s.local_frees(), all.local_frees, "local frees");
    assert_eq!(s.remote_frees(), all.remote_frees, "remote frees");
    assert_eq!(s.exhaustion_events(), all.exhausted, "exhaustion events");
    assert_eq!(s.allocations(), s.local_frees() + s.remote_frees());
    // No system allocation grows with the traffic: resident memory is flat. (Under a
    // sanitizer that quarantines freed heap memory, raise the bound with
    // UMRF_STRESS_MAX_GROWTH_KIB.)
    let grown = rss_after.saturating_sub(rss_before);
    let bound = env_or("UMRF_STRESS_MAX_GROWTH_KIB", 4096) as u64;
    assert!(
        grown <= bound,
        "resident memory grew by {grown} KiB (bound {bound} KiB) over {} transfers",
        counted.sent
    );
}
