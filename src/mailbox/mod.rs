//! Bounded mailboxes: how messages, and with them ownership, cross cores.
//!
//! A mailbox is a bounded multi-producer, single-consumer queue of [`Transferable`] messages.
//! Senders and the receiver meet only on the cell they hand over (a lock-free ring); a mutex
//! and condition variable are touched only when one side must sleep.
//!
//! ```
//! use umrf::mailbox;
//! let (tx, rx) = mailbox::<(u32, String)>(8);
//! let tx2 = tx.clone();
//! std::thread::spawn(move || tx2.send((1, "one".into())).unwrap()).join().unwrap();
//! tx.send((2, "two".into())).unwrap();
//! drop(tx);
//! let mut got: Vec<_> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [(1, "one".to_string()), (2, "two".to_string())]);
//! ```

mod error;
#[cfg(all(test, umrf_loom))]
mod loom_tests;
mod ring;

use core::fmt;
use core::marker::PhantomData;
use std::time::{Duration, Instant};

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use ring::Ring;

use crate::error::Error;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Backoff, Condvar, Mutex, Ordering};
use crate::transfer::Transferable;

/// The largest capacity a mailbox may have.
pub const MAX_CAPACITY: usize = 1 << 26;

/// Makes a mailbox of `capacity` messages (clamped to `1..=MAX_CAPACITY`).
///
/// Use [`try_mailbox`] to have an out-of-range capacity reported instead of clamped, and to
/// get an `Err` instead of a panic when the memory for the messages cannot be had.
///
/// # Panics
/// When the system allocator cannot provide `capacity` message cells (about `capacity *
/// size_of::<M>()` bytes: a clamped capacity of a large message type can ask for hundreds of
/// gigabytes). The panic message names the size; it never aborts the process.
///
/// ```
/// let (tx, rx) = umrf::mailbox::<u64>(0); // clamped to 1
/// assert_eq!(tx.capacity(), 1);
/// tx.send(5).unwrap();
/// assert_eq!(rx.recv(), Ok(5));
/// ```
pub fn mailbox<M: Transferable>(capacity: usize) -> (Sender<M>, Receiver<M>) {
    make(capacity.clamp(1, MAX_CAPACITY)).unwrap_or_else(|error| panic!("{error}"))
}

/// Makes a mailbox of exactly `capacity` messages.
///
/// # Errors
/// [`Error::MailboxCapacity`] when `capacity` is 0 or above [`MAX_CAPACITY`];
/// [`Error::InvalidConfig`] when the system allocator cannot provide the memory for
/// `capacity` messages of type `M`.
///
/// ```
/// assert!(umrf::try_mailbox::<u8>(0).is_err());
/// let (tx, _rx) = umrf::try_mailbox::<u8>(3)?;
/// assert_eq!(tx.capacity(), 3);
/// # Ok::<(), umrf::Error>(())
/// ```
pub fn try_mailbox<M: Transferable>(capacity: usize) -> Result<(Sender<M>, Receiver<M>), Error> {
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(Error::MailboxCapacity {
            capacity,
            max: MAX_CAPACITY,
        });
    }
    make(capacity)
}

