//! Size-class pools: class choice, per-class stats, exhaustion policies, the large path,
//! remote frees, rows, and lifetimes.

use umrf::backing::fault;
use umrf::residency::CpuLocal;
use umrf::sized::{ClassExhaustion, SizedPool, class_bytes, class_of};
use umrf::{BlockState, Error, provenance};

fn small_pool(rows: usize) -> SizedPool<CpuLocal> {
    SizedPool::<CpuLocal>::builder()
        .largest_class(64 << 10)
        .bytes_per_class(64 << 10)
        .rows(rows)
        .build()
        .unwrap()
}

#[test]
fn every_size_gets_a_block_of_its_class_and_the_stats_balance() {
    let pool = SizedPool::<CpuLocal>::builder()
        .largest_class(64 << 10)
        .bytes_per_class(4 << 20)
        .blocks_per_class(1024, 1 << 20) // no class runs out: no borrowing
        .lazy(true)
        .rows(1)
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    let sizes: Vec<usize> = (1..=if cfg!(miri) { 40 } else { 4000 })
        .map(|i| (i * 37) % (64 << 10) + 1)
        .collect();
    let mut bufs = Vec::new();
    for &n in &sizes {
        let mut buf = lease.alloc::<u8>(n).unwrap();
        assert_eq!(buf.len(), n);
        assert_eq!(buf.block_size(), class_bytes(class_of(n)), "size {n}");
        buf[n - 1] = 7;
        bufs.push(buf);
    }
    let stats = pool.stats();
    assert_eq!(stats.in_use(), sizes.len() as u64);
    let requested: u64 = sizes.iter().map(|&n| n as u64).sum();
    assert_eq!(
        stats.classes.iter().map(|c| c.requested_bytes).sum::<u64>(),
        requested
    );
    drop(bufs);
    let stats = pool.stats();
    assert_eq!(stats.in_use(), 0);
    assert_eq!(stats.allocations(), sizes.len() as u64);
    for class in &stats.classes {
        assert_eq!(
            class.allocations,
            class.local_frees + class.remote_frees + class.in_use
        );
        assert!(class.waste() >= 0.0 && class.waste() < 1.0);
    }
}

#[test]
fn alignment_up_to_the_page_is_honoured_and_above_it_refused() {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(64))]
    struct Line([u8; 64]);
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(4096))]
    struct Page([u8; 4096]);
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(8192))]
    struct TwoPages([u8; 4096], [u8; 4096]);
    let pool = small_pool(1);
    let lease = pool.attach().unwrap();
    for n in 1..5 {
        let lines = lease.alloc::<Line>(n).unwrap();
        assert_eq!(lines.as_ptr() as usize % 64, 0);
    }
    let page = lease.alloc::<Page>(3).unwrap();
    assert_eq!(page.as_ptr() as usize % 4096, 0);
    let page_size = 4096; // the test machines' page size
    match lease.alloc::<TwoPages>(1) {
        Err(Error::OverAligned { align, max_align }) => {
            assert_eq!((align, max_align), (8192, page_size));
        }
        other => panic!("expected OverAligned, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn bad_requests_are_errors() {
    let pool = small_pool(1);
    let lease = pool.attach().unwrap();
    assert!(matches!(lease.alloc::<u8>(0), Err(Error::ZeroLength)));
    assert!(matches!(
        lease.alloc::<()>(3),
        Err(Error::ZeroSizedElement { .. })
    ));
    assert!(matches!(
        lease.alloc::<u32>(usize::MAX / 2),
        Err(Error::TooLarge { .. })
    ));
    let bad = SizedPool::<CpuLocal>::builder()
        .rows(0)
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("rows is 0"), "{bad}");
    let bad = SizedPool::<CpuLocal>::builder()
        .blocks_per_class(5, 4)
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("blocks_per_class"), "{bad}");
    let bad = SizedPool::<CpuLocal>::builder()
        .largest_class((1 << 20) + 1)
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("largest_class"), "{bad}");
}

