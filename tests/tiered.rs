//! The tiered store: pages round-trip through RAM, tmpfs and disk under tiny budgets; pins
//! hold pages; prefetch and read-ahead serve scans; full and unwritable tiers; pressure.
//! (Spill faults at every step are in `tiered_faults.rs`.)
#![cfg(not(miri))] // files and threads: Miri's isolation refuses them

mod tiered_support;

use std::path::PathBuf;

use umrf::residency::CpuLocal;
use umrf::tiered::{
    IoBackend, IoEngine, Location, PressureMonitor, PressurePolicy, Replacement, SpillTier, Tiered,
    TieredError, TieredStore,
};

const PAGE: usize = 4096;

/// The background engines the tests run with: threads, and `io_uring` where the kernel allows
/// it (a refusal is printed, and the tests run with threads alone).
fn backgrounds() -> Vec<IoBackend> {
    tiered_support::backgrounds()
        .into_iter()
        .map(|e| e.io)
        .collect()
}

/// A store of `ram_pages` pages of RAM, 8 of tmpfs and a big disk; demotion off (its tests
/// are below), so tier counts are exact.
fn new_store(
    ram_pages: usize,
    threads: usize,
    io: IoBackend,
    policy: Replacement,
) -> TieredStore<CpuLocal> {
    TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((ram_pages * PAGE) as u64)
        .tmpfs("/dev/shm", 8 * PAGE as u64)
        .disk(std::env::temp_dir(), 1 << 30)
        .io_threads(threads)
        .io(io)
        .demote(false)
        .replacement(policy)
        .build()
        .unwrap()
}

/// Fills `n` pages, page `i` with `i * 1000 + j` at element `j`.
fn fill(store: &TieredStore<CpuLocal>, n: usize) -> Vec<Tiered<u32, CpuLocal>> {
    (0..n)
        .map(|i| {
            let mut page = store.alloc::<u32>().unwrap();
            for (j, x) in store.pin_mut(&mut page).unwrap().iter_mut().enumerate() {
                *x = (i * 1000 + j) as u32;
            }
            page
        })
        .collect()
}

fn check(store: &TieredStore<CpuLocal>, pages: &[Tiered<u32, CpuLocal>]) {
    for (i, page) in pages.iter().enumerate() {
        let data = store.pin(page).unwrap();
        assert!(
            data.iter()
                .enumerate()
                .all(|(j, &x)| x == (i * 1000 + j) as u32),
            "page {i} came back wrong"
        );
    }
}

#[test]
fn pages_round_trip_through_every_tier_with_every_policy_and_io_mode() {
    for policy in [Replacement::Clock, Replacement::Lru] {
        let mut modes = vec![(0, IoBackend::Threads)];
        modes.extend(backgrounds().into_iter().map(|io| (2, io)));
        for (threads, io) in modes {
            let store = new_store(4, threads, io, policy);
            let engine = match (threads, io) {
                (0, _) => IoEngine::Inline,
                (_, IoBackend::IoUring) => IoEngine::IoUring,
                _ => IoEngine::Threads,
            };
            assert_eq!(store.io_engine(), engine);
            assert_eq!(
                store.io_threads(),
                if engine == IoEngine::Threads {
                    threads
                } else {
                    0
                }
            );
            let pages = fill(&store, 40);
            store.quiesce();
            let s = store.stats();
            assert!(s.ram_pages <= 4, "{s:?}");
            assert_eq!(
                s.tmpfs.pages, 8,
                "tmpfs is filled to its budget first: {s:?}"
            );
            assert!(s.disk.pages >= 28, "the rest fell through to disk: {s:?}");
            check(&store, &pages);
            // A read-only pass writes nothing: clean pages leave RAM unwritten.
            store.quiesce();
            let writes = store.stats().tmpfs.writes + store.stats().disk.writes;
            check(&store, &pages);
            store.quiesce();
            let s = store.stats();
            assert_eq!(
                s.tmpfs.writes + s.disk.writes,
                writes,
                "{policy:?} {engine}: {s:?}"
            );
            assert!(s.clean_evictions > 0 && s.misses > 0);
            assert!(s.tmpfs.promotions + s.disk.promotions > 0);
            assert!(s.hit_rate() < 1.0);
            assert!(store.pool().stats().in_use() <= 4);
            for page in pages {
                store.free(page).unwrap();
            }
            let s = store.stats();
            assert_eq!((s.ram_pages, s.tmpfs.pages, s.disk.pages), (0, 0, 0));
        }
    }
}

