//! No foreign code inside a critical section: event sinks and `tracing` subscribers run only
//! once a block's state change is complete and nothing still relies on holding a lease.
//!
//! Each test plants code that misbehaves at one call-out site (drops the thread's lease or the
//! pool's last handle, frees another buffer, panics) and checks that no block is handed out
//! twice, lost, or leaked, and that the pool's memory is released.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use umrf::backing::fault;
use umrf::events::{Event, EventKind, EventSink, LogConfig, validate};
use umrf::residency::CpuLocal;
use umrf::{Exhaustion, LocalPool, Pool, PoolBuilder, SharedBuffer};

/// What the misbehaving sinks reach for: this thread's lease, and maybe a pool handle.
type Held = Option<(LocalPool<CpuLocal>, Option<Pool<CpuLocal>>)>;

thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(None) };
    /// A buffer a sink frees from inside another free.
    static SPARE: RefCell<Option<SharedBuffer<u8, CpuLocal>>> = const { RefCell::new(None) };
}

/// On every event of `kind` on this thread, drops what `HELD` holds (the lease, and the pool
/// handle if there is one).
struct DropHeldOn(EventKind);

impl EventSink for DropHeldOn {
    fn record(&self, event: &Event<'_>) {
        if event.event == self.0 {
            let held = HELD.with(|held| held.borrow_mut().take());
            drop(held);
        }
    }
}

/// A builder for a `CpuLocal` pool of 64-byte blocks.
fn builder(name: &str, blocks: usize, slots: usize) -> PoolBuilder<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .name(name)
        .block_size(64)
        .blocks_per_slot(blocks)
        .slots(slots)
}

fn logging_pool(
    name: &str,
    blocks: usize,
    slots: usize,
    sink: Arc<dyn EventSink>,
) -> Pool<CpuLocal> {
    builder(name, blocks, slots)
        .log_ownership(LogConfig::new().ring_capacity(1 << 17).sink(sink))
        .build()
        .unwrap()
}

/// Leases slot 0, retrying while the other thread holds it.
fn attach_slot0(pool: &Pool<CpuLocal>) -> LocalPool<CpuLocal> {
    loop {
        if let Ok(lease) = pool.attach_slot(0) {
            return lease;
        }
        std::thread::yield_now();
    }
}

/// Allocates from the lease in `HELD`, fills the buffer with `tag`, and checks it still reads
/// `tag` after a yield: a block handed to two live buffers would show the other's tag.
fn alloc_tagged(tag: u8) -> SharedBuffer<u8, CpuLocal> {
    let mut buf = HELD.with(|held| held.borrow().as_ref().unwrap().0.alloc::<u8>(64).unwrap());
    buf.fill(tag);
    std::thread::yield_now();
    assert!(
        buf.iter().all(|&b| b == tag),
        "a block was handed to two live buffers"
    );
    buf
}

