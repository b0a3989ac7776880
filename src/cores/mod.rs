//! Per-core workers: one thread per chosen CPU, pinned to it, holding the lease of the pool
//! slot that serves that CPU and a mailbox of its own, so "per-core pools" is literal.
//!
//! [`Workers::spawn`] starts the threads and returns once every one of them is pinned
//! (`sched_setaffinity`) and has leased its slot; if any cannot, none runs the work and the
//! error comes back. Each worker gets a [`WorkerContext`]: its CPU, its slot's
//! [`LocalPool`], and the [`Receiver`] end of its mailbox, whose [`Sender`] the spawner keeps.
//!
//! ```
//! use umrf::cores::Workers;
//! use umrf::topology::Topology;
//! use umrf::{Capability, Pool, residency::CpuLocal};
//!
//! let cpus: Vec<u32> = Topology::detect()?.online_cpus().iter().collect();
//! // One slot per CPU for the workers, and one more on the first CPU for this thread.
//! let pool = Pool::<CpuLocal>::builder()
//!     .block_size(4096)
//!     .blocks_per_slot(64)
//!     .cpus(cpus.iter().copied().chain([cpus[0]]))
//!     .build()?;
//! let producer = pool.attach_slot(cpus.len())?;
//!
//! let workers = Workers::<Capability<f32, CpuLocal>, _>::spawn(&pool, cpus.clone(), 16, |ctx| {
//!     let mut sum = 0.0f64;
//!     for cap in ctx.inbox().iter() {
//!         let buf: umrf::SharedBuffer<f32, CpuLocal> = cap.accept(ctx.lease()).unwrap();
//!         sum += buf.iter().map(|&x| f64::from(x)).sum::<f64>();
//!     }
//!     (ctx.cpu(), sum)
//! })?;
//! for (i, sender) in workers.senders().enumerate() {
//!     let mut buf = producer.alloc_zeroed::<f32>(4)?;
//!     buf[0] = i as f32 + 1.0;
//!     sender.send(buf.into_capability()).unwrap();
//! }
//! let results = workers.join().expect("no worker panicked");
//! assert_eq!(results.len(), cpus.len());
//! assert_eq!(results.iter().map(|&(_, s)| s).sum::<f64>(), (1..=cpus.len()).sum::<usize>() as f64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod context;

use std::any::Any;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

pub use context::WorkerContext;

use crate::backing::os;
use crate::error::Error;
use crate::mailbox::{Sender, try_mailbox};
use crate::pool::Pool;
use crate::residency::Residency;
use crate::transfer::Transferable;

#[cfg(doc)]
use crate::{LocalPool, mailbox::Receiver};

/// Pins the calling thread to CPU `cpu` (`sched_setaffinity`).
///
/// Under Miri and loom this does nothing (the call cannot run there).
///
/// # Errors
/// [`Error::Affinity`] when the CPU is offline, beyond the kernel's set size, or outside this
/// process's allowed CPUs.
///
/// ```
/// use umrf::topology::Topology;
/// let cpu = Topology::detect()?.online_cpus().first().unwrap();
/// std::thread::spawn(move || {
///     umrf::cores::pin_current_thread(cpu).unwrap();
///     assert_eq!(Topology::current_cpu(), Some(cpu));
/// })
/// .join()
/// .unwrap();
/// assert!(umrf::cores::pin_current_thread(1 << 20).is_err());
/// # Ok::<(), umrf::topology::TopologyError>(())
/// ```
pub fn pin_current_thread(cpu: u32) -> Result<(), Error> {
    os::pin_current_thread(cpu).map_err(|source| Error::Affinity { cpu, source })
}

/// One running worker, as the spawner sees it.
struct Worker<M: Transferable, T> {
    cpu: u32,
    slot: usize,
    sender: Option<Sender<M>>,
    handle: Option<JoinHandle<Option<T>>>,
}

