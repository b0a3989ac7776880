//! Prometheus exposition: parsed back by a real parser, values equal to the stats, checked by
//! `promtool check metrics` where it is installed (required when `UMRF_REQUIRE_PROMTOOL=1`).

mod observe_support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use prometheus_parse::{Scrape, Value};
use umrf::events::LogConfig;
use umrf::metrics::{Registry, render_prometheus};
use umrf::residency::CpuLocal;
use umrf::{Exhaustion, Pool};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the exposition parses")
}

/// A registry with two pools in a known state: allocations, local and remote frees, an
/// exhaustion served by a fallback pool, a refused capability.
fn busy_registry() -> (Registry, Pool<CpuLocal>, Pool<CpuLocal>, impl Sized) {
    let spare = observe_support::pool("spare", 4096, 8, 1);
    let main = observe_support::builder("main", 1000, 2, 2)
        .exhaustion(Exhaustion::Fallback(spare.clone()))
        .log_ownership(LogConfig::new())
        .build()
        .unwrap();
    let lease = main.attach_slot(0).unwrap();
    let a = lease.alloc::<u8>(10).unwrap();
    let b = lease.alloc::<u8>(10).unwrap();
    let c = lease.alloc::<u8>(10).unwrap(); // from the spare pool
    drop(a); // local free
    let cap = b.into_capability();
    std::thread::spawn(move || drop(cap)).join().unwrap(); // remote free, pending
    let foreign = spare.attach().err(); // spare's only slot is leased by the fallback
    assert!(foreign.is_some());
    let other = observe_support::pool("other", 64, 1, 1);
    let refused = other
        .attach()
        .unwrap()
        .alloc::<u8>(1)
        .unwrap()
        .into_capability()
        .accept(&lease)
        .unwrap_err();
    drop(refused);
    let registry = Registry::new();
    registry.register(&main).unwrap();
    registry.register(&spare).unwrap();
    (registry, main, spare, (c, lease)) // `c` stays in use
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_line_parses_with_help_and_type_and_values_equal_the_stats() {
    let (registry, main, spare, _held) = busy_registry();
    let text = render_prometheus(&registry);
    let scrape = parse(&text);

    // The parser skips lines it cannot read: count them ourselves.
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert_eq!(scrape.samples.len(), sample_lines);
    let mut types = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line[7..].split(' ');
        types.insert(parts.next().unwrap(), parts.next().unwrap());
    }
    for sample in &scrape.samples {
        let name = sample.metric.as_str();
        assert!(scrape.docs.contains_key(name), "no HELP for {name}");
        match types.get(name) {
            Some(&"counter") => {
                assert!(name.ends_with("_total"), "{name}");
                assert!(matches!(sample.value, Value::Counter(_)));
            }
            Some(&"gauge") => {
                assert!(!name.ends_with("_total"), "{name}");
                assert!(matches!(sample.value, Value::Gauge(_)));
            }
            other => panic!("{name} has type {other:?}"),
        }
        assert!(sample.labels.get("pool").is_some(), "{name}");
        assert!(sample.labels.get("residency").is_some(), "{name}");
        assert!(!name.contains("kib") && !name.contains("kilobytes"));
    }

    let find = |metric: &str, pool: &str, slot: Option<&str>| -> f64 {
        let hits: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| {
                s.metric == metric
                    && s.labels.get("pool") == Some(pool)
                    && s.labels.get("slot") == slot
            })
            .collect();
        assert_eq!(hits.len(), 1, "{metric} {pool} {slot:?}");
        value(&hits[0].value)
    };
    let stats = main.stats();
    let s0 = &stats.slots[0];
    assert_eq!(
        find("umrf_slot_allocations_total", "main", Some("0")),
        s0.allocations as f64
    );
    assert_eq!(s0.allocations, 2);
    assert_eq!(find("umrf_slot_local_frees_total", "main", Some("0")), 1.0);
    assert_eq!(find("umrf_slot_remote_frees_total", "main", Some("0")), 1.0);
    assert_eq!(
        find("umrf_slot_remote_frees_pending_blocks", "main", Some("0")),
        1.0
    );
    assert_eq!(
        find("umrf_slot_exhaustion_events_total", "main", Some("0")),
        1.0
    );
    assert_eq!(
        find("umrf_slot_fallback_allocations_total", "main", Some("0")),
        1.0
    );
    assert_eq!(
        find("umrf_slot_accept_failures_total", "main", Some("0")),
        1.0
    );
    assert_eq!(find("umrf_slot_leased", "main", Some("0")), 1.0);
    assert_eq!(find("umrf_slot_leased", "main", Some("1")), 0.0);
    assert_eq!(find("umrf_pool_capacity_blocks", "main", None), 4.0);
    assert_eq!(find("umrf_pool_block_size_bytes", "main", None), 1024.0);
    assert_eq!(find("umrf_pool_slots", "main", None), 2.0);
    assert_eq!(
        find("umrf_pool_in_use_blocks", "spare", None),
        spare.stats().in_use() as f64
    );
    assert_eq!(
        find("umrf_pool_reuse_ratio", "main", None),
        stats.reuse_rate()
    );
    // 2 blocks of 1024 bytes leave 2048 bytes of slack in a 4 KiB page per slot.
    let fragmentation = find("umrf_slot_external_fragmentation_ratio", "main", Some("1"));
    assert_eq!(fragmentation, stats.slots[1].external_fragmentation());
    assert!(fragmentation > 0.0);
    assert_eq!(
        find("umrf_slot_region_bytes", "main", Some("1")),
        main.backing()[1].bytes as f64
    );
    assert_eq!(
        find("umrf_slot_page_size_bytes", "main", Some("0")),
        main.backing()[0].page_size as f64
    );

    let info: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "umrf_slot_backing_info" && s.labels.get("pool") == Some("main"))
        .collect();
    assert_eq!(info.len(), 2);
    assert_eq!(value(&info[0].value), 1.0);
    assert_eq!(info[0].labels.get("strategy"), Some("cpu-local"));
    assert_eq!(info[0].labels.get("prefaulted"), Some("true"));
    assert!(info[0].labels.get("mechanism").is_some());

    // The logging pool exports its event counts; the other does not.
    let events = |pool: &str, event: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "umrf_pool_ownership_events_total"
                    && s.labels.get("pool") == Some(pool)
                    && s.labels.get("event") == Some(event)
            })
            .map(|s| value(&s.value))
    };
    assert_eq!(events("main", "allocate"), Some(2.0));
    assert_eq!(events("main", "exhausted"), Some(1.0));
    assert_eq!(events("main", "fallback_used"), Some(1.0));
    assert_eq!(events("main", "freed_remote"), Some(1.0));
    assert_eq!(events("spare", "allocate"), None);
}

