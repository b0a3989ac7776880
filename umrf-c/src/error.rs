//! Error codes, the calling thread's last error, and the guard that keeps panics from crossing
//! the C boundary.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a call of the C API reports. `UMRF_OK` is zero; every failure is negative, so a
/// function returning a count or a length can return a code instead.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UmrfError {
    /// Success.
    UmrfOk = 0,
    /// A required pointer argument was null.
    UmrfErrNull = -1,
    /// A size of zero was requested.
    UmrfErrZeroSize = -2,
    /// The request is larger than the largest block of the C pools.
    UmrfErrTooLarge = -3,
    /// The core id is negative or not below the configured number of cores.
    UmrfErrCoreOutOfRange = -4,
    /// The core's pool and its fallback pool have no free block of the size.
    UmrfErrExhausted = -5,
    /// The pointer was not allocated by `umrf_alloc` (another allocator, the stack, garbage).
    UmrfErrForeignPointer = -6,
    /// The pointer is inside a block of the C pools but not at its start.
    UmrfErrInteriorPointer = -7,
    /// The block at the pointer is not allocated: freed already, or released by a reset.
    UmrfErrDoubleFree = -8,
    /// The pools could not be built (the message says why: memory, configuration).
    UmrfErrInit = -9,
    /// The pools were already built with a different configuration.
    UmrfErrAlreadyInitialized = -10,
    /// Another thread is allocating on this core right now.
    UmrfErrCoreBusy = -11,
    /// A bug in umrf: a panic was caught at the boundary. Please report it with the message.
    UmrfErrInternal = -12,
}

thread_local! {
    static LAST: RefCell<(UmrfError, CString)> = RefCell::new((UmrfError::UmrfOk, CString::default()));
}

/// Records `code` with its message as this thread's last error, and returns the code.
pub fn fail(code: UmrfError, message: impl Into<String>) -> UmrfError {
    let text = CString::new(message.into().replace('\0', " ")).unwrap_or_default();
    let _ = LAST.try_with(|last| *last.borrow_mut() = (code, text));
    code
}

/// Clears this thread's last error.
pub fn succeed() -> UmrfError {
    let _ = LAST.try_with(|last| *last.borrow_mut() = (UmrfError::UmrfOk, CString::default()));
    UmrfError::UmrfOk
}

/// This thread's last error code.
pub fn last_code() -> UmrfError {
    LAST.try_with(|last| last.borrow().0)
        .unwrap_or(UmrfError::UmrfOk)
}

/// This thread's last error message, valid until this thread's next call of the API.
pub fn last_message() -> *const c_char {
    LAST.try_with(|last| last.borrow().1.as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Runs `body`; a panic becomes `UmrfErrInternal` with its message and `on_panic` is returned.
/// Nothing unwinds into C.
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            fail(
                UmrfError::UmrfErrInternal,
                format!("internal error in umrf (please report it): {what}"),
            );
            on_panic
        }
    }
}