fn tiny_pool(policy: ClassExhaustion) -> SizedPool<CpuLocal> {
    SizedPool::<CpuLocal>::builder()
        .largest_class(64)
        .bytes_per_class(32) // the 16-byte class has 2 blocks, every other class 1
        .blocks_per_class(1, 2)
        .rows(1)
        .exhaustion(policy)
        .build()
        .unwrap()
}

#[test]
fn exhaustion_fails_when_the_policy_says_so() {
    let pool = tiny_pool(ClassExhaustion::Fail);
    let lease = pool.attach().unwrap();
    let held = [
        lease.alloc::<u8>(16).unwrap(),
        lease.alloc::<u8>(16).unwrap(),
    ];
    let err = lease.alloc::<u8>(16).unwrap_err();
    assert!(
        matches!(err, Error::Exhausted { capacity: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("exhausted"));
    let class = pool.stats().class(16).cloned().unwrap();
    assert_eq!((class.exhausted, class.borrowed, class.to_large), (1, 0, 0));
    drop(held);
    assert!(lease.alloc::<u8>(16).is_ok());
}

#[test]
fn exhaustion_borrows_from_larger_classes_then_takes_the_large_path() {
    let pool = tiny_pool(ClassExhaustion::BorrowThenLarge { classes: 1 });
    let lease = pool.attach().unwrap();
    let a = lease.alloc::<u8>(10).unwrap();
    let b = lease.alloc::<u8>(10).unwrap();
    let c = lease.alloc::<u8>(10).unwrap(); // borrowed from the 32-byte class
    assert_eq!(c.block_size(), 32);
    let d = lease.alloc::<u8>(10).unwrap(); // the 32-byte class is full too: large path
    assert!(d.block_size() >= 4096);
    let class = pool.stats().class(16).cloned().unwrap();
    assert_eq!((class.exhausted, class.borrowed, class.to_large), (2, 1, 1));
    assert_eq!(pool.stats().large.in_use(), 1);
    drop((a, b, c, d));
    let stats = pool.stats();
    assert_eq!(stats.in_use(), 0);
    assert_eq!(stats.large.frees, 1);
}

#[test]
fn borrow_only_fails_after_the_borrowed_classes() {
    let pool = tiny_pool(ClassExhaustion::Borrow { classes: 2 });
    let lease = pool.attach().unwrap();
    let held: Vec<_> = (0..4).map(|_| lease.alloc::<u8>(16).unwrap()).collect();
    assert_eq!(
        held.iter().map(|b| b.block_size()).collect::<Vec<_>>(),
        [16, 16, 32, 48]
    );
    assert!(matches!(
        lease.alloc::<u8>(16),
        Err(Error::Exhausted { .. })
    ));
    assert_eq!(pool.stats().class(16).unwrap().exhausted, 3);
}

#[test]
fn a_large_buffer_has_its_own_region_returned_to_the_os_on_free() {
    let pool = small_pool(1);
    let lease = pool.attach().unwrap();
    let before = fault::ledger().live_mappings();
    let mb = if cfg!(miri) { 1 } else { 64 };
    let mut big = lease.alloc_zeroed::<u64>(mb << 17).unwrap(); // `mb` MiB
    assert_eq!(big.len(), mb << 17);
    assert!(big.block_size() >= mb << 20);
    big[(mb << 17) - 1] = 9;
    assert!(fault::ledger().live_mappings() > before);
    let owner = provenance::owner_of(big.as_bytes().as_ptr()).unwrap();
    assert_eq!(owner.state, BlockState::Owned { slot: 0 });
    assert_eq!(pool.stats().large.live_bytes as usize, big.block_size());
    drop(big);
    assert_eq!(fault::ledger().live_mappings(), before);
    assert_eq!(pool.stats().large.in_use(), 0);
}

#[test]
fn a_64_mib_buffer_travels_as_a_capability_and_goes_home_on_free() {
    let pool = small_pool(2);
    let lease = pool.attach().unwrap();
    let len = if cfg!(miri) { 1 << 17 } else { 8 << 20 }; // u64s: 64 MiB
    let mut big = lease.alloc_zeroed::<u64>(len).unwrap();
    big[len - 1] = 42;
    big[0] = 1;
    let cap = big.into_capability();
    let other = pool.clone();
    let (tx, rx) = umrf::mailbox::<umrf::Capability<u64, CpuLocal>>(1);
    let worker = std::thread::spawn(move || {
        let there = other.attach().unwrap();
        let buf = there.accept(rx.recv().unwrap());
        let ends = buf[0] + buf[buf.len() - 1];
        let frozen = buf.freeze(); // still the same block, read-only now
        (ends, frozen.len())
    });
    tx.send(cap).unwrap();
    assert_eq!(worker.join().unwrap(), (43, len));
    let stats = pool.stats();
    assert_eq!((stats.large.allocations, stats.large.in_use()), (1, 0));
}

#[test]
fn remote_frees_go_home_and_rows_are_reused_after_a_lease_ends() {
    let pool = small_pool(2);
    let lease = pool.attach().unwrap();
    assert_eq!(lease.row(), 0);
    let n = if cfg!(miri) { 8 } else { 1000 };
    let caps: Vec<_> = (0..n)
        .map(|i| {
            lease
                .alloc_from_slice(&[i as u32; 3])
                .unwrap()
                .into_capability()
        })
        .collect();
    let other = pool.clone();
    std::thread::spawn(move || {
        let there = other.attach().unwrap();
        assert_eq!(there.row(), 1);
        for cap in caps {
            drop(there.accept(cap)); // a remote free home to row 0
        }
    })
    .join()
    .unwrap();
    let class = pool.stats().class(12).cloned().unwrap();
    assert_eq!((class.remote_frees, class.in_use), (n as u64, 0));
    // Row 1 is free again: the next lease takes it, with its pools.
    let again = std::thread::spawn({
        let pool = pool.clone();
        move || pool.attach().unwrap().row()
    })
    .join()
    .unwrap();
    assert_eq!(again, 1);
    // The remote frees are drained by row 0's next allocations.
    let reused: Vec<_> = (0..n).map(|_| lease.alloc::<u32>(3).unwrap()).collect();
    assert_eq!(pool.stats().class(12).unwrap().capacity, class.capacity);
    drop(reused);
    let rows = SizedPool::<CpuLocal>::builder()
        .largest_class(64)
        .rows(1)
        .build()
        .unwrap();
    let _held = rows.attach().unwrap();
    assert!(matches!(
        rows.attach(),
        Err(Error::NoFreeSlot { slots: 1, .. })
    ));
}

#[test]
fn buffers_outlive_every_handle_of_their_pool() {
    let pool = small_pool(1);
    let lease = pool.attach().unwrap();
    let small = lease.alloc_from_slice(&[5u8; 100]).unwrap();
    let cap = lease
        .alloc_from_slice(&[6u8; 3000])
        .unwrap()
        .into_capability();
    drop(lease);
    drop(pool);
    assert_eq!(small[99], 5);
    let keeper = std::thread::spawn(move || drop(cap));
    keeper.join().unwrap();
    drop(small); // the last block home frees its pool
}

#[test]
fn lazy_pools_are_built_on_first_use_only() {
    let pool = SizedPool::<CpuLocal>::builder()
        .lazy(true)
        .rows(2)
        .build()
        .unwrap();
    assert!(pool.stats().classes.iter().all(|c| c.rows_built == 0));
    let lease = pool.attach().unwrap();
    let _a = lease.alloc::<u8>(300).unwrap();
    let built: Vec<_> = pool
        .stats()
        .classes
        .iter()
        .filter(|c| c.rows_built > 0)
        .map(|c| c.block_size)
        .collect();
    assert_eq!(built, [320]);
}
