//! Why a buffer, a lease and a device mapping stay on their thread, in the compiler's words.
//!
//! [`SharedBuffer`](crate::SharedBuffer), [`LocalPool`](crate::LocalPool) and
//! [`DeviceMapping`](crate::coherence::DeviceMapping) are `!Send` and `!Sync` (I3). Rather
//! than leave that to their raw-pointer fields, whose names would then fill the compiler's
//! error, each has `Send` and `Sync` impls under a bound no type meets: one of the traits
//! below, which have no implementation and cannot get one (they are private to this crate),
//! and whose `#[diagnostic::on_unimplemented]` message names the user's type and says what to
//! do instead. So `thread::spawn(move || buf)` reports "`SharedBuffer<f32, CpuLocal>` cannot
//! be sent to another thread" and the remedy (`ui-tests/shared_buffer_not_send.stderr`).

/// Met by no type: bounds the `Send` and `Sync` impls of `SharedBuffer`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or shared with another thread",
    label = "a `SharedBuffer` stays on the thread that owns it",
    note = "ownership crosses threads as a `Capability`: send `buf.into_capability()` and `accept` it there, or `buf.freeze()` it to share it read-only"
)]
pub(crate) trait BufferStaysOnItsThread {}

/// Met by no type: bounds the `Send` and `Sync` impls of `LocalPool`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or shared with another thread",
    label = "a `LocalPool` is one thread's lease on one slot",
    note = "move a clone of the `Pool` instead, and call `pool.attach()` on the other thread for a lease of its own"
)]
pub(crate) trait LeaseStaysOnItsThread {}

/// Met by no type: bounds the `Send` and `Sync` impls of `DeviceMapping`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or shared with another thread",
    label = "a `DeviceMapping` stays with the thread that mapped the buffer",
    note = "`unmap()` it here, then send the buffer as a `Capability` (`into_capability()`)"
)]
pub(crate) trait MappingStaysOnItsThread {}
