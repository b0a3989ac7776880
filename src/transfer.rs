//! `Transferable`: what may cross cores inside a mailbox message.

use core::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128, NonZeroUsize, Wrapping,
};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher, RandomState};
use std::time::{Duration, Instant, SystemTime};

use bytemuck::Pod;

use crate::capability::Capability;
use crate::residency::Residency;

/// A value that may cross cores in a [`mailbox`](crate::mailbox()) message: it carries ownership
/// or plain data, never shared mutable state (invariant I3).
///
/// Implemented for [`Capability`], plain data (numbers, `bool`, `char`, `String`, `Duration`,
/// …), the mailbox ends themselves, and standard containers, `Option`, `Result`, tuples and
/// arrays of `Transferable` items. Not implemented for `Rc`, `Arc`, `Arc<Mutex<_>>`, cells,
/// references, raw pointers or [`SharedBuffer`](crate::SharedBuffer): those would let two
/// threads reach the same memory. User messages get it from `#[derive(Message)]`, which checks
/// every field at compile time:
///
/// ```
/// use umrf::{Capability, Message, residency::CpuLocal};
///
/// #[derive(Message)]
/// struct Frame {
///     id: u64,
///     pixels: Capability<u8, CpuLocal>,
///     tags: Vec<String>,
/// }
///
/// fn is_transferable<M: umrf::Transferable>() {}
/// is_transferable::<Frame>();
/// ```
///
/// # Safety
/// Implement it only for a type whose values share no mutable state with any other value:
/// moving one to another thread must move everything it can reach. Prefer
/// `#[derive(Message)]`, which implements it only when every field is `Transferable`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross cores in a umrf message",
    label = "not `Transferable`: it may share mutable state or borrow from this thread",
    note = "messages carry ownership or plain data: send a `Capability` (from `SharedBuffer::into_capability`), owned values, or a type with `#[derive(umrf::Message)]`"
)]
pub unsafe trait Transferable: Send + 'static {}

// SAFETY: a capability owns its block alone (Capability invariant 1); moving it moves that.
unsafe impl<T: Pod + Send, R: Residency> Transferable for Capability<T, R> {}

macro_rules! plain_data {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: an owned value with no pointers to shared mutable state.
            unsafe impl Transferable for $t {}
        )*
    };
}

plain_data!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    NonZeroU8,
    NonZeroU16,
    NonZeroU32,
    NonZeroU64,
    NonZeroU128,
    NonZeroUsize,
    NonZeroI8,
    NonZeroI16,
    NonZeroI32,
    NonZeroI64,
    NonZeroI128,
    NonZeroIsize,
    String,
    Box<str>,
    Duration,
    Instant,
    SystemTime,
    RandomState,
    DefaultHasher,
    std::path::PathBuf,
    std::ffi::OsString,
    std::ffi::CString,
);

macro_rules! owning_container {
    ($($t:ident<$($p:ident),+>),* $(,)?) => {
        $(
            // SAFETY: the container owns its items; each is Transferable, so the whole moves
            // without leaving shared state behind.
            unsafe impl<$($p: Transferable),+> Transferable for $t<$($p),+> {}
        )*
    };
}

owning_container!(
    Box<T>, Vec<T>, VecDeque<T>, LinkedList<T>, Option<T>, Wrapping<T>, Result<T, E>,
    BTreeMap<K, V>, BTreeSet<T>, HashMap<K, V, S>, HashSet<T, S>,
);

// SAFETY: a boxed slice owns its items, each Transferable.
unsafe impl<T: Transferable> Transferable for Box<[T]> {}
// SAFETY: a heap owns its items, each Transferable.
unsafe impl<T: Transferable + Ord> Transferable for BinaryHeap<T> {}
// SAFETY: an array owns its items, each Transferable.
unsafe impl<T: Transferable, const N: usize> Transferable for [T; N] {}
// SAFETY: a stateless hasher factory.
unsafe impl<H: 'static> Transferable for BuildHasherDefault<H> {}

macro_rules! tuple {
    ($($p:ident),+) => {
        // SAFETY: a tuple owns its fields, each Transferable.
        unsafe impl<$($p: Transferable),+> Transferable for ($($p,)+) {}
    };
}

tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);
tuple!(A, B, C, D, E, F);
tuple!(A, B, C, D, E, F, G);
tuple!(A, B, C, D, E, F, G, H);
tuple!(A, B, C, D, E, F, G, H, I);
tuple!(A, B, C, D, E, F, G, H, I, J);
tuple!(A, B, C, D, E, F, G, H, I, J, K);
tuple!(A, B, C, D, E, F, G, H, I, J, K, L);
