//! Bad input is a value: huge capacities, blank or repeated names, impostor residencies and
//! forgotten sender clones give an `Err` (or a documented panic) with the cause, never an
//! abort or a hang.

use std::panic::catch_unwind;
use std::sync::mpsc;
use std::time::Duration;

use umrf::cores::Workers;
use umrf::events::LogConfig;
use umrf::mailbox::MAX_CAPACITY;
use umrf::placement::{AnyPool, Request, decide};
use umrf::residency::{CpuLocal, Node0, Residency, Strategy};
use umrf::topology::Topology;
use umrf::{Error, Pool, mailbox, try_mailbox};

#[test]
#[cfg_attr(miri, ignore = "asks the allocator for hundreds of gigabytes")]
fn a_mailbox_too_large_for_memory_is_an_error_not_an_abort() {
    let err = try_mailbox::<[u8; 4096]>(MAX_CAPACITY).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(
        message.contains("67108864 messages of `[u8; 4096]`") && message.contains("bytes"),
        "{message}"
    );
    // The clamping constructor documents a panic with the same message, and never aborts.
    let panic = catch_unwind(|| mailbox::<[u8; 4096]>(usize::MAX)).unwrap_err();
    let text = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(text.contains("system allocator refused"), "{text}");
    // A mailbox that fits is still made.
    assert_eq!(try_mailbox::<[u8; 4096]>(16).unwrap().0.capacity(), 16);
}

#[test]
#[cfg_attr(miri, ignore = "asks the allocator for terabytes")]
fn an_event_ring_too_large_for_memory_is_an_error_at_build() {
    for capacity in [usize::MAX, 1 << 40] {
        let built = Pool::<CpuLocal>::builder()
            .block_size(64)
            .blocks_per_slot(1)
            .slots(2)
            .log_ownership(LogConfig::new().ring_capacity(capacity))
            .build();
        let err = built.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("rings of {capacity} events")),
            "{err}"
        );
    }
}

#[test]
fn blank_pool_names_are_refused() {
    for name in ["", "   "] {
        let err = Pool::<CpuLocal>::builder()
            .name(name)
            .block_size(64)
            .blocks_per_slot(1)
            .slots(1)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("pool name is empty"), "{err}");
    }
}

#[test]
fn pools_with_one_name_are_told_apart_by_id() {
    let make = || {
        Pool::<CpuLocal>::builder()
            .name("twin")
            .block_size(64)
            .blocks_per_slot(1)
            .slots(1)
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    let cap = a
        .attach()
        .unwrap()
        .alloc::<u8>(1)
        .unwrap()
        .into_capability();
    let err = cap.accept(&b.attach().unwrap()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("pool `twin` (id {})", a.id()))
            && message.contains(&format!("pool `twin` (id {})", b.id())),
        "{message}"
    );
}

/// A hand-written marker that takes the name and strategy of `NumaNode<0>`.
struct Impostor;

impl Residency for Impostor {
    const NAME: &'static str = "NumaNode";
    const STRATEGY: Strategy = Strategy::Numa { node: 0 };
}

#[test]
#[cfg_attr(miri, ignore = "reads the machine's topology")]
fn run_time_residency_checks_go_by_type_not_by_name() {
    let topo = Topology::detect().unwrap();
    let decision = decide(&Request::new(4096).force(Strategy::Numa { node: 0 }), &topo).unwrap();
    let Ok(numa) = AnyPool::builder(&decision)
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .build()
    else {
        println!("SKIPPED: no NUMA node 0 to bind to");
        return;
    };
    assert!(numa.is::<Node0>());
    assert!(!numa.is::<Impostor>(), "a name is not a type");
    let err = numa.try_into_typed::<Impostor>().unwrap_err();
    assert!(err.to_string().contains("not NumaNode"), "{err}");
    let _typed: Pool<Node0> = err.into_inner().try_into_typed().unwrap();
    // A typed pool of the impostor is labelled by its own name, without a node number.
    let impostor = Pool::<Impostor>::builder()
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .build();
    if let Ok(pool) = impostor {
        assert_eq!(pool.residency_name(), "NumaNode");
        assert!(!AnyPool::from(pool).is::<Node0>());
    }
}

#[test]
#[cfg_attr(miri, ignore = "pins threads to CPUs")]
fn dropping_workers_does_not_wait_for_cloned_senders() {
    let topo = Topology::detect().unwrap();
    let cpu = topo.online_cpus().first().expect("an online CPU");
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .cpus([cpu])
        .build()
        .unwrap();
    let workers =
        Workers::<u64, u64>::spawn(&pool, [cpu], 4, |ctx| ctx.inbox().iter().sum()).unwrap();
    let clone = workers.sender(0).unwrap().clone();
    clone.send(1).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        drop(workers);
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
        "dropping Workers waited for a sender clone"
    );
    dropper.join().unwrap();
    // The clone is still usable as a value; the worker is gone, so nothing receives.
    drop(clone.send(2));
}