/// Two threads take turns leasing slot 0; one of them frees locally through a sink that drops
/// its lease on `FreedLocal`. The free must finish on the free list before the sink runs, so
/// the other thread, leasing the slot at once, never shares a block or the free list.
#[test]
fn a_sink_dropping_the_lease_during_a_local_free_never_shares_the_slot() {
    let rounds = if cfg!(miri) { 8 } else { 20_000 };
    let pool = logging_pool(
        "drop-lease",
        4,
        1,
        Arc::new(DropHeldOn(EventKind::FreedLocal)),
    );
    std::thread::scope(|scope| {
        for tag in [1u8, 2] {
            let pool = &pool;
            scope.spawn(move || {
                for _ in 0..rounds {
                    let lease = attach_slot0(pool);
                    HELD.with(|held| *held.borrow_mut() = Some((lease, None)));
                    let buf = alloc_tagged(tag);
                    // Thread 1's free drops its lease from the sink; thread 2 drops its own.
                    drop(buf);
                    if tag == 2 {
                        HELD.with(|held| held.borrow_mut().take());
                    }
                    assert!(HELD.with(|held| held.borrow().is_none()));
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!((stats.in_use(), stats.free()), (0, 4), "{stats:?}");
    let log = pool.ownership_log().unwrap();
    assert!(
        validate(log.events()).is_ok(),
        "one owner per block at every step"
    );
}

/// A sink that drops the lease *and the last pool handle* while a local free is recorded: the
/// block is already home, so the pool's memory is released then and there.
#[test]
fn a_sink_dropping_the_last_handle_during_a_local_free_releases_the_pool() {
    let before = fault::ledger().live_mappings();
    let pool = logging_pool(
        "drop-pool",
        2,
        1,
        Arc::new(DropHeldOn(EventKind::FreedLocal)),
    );
    assert_eq!(fault::ledger().live_mappings(), before + 1);
    let lease = pool.attach().unwrap();
    HELD.with(|held| *held.borrow_mut() = Some((lease, Some(pool))));
    let buf = alloc_tagged(7);
    drop(buf);
    assert!(HELD.with(|held| held.borrow().is_none()));
    assert_eq!(
        fault::ledger().live_mappings(),
        before,
        "the pool's region was released"
    );
}

/// As above, for a remote free (a capability dropped unaccepted): the last handle goes while
/// the free is recorded, and the push that follows releases the pool.
#[test]
fn a_sink_dropping_the_last_handle_during_a_remote_free_releases_the_pool() {
    let before = fault::ledger().live_mappings();
    let pool = logging_pool(
        "drop-pool-remote",
        2,
        1,
        Arc::new(DropHeldOn(EventKind::FreedRemote)),
    );
    let lease = pool.attach().unwrap();
    let cap = lease.alloc::<u8>(8).unwrap().into_capability();
    HELD.with(|held| *held.borrow_mut() = Some((lease, Some(pool))));
    drop(cap);
    assert!(HELD.with(|held| held.borrow().is_none()));
    assert_eq!(fault::ledger().live_mappings(), before);
}

/// A sink that frees another buffer of the same slot while a free is recorded: both frees
/// land on the free list (the inner one is not overwritten by the outer one).
#[test]
fn a_sink_freeing_a_buffer_during_a_free_loses_no_block() {
    struct FreeSpare;
    impl EventSink for FreeSpare {
        fn record(&self, event: &Event<'_>) {
            if event.event == EventKind::FreedLocal {
                let spare = SPARE.with(|spare| spare.borrow_mut().take());
                drop(spare);
            }
        }
    }
    let pool = logging_pool("nested-free", 4, 1, Arc::new(FreeSpare));
    let lease = pool.attach().unwrap();
    for _ in 0..if cfg!(miri) { 3 } else { 100 } {
        let spare = lease.alloc::<u8>(1).unwrap();
        SPARE.with(|slot| *slot.borrow_mut() = Some(spare));
        drop(lease.alloc::<u8>(1).unwrap());
        let stats = pool.stats();
        assert_eq!((stats.in_use(), stats.free()), (0, 4), "{stats:?}");
    }
    assert!(validate(pool.ownership_log().unwrap().events()).is_ok());
}

/// A sink that drops the lease when a capability is made at home (`TransferSent`): the
/// departure is recorded under the lease, then the sink runs.
#[test]
fn a_sink_dropping_the_lease_when_a_capability_departs_keeps_the_state_consistent() {
    let pool = logging_pool(
        "drop-on-send",
        2,
        1,
        Arc::new(DropHeldOn(EventKind::TransferSent)),
    );
    let lease = pool.attach().unwrap();
    let buf = lease.alloc::<u8>(8).unwrap();
    HELD.with(|held| *held.borrow_mut() = Some((lease, None)));
    let cap = buf.into_capability();
    assert!(
        HELD.with(|held| held.borrow().is_none()),
        "the sink took the lease"
    );
    assert_eq!(pool.block_state(0, 0), Some(umrf::BlockState::InFlight));
    let other = pool.attach().unwrap();
    drop(cap.accept(&other).unwrap());
    drop(other);
    let stats = pool.stats();
    assert_eq!((stats.in_use(), stats.free()), (0, 2), "{stats:?}");
    assert!(validate(pool.ownership_log().unwrap().events()).is_ok());
}

/// A `tracing` subscriber that panics on the fallback event. The allocation it interrupts
/// unwinds through a buffer that already owns the block, so the block goes home.
#[test]
#[cfg_attr(
    miri,
    ignore = "tracing's dispatcher uses thread-local state; the logic is native"
)]
fn a_panicking_subscriber_on_the_fallback_path_strands_no_block() {
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Metadata, Subscriber};

    struct PanicOnFallback(AtomicBool);
    impl Subscriber for PanicOnFallback {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let fallback = event.metadata().fields().field("fallback_slot").is_some();
            if fallback && self.0.load(Ordering::Relaxed) {
                panic!("subscriber bug");
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let spare = builder("spare", 1, 1).build().unwrap();
    let main = builder("main", 1, 1)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .build()
        .unwrap();
    let subscriber = Arc::new(PanicOnFallback(AtomicBool::new(true)));
    tracing::subscriber::with_default(subscriber.clone(), || {
        let lease = main.attach().unwrap();
        let _first = lease.alloc::<u8>(1).unwrap();
        let unwound = catch_unwind(AssertUnwindSafe(|| lease.alloc::<u8>(1)));
        assert!(unwound.is_err(), "the subscriber panicked");
        assert_eq!(spare.stats().in_use(), 0, "the fallback block went home");
        subscriber.0.store(false, Ordering::Relaxed);
        let served = lease.alloc::<u8>(1).unwrap();
        assert_eq!(spare.stats().in_use(), 1, "the fallback still serves");
        drop(served);
    });
    assert_eq!(spare.stats().in_use(), 0);
    assert_eq!(main.stats().in_use(), 0);
}