#[test]
fn counters_move_between_renderings() {
    let (registry, main, _spare, _held) = busy_registry();
    let before = parse(&registry.render_prometheus());
    let lease = main.attach_slot(1).unwrap();
    for _ in 0..5 {
        drop(lease.alloc::<u8>(1).unwrap());
    }
    let after = parse(&registry.render_prometheus());
    let get = |scrape: &Scrape| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "umrf_pool_allocations_total" && s.labels.get("pool") == Some("main")
            })
            .map(|s| value(&s.value))
            .unwrap()
    };
    assert_eq!(get(&after) - get(&before), 5.0);
}

/// Runs `promtool check metrics` on `text`; `None` when promtool is not installed.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("promtool could not start: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && report.trim().is_empty(), report))
}

#[test]
fn promtool_finds_no_problem_even_with_hostile_pool_names() {
    let (registry, _main, _spare, _held) = busy_registry();
    let hostile = observe_support::pool(
        "quote\" backslash\\ newline\n comma, equals= brace}",
        64,
        1,
        1,
    );
    registry.register(&hostile).unwrap();
    // Tiered stores too: one whose ring the kernel refused (forced through the fault seam), so
    // the engine and fallback info series are linted with the rest.
    let stores = ["spill", "spill-fallback"].map(|name| {
        let _refuse = (name == "spill-fallback").then(|| {
            umrf::backing::fault::FaultPlan::new()
                .fail(umrf::backing::fault::OsCall::UringSetup, libc::EPERM)
                .install()
        });
        umrf::tiered::TieredStore::<CpuLocal>::builder()
            .name(name)
            .page_size(4096)
            .ram_budget(4 * 4096)
            .build()
            .unwrap()
    });
    for store in &stores {
        registry.register_tiered(store.metrics()).unwrap();
    }
    let text = render_prometheus(&registry);
    assert!(text.contains(r#"umrf_tiered_io_fallback{store="spill-fallback",reason="forbidden""#));
    assert!(text.contains(r#"pool="quote\" backslash\\ newline\n comma, equals= brace}""#));
    match promtool(&text) {
        Some((ok, report)) => assert!(ok, "promtool check metrics:\n{report}\n---\n{text}"),
        None if std::env::var_os("UMRF_REQUIRE_PROMTOOL").is_some() => {
            panic!(
                "UMRF_REQUIRE_PROMTOOL is set but promtool is not installed (apt-get install prometheus)"
            )
        }
        None => eprintln!(
            "promtool not installed: skipped the strict lint (apt-get install prometheus)"
        ),
    }
}

#[test]
fn backing_facts_are_exported_plainly_including_emulation() {
    let pool = Pool::<umrf::residency::Cxl>::builder()
        .name("capacity")
        .block_size(4096)
        .blocks_per_slot(4)
        .slots(1)
        .cxl_fallback(umrf::backing::CxlFallback::Emulate)
        .build()
        .expect("with the emulated fallback a Cxl pool builds on any machine");
    let info = &pool.backing()[0];
    let registry = Registry::new();
    registry.register(&pool).unwrap();
    let text = render_prometheus(&registry);
    let line = text
        .lines()
        .find(|l| l.starts_with("umrf_slot_backing_info{") && l.contains("pool=\"capacity\""))
        .expect("a backing info series for the pool");
    assert_eq!(line.contains("emulated=\"true\""), info.emulated, "{line}");
    assert!(line.contains("locked=\"false\""), "{line}");
    assert!(line.contains("strategy=\"cxl memory\""), "{line}");
    let huge = parse(&text)
        .samples
        .into_iter()
        .find(|s| {
            s.metric == "umrf_slot_huge_page_bytes" && s.labels.get("pool") == Some("capacity")
        })
        .expect("huge page bytes");
    assert_eq!(value(&huge.value) as usize, info.huge_page_bytes);
}
