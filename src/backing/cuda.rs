//! CUDA host registration of `GpuPinned` regions (feature `cuda`).
//!
//! The driver library (`libcuda.so.1`) is loaded at run time through `cudarc`'s dynamic
//! loading, so building needs no CUDA toolkit. Before any driver call, the library's presence
//! is checked (`is_culib_present`): a machine without the driver gets
//! [`Error::CudaUnavailable`], never the panic `cudarc` raises for a missing library, and the
//! whole registration runs under `catch_unwind` in case a driver lacks a symbol.
//!
//! A region is registered with `cuMemHostRegister(CU_MEMHOSTREGISTER_PORTABLE |
//! CU_MEMHOSTREGISTER_DEVICEMAP)` in device 0's primary context: page-locked for every context,
//! mapped into the device address space, and not write-combined (registration of existing
//! memory never is; write-combining exists only for `cuMemHostAlloc`).

#![cfg_attr(any(miri, umrf_loom), allow(dead_code))] // regions are heap memory there

use core::ffi::c_void;
use core::ptr::NonNull;

use cudarc::driver::result::{self, DriverError};
use cudarc::driver::sys;

use super::os::{OsCall, fault_point};
use crate::error::Error;

/// A live registration: undone (and the primary context released) on drop.
///
/// # Invariants
/// 0. `ptr` was registered with `cuMemHostRegister` in `device`'s primary context, which this
///    value retains; both are undone only by `Drop`, once.
pub(crate) struct Registration {
    ptr: NonNull<u8>,
    device: sys::CUdevice,
    context: sys::CUcontext,
}

/// Registers `len` bytes at `base` with the CUDA driver.
///
/// # Errors
/// [`Error::CudaUnavailable`] when the driver library is missing, no device is visible, or a
/// driver call fails; also for an injected fault ([`OsCall::CudaRegister`]).
///
/// # Safety
/// `base..base + len` is a page-aligned read-write mapping that stays mapped until the returned
/// registration is dropped.
pub(crate) unsafe fn register(base: NonNull<u8>, len: usize) -> Result<Registration, Error> {
    fault_point(OsCall::CudaRegister).map_err(|e| Error::CudaUnavailable {
        operation: "cuMemHostRegister",
        reason: e.to_string(),
    })?;
    // SAFETY: only tries to open the library by its usual names; no symbol is called.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::CudaUnavailable {
            operation: "loading the CUDA driver",
            reason: "no CUDA driver library (libcuda.so / libcuda.so.1) on the library path".into(),
        });
    }
    // SAFETY: the caller's promise, passed on.
    let attempt = std::panic::catch_unwind(|| unsafe { register_loaded(base, len) });
    let registration = attempt.unwrap_or_else(|_| {
        Err(Error::CudaUnavailable {
            operation: "calling the CUDA driver",
            reason: "the driver library lacks a symbol this build needs (driver too old?)".into(),
        })
    })?;
    #[cfg(any(test, feature = "fault-injection"))]
    super::fault::note_registration(true);
    Ok(registration)
}

/// The driver calls, once the library is known to be present.
///
/// # Safety
/// As [`register`].
unsafe fn register_loaded(base: NonNull<u8>, len: usize) -> Result<Registration, Error> {
    let fail = |operation: &'static str| {
        move |e: DriverError| Error::CudaUnavailable {
            operation,
            reason: e.to_string(),
        }
    };
    result::init().map_err(fail("cuInit"))?;
    let device = result::device::get(0).map_err(fail("cuDeviceGet(0)"))?;
    // SAFETY: `device` is a valid device handle from cuDeviceGet; the retained context is
    // released by the registration's Drop, or below on failure.
    let retained = unsafe { result::primary_ctx::retain(device) };
    let context = retained.map_err(fail("cuDevicePrimaryCtxRetain"))?;
    let call = || {
        // SAFETY: the caller's promise: a page-aligned read-write mapping of `len` bytes that
        // stays mapped while registered; the flags are valid registration flags.
        unsafe {
            sys::cuMemHostRegister_v2(
                base.as_ptr().cast::<c_void>(),
                len,
                sys::CU_MEMHOSTREGISTER_PORTABLE | sys::CU_MEMHOSTREGISTER_DEVICEMAP,
            )
        }
    };
    // SAFETY: `context` is live (retained above) and the call is valid in any context.
    let registered = unsafe { with_context(context, call) };
    if let Err(e) = registered {
        // SAFETY: balances the retain above; nothing else uses this retain.
        let _ = unsafe { result::primary_ctx::release(device) };
        return Err(fail("cuMemHostRegister")(e));
    }
    Ok(Registration {
        ptr: base,
        device,
        context,
    })
}

/// Runs one driver call with `context` current on this thread.
///
/// # Safety
/// `context` is a live context; `call` is a driver call valid in it.
unsafe fn with_context(
    context: sys::CUcontext,
    call: impl FnOnce() -> sys::CUresult,
) -> Result<(), DriverError> {
    // SAFETY: the caller's promise: a live context.
    unsafe { sys::cuCtxPushCurrent_v2(context) }.result()?;
    let outcome = call().result();
    let mut popped: sys::CUcontext = core::ptr::null_mut();
    // SAFETY: pops the context pushed above; `popped` is a live out-pointer.
    let _ = unsafe { sys::cuCtxPopCurrent_v2(&mut popped) };
    outcome
}

impl Drop for Registration {
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr().cast::<c_void>();
        // SAFETY: invariant 0: the pointer is registered, undone once, here.
        let call = || unsafe { sys::cuMemHostUnregister(ptr) };
        // SAFETY: invariant 0: the context is retained by this registration, so live.
        let _ = unsafe { with_context(self.context, call) };
        // SAFETY: invariant 0: balances the retain made at registration.
        let _ = unsafe { result::primary_ctx::release(self.device) };
        #[cfg(any(test, feature = "fault-injection"))]
        super::fault::note_registration(false);
    }
}
