//! Ownership event logs: recorded by real multi-threaded runs, written as JSON lines, read
//! back and replayed against I1; corrupted logs are caught.

mod observe_support;

use std::collections::HashMap;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use umrf::events::{
    Event, EventKind, EventSink, JsonLines, LogConfig, ReadError, Validator, ViolationKind,
    read_json_lines, validate,
};
use umrf::residency::CpuLocal;
use umrf::{Capability, Exhaustion, Pool, mailbox};

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("umrf-events-{}-{name}.jsonl", std::process::id()))
}

/// What a multi-threaded run left behind.
struct Run {
    pool: Pool<CpuLocal>,
    json: Vec<Event<'static>>,
    ring: Vec<Event<'static>>,
}

/// A three-stage run on three threads: the producer (slot 0) sends every buffer to worker A
/// (slot 1); A frees a third remotely, forwards a third to worker B (slot 2, a transfer from
/// away), and sends a third back home (accepted at home, freed locally). B frees half of what
/// it gets after accepting it and drops the other half unaccepted. The producer also does
/// local alloc/free pairs. Every event goes to a JSON-lines file and to the rings.
fn multi_threaded_run(messages: u64, ring_capacity: usize) -> Run {
    let path = temp_path(&format!("run-{messages}-{ring_capacity}"));
    let sink = Arc::new(JsonLines::create(&path).unwrap());
    let pool = observe_support::builder("events-mt", 512, 256, 3)
        .log_ownership(
            LogConfig::new()
                .ring_capacity(ring_capacity)
                .sink(sink.clone()),
        )
        .build()
        .unwrap();
    let (to_a, a_rx) = mailbox::<Capability<u64, CpuLocal>>(32);
    let (to_b, b_rx) = mailbox::<Capability<u64, CpuLocal>>(32);
    let (home_tx, home_rx) = mailbox::<Capability<u64, CpuLocal>>(512);

    let a_pool = pool.clone();
    let a = std::thread::spawn(move || {
        let lease = a_pool.attach_slot(1).unwrap();
        for cap in a_rx.iter() {
            let buf = cap.accept(&lease).unwrap();
            match buf[0] % 3 {
                0 => drop(buf),
                1 => to_b.send(buf.into_capability()).unwrap(),
                _ => home_tx.send(buf.into_capability()).unwrap(),
            }
        }
    });
    let b_pool = pool.clone();
    let b = std::thread::spawn(move || {
        let lease = b_pool.attach_slot(2).unwrap();
        for (i, cap) in b_rx.iter().enumerate() {
            if i % 2 == 0 {
                drop(cap.accept(&lease).unwrap());
            } else {
                drop(cap); // unaccepted: goes home from here
            }
        }
    });

    let lease = pool.attach_slot(0).unwrap();
    for i in 0..messages {
        let mut buf = lease.alloc::<u64>(64).unwrap();
        buf[0] = i;
        to_a.send(buf.into_capability()).unwrap();
        let scratch = lease.alloc_zeroed::<u8>(16).unwrap();
        drop(scratch);
        for cap in home_rx.try_iter() {
            drop(cap.accept(&lease).unwrap()); // home again: a local free
        }
    }
    drop(to_a);
    a.join().unwrap();
    b.join().unwrap();
    for cap in home_rx.try_iter() {
        drop(cap.accept(&lease).unwrap());
    }
    drop(lease);

    let log = pool.ownership_log().unwrap();
    log.flush().unwrap();
    let json = read_json_lines(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    std::fs::remove_file(&path).unwrap();
    Run {
        ring: log.events(),
        json,
        pool,
    }
}

fn count(events: &[Event<'_>], kind: EventKind) -> u64 {
    events.iter().filter(|e| e.event == kind).count() as u64
}

#[test]
#[cfg_attr(
    miri,
    ignore = "writes a JSON-lines file; Miri's isolation has no file system"
)]
fn a_multi_threaded_log_replays_with_one_owner_per_block_and_matches_the_stats() {
    let messages = if cfg!(miri) { 30 } else { 3000 };
    let run = multi_threaded_run(messages, 1 << 16);
    let stats = run.pool.stats();
    assert_eq!(stats.in_use(), 0);

    let summary = validate(run.json.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.events, run.json.len());
    assert_eq!(summary.outstanding, 0, "every block came home");
    assert!(summary.blocks > 1);

    assert_eq!(count(&run.json, EventKind::Allocate), stats.allocations());
    assert_eq!(count(&run.json, EventKind::FreedLocal), stats.local_frees());
    assert_eq!(
        count(&run.json, EventKind::FreedRemote),
        stats.remote_frees()
    );
    assert_eq!(count(&run.json, EventKind::Allocate), 2 * messages);
    // Sent: once from home each, plus A's forwards and returns (two thirds of the messages).
    let forwarded = (0..messages).filter(|i| i % 3 != 0).count() as u64;
    assert_eq!(
        count(&run.json, EventKind::TransferSent),
        messages + forwarded
    );
    let dropped_unaccepted = run
        .json
        .iter()
        .filter(|e| e.event == EventKind::FreedRemote && e.slot.is_none())
        .count();
    assert!(dropped_unaccepted > 0, "B dropped capabilities unaccepted");
    assert!(
        run.json
            .iter()
            .any(|e| e.event == EventKind::Accepted && e.slot == Some(0) && e.peer == Some(1)),
        "blocks came home by capability"
    );

    // The rings saw the same events (nothing overwritten at this size).
    let key = |e: &Event<'_>| (e.home, e.block, e.seq, e.event, e.slot, e.peer);
    let mut from_rings: Vec<_> = run.ring.iter().map(key).collect();
    let mut from_json: Vec<_> = run.json.iter().map(key).collect();
    from_rings.sort();
    from_json.sort();
    assert_eq!(from_rings, from_json);
    assert!(validate(run.ring).is_ok());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "writes a JSON-lines file; Miri's isolation has no file system"
)]
fn each_slot_ring_holds_what_its_slot_did() {
    let messages = if cfg!(miri) { 12 } else { 300 };
    let run = multi_threaded_run(messages, 1 << 14);
    let log = run.pool.ownership_log().unwrap();
    let rings: Vec<_> = (0..3).map(|s| log.slot_events(s).unwrap()).collect();
    assert!(log.slot_events(3).is_none());
    for (slot, events) in rings.iter().enumerate() {
        for e in events {
            match e.slot {
                Some(actor) => assert_eq!(actor as usize, slot, "{e:?}"),
                None => assert_eq!(e.home, Some(slot as u32), "{e:?}"),
            }
        }
        // Each ring is in recording order: time never goes back within one slot's thread.
        assert!(
            events
                .windows(2)
                .all(|w| w[0].ts_ns <= w[1].ts_ns || w[0].slot != w[1].slot)
        );
    }
    let total: usize = rings.iter().map(Vec::len).sum();
    assert_eq!(total, run.ring.len());
    let drained = log.drain();
    assert_eq!(drained.len(), total);
    assert!(log.events().is_empty());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "writes a JSON-lines file; Miri's isolation has no file system"
)]
fn every_json_line_has_exactly_the_documented_fields() {
    let run = multi_threaded_run(if cfg!(miri) { 6 } else { 60 }, 0);
    assert!(run.ring.is_empty(), "ring capacity 0: no ring");
    for event in &run.json {
        let line = serde_json::to_string(event).unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let object = value.as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "block",
                "event",
                "home",
                "peer",
                "pool",
                "pool_id",
                "residency",
                "seq",
                "slot",
                "ts_ns",
                "v"
            ]
        );
        assert_eq!(object["v"], 1);
        assert_eq!(object["pool"], "events-mt");
        assert_eq!(object["residency"], "CpuLocal");
        assert!(object["ts_ns"].is_u64() && object["pool_id"].is_u64());
        assert!(object["event"].is_string());
        for field in ["home", "block", "seq"] {
            assert_eq!(
                object[field].is_u64(),
                event.event.is_block_event(),
                "{line}"
            );
        }
    }
    // Time stamps grow along each block's history.
    let mut last: HashMap<(u32, u32), u64> = HashMap::new();
    let mut sorted = run.json.clone();
    sorted.sort_by_key(|e| (e.home, e.block, e.seq));
    for e in sorted.iter().filter(|e| e.event.is_block_event()) {
        let key = (e.home.unwrap(), e.block.unwrap());
        let previous = last.insert(key, e.ts_ns).unwrap_or(0);
        assert!(previous <= e.ts_ns, "{e:?}");
    }
}

