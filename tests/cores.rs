//! `umrf::cores`: pinned per-core workers with their CPU's slot and a mailbox, and every way a
//! spawn can fail (no slot for a CPU, a busy slot, a refused pin, a bad capacity), each an
//! `Err` that leaves no worker running.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use umrf::backing::fault::{FaultPlan, OsCall};
use umrf::cores::{Workers, pin_current_thread};
use umrf::residency::CpuLocal;
use umrf::topology::Topology;
use umrf::{Capability, Error, Pool};

fn online() -> Vec<u32> {
    Topology::detect().unwrap().online_cpus().iter().collect()
}

fn pool_for(cpus: &[u32]) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(4096)
        .blocks_per_slot(32)
        .cpus(cpus.iter().copied())
        .build()
        .unwrap()
}

#[test]
fn each_worker_runs_pinned_on_its_cpu_with_its_cpus_slot() {
    let cpus = online();
    let pool = pool_for(&cpus);
    let workers = Workers::<u64, (usize, u32, usize, Option<u32>, u64)>::spawn(
        &pool,
        cpus.iter().rev().copied(),
        4,
        |ctx| {
            let sum: u64 = ctx.inbox().iter().sum();
            let leased = ctx.lease().slot();
            (ctx.index(), ctx.cpu(), leased, Topology::current_cpu(), sum)
        },
    )
    .unwrap();
    assert_eq!(workers.len(), cpus.len());
    for (i, sender) in workers.senders().enumerate() {
        sender.send(i as u64 + 1).unwrap();
        sender.send(100).unwrap();
    }
    let results = workers.join().unwrap();
    for (i, &(index, cpu, slot, running_on, sum)) in results.iter().enumerate() {
        assert_eq!(index, i);
        assert_eq!(cpu, cpus[cpus.len() - 1 - i]);
        assert_eq!(
            pool.backing()[slot].cpu,
            Some(cpu),
            "the slot serves the worker's CPU"
        );
        assert_eq!(running_on, Some(cpu), "pinned");
        assert_eq!(sum, i as u64 + 101);
    }
    // Every lease was given back.
    assert!((0..pool.slots()).all(|s| !pool.slot_stats(s).unwrap().leased));
}

#[test]
fn workers_accept_capabilities_and_free_blocks_home() {
    let cpus = online();
    // One slot per worker, and one more on the first CPU for this thread.
    let mut all = cpus.clone();
    all.push(cpus[0]);
    let pool = pool_for(&all);
    let producer = pool.attach_slot(cpus.len()).unwrap();
    let workers = Workers::<Capability<u32, CpuLocal>, u64>::spawn(&pool, cpus.clone(), 8, |ctx| {
        let mut total = 0u64;
        for cap in ctx.inbox().iter() {
            let buf = cap.accept(ctx.lease()).unwrap();
            total += buf.iter().map(|&x| u64::from(x)).sum::<u64>();
        }
        total
    })
    .unwrap();
    for round in 0..20u32 {
        for (i, sender) in workers.senders().enumerate() {
            let mut buf = producer.alloc_zeroed::<u32>(16).unwrap();
            buf[0] = round + i as u32;
            sender.send(buf.into_capability()).unwrap();
        }
    }
    let totals = workers.join().unwrap();
    let expected: Vec<u64> = (0..cpus.len() as u64)
        .map(|i| (0..20).map(|r| r + i).sum())
        .collect();
    assert_eq!(totals, expected);
    drop(producer);
    assert_eq!(pool.stats().in_use(), 0, "every block came home");
}

#[test]
fn a_cpu_without_a_free_slot_is_refused_before_anything_runs() {
    let cpus = online();
    let pool = pool_for(&cpus[..1]);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let err = Workers::<u8, ()>::spawn(&pool, [cpus[0], cpus[0]], 1, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::CpuUnavailable { cpu, reason } if *cpu == cpus[0] && reason.contains(".cpus(")),
        "{err:?}"
    );
    // A leased slot is not free either.
    let _held = pool.attach_slot(0).unwrap();
    let err = Workers::<u8, ()>::spawn(&pool, [cpus[0]], 1, |_| ()).unwrap_err();
    assert!(matches!(err, Error::CpuUnavailable { .. }), "{err:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_refused_pin_stops_every_worker_before_its_work() {
    let cpus = online();
    let pool = pool_for(&cpus);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let err = {
        // The plan reaches the workers: each counts its own calls, so "every call" is needed
        // to hit exactly one chosen worker; here all of them fail at once.
        let _plan = FaultPlan::new()
            .fail(OsCall::SetAffinity, libc::EINVAL)
            .install();
        Workers::<u8, ()>::spawn(&pool, cpus.clone(), 1, move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err()
    };
    match &err {
        Error::Affinity { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::EINVAL)),
        other => panic!("expected Affinity, got {other:?}"),
    }
    assert!(err.to_string().contains("online_cpus"), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no worker ran its work");
    assert!(
        (0..pool.slots()).all(|s| !pool.slot_stats(s).unwrap().leased),
        "workers that leased a slot gave it back"
    );
}

#[test]
fn bad_arguments_are_errors() {
    let cpus = online();
    let pool = pool_for(&cpus);
    let err = Workers::<u8, ()>::spawn(&pool, [], 1, |_| ()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    let err = Workers::<u8, ()>::spawn(&pool, [cpus[0]], 0, |_| ()).unwrap_err();
    assert!(
        matches!(err, Error::MailboxCapacity { capacity: 0, .. }),
        "capacity 0: {err:?}"
    );
    assert!(pin_current_thread(u32::MAX).is_err());
    let offline = (0..4096).find(|c| !cpus.contains(c)).unwrap();
    let err = std::thread::spawn(move || pin_current_thread(offline))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Affinity { cpu, .. } if cpu == offline));
}

#[test]
fn a_panicking_worker_is_reported_after_the_others_finish() {
    let cpus = online();
    let pool = pool_for(&cpus);
    let workers = Workers::<u8, usize>::spawn(&pool, cpus.clone(), 1, |ctx| {
        if ctx.index() == 0 {
            panic!("worker zero fails");
        }
        ctx.inbox().iter().count()
    })
    .unwrap();
    let panic = workers.join().unwrap_err();
    assert_eq!(panic.index, 0);
    assert_eq!(
        panic.to_string(),
        format!("worker 0 on CPU {} panicked: worker zero fails", cpus[0])
    );
}

#[test]
fn dropping_workers_closes_their_mailboxes_and_waits() {
    let cpus = online();
    let pool = pool_for(&cpus);
    let finished = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&finished);
    let mut workers = Workers::<u32, ()>::spawn(&pool, cpus.clone(), 2, move |ctx| {
        for _ in ctx.inbox().iter() {}
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    assert_eq!(workers.cpu(0), Some(cpus[0]));
    assert_eq!(workers.slot(0), Some(0));
    workers.sender(0).unwrap().send(1).unwrap();
    workers.close();
    assert!(workers.sender(0).is_none());
    drop(workers);
    assert_eq!(finished.load(Ordering::SeqCst), cpus.len());
}