fn make<M: Transferable>(capacity: usize) -> Result<(Sender<M>, Receiver<M>), Error> {
    let ring = Ring::try_new(capacity).ok_or_else(|| Error::InvalidConfig {
        reason: format!(
            "a mailbox of {capacity} messages of `{}` needs {} bytes, which the system allocator refused: use a smaller capacity, or send a capability to a pool block instead of a large value",
            core::any::type_name::<M>(),
            Ring::<M>::bytes_for(capacity),
        ),
    })?;
    let shared = Arc::new(Shared {
        ring,
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        receiver_alive: AtomicBool::new(true),
        receiver_sleeping: AtomicBool::new(false),
        senders_sleeping: AtomicUsize::new(0),
        lock: Mutex::new(()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    Ok((
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            _not_sync: PhantomData,
        },
    ))
}

/// State shared by both ends.
struct Shared<M> {
    ring: Ring<M>,
    senders: AtomicUsize,
    /// Set once by [`Sender::close_for_all`]: the receiver acts as if every sender were gone.
    closed: AtomicBool,
    receiver_alive: AtomicBool,
    receiver_sleeping: AtomicBool,
    senders_sleeping: AtomicUsize,
    lock: Mutex<()>,
    not_empty: Condvar,
    not_full: Condvar,
}

/// How long a sender blocked on a full mailbox sleeps before it looks again by itself.
///
/// The receiver wakes blocked senders when it makes room, reading their count without a fence;
/// in the rare interleaving where that read misses a sender just going to sleep, the receiver's
/// next pop wakes it, and if the receiver stops receiving right then, this bound does.
#[cfg(not(umrf_loom))]
const SENDER_RECHECK: Duration = Duration::from_millis(1);
/// Under loom a timed wait is modelled as its timeout firing after the other threads ran (see
/// `crate::sync`), whatever its length; a long bound keeps the real clock out of the model, so
/// every explored execution is deterministic.
#[cfg(umrf_loom)]
const SENDER_RECHECK: Duration = Duration::from_secs(3600);

impl<M> Shared<M> {
    /// After a push: wakes the receiver if it sleeps, and drops the queue if the receiver is
    /// gone.
    ///
    /// No fence is needed: the push claimed its position with a `SeqCst` CAS on the ring's
    /// tail, and both flags are read `SeqCst` after it. The receiver stores its flag (`SeqCst`)
    /// and then reads the tail (`SeqCst`) before sleeping or draining; in the single order of
    /// those four operations, either this thread sees the flag or the receiver sees the claim.
    #[inline]
    fn after_push(&self) {
        if self.receiver_sleeping.load(Ordering::SeqCst) {
            self.notify(&self.not_empty, false);
        }
        if !self.receiver_alive.load(Ordering::SeqCst) {
            self.drop_queued();
        }
    }

    /// Drops every queued message. Each is popped under the lock, which makes the caller the
    /// ring's only consumer (this runs only once the receiver is gone, and the receiver's own
    /// final drain comes here too), and dropped after the lock is released: a message may hold
    /// this mailbox's last `Sender`, whose drop takes the lock to wake the receiver.
    #[cold]
    fn drop_queued(&self) {
        while let Some(message) = self.pop_queued() {
            drop(message);
        }
    }

    /// One queued message, popped under the lock (see [`drop_queued`](Self::drop_queued)).
    fn pop_queued(&self) -> Option<M> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the receiver no longer pops (it is being or was dropped), and every other
        // caller of this pop holds the lock, so this thread is the only consumer.
        unsafe { self.ring.pop_claimed() }
    }

    /// After a pop: wakes senders waiting for room once the mailbox has drained to half its
    /// capacity, so each sleep and wake-up of a sender moves half a mailbox of messages rather
    /// than one (waking them at every pop costs a system call per message under backpressure).
    /// A plain read of their count, no fence (see [`SENDER_RECHECK`] for the interleaving this
    /// leaves to a bounded re-check).
    #[inline]
    fn wake_senders(&self) {
        if self.senders_sleeping.load(Ordering::Relaxed) > 0 {
            self.wake_senders_if_drained();
        }
    }

    #[cold]
    fn wake_senders_if_drained(&self) {
        if self.ring.len() <= self.ring.capacity() / 2 {
            self.notify(&self.not_full, true);
        }
    }

    #[cold]
    fn notify(&self, condvar: &Condvar, all: bool) {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if all {
            condvar.notify_all()
        } else {
            condvar.notify_one()
        }
    }

    fn is_disconnected_for_receiver(&self) -> bool {
        self.senders.load(Ordering::Acquire) == 0 || self.closed.load(Ordering::Acquire)
    }
}

/// The sending end of a mailbox. Clone it for more producers.
pub struct Sender<M: Transferable> {
    shared: Arc<Shared<M>>,
}

impl<M: Transferable> Sender<M> {
    /// Sends without blocking.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`], holding the message.
    #[inline]
    pub fn try_send(&self, message: M) -> Result<(), TrySendError<M>> {
        if !self.shared.receiver_alive.load(Ordering::Relaxed) {
            return Err(TrySendError::Disconnected(message));
        }
        match self.shared.ring.claim() {
            Some(position) => {
                self.publish(position, message);
                Ok(())
            }
            None => Err(TrySendError::Full(message)),
        }
    }

    /// Sends, waiting for room while the mailbox is full.
    ///
    /// # Errors
    /// [`SendError`] holding the message when the receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = umrf::mailbox::<u8>(1);
    /// tx.send(1).unwrap();
    /// let t = std::thread::spawn(move || tx.send(2)); // waits for room
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert_eq!(rx.recv(), Ok(2));
    /// t.join().unwrap().unwrap();
    /// ```
    #[inline]
    pub fn send(&self, message: M) -> Result<(), SendError<M>> {
        self.send_until(message, None)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends, waiting for room at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`], holding the message.
    pub fn send_timeout(&self, message: M, timeout: Duration) -> Result<(), SendTimeoutError<M>> {
        self.send_until(message, Some(Instant::now() + timeout))
    }

    /// The message stays in this frame until a position is claimed; the outlined waiting
    /// returns only a status, so the message is written once, straight into its cell.
    #[inline]
    fn send_until(&self, message: M, deadline: Option<Instant>) -> Result<(), SendTimeoutError<M>> {
        loop {
            if !self.shared.receiver_alive.load(Ordering::Relaxed) {
                return Err(SendTimeoutError::Disconnected(message));
            }
            if let Some(position) = self.shared.ring.claim() {
                self.publish(position, message);
                return Ok(());
            }
            match self.wait_for_room(deadline) {
                Wait::Ready => {}
                Wait::Disconnected => return Err(SendTimeoutError::Disconnected(message)),
                Wait::Timeout => return Err(SendTimeoutError::Timeout(message)),
            }
        }
    }

    #[inline(always)]
    fn publish(&self, position: usize, message: M) {
        self.shared.ring.publish(position, message);
        self.shared.after_push();
    }

    /// Waits until half the mailbox is free, its receiver is gone, or the deadline passes:
    /// spins, then yields, then sleeps (re-checking at least every [`SENDER_RECHECK`]).
    #[cold]
    #[inline(never)]
    fn wait_for_room(&self, deadline: Option<Instant>) -> Wait {
        let shared = &*self.shared;
        let mut backoff = Backoff::default();
        loop {
            if !shared.receiver_alive.load(Ordering::SeqCst) {
                return Wait::Disconnected;
            }
            if shared.ring.has_room_for_a_batch() {
                return Wait::Ready;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Wait::Timeout;
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let guard = shared
                .lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shared.senders_sleeping.fetch_add(1, Ordering::SeqCst);
            // After announcing the sleep, look again: a pop from now on sees the count.
            if shared.receiver_alive.load(Ordering::SeqCst) && !shared.ring.has_room_for_a_batch() {
                #[cfg(umrf_loom)]
                crate::sync::loom_events::note("sender sleeps");
                let recheck = Instant::now() + SENDER_RECHECK;
                let until = deadline.map_or(recheck, |d| d.min(recheck));
                drop(wait(&shared.not_full, guard, Some(until)));
            } else {
                drop(guard);
            }
            shared.senders_sleeping.fetch_sub(1, Ordering::SeqCst);
            backoff = Backoff::default();
        }
    }

    /// Messages waiting now.
    pub fn len(&self) -> usize {
        self.shared.ring.len()
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most messages the mailbox holds.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity()
    }

    /// Whether the receiver is gone.
    pub fn is_disconnected(&self) -> bool {
        !self.shared.receiver_alive.load(Ordering::Acquire)
    }
}

/// Waits on `condvar` until notified or `deadline`; `None` on timeout.
fn wait<'a>(
    condvar: &Condvar,
    guard: crate::sync::MutexGuard<'a, ()>,
    deadline: Option<Instant>,
) -> Option<crate::sync::MutexGuard<'a, ()>> {
    match deadline {
        None => Some(
            condvar
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        ),
        Some(deadline) => {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())?;
            let (guard, _) = condvar
                .wait_timeout(guard, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            Some(guard)
        }
    }
}

impl<M: Transferable> Sender<M> {
    /// Closes the mailbox for every sender, clones included: the receiver takes what is
    /// queued and then sees the mailbox disconnected, as if every sender were gone. Messages
    /// sent later are dropped with the receiver (a capability among them goes home).
    pub(crate) fn close_for_all(&self) {
        self.shared.closed.store(true, Ordering::Release);
        // Under the lock, as the last sender's drop does: a receiver about to sleep checks
        // the flag under it, so this wake-up is not lost.
        self.shared.notify(&self.shared.not_empty, true);
    }
}

impl<M: Transferable> Clone for Sender<M> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Transferable> Drop for Sender<M> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.notify(&self.shared.not_empty, true);
        }
    }
}

impl<M: Transferable> fmt::Debug for Sender<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// The receiving end of a mailbox: one per mailbox, `Send` but not `Sync`.
///
/// Dropping it drops every message still queued (capabilities among them return their blocks
/// home), and later sends fail with the message handed back.
pub struct Receiver<M: Transferable> {
    shared: Arc<Shared<M>>,
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

/// What a receiver that waited found.
enum Wait {
    /// A message is ready (or a sender is about to publish one): pop again.
    Ready,
    /// Empty, and every sender is gone.
    Disconnected,
    /// Empty at the deadline.
    Timeout,
}

impl<M: Transferable> Receiver<M> {
    #[inline]
    fn pop(&self) -> Option<M> {
        // SAFETY: a Receiver is the only consumer of its ring: it is not Clone and not Sync,
        // so one thread at a time calls this.
        let message = unsafe { self.shared.ring.pop() }?;
        self.shared.wake_senders();
        Some(message)
    }

    /// Receives without blocking.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] when empty with every sender
    /// gone.
    #[inline]
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        if let Some(message) = self.pop() {
            return Ok(message);
        }
        if self.shared.is_disconnected_for_receiver() {
            // Senders may have pushed just before leaving: one last look.
            return self.pop().ok_or(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    /// Receives, waiting while the mailbox is empty.
    ///
    /// # Errors
    /// [`RecvError`] when the mailbox is empty and every sender is gone.
    #[inline]
    pub fn recv(&self) -> Result<M, RecvError> {
        loop {
            if let Some(message) = self.pop() {
                return Ok(message);
            }
            match self.wait_for_message(None) {
                Wait::Ready => {}
                Wait::Disconnected | Wait::Timeout => return Err(RecvError),
            }
        }
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<M, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(message) = self.pop() {
                return Ok(message);
            }
            match self.wait_for_message(Some(deadline)) {
                Wait::Ready => {}
                Wait::Disconnected => return Err(RecvTimeoutError::Disconnected),
                Wait::Timeout => return Err(RecvTimeoutError::Timeout),
            }
        }
    }

    /// Waits until a message is ready, every sender is gone, or the deadline passes: spins,
    /// then yields, then sleeps. Returns a status, not the message, so messages never cross
    /// this outlined call.
    #[cold]
    #[inline(never)]
    fn wait_for_message(&self, deadline: Option<Instant>) -> Wait {
        let shared = &*self.shared;
        let mut backoff = Backoff::default();
        loop {
            if shared.ring.is_ready() {
                return Wait::Ready;
            }
            if shared.is_disconnected_for_receiver() {
                // Senders may have published just before leaving.
                return if shared.ring.is_unclaimed() {
                    Wait::Disconnected
                } else {
                    Wait::Ready
                };
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Wait::Timeout;
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let guard = shared
                .lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shared.receiver_sleeping.store(true, Ordering::SeqCst);
            // Pairs with `after_push`: after the flag, look at the tail rather than a stamp, so
            // a sender between its claim and its publication keeps this thread awake.
            let woken = if shared.ring.is_unclaimed() && !shared.is_disconnected_for_receiver() {
                if shared.senders_sleeping.load(Ordering::SeqCst) > 0 {
                    shared.not_full.notify_all();
                }
                #[cfg(umrf_loom)]
                crate::sync::loom_events::note("receiver sleeps");
                wait(&shared.not_empty, guard, deadline).is_some()
            } else {
                true
            };
            shared.receiver_sleeping.store(false, Ordering::Relaxed);
            if !woken {
                return Wait::Timeout;
            }
            backoff = Backoff::default();
        }
    }

    /// An iterator that blocks for each message and ends when every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = M> + '_ {
        core::iter::from_fn(move || self.recv().ok())
    }

    /// An iterator over the messages waiting now.
    ///
    /// ```
    /// let (tx, rx) = umrf::mailbox::<u8>(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = M> + '_ {
        core::iter::from_fn(move || self.try_recv().ok())
    }

    /// Messages waiting now.
    pub fn len(&self) -> usize {
        self.shared.ring.len()
    }

    /// Whether no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most messages the mailbox holds.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity()
    }

    /// Whether every sender is gone.
    pub fn is_disconnected(&self) -> bool {
        self.shared.is_disconnected_for_receiver()
    }
}

impl<M: Transferable> Drop for Receiver<M> {
    fn drop(&mut self) {
        // SeqCst, to pair with `after_push` as the sleeping flag does.
        self.shared.receiver_alive.store(false, Ordering::SeqCst);
        self.shared.notify(&self.shared.not_full, true);
        // Drop what is queued now, so capabilities go home at once. A sender that pushes after
        // this sees `receiver_alive == false` in `after_push` and drops its message itself.
        self.shared.drop_queued();
    }
}

impl<M: Transferable> fmt::Debug for Receiver<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

// SAFETY: a Sender is a port, not shared data: it owns a share of the channel, whose messages
// are Transferable. Moving it moves the right to send.
unsafe impl<M: Transferable> Transferable for Sender<M> {}
// SAFETY: the Receiver is the channel's single consumer; moving it moves that role.
unsafe impl<M: Transferable> Transferable for Receiver<M> {}
