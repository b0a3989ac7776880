//! Spill faults at every step: each write (then each read) of a run fails in turn, through the
//! fault-injection seam, and every page must still read back whole. A refused write keeps the
//! page in the tier above; `ENOSPC` on tmpfs sends later spills to disk. Each runs on every
//! engine: inline, I/O threads and `io_uring` (where the kernel refuses the ring, the run says
//! so; `UMRF_REQUIRE_IO_URING=1` makes that a failure).
#![cfg(not(miri))] // files and threads: Miri's isolation refuses them

mod tiered_support;

use tiered_support::{Engine, backgrounds, engines};
use umrf::backing::fault::{self, FaultPlan, OsCall};
use umrf::residency::CpuLocal;
use umrf::tiered::{IoBackend, IoEngine, IoFallback, Tiered, TieredError, TieredStore};

const PAGE: usize = 4096;
const PAGES: usize = 24;

/// A store on `engine` (its workers copy the fault plan installed now), checked to run it.
fn build(engine: Engine) -> TieredStore<CpuLocal> {
    let store = build_with(engine.threads, engine.io).unwrap();
    assert_eq!(store.io_engine(), engine.runs);
    store
}

fn inline() -> Engine {
    engines()[0]
}

/// Makes `PAGES` pages, page `i` of those made filled with `i * 7 + 1`; returns them and the
/// errors seen on the way (a page that could not be pinned to be filled is freed).
fn workload(store: &TieredStore<CpuLocal>) -> (Vec<Tiered<u64, CpuLocal>>, Vec<TieredError>) {
    let mut errors = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..PAGES {
        match store.alloc::<u64>() {
            Ok(mut page) => {
                let value = pages.len() as u64 * 7 + 1;
                match store.pin_mut(&mut page).map(|mut data| data.fill(value)) {
                    Ok(()) => pages.push(page),
                    Err(e) => {
                        errors.push(e);
                        store.free(page).expect("a page made here frees");
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    store.quiesce();
    (pages, errors)
}

/// Every page reads back its contents (retrying a read that the plan failed).
fn all_read_back(store: &TieredStore<CpuLocal>, pages: &[Tiered<u64, CpuLocal>]) {
    read_back(store, pages, false);
}

/// Every page reads back its contents, retrying a failed read and, with `spills_may_fail`, a
/// pin whose eviction could not spill (the page it would evict stays in RAM; I/O workers may
/// still be inside a fault window). Each retry is bounded: a lasting failure fails the test.
fn read_back(
    store: &TieredStore<CpuLocal>,
    pages: &[Tiered<u64, CpuLocal>],
    spills_may_fail: bool,
) {
    for (i, page) in pages.iter().enumerate() {
        let mut tries = 0;
        let data = loop {
            tries += 1;
            match store.pin(page) {
                Ok(data) => break data,
                Err(TieredError::ReadFailed { .. }) if tries < 1000 => continue,
                Err(TieredError::SpillFailed { .. }) if spills_may_fail && tries < 1000 => continue,
                Err(e) => panic!("page {i}, try {tries}: {e}"),
            }
        };
        assert!(
            data.iter().all(|&x| x == i as u64 * 7 + 1),
            "page {i} came back wrong"
        );
    }
}

/// The number of `call`s a clean run makes on this thread (inline I/O): in the workload, and
/// in all (the workload and the read-back).
fn clean_calls(call: OsCall) -> (u64, u64) {
    let store = build(inline());
    let before = fault::calls(call);
    let (pages, errors) = workload(&store);
    let in_workload = fault::calls(call) - before;
    all_read_back(&store, &pages);
    assert!(errors.is_empty());
    (in_workload, fault::calls(call) - before)
}

#[test]
fn every_write_failing_in_turn_loses_nothing() {
    let (_, writes) = clean_calls(OsCall::SpillWrite);
    assert!(writes >= 20, "the run must spill: {writes}");
    for engine in engines() {
        for errno in [libc::EIO, libc::ENOSPC] {
            for n in 0..writes {
                let _plan = FaultPlan::new()
                    .fail_nth(OsCall::SpillWrite, n, errno)
                    .install();
                let store = build(engine);
                let (pages, errors) = workload(&store);
                // One refused write falls through to the tier below: nobody sees an error.
                assert!(
                    errors.is_empty(),
                    "{engine:?}: write {n}, errno {errno}: {errors:?}"
                );
                assert_eq!(pages.len(), PAGES);
                all_read_back(&store, &pages);
                let s = store.stats();
                assert_eq!(
                    s.tmpfs.full_events,
                    u64::from(errno == libc::ENOSPC && s.tmpfs.spills < 8 && n < 8)
                );
            }
        }
    }
}

#[test]
fn tmpfs_full_falls_through_to_disk() {
    for engine in engines() {
        let _plan = FaultPlan::new()
            .fail_nth(OsCall::SpillWrite, 0, libc::ENOSPC)
            .install();
        let store = build(engine);
        let (pages, errors) = workload(&store);
        assert!(errors.is_empty(), "{engine:?}: {errors:?}");
        let s = store.stats();
        assert_eq!(s.tmpfs.full_events, 1, "{engine:?}: {s:?}");
        assert_eq!(s.tmpfs.pages, 0, "a full tmpfs takes no more pages");
        assert_eq!(s.disk.pages as usize, PAGES - s.ram_pages as usize);
        all_read_back(&store, &pages);
    }
}

/// Every `call` from call `from` on, through `count` calls, fails with `errno`: a plan the I/O
/// workers inherit that still ends, so that the read-back that follows can spill again.
fn fail_window(call: OsCall, from: u64, count: u64, errno: i32) -> FaultPlan {
    (from..from + count).fold(FaultPlan::new(), |plan, n| plan.fail_nth(call, n, errno))
}

#[test]
fn writes_failing_from_every_step_on_keep_pages_in_ram_and_report() {
    let (writes, _) = clean_calls(OsCall::SpillWrite);
    for engine in engines() {
        for n in 0..writes {
            let (store, pages, errors) = {
                let _plan = fail_window(OsCall::SpillWrite, n, writes, libc::EIO).install();
                let store = build(engine);
                let (pages, errors) = workload(&store);
                (store, pages, errors)
            };
            assert!(
                !errors.is_empty(),
                "{engine:?}: from write {n} on, spills fail"
            );
            for e in &errors {
                assert!(matches!(e, TieredError::SpillFailed { .. }), "{e}");
                assert!(e.to_string().contains("stays in RAM"), "{e}");
            }
            // The pages that were made are all there; the failed allocations made none.
            assert_eq!(pages.len() + errors.len(), PAGES, "{engine:?}");
            read_back(&store, &pages, true);
        }
    }
}

#[test]
fn every_read_failing_in_turn_is_an_error_then_a_retry() {
    let (_, reads) = clean_calls(OsCall::SpillRead);
    assert!(reads >= 20, "{reads}");
    for engine in engines() {
        for n in 0..reads {
            let store = build(engine);
            let (pages, errors) = workload(&store);
            assert!(errors.is_empty());
            // Installed after the build: the pins read on this thread.
            let _plan = FaultPlan::new()
                .fail_nth(OsCall::SpillRead, n, libc::EIO)
                .install();
            let mut failed = 0;
            for page in &pages {
                if let Err(e) = store.pin(page) {
                    assert!(matches!(e, TieredError::ReadFailed { .. }), "{e}");
                    assert!(e.to_string().contains("page"), "{e}");
                    failed += 1;
                }
            }
            assert!(failed <= 1, "{engine:?}: read {n}: {failed} failed");
            all_read_back(&store, &pages);
        }
    }
}

#[test]
fn a_tier_file_that_cannot_be_opened_falls_through() {
    for engine in engines() {
        let _plan = FaultPlan::new()
            .fail_nth(OsCall::SpillOpen, 0, libc::EACCES)
            .install();
        let store = build(engine);
        let (pages, errors) = workload(&store);
        assert!(errors.is_empty(), "{engine:?}: {errors:?}");
        let s = store.stats();
        assert_eq!(s.tmpfs.pages + s.disk.pages, PAGES as u64 - s.ram_pages);
        all_read_back(&store, &pages);
    }
}

#[test]
fn a_refused_ring_falls_back_to_threads_observably_or_is_an_error() {
    let _plan = FaultPlan::new()
        .fail(OsCall::UringSetup, libc::EPERM)
        .install();
    let auto = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((4 * PAGE) as u64)
        .io(IoBackend::Auto)
        .build()
        .unwrap();
    let s = auto.stats();
    assert_eq!(s.io_engine, IoEngine::Threads);
    assert_eq!(s.io_fallback, Some(IoFallback { errno: libc::EPERM }));
    assert_eq!(s.io_fallback.unwrap().reason(), "forbidden");
    // The metrics say so too: the engine running, and why the ring was not used.
    let registry = umrf::metrics::Registry::new();
    registry.register_tiered(auto.metrics()).unwrap();
    let text = registry.render_prometheus();
    let engine = r#"umrf_tiered_io_engine{store="tiered",engine="threads"} 1"#;
    let fallback = format!(
        r#"umrf_tiered_io_fallback{{store="tiered",reason="forbidden",errno="{}"}} 1"#,
        libc::EPERM
    );
    for series in [engine, &fallback] {
        assert!(
            text.lines().any(|l| l == series),
            "no `{series}` in:\n{text}"
        );
    }
    let (pages, errors) = workload(&auto);
    assert!(errors.is_empty(), "{errors:?}");
    all_read_back(&auto, &pages);
    let err = TieredStore::<CpuLocal>::builder()
        .io(IoBackend::IoUring)
        .build()
        .unwrap_err();
    assert!(matches!(err, TieredError::IoUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("io_uring_disabled"), "{err}");
}

#[test]
fn demotion_moves_the_coldest_tmpfs_pages_to_disk() {
    for engine in backgrounds() {
        let store = build_demoting(engine, &FaultPlan::new());
        let (pages, errors) = workload(&store);
        assert!(errors.is_empty(), "{errors:?}");
        let s = store.stats();
        assert!(s.demotions > 0, "tmpfs filled up: {s:?}");
        assert_eq!(s.demotion_failures, 0, "{s:?}");
        assert_eq!(s.tmpfs.pages + s.disk.pages + s.ram_pages, PAGES as u64);
        all_read_back(&store, &pages);
    }
}

#[test]
fn a_failed_demotion_leaves_the_page_readable_on_tmpfs() {
    for (engine, errno) in backgrounds()
        .into_iter()
        .flat_map(|e| [(e, libc::EIO), (e, libc::ENOSPC)])
    {
        let plan = FaultPlan::new().fail(OsCall::Demote, errno);
        let store = build_demoting(engine, &plan);
        let (pages, errors) = workload(&store);
        assert!(errors.is_empty(), "{errors:?}");
        let s = store.stats();
        assert_eq!(s.demotions, 0, "{s:?}");
        assert!(s.demotion_failures > 0, "{s:?}");
        assert_eq!(s.tmpfs.pages, 8, "the pages stayed on tmpfs: {s:?}");
        all_read_back(&store, &pages);
    }
}

fn build_with(threads: usize, io: IoBackend) -> Result<TieredStore<CpuLocal>, TieredError> {
    TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((4 * PAGE) as u64)
        .tmpfs("/dev/shm", 8 * PAGE as u64)
        .disk(std::env::temp_dir(), 1 << 26)
        .io_threads(threads)
        .io(io)
        .demote(false)
        .build()
}

/// A store that demotes, its demotion thread under `plan`.
fn build_demoting(engine: Engine, plan: &FaultPlan) -> TieredStore<CpuLocal> {
    let _plan = plan.clone().install();
    let store = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((4 * PAGE) as u64)
        .tmpfs("/dev/shm", 8 * PAGE as u64)
        .disk(std::env::temp_dir(), 1 << 26)
        .io_threads(engine.threads)
        .io(engine.io)
        .build()
        .unwrap();
    assert_eq!(store.io_engine(), engine.runs);
    store
}
