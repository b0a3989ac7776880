//! Capabilities: the only way a block crosses threads.

use umrf::residency::CpuLocal;
use umrf::{AcceptErrorKind, Capability, Pool, Transferable};

fn pool(blocks: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(1024)
        .blocks_per_slot(blocks)
        .slots(slots)
        .build()
        .unwrap()
}

fn assert_send<T: Send>() {}
fn assert_transferable<T: Transferable>() {}

#[test]
fn capabilities_are_send_and_transferable() {
    assert_send::<Capability<f64, CpuLocal>>();
    assert_transferable::<Capability<f64, CpuLocal>>();
    assert_transferable::<Vec<Option<Capability<u8, CpuLocal>>>>();
}

#[test]
fn accepted_on_the_home_slot_the_buffer_frees_locally() {
    let p = pool(2, 2);
    let lease = p.attach_slot(0).unwrap();
    let cap = lease.alloc_from_slice(&[1u8, 2]).unwrap().into_capability();
    assert_eq!((cap.len(), cap.home_slot(), cap.is_empty()), (2, 0, false));
    let buf = cap.accept(&lease).unwrap();
    assert_eq!(&buf[..], &[1, 2]);
    drop(buf);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.local_frees, s.remote_frees), (1, 0));
}

#[test]
fn accepted_on_another_slot_the_buffer_frees_remotely_to_its_home() {
    let p = pool(2, 2);
    let home = p.attach_slot(0).unwrap();
    let cap = home.alloc_from_slice(&[9u16; 4]).unwrap().into_capability();
    let q = p.clone();
    std::thread::spawn(move || {
        let there = q.attach_slot(1).unwrap();
        let mut buf = cap.accept(&there).unwrap();
        assert_eq!(buf.home_slot(), 0);
        buf[0] = 10;
    })
    .join()
    .unwrap();
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.local_frees, s.remote_frees, s.remote_pending), (0, 1, 1));
    assert_eq!(
        p.slot_stats(1).unwrap().allocations,
        0,
        "slot 1 never allocated"
    );
}

#[test]
fn a_refused_capability_is_handed_back_intact() {
    let a = Pool::<CpuLocal>::builder()
        .name("a")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let b = Pool::<CpuLocal>::builder()
        .name("b")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    let (la, lb) = (a.attach().unwrap(), b.attach().unwrap());
    let cap = la.alloc_from_slice(&[3u32, 4]).unwrap().into_capability();
    let err = cap.accept(&lb).unwrap_err();
    match err.kind() {
        AcceptErrorKind::ForeignPool {
            expected, found, ..
        } => {
            assert_eq!((expected.as_str(), found.as_str()), ("b", "a"))
        }
        other => panic!("{other:?}"),
    }
    assert!(format!("{err:?}").contains("ForeignPool"));
    assert!(err.to_string().contains("pool `a`"));
    let cap = err.into_inner();
    assert_eq!(cap.pool_name().as_str(), "a");
    assert_eq!(&cap.accept(&la).unwrap()[..], &[3, 4]);
    assert_eq!(a.stats().in_use(), 0);
}

#[test]
fn a_capability_from_a_fallback_pool_is_accepted_by_a_lease_of_the_primary() {
    let spare = pool(4, 2);
    let main = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(2)
        .exhaustion(umrf::Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let lease = main.attach_slot(0).unwrap();
    let _first = lease.alloc::<u8>(1).unwrap();
    let from_spare = lease.alloc::<u8>(1).unwrap().into_capability();
    let m = main.clone();
    std::thread::spawn(move || {
        let there = m.attach_slot(1).unwrap();
        drop(
            from_spare
                .accept(&there)
                .expect("a lease of the primary accepts fallback blocks"),
        );
    })
    .join()
    .unwrap();
    assert_eq!(spare.stats().remote_frees(), 1);
    assert_eq!(spare.stats().in_use(), 0);
}

#[test]
fn dropping_an_unaccepted_capability_returns_the_block() {
    let p = pool(1, 1);
    let lease = p.attach().unwrap();
    let cap = lease.alloc::<u8>(1).unwrap().into_capability();
    assert!(lease.alloc::<u8>(1).is_err());
    drop(cap);
    let held = lease
        .alloc::<u8>(1)
        .expect("the dropped capability's block was drained and reused");
    assert!(format!("{:?}", lease.alloc::<u8>(1)).contains("Exhausted"));
    drop(held);
}

#[test]
fn ownership_bounces_between_threads_many_times() {
    let rounds = if cfg!(miri) { 20 } else { 10_000 };
    let p = pool(4, 2);
    let (to_b, from_a) = umrf::mailbox::<Capability<u64, CpuLocal>>(2);
    let (to_a, from_b) = umrf::mailbox::<Capability<u64, CpuLocal>>(2);
    let q = p.clone();
    let b = std::thread::spawn(move || {
        let lease = q.attach().unwrap();
        for cap in from_a.iter() {
            let mut buf = cap.accept(&lease).unwrap();
            buf[0] += 1;
            if to_a.send(buf.into_capability()).is_err() {
                break;
            }
        }
    });
    let lease = p.attach().unwrap();
    let mut cap = lease.alloc_zeroed::<u64>(8).unwrap().into_capability();
    for _ in 0..rounds {
        let mut buf = cap.accept(&lease).unwrap();
        buf[0] += 1;
        to_b.send(buf.into_capability()).unwrap();
        cap = from_b.recv().unwrap();
    }
    let buf = cap.accept(&lease).unwrap();
    assert_eq!(buf[0], 2 * rounds as u64);
    drop(to_b);
    b.join().unwrap();
    drop(buf);
    let s = p.stats();
    assert_eq!((s.allocations(), s.in_use()), (1, 0));
}