/// A set of pinned per-core workers, each with its slot's lease and a mailbox (see the
/// [module](self) documentation).
///
/// Dropping `Workers` closes every mailbox and waits for the workers to finish; call
/// [`join`](Workers::join) to get their results.
pub struct Workers<M: Transferable, T: Send + 'static> {
    workers: Vec<Worker<M, T>>,
}

/// A worker's work panicked; [`join`](Workers::join) returns this after every other worker
/// finished.
///
/// ```
/// use umrf::cores::Workers;
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).cpus([0]).build()?;
/// let workers = Workers::<u8, ()>::spawn(&pool, [0], 1, |_ctx| panic!("boom"))?;
/// let panic = workers.join().unwrap_err();
/// assert_eq!((panic.index, panic.cpu), (0, 0));
/// assert_eq!(panic.message(), "boom");
/// assert_eq!(panic.into_payload().downcast_ref::<&str>(), Some(&"boom"));
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkerPanic {
    /// The worker's position in the spawn list.
    pub index: usize,
    /// Its CPU.
    pub cpu: u32,
    /// The panic payload, behind a lock so that the error is `Sync` (`?` into
    /// `Box<dyn Error + Send + Sync>` works); see [`into_payload`](Self::into_payload).
    payload: std::sync::Mutex<Box<dyn Any + Send + 'static>>,
    /// The payload's message, when it is a string.
    message: String,
}

impl WorkerPanic {
    fn new(index: usize, cpu: u32, payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a non-string payload")
            .to_owned();
        WorkerPanic {
            index,
            cpu,
            payload: std::sync::Mutex::new(payload),
            message,
        }
    }

    /// The panic message (or "a non-string payload").
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The panic payload (resume it with `std::panic::resume_unwind`).
    pub fn into_payload(self) -> Box<dyn Any + Send + 'static> {
        self.payload
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Display for WorkerPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worker {} on CPU {} panicked: {}",
            self.index, self.cpu, self.message
        )
    }
}

impl std::error::Error for WorkerPanic {}

/// What a starting worker tells the spawner.
type Ready = (usize, Result<(), Error>);