/// A real log and the position of the first event of `kind` that `accept` likes.
fn find(events: &[Event<'_>], kind: EventKind, accept: impl Fn(&Event<'_>) -> bool) -> usize {
    events
        .iter()
        .position(|e| e.event == kind && accept(e))
        .unwrap_or_else(|| panic!("no {kind:?} event in the log"))
}

fn same_block(a: &Event<'_>, b: &Event<'_>) -> bool {
    (a.pool_id, a.home, a.block) == (b.pool_id, b.home, b.block)
}

#[test]
#[cfg_attr(
    miri,
    ignore = "writes a JSON-lines file; Miri's isolation has no file system"
)]
fn corrupted_logs_are_caught() {
    let run = multi_threaded_run(if cfg!(miri) { 12 } else { 200 }, 0);
    let real = run.json;
    assert!(validate(real.clone()).is_ok());

    // Double allocation: a send turned into a second allocation.
    let mut log = real.clone();
    let at = find(&log, EventKind::TransferSent, |_| true);
    log[at].event = EventKind::Allocate;
    let err = validate(log).unwrap_err();
    // The second allocation, then the accept that follows it without a send.
    assert_eq!(err.violations.len(), 2, "{err}");
    assert_eq!(err.violations[0].index, at);
    assert!(matches!(
        err.violations[1].kind,
        ViolationKind::AcceptWithoutSend { .. }
    ));
    assert!(matches!(
        err.violations[0].kind,
        ViolationKind::DoubleAllocation { .. }
    ));

    // Accept without send: the send removed, the block's later events renumbered.
    let mut log = real.clone();
    let at = find(&log, EventKind::TransferSent, |_| true);
    let removed = log.remove(at);
    for e in log.iter_mut().filter(|e| same_block(e, &removed)) {
        if e.seq > removed.seq {
            e.seq = e.seq.map(|s| s - 1);
        }
    }
    let err = validate(log).unwrap_err();
    assert!(
        matches!(
            err.violations[0].kind,
            ViolationKind::AcceptWithoutSend { .. }
        ),
        "{err}"
    );

    // Free by a non-owner: a remote free attributed to another slot than the owner.
    let mut log = real.clone();
    let at = find(&log, EventKind::FreedRemote, |e| e.slot == Some(1));
    log[at].slot = Some(2);
    let err = validate(log).unwrap_err();
    assert_eq!(err.violations.len(), 1, "{err}");
    assert_eq!(
        err.violations[0].kind,
        ViolationKind::FreeByNonOwner {
            holder: umrf::events::Holder::Slot(1),
            slot: Some(2)
        }
    );

    // A local free away from home.
    let mut log = real.clone();
    let at = find(&log, EventKind::FreedLocal, |_| true);
    log[at].slot = Some(1);
    let err = validate(log).unwrap_err();
    assert!(matches!(
        err.violations[0].kind,
        ViolationKind::FreeByNonOwner { .. }
    ));

    // A missing event (a gap in the numbers) and a repeated one.
    let mut log = real.clone();
    let at = find(&log, EventKind::Accepted, |_| true);
    log.remove(at);
    let err = validate(log).unwrap_err();
    assert!(matches!(
        err.violations[0].kind,
        ViolationKind::Sequence { .. }
    ));
    let mut log = real.clone();
    let at = find(&log, EventKind::Accepted, |_| true);
    log.push(log[at].clone());
    let err = validate(log).unwrap_err();
    assert!(
        err.violations.iter().any(
            |v| matches!(v.kind, ViolationKind::Sequence { expected, found } if found < expected)
        ),
        "{err}"
    );

    // An accept that names the wrong sender.
    let mut log = real.clone();
    let at = find(&log, EventKind::Accepted, |e| e.peer == Some(0));
    log[at].peer = Some(2);
    let err = validate(log).unwrap_err();
    assert!(matches!(
        err.violations[0].kind,
        ViolationKind::WrongSender { sender: 0, .. }
    ));

    // A block event without its block.
    let mut log = real;
    log[0].block = None;
    let err = validate(log).unwrap_err();
    assert!(matches!(err.violations[0].kind, ViolationKind::Incomplete));
    assert!(err.to_string().contains("violation"));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "writes a JSON-lines file; Miri's isolation has no file system"
)]
fn overwritten_rings_need_the_lenient_validator_and_the_json_log_does_not() {
    let run = multi_threaded_run(if cfg!(miri) { 40 } else { 2000 }, 32);
    let log = run.pool.ownership_log().unwrap();
    assert!(log.overwritten() > 0);
    assert_eq!(run.ring.len(), 3 * 32);
    assert!(Validator::new().validate(run.ring.clone()).is_err());
    let summary = Validator::new()
        .allow_truncated_history(true)
        .validate(run.ring)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.blocks > 0);
    assert!(validate(run.json).is_ok());
}

