//! `GpuPinned` against the real `RLIMIT_MEMLOCK`: a pool within the limit is locked, a bigger one
//! fails with an error naming the limit, and a failed build unlocks everything it locked
//! (`VmLck` in `/proc/self/status` comes back to where it was).
//!
//! A process with `CAP_IPC_LOCK` (root) is not bound by the limit, so the test first drops that
//! capability from its own thread's effective set (capabilities are per thread on Linux); where
//! it cannot, the over-limit case is skipped with a SKIPPED line.
//!
//! One test function: the locked-memory count is per process, so parallel tests in this binary
//! would disturb each other.

use umrf::residency::GpuPinned;
use umrf::{Error, Pool};

/// `VmLck` of this process, in bytes.
fn locked_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// The soft `RLIMIT_MEMLOCK`, or `None` for unlimited.
fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a live out-pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    assert_eq!(rc, 0);
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Linux capability header and data (include/uapi/linux/capability.h), version 3.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_IPC_LOCK: u32 = 14;

/// Removes `CAP_IPC_LOCK` from this thread's effective set; whether the thread is now bound by
/// `RLIMIT_MEMLOCK`.
fn drop_ipc_lock() -> bool {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header fills two data entries, which `data` holds.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    if data[0].effective & (1 << CAP_IPC_LOCK) == 0 {
        return true;
    }
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset with the same header and two data entries; lowering the effective set of
    // the calling thread is always allowed.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    rc == 0
}

/// The error names the limit and its value.
fn check_memlock_error(err: &Error, limit: u64) {
    match err {
        Error::MemlockLimit {
            limit: reported, ..
        } => assert_eq!(*reported, limit),
        other => panic!("expected MemlockLimit, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("RLIMIT_MEMLOCK"), "{message}");
    assert!(message.contains(&format!("{limit} bytes")), "{message}");
}

#[test]
fn gpu_pinned_obeys_rlimit_memlock_and_unlocks_on_failure() {
    let Some(limit) = memlock_limit() else {
        eprintln!("SKIPPED: RLIMIT_MEMLOCK is unlimited here; nothing to exceed");
        return;
    };
    // Run in a thread of its own: dropping the capability affects only this thread.
    std::thread::spawn(move || {
        let bound = drop_ipc_lock();
        let start = locked_bytes();

        // Within the limit: locked, and counted in VmLck.
        let small = 64 * 1024;
        if limit >= small as u64 * 2 {
            let built = Pool::<GpuPinned>::builder()
                .block_size(4096)
                .blocks_per_slot(small / 4096)
                .slots(1)
                .build();
            match built {
                Ok(pool) => {
                    let info = &pool.backing()[0];
                    assert!(info.locked);
                    assert_eq!(locked_bytes(), start + info.bytes as u64);
                }
                // With `cuda` on a machine without the driver: locked, then undone.
                Err(Error::CudaUnavailable { .. }) if cfg!(feature = "cuda") => {}
                Err(e) => panic!("{e}"),
            }
            assert_eq!(locked_bytes(), start);
        }

        if !bound {
            eprintln!("SKIPPED: CAP_IPC_LOCK could not be dropped, so the limit does not bind");
            return;
        }
        // One slot over the limit: refused outright, nothing stays locked.
        let over = (limit as usize / 4096) + 16;
        let err = Pool::<GpuPinned>::builder()
            .block_size(4096)
            .blocks_per_slot(over)
            .slots(1)
            .build()
            .unwrap_err();
        check_memlock_error(&err, limit);
        assert_eq!(locked_bytes(), start);

        // Three slots, each just under the limit: the first locks, the second goes over, and
        // the first one's lock is undone. (With `cuda` and no driver, the first slot's
        // registration fails before the second mlock, which the case above covers.)
        if cfg!(feature = "cuda") {
            return;
        }
        let per_slot = (limit as usize / 4096).saturating_sub(1).max(1);
        let err = Pool::<GpuPinned>::builder()
            .block_size(4096)
            .blocks_per_slot(per_slot)
            .slots(3)
            .build()
            .unwrap_err();
        check_memlock_error(&err, limit);
        assert_eq!(locked_bytes(), start, "the first slot's lock was undone");
    })
    .join()
    .unwrap();
}