impl<M: Transferable, T: Send + 'static> Workers<M, T> {
    /// Spawns one worker per CPU in `cpus`, in order. Worker `i` is pinned to `cpus[i]`,
    /// leases the first free slot of `pool` that serves that CPU (see
    /// [`PoolBuilder::cpus`](crate::PoolBuilder::cpus)), gets a mailbox of `capacity`
    /// messages, and runs `work` with its [`WorkerContext`]; `work`'s result comes back from
    /// [`join`](Workers::join). A CPU may appear more than once if the pool has a slot for
    /// each.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty CPU list; [`Error::MailboxCapacity`] for a
    /// mailbox capacity out of range;
    /// [`Error::CpuUnavailable`] when the pool has no free slot serving a CPU;
    /// [`Error::Affinity`] when a thread cannot be pinned; [`Error::SlotBusy`] when another
    /// thread leased the slot meanwhile. On error every worker already started is stopped
    /// before it runs `work`, and joined.
    ///
    /// ```
    /// use umrf::cores::Workers;
    /// use umrf::{Error, Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).cpus([0]).build()?;
    /// let err = Workers::<u8, ()>::spawn(&pool, [0, 0], 1, |_| ()).err().unwrap();
    /// assert!(matches!(err, Error::CpuUnavailable { cpu: 0, .. }), "one slot serves CPU 0");
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn spawn<R, F>(
        pool: &Pool<R>,
        cpus: impl IntoIterator<Item = u32>,
        capacity: usize,
        work: F,
    ) -> Result<Self, Error>
    where
        R: Residency,
        F: Fn(WorkerContext<R, M>) -> T + Send + Sync + 'static,
    {
        let cpus: Vec<u32> = cpus.into_iter().collect();
        if cpus.is_empty() {
            return Err(Error::InvalidConfig {
                reason: "no CPUs given: Workers::spawn needs at least one".into(),
            });
        }
        let slots = assign_slots(pool, &cpus)?;
        let work = Arc::new(work);
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let mut workers = Vec::with_capacity(cpus.len());
        let mut gates = Vec::with_capacity(cpus.len());
        for (index, (&cpu, &slot)) in cpus.iter().zip(&slots).enumerate() {
            let (sender, inbox) = try_mailbox::<M>(capacity)?;
            let (go_tx, go_rx) = mpsc::channel::<bool>();
            let start = Start {
                index,
                cpu,
                slot,
                pool: pool.clone(),
                ready: ready_tx.clone(),
                go: go_rx,
                #[cfg(any(test, feature = "fault-injection"))]
                plan: crate::backing::fault::inherit(),
            };
            let work = Arc::clone(&work);
            let handle = std::thread::Builder::new()
                .name(format!("umrf-worker-{index}-cpu{cpu}"))
                .spawn(move || start.run(inbox, &*work))
                .map_err(|e| Error::CpuUnavailable {
                    cpu,
                    reason: format!("the worker thread could not be spawned: {e}"),
                });
            let handle = match handle {
                Ok(handle) => handle,
                Err(e) => {
                    stop(workers, gates);
                    return Err(e);
                }
            };
            gates.push(go_tx);
            workers.push(Worker {
                cpu,
                slot,
                sender: Some(sender),
                handle: Some(handle),
            });
        }
        drop(ready_tx);
        let mut failure = None;
        let mut reported = vec![false; workers.len()];
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok((index, outcome)) => {
                    reported[index] = true;
                    if let Err(e) = outcome {
                        failure.get_or_insert(e);
                    }
                }
                // Every sender is gone but some worker never reported: it died starting.
                Err(_) => {
                    let index = reported.iter().position(|&r| !r).unwrap_or(0);
                    failure.get_or_insert(Error::CpuUnavailable {
                        cpu: cpus[index],
                        reason: format!("worker {index} stopped before it was pinned and leased"),
                    });
                    break;
                }
            }
        }
        if let Some(e) = failure {
            stop(workers, gates);
            return Err(e);
        }
        for gate in gates {
            let _ = gate.send(true);
        }
        Ok(Workers { workers })
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there are no workers (never, after a successful spawn).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// The CPU of worker `index`.
    pub fn cpu(&self, index: usize) -> Option<u32> {
        self.workers.get(index).map(|w| w.cpu)
    }

    /// The pool slot worker `index` leases.
    pub fn slot(&self, index: usize) -> Option<usize> {
        self.workers.get(index).map(|w| w.slot)
    }

    /// The mailbox of worker `index` (`None` past the end or after [`close`](Self::close)).
    pub fn sender(&self, index: usize) -> Option<&Sender<M>> {
        self.workers.get(index)?.sender.as_ref()
    }

    /// Every open mailbox, in worker order.
    pub fn senders(&self) -> impl Iterator<Item = &Sender<M>> + '_ {
        self.workers.iter().filter_map(|w| w.sender.as_ref())
    }

    /// Closes every mailbox: each worker's inbox ends once it has taken what was sent.
    /// Clones of the senders made by the caller keep their mailboxes open.
    pub fn close(&mut self) {
        for worker in &mut self.workers {
            worker.sender = None;
        }
    }

    /// Closes every mailbox, waits for every worker, and returns their results in order.
    ///
    /// # Errors
    /// The first [`WorkerPanic`] (in worker order), after every worker has finished.
    pub fn join(mut self) -> Result<Vec<T>, WorkerPanic> {
        self.close();
        let mut results = Vec::with_capacity(self.workers.len());
        let mut first_panic = None;
        for (index, worker) in self.workers.iter_mut().enumerate() {
            let Some(handle) = worker.handle.take() else {
                continue;
            };
            match handle.join() {
                Ok(Some(value)) => results.push(value),
                Ok(None) => {
                    first_panic.get_or_insert_with(|| {
                        WorkerPanic::new(
                            index,
                            worker.cpu,
                            Box::new("the worker stopped before running its work"),
                        )
                    });
                }
                Err(payload) => {
                    first_panic.get_or_insert_with(|| WorkerPanic::new(index, worker.cpu, payload));
                }
            }
        }
        first_panic.map_or(Ok(results), Err)
    }
}