#[test]
fn exhaustion_and_fallback_are_logged_in_both_pools() {
    let spare = observe_support::builder("spare", 64, 1, 2)
        .log_ownership(LogConfig::new())
        .build()
        .unwrap();
    let main = observe_support::builder("main", 64, 1, 1)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .log_ownership(LogConfig::new())
        .build()
        .unwrap();
    let lease = main.attach().unwrap();
    let a = lease.alloc::<u8>(1).unwrap();
    let b = lease.alloc::<u8>(1).unwrap(); // from the spare pool
    assert!(lease.alloc::<u8>(1).is_err()); // both exhausted
    drop((a, b));

    let main_events = main.ownership_log().unwrap().events();
    let kinds: Vec<_> = main_events.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Allocate,
            EventKind::Exhausted,
            EventKind::FallbackUsed,
            EventKind::Exhausted,
            EventKind::FreedLocal
        ]
    );
    assert_eq!(
        main_events[2].peer,
        Some(0),
        "served by slot 0 of the spare pool"
    );
    assert_eq!(main_events[1].block, None);
    let spare_events = spare.ownership_log().unwrap().events();
    let kinds: Vec<_> = spare_events.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Allocate,
            EventKind::Exhausted,
            EventKind::FreedLocal
        ]
    );
    assert!(validate(main_events.into_iter().chain(spare_events)).is_ok());
}