#[test]
fn pinned_pages_are_never_evicted_and_a_fully_pinned_ram_is_an_error() {
    for io in backgrounds() {
        pinned_pages_are_never_evicted_with(io);
    }
}

fn pinned_pages_are_never_evicted_with(io: IoBackend) {
    let store = new_store(3, 1, io, Replacement::Clock);
    let mut held = fill(&store, 3);
    let [first, second, third] = &mut held[..] else {
        unreachable!()
    };
    let a = store.pin(first).unwrap();
    let mut b = store.pin_mut(second).unwrap();
    b[0] = 77;
    let others = fill(&store, 10); // every allocation evicts the one unpinned page
    assert_eq!(a[5], 5);
    assert_eq!(b[0], 77);
    assert_eq!(
        store.location(first).unwrap(),
        Location::Ram { dirty: true }
    );
    let c = store.pin(third).unwrap();
    let err = store.alloc::<u32>().unwrap_err();
    assert!(matches!(err, TieredError::RamFull { .. }), "{err}");
    assert!(err.to_string().contains("pinned"), "{err}");
    drop((a, b, c));
    assert!(store.alloc::<u32>().is_ok());
    check(&store, &others);
}

#[test]
fn sequential_read_ahead_serves_a_scan_from_ram() {
    for io in backgrounds() {
        read_ahead_serves_a_scan_with(io);
    }
}

fn read_ahead_serves_a_scan_with(io: IoBackend) {
    let store = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((16 * PAGE) as u64)
        .tmpfs("/dev/shm", 1 << 20)
        .io_threads(2)
        .io(io)
        .build()
        .unwrap();
    let pages = fill(&store, 128); // 8x the RAM budget
    store.quiesce();
    let before = store.stats();
    store.set_read_ahead(8);
    check(&store, &pages);
    let s = store.stats();
    let needed = (s.prefetch_hits - before.prefetch_hits)
        + (s.prefetch_late - before.prefetch_late)
        + (s.misses - before.misses);
    assert!(s.prefetch_issued >= 100, "{s:?}");
    let served =
        (s.prefetch_hits - before.prefetch_hits) + (s.prefetch_late - before.prefetch_late);
    assert!(
        served as f64 >= 0.9 * needed as f64,
        "read-ahead brought in {served} of {needed} pages: {s:?}"
    );
}

#[test]
fn explicit_prefetch_brings_pages_in_without_blocking() {
    for io in backgrounds() {
        explicit_prefetch_with(io);
    }
}

fn explicit_prefetch_with(io: IoBackend) {
    let lru = new_store(8, 1, io, Replacement::Lru);
    let store = &lru;
    let pages = fill(store, 24);
    store.quiesce();
    store.prefetch(&pages[0..4]).unwrap();
    store.quiesce();
    for page in &pages[0..4] {
        assert_eq!(
            store.location(page).unwrap(),
            Location::Ram { dirty: false }
        );
    }
    let before = store.stats();
    check(store, &pages[..4]);
    let s = store.stats();
    assert_eq!(s.prefetch_hits - before.prefetch_hits, 4, "{s:?}");
    assert_eq!(s.misses, before.misses);
    // Without I/O threads, prefetch starts nothing and says so.
    let inline = new_store(2, 0, IoBackend::Auto, Replacement::Clock);
    let pages = fill(&inline, 6);
    inline.prefetch(&pages[..2]).unwrap();
    assert_eq!(inline.stats().prefetch_dropped, 2);
}

