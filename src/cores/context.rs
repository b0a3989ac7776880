//! What a worker gets: its place, its slot's lease, its mailbox.

use crate::mailbox::Receiver;
use crate::pool::LocalPool;
use crate::residency::Residency;
use crate::transfer::Transferable;

/// A worker's view of itself, handed to its work by
/// [`Workers::spawn`](super::Workers::spawn): the CPU it is pinned to, the lease of the pool
/// slot serving that CPU, and the receiving end of its mailbox.
///
/// Like the [`LocalPool`] inside it, a context stays on its worker thread.
///
/// ```
/// use umrf::cores::Workers;
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(4).cpus([0]).build()?;
/// let workers = Workers::<u64, (u32, usize, u64)>::spawn(&pool, [0], 8, |ctx| {
///     let total: u64 = ctx.inbox().iter().sum();
///     let _scratch = ctx.lease().alloc::<u8>(64).unwrap(); // from this CPU's slot
///     (ctx.cpu(), ctx.slot(), total)
/// })?;
/// workers.sender(0).unwrap().send(40).unwrap();
/// workers.sender(0).unwrap().send(2).unwrap();
/// assert_eq!(workers.join().unwrap(), [(0, 0, 42)]);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct WorkerContext<R: Residency, M: Transferable> {
    index: usize,
    cpu: u32,
    slot: usize,
    lease: LocalPool<R>,
    inbox: Receiver<M>,
}

impl<R: Residency, M: Transferable> WorkerContext<R, M> {
    pub(super) fn new(
        index: usize,
        cpu: u32,
        slot: usize,
        lease: LocalPool<R>,
        inbox: Receiver<M>,
    ) -> Self {
        WorkerContext {
            index,
            cpu,
            slot,
            lease,
            inbox,
        }
    }

    /// The worker's position in the spawn list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The CPU the worker is pinned to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The pool slot the worker leases.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The lease of the slot serving this CPU: allocate here, accept capabilities here.
    pub fn lease(&self) -> &LocalPool<R> {
        &self.lease
    }

    /// The worker's mailbox.
    pub fn inbox(&self) -> &Receiver<M> {
        &self.inbox
    }

    /// The lease and the mailbox, to keep past the context.
    pub fn into_parts(self) -> (LocalPool<R>, Receiver<M>) {
        (self.lease, self.inbox)
    }
}

impl<R: Residency, M: Transferable> std::fmt::Debug for WorkerContext<R, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("index", &self.index)
            .field("cpu", &self.cpu)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