/// A writer that always fails.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("disk on fire"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::other("disk on fire"))
    }
}

#[test]
fn a_failing_json_writer_never_disturbs_the_pool() {
    let sink = Arc::new(JsonLines::new(Broken));
    let pool = observe_support::builder("plain", 64, 4, 1)
        .log_ownership(LogConfig::new().sink(sink.clone()))
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    for _ in 0..2000 {
        drop(lease.alloc::<u8>(1).unwrap()); // enough lines to overflow the buffer
    }
    assert_eq!(pool.stats().allocations(), 2000);
    let err = sink.flush().unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");
    assert!(sink.failures() > 0);
    assert!(pool.ownership_log().unwrap().flush().is_err());
}

#[test]
fn the_reader_refuses_other_schema_versions_and_names_the_line() {
    let good = Event::slot_event("p", 1, "CpuLocal", 0, EventKind::Exhausted, 5);
    let mut text = serde_json::to_string(&good).unwrap();
    text.push('\n');
    text.push_str(
        &serde_json::to_string(&good)
            .unwrap()
            .replace("\"v\":1", "\"v\":2"),
    );
    match read_json_lines(text.as_bytes()) {
        Err(ReadError::Version { line: 2, found: 2 }) => {}
        other => panic!("{other:?}"),
    }
    let unknown_kind = serde_json::to_string(&good)
        .unwrap()
        .replace("exhausted", "teleported");
    match read_json_lines(unknown_kind.as_bytes()) {
        Err(e @ ReadError::Parse { line: 1, .. }) => assert!(e.to_string().contains("line 1")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn pools_without_logging_record_nothing() {
    let pool = observe_support::pool("plain", 64, 4, 1);
    assert!(pool.ownership_log().is_none());
    drop(pool.attach().unwrap().alloc::<u8>(1).unwrap());
    let registry = umrf::metrics::Registry::new();
    registry.register(&pool).unwrap();
    let text = registry.render_prometheus();
    assert!(text.contains("umrf_pool_allocations_total"));
    assert!(
        !text.contains("ownership_events"),
        "no event counters without logging"
    );
}

/// A sink that panics on every event.
struct Panicky;

impl EventSink for Panicky {
    fn record(&self, _event: &Event<'_>) {
        panic!("sink bug");
    }
}

#[test]
fn a_panicking_sink_is_counted_and_the_pool_keeps_every_block() {
    let pool = observe_support::builder("panicky", 64, 2, 1)
        .log_ownership(LogConfig::new().sink(Arc::new(Panicky)))
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    for _ in 0..10 {
        drop(lease.alloc::<u8>(1).unwrap());
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.allocations(), stats.in_use(), stats.free()),
        (10, 0, 2)
    );
    let log = pool.ownership_log().unwrap();
    assert_eq!(log.sink_panics(), 20);
    assert!(
        validate(log.events()).is_ok(),
        "the rings still got every event"
    );
}

#[test]
fn a_logging_pool_is_freed_once_its_last_block_comes_home() {
    let pool = observe_support::builder("logged-lifetime", 64, 8, 2)
        .log_ownership(LogConfig::new())
        .build()
        .unwrap();
    let id = pool.id();
    let log = pool.ownership_log().unwrap();
    let lease = pool.attach_slot(0).unwrap();
    let bufs: Vec<_> = (0..5).map(|_| lease.alloc::<u8>(1).unwrap()).collect();
    let cap = lease.alloc::<u8>(1).unwrap().into_capability();
    drop(bufs); // parked on the logging slot
    let again = lease.alloc::<u8>(1).unwrap(); // taken back from the parked blocks
    assert_eq!(pool.stats().slots[0].free, 8 - 2);
    drop((again, lease, pool));
    let registered = || umrf::provenance::regions().iter().any(|r| r.pool_id == id);
    assert!(registered(), "the capability keeps the pool");
    std::thread::spawn(move || drop(cap)).join().unwrap();
    assert!(!registered(), "freed once every block is home");
    let events = log.events();
    assert_eq!(count(&events, EventKind::Allocate), 7);
    assert_eq!(count(&events, EventKind::FreedLocal), 6);
    assert_eq!(count(&events, EventKind::FreedRemote), 1);
    assert_eq!(validate(events).unwrap().outstanding, 0);
}

#[test]
fn frozen_groups_and_device_mappings_replay_with_one_owner_per_block() {
    let pool = observe_support::builder("frozen-log", 256, 8, 2)
        .log_ownership(LogConfig::new())
        .build()
        .unwrap();
    let lease = pool.attach_slot(0).unwrap();

    // Freeze (the group holds the block: logged as a send), read on two threads, the last
    // reader drops away from home: a remote free.
    let frozen = lease.alloc_from_slice(&[3u32; 8]).unwrap().freeze();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let reader = frozen.clone();
            std::thread::spawn(move || reader.iter().sum::<u32>())
        })
        .collect();
    let last = frozen.clone();
    drop(frozen);
    for reader in readers {
        assert_eq!(reader.join().unwrap(), 24);
    }
    std::thread::spawn(move || drop(last)).join().unwrap();

    // Freeze and thaw at home: the buffer owns the block again (logged as an accept), then a
    // local free.
    let frozen = lease.alloc::<u8>(64).unwrap().freeze();
    let buf = frozen.try_thaw(&lease).ok().unwrap();
    drop(buf);

    // A device mapping keeps its owner: nothing to log until the buffer is freed.
    let mapped = lease
        .alloc::<u8>(64)
        .unwrap()
        .map_for_device::<umrf::coherence::Bidirectional>()
        .unwrap();
    drop(mapped.unmap());
    drop(lease);

    let events = pool.ownership_log().unwrap().events();
    let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Allocate,
            EventKind::TransferSent,
            EventKind::FreedRemote,
            EventKind::Allocate,
            EventKind::TransferSent,
            EventKind::Accepted,
            EventKind::FreedLocal,
            EventKind::Allocate,
            EventKind::FreedLocal,
        ]
    );
    let summary = validate(events).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((summary.events, summary.outstanding), (9, 0));
}

#[test]
#[cfg_attr(miri, ignore = "writes a file")]
fn dropping_the_pool_flushes_its_sinks() {
    let path = temp_path("flush-on-drop");
    let sink = Arc::new(JsonLines::create(&path).unwrap());
    let pool = observe_support::builder("flush-on-drop", 64, 2, 1)
        .log_ownership(LogConfig::new().sink(sink.clone()))
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    drop(lease.alloc::<u8>(1).unwrap());
    let read_back =
        || read_json_lines(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert!(read_back().is_empty(), "buffered until a flush");
    drop((lease, pool));
    // No explicit flush, and this test still holds the sink: the pool's last handle flushed it.
    let kinds: Vec<_> = read_back().iter().map(|e| e.event).collect();
    assert_eq!(kinds, [EventKind::Allocate, EventKind::FreedLocal]);
    drop(sink);
    std::fs::remove_file(&path).unwrap();
}
