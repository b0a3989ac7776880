//! Buffers outlive every pool handle; blocks go home from any thread, whatever the order of
//! drops; memory is released when the last block comes home.

mod common;

use common::pool;
use umrf::SharedBuffer;
use umrf::residency::CpuLocal;

/// Serialises the tests of this file: they read `/proc/self/maps` and expect an unmapped
/// region to stay unmapped, which a test mapping memory on another thread could undo by
/// reusing the address.
static MAPPINGS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    MAPPINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `addr` lies in a mapping of this process (Linux `/proc/self/maps`).
fn is_mapped(addr: usize) -> bool {
    let maps =
        std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable on Linux");
    maps.lines().any(|line| {
        let range = line.split_whitespace().next().unwrap();
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).unwrap(),
            usize::from_str_radix(hi, 16).unwrap(),
        );
        (lo..hi).contains(&addr)
    })
}

#[test]
#[cfg_attr(
    miri,
    ignore = "reads /proc; Miri checks the same release through its leak report"
)]
fn region_stays_mapped_until_the_last_buffer_comes_home() {
    let _serial = serial();
    let p = pool(4, 1);
    let lease = p.attach().unwrap();
    let mut a = lease.alloc_zeroed::<u8>(4096).unwrap();
    let b = lease.alloc_zeroed::<u8>(4096).unwrap().into_capability();
    let addr = a.as_ptr() as usize;
    drop(lease);
    drop(p); // every handle is gone
    a[4095] = 7; // still ours to write
    assert_eq!(a[4095], 7);
    assert!(is_mapped(addr));
    drop(a);
    assert!(
        is_mapped(addr),
        "one block (in the capability) is still out"
    );
    std::thread::spawn(move || drop(b)).join().unwrap();
    assert!(
        !is_mapped(addr),
        "the region is unmapped once every block is home"
    );
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc")]
fn a_pool_with_nothing_out_is_released_when_its_last_handle_goes() {
    let _serial = serial();
    let p = pool(2, 2);
    let lease = p.attach().unwrap();
    let addr = lease.alloc::<u8>(1).unwrap().as_ptr() as usize;
    assert!(is_mapped(addr));
    let q = p.clone();
    drop(p);
    drop(lease);
    assert!(is_mapped(addr), "a clone still holds the pool");
    drop(q);
    assert!(!is_mapped(addr));
}

#[test]
fn buffers_outlive_their_lease_and_then_free_remotely() {
    let _serial = serial();
    let p = pool(2, 1);
    let lease = p.attach().unwrap();
    let buf = lease.alloc_from_slice(&[5u32; 16]).unwrap();
    drop(lease);
    assert_eq!(buf[15], 5);
    let again = p.attach().unwrap(); // a new lease on the same slot
    drop(buf); // not the current lease's: a remote free
    let s = again.stats();
    assert_eq!((s.local_frees, s.remote_frees, s.in_use), (0, 1, 0));
}

#[test]
fn a_buffer_dropped_by_a_thread_that_never_allocated_goes_home() {
    let _serial = serial();
    let p = pool(2, 2);
    let lease = p.attach_slot(0).unwrap();
    let cap = lease.alloc::<u8>(1).unwrap().into_capability();
    std::thread::spawn(move || {
        // This thread has no lease at all.
        drop(cap);
    })
    .join()
    .unwrap();
    assert_eq!(p.stats().remote_frees(), 1);
    assert_eq!(p.stats().in_use(), 0);
}

thread_local! {
    static HELD: std::cell::RefCell<Vec<SharedBuffer<u8, CpuLocal>>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[test]
fn a_thread_exiting_with_buffers_in_thread_locals_returns_them() {
    let _serial = serial();
    let p = pool(4, 2);
    let q = p.clone();
    std::thread::spawn(move || {
        let lease = q.attach().unwrap();
        let bufs: Vec<_> = (0..3).map(|_| lease.alloc::<u8>(64).unwrap()).collect();
        HELD.with(|held| held.borrow_mut().extend(bufs));
        // The lease drops before the thread-local destructors run: their frees are remote.
    })
    .join()
    .unwrap();
    let s = p.stats();
    assert_eq!((s.allocations(), s.in_use(), s.remote_frees()), (3, 0, 3));
}

#[test]
fn a_worker_that_panics_while_holding_buffers_returns_them_on_unwind() {
    let _serial = serial();
    let p = pool(4, 2);
    let q = p.clone();
    let outcome = std::thread::spawn(move || {
        let lease = q.attach().unwrap();
        let _a = lease.alloc::<u8>(1).unwrap();
        let _b = lease.alloc::<u8>(1).unwrap().into_capability();
        panic!("worker failed while holding buffers");
    })
    .join();
    assert!(outcome.is_err());
    let s = p.stats();
    assert_eq!((s.allocations(), s.in_use()), (2, 0));
    assert!(
        p.attach_slot(0).is_ok() && p.attach_slot(1).is_ok(),
        "the lease was given back on unwind"
    );
}
