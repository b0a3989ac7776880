//! Mailbox errors. Each one that fails to deliver hands the message back.

use core::fmt;

macro_rules! message_error_common {
    ($name:ident) => {
        impl<M> fmt::Debug for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // No `M: Debug` bound: say which case, not what the message holds.
                f.write_str(concat!(stringify!($name), "::"))?;
                f.write_str(self.case())
            }
        }

        impl<M> std::error::Error for $name<M> {}
    };
}

/// A blocking send failed because the receiver is gone; the message comes back.
///
/// ```
/// let (tx, rx) = umrf::mailbox::<u32>(1);
/// drop(rx);
/// let err = tx.send(7).unwrap_err();
/// assert_eq!(err.into_inner(), 7);
/// ```
pub struct SendError<M>(pub M);

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        self.0
    }

    fn case(&self) -> &'static str {
        "Disconnected"
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a mailbox whose receiver is gone: the message was handed back")
    }
}
message_error_common!(SendError);

/// A non-blocking send failed; the message comes back.
///
/// ```
/// use umrf::mailbox::TrySendError;
/// let (tx, _rx) = umrf::mailbox::<u32>(1);
/// tx.try_send(1).unwrap();
/// match tx.try_send(2) {
///     Err(TrySendError::Full(m)) => assert_eq!(m, 2),
///     other => panic!("{other:?}"),
/// }
/// ```
pub enum TrySendError<M> {
    /// The mailbox is full.
    Full(M),
    /// The receiver is gone.
    Disconnected(M),
}

impl<M> TrySendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        }
    }

    fn case(&self) -> &'static str {
        match self {
            TrySendError::Full(_) => "Full",
            TrySendError::Disconnected(_) => "Disconnected",
        }
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => {
                f.write_str("the mailbox is full: try again, or use the blocking `send`")
            }
            TrySendError::Disconnected(_) => {
                f.write_str("the mailbox's receiver is gone: the message was handed back")
            }
        }
    }
}
message_error_common!(TrySendError);

/// A send with a time limit failed; the message comes back.
///
/// ```
/// use std::time::Duration;
/// use umrf::mailbox::SendTimeoutError;
/// let (tx, _rx) = umrf::mailbox::<u32>(1);
/// tx.send(1).unwrap();
/// let err = tx.send_timeout(2, Duration::from_millis(5)).unwrap_err();
/// assert!(matches!(err, SendTimeoutError::Timeout(2)));
/// ```
pub enum SendTimeoutError<M> {
    /// The mailbox stayed full until the time limit.
    Timeout(M),
    /// The receiver is gone.
    Disconnected(M),
}

impl<M> SendTimeoutError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            SendTimeoutError::Timeout(m) | SendTimeoutError::Disconnected(m) => m,
        }
    }

    fn case(&self) -> &'static str {
        match self {
            SendTimeoutError::Timeout(_) => "Timeout",
            SendTimeoutError::Disconnected(_) => "Disconnected",
        }
    }
}

impl<M> fmt::Display for SendTimeoutError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str(
                "the mailbox stayed full until the time limit: the message was handed back",
            ),
            SendTimeoutError::Disconnected(_) => {
                f.write_str("the mailbox's receiver is gone: the message was handed back")
            }
        }
    }
}
message_error_common!(SendTimeoutError);

/// A blocking receive failed: the mailbox is empty and every sender is gone.
///
/// ```
/// let (tx, rx) = umrf::mailbox::<u32>(1);
/// drop(tx);
/// assert_eq!(rx.recv(), Err(umrf::mailbox::RecvError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the mailbox is empty and every sender is gone")]
pub struct RecvError;

/// A non-blocking receive found nothing.
///
/// ```
/// use umrf::mailbox::TryRecvError;
/// let (tx, rx) = umrf::mailbox::<u32>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is waiting now.
    #[error("the mailbox is empty")]
    Empty,
    /// Nothing is waiting and every sender is gone.
    #[error("the mailbox is empty and every sender is gone")]
    Disconnected,
}

/// A receive with a time limit found nothing.
///
/// ```
/// use std::time::Duration;
/// use umrf::mailbox::RecvTimeoutError;
/// let (_tx, rx) = umrf::mailbox::<u32>(1);
/// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the time limit.
    #[error("nothing arrived in the mailbox before the time limit")]
    Timeout,
    /// Nothing is waiting and every sender is gone.
    #[error("the mailbox is empty and every sender is gone")]
    Disconnected,
}