#[test]
fn unwritable_tiers_keep_pages_in_ram_with_a_clear_error() {
    for engine in tiered_support::engines() {
        let store = TieredStore::<CpuLocal>::builder()
            .page_size(PAGE)
            .ram_budget((2 * PAGE) as u64)
            .tmpfs("/proc/umrf-no-tmpfs", 1 << 20)
            .disk("/proc/umrf-no-disk", 1 << 20)
            .io_threads(engine.threads)
            .io(engine.io)
            .build()
            .unwrap();
        assert_eq!(store.io_engine(), engine.runs);
        let pages = fill(&store, 2);
        let err = store.alloc::<u32>().unwrap_err();
        assert!(
            matches!(err, TieredError::SpillFailed { .. }),
            "{engine:?}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("/proc/umrf-no-tmpfs") && text.contains("/proc/umrf-no-disk"),
            "{text}"
        );
        assert!(store.stats().spill_failures > 0);
        check(&store, &pages); // nothing was lost
    }
}

#[test]
fn zero_budgets_and_bad_geometry_are_errors() {
    let no_tiers = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget(PAGE as u64)
        .tmpfs("/dev/shm", 0)
        .disk(std::env::temp_dir(), 0)
        .build()
        .unwrap();
    let _one = no_tiers.alloc::<u8>().unwrap();
    let err = no_tiers.alloc::<u8>().unwrap_err();
    assert!(err.to_string().contains("budget"), "{err}");
    let err = TieredStore::<CpuLocal>::builder()
        .page_size(100)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("multiple of 64"), "{err}");
    let err = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget(10)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("RAM budget"), "{err}");
    let err = new_store(1, 0, IoBackend::Auto, Replacement::Clock)
        .alloc::<[u8; 3]>()
        .unwrap_err();
    assert!(
        err.to_string().contains("multiple of the element size"),
        "{err}"
    );
}

#[test]
fn a_handle_of_another_store_is_refused() {
    let (a, b) = (
        new_store(2, 0, IoBackend::Auto, Replacement::Clock),
        new_store(2, 0, IoBackend::Auto, Replacement::Clock),
    );
    let page = a.alloc::<u8>().unwrap();
    let err = b.pin(&page).map(|_| ()).unwrap_err();
    assert!(matches!(err, TieredError::ForeignHandle { .. }), "{err}");
    assert!(b.free(page).is_err());
}