/// Dropping the workers closes every mailbox *for all senders*, clones included, then waits
/// for each worker: a clone of a sender kept elsewhere cannot keep the drop waiting. (Use
/// [`join`](Workers::join) to let such clones keep feeding the workers until they are gone.)
impl<M: Transferable, T: Send + 'static> Drop for Workers<M, T> {
    fn drop(&mut self) {
        for sender in self.senders() {
            sender.close_for_all();
        }
        self.close();
        for worker in &mut self.workers {
            if let Some(handle) = worker.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

impl<M: Transferable, T: Send + 'static> std::fmt::Debug for Workers<M, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<(u32, usize)> = self.workers.iter().map(|w| (w.cpu, w.slot)).collect();
        f.debug_struct("Workers")
            .field("cpu_and_slot", &list)
            .finish_non_exhaustive()
    }
}

/// For each CPU, the first free slot of `pool` that serves it and is not taken by an earlier
/// worker of this spawn.
fn assign_slots<R: Residency>(pool: &Pool<R>, cpus: &[u32]) -> Result<Vec<usize>, Error> {
    let backing = pool.backing();
    let mut taken = vec![false; backing.len()];
    cpus.iter()
        .map(|&cpu| {
            let free = (0..backing.len()).find(|&i| {
                backing[i].cpu == Some(cpu)
                    && !taken[i]
                    && pool.slot_stats(i).is_some_and(|s| !s.leased)
            });
            let slot = free.ok_or_else(|| Error::CpuUnavailable {
                cpu,
                reason: format!(
                    "pool `{}` has no free slot serving it (its slots serve CPUs {:?}); build the pool with `.cpus(...)` listing CPU {cpu} once per worker",
                    pool.name(),
                    backing.iter().map(|b| b.cpu).collect::<Vec<_>>()
                ),
            })?;
            taken[slot] = true;
            Ok(slot)
        })
        .collect()
}

/// Tells started workers not to run, and joins them.
fn stop<M: Transferable, T>(workers: Vec<Worker<M, T>>, gates: Vec<mpsc::Sender<bool>>) {
    for gate in gates {
        let _ = gate.send(false);
    }
    for mut worker in workers {
        if let Some(handle) = worker.handle.take() {
            let _ = handle.join();
        }
    }
}

/// What a worker thread needs to start.
struct Start<R: Residency> {
    index: usize,
    cpu: u32,
    slot: usize,
    pool: Pool<R>,
    ready: mpsc::Sender<Ready>,
    go: mpsc::Receiver<bool>,
    #[cfg(any(test, feature = "fault-injection"))]
    plan: crate::backing::fault::FaultPlan,
}

impl<R: Residency> Start<R> {
    /// The worker thread: pin, lease, report, wait for the go, work.
    fn run<M: Transferable, T, F: Fn(WorkerContext<R, M>) -> T>(
        self,
        inbox: crate::mailbox::Receiver<M>,
        work: &F,
    ) -> Option<T> {
        #[cfg(any(test, feature = "fault-injection"))]
        let _plan = self.plan.install();
        let setup = pin_current_thread(self.cpu).and_then(|()| self.pool.attach_slot(self.slot));
        let lease = match setup {
            Ok(lease) => {
                let _ = self.ready.send((self.index, Ok(())));
                lease
            }
            Err(e) => {
                let _ = self.ready.send((self.index, Err(e)));
                return None;
            }
        };
        drop(self.ready);
        if self.go.recv() != Ok(true) {
            return None;
        }
        Some(work(WorkerContext::new(
            self.index, self.cpu, self.slot, lease, inbox,
        )))
    }
}
