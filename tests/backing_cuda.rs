//! `GpuPinned` with the `cuda` feature: registration with the CUDA driver, loaded at run time.
//! On a machine without the driver the build is an `Err` naming it — never a panic — and the
//! memory locked before is returned; with a driver and a GPU, the region is registered and the
//! registration is undone when the pool goes.
//!
//! `cargo test --features cuda --test backing_cuda`

#![cfg(feature = "cuda")]

use umrf::backing::fault::{self, FaultPlan, OsCall};
use umrf::residency::GpuPinned;
use umrf::{Error, Pool, PoolBuilder};

fn builder() -> PoolBuilder<GpuPinned> {
    Pool::<GpuPinned>::builder()
        .block_size(4096)
        .blocks_per_slot(4)
        .slots(2)
}

/// Whether the driver library can be opened at all (the same names cudarc tries).
fn driver_present() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).unwrap();
        // SAFETY: dlopen with a valid C string; the handle is closed right away.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY) };
        if handle.is_null() {
            return false;
        }
        // SAFETY: a handle returned by dlopen above, closed once.
        unsafe { libc::dlclose(handle) };
        true
    })
}

#[test]
fn registration_follows_the_driver() {
    let before = fault::ledger();
    let result = std::panic::catch_unwind(|| builder().build());
    let built = result.expect("a missing or failing CUDA driver is an Err, never a panic");
    match built {
        Ok(pool) => {
            assert!(driver_present());
            assert!(pool.backing().iter().all(|b| b.registered && b.locked));
            assert_eq!(
                fault::ledger().live_registrations(),
                before.live_registrations() + 2
            );
            drop(pool);
            assert_eq!(
                fault::ledger().live_registrations(),
                before.live_registrations()
            );
        }
        Err(err @ Error::CudaUnavailable { .. }) => {
            let message = err.to_string();
            assert!(message.contains("NVIDIA driver"), "{message}");
            if !driver_present() {
                assert!(message.contains("libcuda"), "{message}");
            }
            assert_eq!(fault::ledger().live_mappings(), before.live_mappings());
            assert_eq!(
                fault::ledger().live_registrations(),
                before.live_registrations()
            );
        }
        Err(other) => panic!("expected registration or CudaUnavailable, got {other:?}"),
    }
}

#[test]
fn an_injected_registration_failure_undoes_the_slots_before_it() {
    let before = fault::ledger();
    let err = {
        let _plan = FaultPlan::new()
            .fail(OsCall::CudaRegister, libc::ENODEV)
            .install();
        builder().build().unwrap_err()
    };
    assert!(
        matches!(&err, Error::CudaUnavailable { operation, .. } if *operation == "cuMemHostRegister"),
        "{err:?}"
    );
    assert_eq!(fault::ledger().live_mappings(), before.live_mappings());
    assert_eq!(
        fault::ledger().live_registrations(),
        before.live_registrations()
    );
}