fn fake_root(tag: &str, psi: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("umrf-tiered-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("proc/pressure")).unwrap();
    std::fs::write(
        dir.join("proc/pressure/memory"),
        format!("some avg10={psi} avg60=0.00 avg300=0.00 total=1\n"),
    )
    .unwrap();
    dir
}

#[test]
fn memory_pressure_shrinks_the_ram_tier_below_its_budget() {
    let root = fake_root("psi", "60.00");
    let policy = PressurePolicy {
        psi_some_avg10_high: 20.0,
        min_free: 0,
    };
    let store = TieredStore::<CpuLocal>::builder()
        .page_size(PAGE)
        .ram_budget((8 * PAGE) as u64)
        .io_threads(1)
        .pressure(
            PressureMonitor::with_root(&root),
            policy,
            std::time::Duration::from_secs(3600),
        )
        .build()
        .unwrap();
    // The first allocation polls: PSI is high, so the limit is halved at once.
    let pages = fill(&store, 8);
    store.quiesce();
    let s = store.stats();
    assert_eq!(s.ram_limit, (4 * PAGE) as u64, "{s:?}");
    assert!(s.ram_pages <= 4 && s.pressure_shrinks == 1, "{s:?}");
    // Pressure gone: an explicit check restores the budget.
    std::fs::write(
        root.join("proc/pressure/memory"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
    )
    .unwrap();
    let reading = store.check_pressure().unwrap();
    assert_eq!(reading.psi_some_avg10, Some(0.0));
    assert_eq!(store.ram_limit(), (8 * PAGE) as u64);
    // And a manual limit evicts down to it.
    assert_eq!(store.set_ram_limit(PAGE as u64).unwrap(), PAGE as u64);
    store.quiesce();
    assert!(store.stats().ram_pages <= 1);
    check(&store, &pages);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn tier_counters_add_up() {
    for io in backgrounds() {
        tier_counters_add_up_with(io);
    }
}

fn tier_counters_add_up_with(io: IoBackend) {
    let store = new_store(2, 1, io, Replacement::Clock);
    let pages = fill(&store, 12);
    store.quiesce();
    check(&store, &pages);
    store.quiesce();
    let s = store.stats();
    for tier in SpillTier::ALL {
        let t = s.tier(tier);
        assert_eq!(t.write_bytes, t.writes * PAGE as u64);
        assert_eq!(t.read_bytes, t.reads * PAGE as u64);
        assert_eq!(t.bytes, t.pages * PAGE as u64);
        assert!(t.reads == 0 || t.mean_read_latency() > std::time::Duration::ZERO);
    }
    assert_eq!(s.pins, 24);
    assert_eq!(s.pins, s.hits + s.misses + s.prefetch_late);
}

#[test]
fn prometheus_series_per_store_and_tier() {
    let store = TieredStore::<CpuLocal>::builder()
        .name("scan")
        .page_size(PAGE)
        .ram_budget((2 * PAGE) as u64)
        .tmpfs("/dev/shm", 1 << 20)
        .io_threads(0)
        .build()
        .unwrap();
    let pages = fill(&store, 6);
    check(&store, &pages);
    let registry = umrf::metrics::Registry::new();
    registry.register_tiered(store.metrics()).unwrap();
    assert!(
        registry.register_tiered(store.metrics()).is_err(),
        "names must differ"
    );
    let text = registry.render_prometheus();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, tier: Option<&str>| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.get("store") == Some("scan")
                    && s.labels.get("tier") == tier
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
    };
    let s = store.stats();
    assert_eq!(value("umrf_tiered_pins_total", None), Some(s.pins as f64));
    assert_eq!(
        value("umrf_tiered_tier_pages", Some("tmpfs")),
        Some(s.tmpfs.pages as f64)
    );
    assert_eq!(
        value("umrf_tiered_tier_spills_total", Some("tmpfs")),
        Some(s.tmpfs.spills as f64)
    );
    assert!(s.tmpfs.spills >= 4);
    assert_eq!(value("umrf_tiered_hit_ratio", None), Some(s.hit_rate()));
    assert_eq!(
        value("umrf_tiered_demotions_total", None),
        Some(s.demotions as f64)
    );
    assert_eq!(
        value("umrf_tiered_demotion_failures_total", None),
        Some(s.demotion_failures as f64)
    );
    assert_eq!(
        value("umrf_tiered_prefetch_late_total", None),
        Some(s.prefetch_late as f64)
    );
    // The engine is an info series: one sample, labelled with the engine, of value 1; a store
    // that did not fall back has no fallback sample.
    let engines: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "umrf_tiered_io_engine")
        .collect();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0].labels.get("engine"), Some(s.io_engine.as_str()));
    assert_eq!(s.io_engine, IoEngine::Inline);
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.metric == "umrf_tiered_io_fallback")
    );
    assert!(scrape.docs.contains_key("umrf_tiered_io_fallback"));
}

#[test]
fn a_tiled_product_pattern_keeps_the_block_accounting_exact() {
    // Three matrices of 4x4 tiles through 12 pages of RAM, the next steps prefetched, as the
    // out-of-core GEMM does; debug builds check the pool's blocks against the table on every
    // pin and prefetch.
    for (policy, io) in [Replacement::Lru, Replacement::Clock]
        .into_iter()
        .flat_map(|p| backgrounds().into_iter().map(move |io| (p, io)))
    {
        let store = new_store(12, 2, io, policy);
        let a = fill(&store, 16);
        let b = fill(&store, 16);
        let mut c = fill(&store, 16);
        let steps: Vec<(usize, usize, usize)> = (0..4)
            .flat_map(|i| (0..4).flat_map(move |j| (0..4).map(move |k| (i, j, k))))
            .collect();
        for round in 0..3 {
            for (s, &(i, j, k)) in steps.iter().enumerate() {
                for &(ni, nj, nk) in steps.iter().skip(s + 1).take(2) {
                    store
                        .prefetch([&a[ni * 4 + nk], &b[nk * 4 + nj], &c[ni * 4 + nj]])
                        .unwrap();
                }
                let (ta, tb) = (
                    store.pin(&a[i * 4 + k]).unwrap(),
                    store.pin(&b[k * 4 + j]).unwrap(),
                );
                let mut tc = store.pin_mut(&mut c[i * 4 + j]).unwrap();
                tc[round] = tc[round].wrapping_add(ta[0] ^ tb[0]);
            }
        }
        store.quiesce();
        check(&store, &a);
    }
}
