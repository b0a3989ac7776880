//! The peer comparison: umrf next to the best alternatives and the hardware limits, in one run
//! on one machine.
//!
//! ```text
//! cargo bench --bench compare -- --quick        # 7 short samples per row, under two minutes
//! cargo bench --bench compare                   # full mode: 21 longer samples per row
//! cargo bench --bench compare -- --publish      # also update docs/PERFORMANCE.md and docs/perf/
//! cargo bench --bench compare -- handoff/4096   # only rows whose group/case/impl contain this
//! ```
//!
//! Prints the results and the ratios as markdown, writes every row as JSON to
//! `target/umrf-compare.json` (`{"group", "case", "impl", "median_ns", "min_ns", "max_ns",
//! "reps"}`, one object per row) and the charts to `target/umrf-compare/`. Nothing here
//! asserts a target: a slow or loaded machine gives slow numbers, never a failure.
//!
//! Each group is one module under `benches/compare/` with `run` (its contenders, measured by
//! the shared core in `measure.rs`) and `comparisons` (its ratios and targets); adding a group
//! is one module and one line in [`GROUPS`].

#[path = "compare/arena.rs"]
mod arena;
#[path = "compare/batch.rs"]
mod batch;
#[path = "compare/chart.rs"]
mod chart;
mod common;
#[path = "compare/handoff.rs"]
mod handoff;
#[path = "compare/machine.rs"]
mod machine;
#[path = "compare/measure.rs"]
mod measure;
#[path = "compare/pages.rs"]
mod pages;
#[path = "compare/publish.rs"]
mod publish;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/roundtrip.rs"]
mod roundtrip;
#[path = "compare/same_slot.rs"]
mod same_slot;
#[path = "compare/threads.rs"]
mod threads;

use std::path::PathBuf;
use std::time::Instant;

use measure::{Config, Row};
use report::Comparison;

/// One group of the comparison.
pub(crate) struct Group {
    pub name: &'static str,
    pub title: &'static str,
    pub run: fn(&Config) -> Vec<Row>,
    pub comparisons: fn() -> Vec<Comparison>,
    /// Whether the report carries a chart of this group.
    pub chart: bool,
    /// A further table for the report, made from all rows of the run.
    pub extra: Option<fn(&[Row]) -> String>,
}

/// The groups, in the order they run and are reported.
pub(crate) const GROUPS: [Group; 7] = [
    Group {
        name: same_slot::GROUP,
        title: "allocate, touch one byte, free (one thread)",
        run: same_slot::run,
        comparisons: same_slot::comparisons,
        chart: true,
        extra: None,
    },
    Group {
        name: batch::GROUP,
        title: "allocate 1000, then free them all (per block)",
        run: batch::run,
        comparisons: batch::comparisons,
        chart: true,
        extra: None,
    },
    Group {
        name: handoff::GROUP,
        title: "4 KiB producer to consumer on another core (per message)",
        run: handoff::run,
        comparisons: handoff::comparisons,
        chart: true,
        extra: None,
    },
    Group {
        name: roundtrip::GROUP,
        title: "ownership bounced between two cores (per round trip)",
        run: roundtrip::run,
        comparisons: roundtrip::comparisons,
        chart: true,
        extra: None,
    },
    Group {
        name: threads::GROUP,
        title: "two threads doing 4 KiB pairs at once (per pair per thread)",
        run: threads::run,
        comparisons: threads::comparisons,
        chart: true,
        extra: Some(threads::scaling_table),
    },
    Group {
        name: arena::GROUP,
        title: "arena allocation, reset every 1024 (per allocation)",
        run: arena::run,
        comparisons: arena::comparisons,
        chart: false,
        extra: None,
    },
    Group {
        name: pages::GROUP,
        title: "random reads over 1 GiB: huge pages against 4 KiB pages (per read)",
        run: pages::run,
        comparisons: pages::comparisons,
        chart: false,
        extra: Some(pages::backing_table),
    },
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn main() {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if config.publish && config.filter.is_some() {
        eprintln!("--publish needs every row: drop the filter");
        std::process::exit(2);
    }
    let machine = machine::Machine::detect();
    eprintln!(
        "umrf compare ({} mode, {} repetitions of ~{} ms per row) on {}",
        if config.quick { "quick" } else { "full" },
        config.reps,
        config.sample.as_millis(),
        machine.describe()
    );
    if config.realtime {
        measure::enable_realtime();
    }
    let load_before = machine::load_average();
    let started = Instant::now();
    let mut rows = Vec::new();
    for group in &GROUPS {
        eprintln!("{}", group.name);
        rows.extend((group.run)(&config));
    }
    let seconds = started.elapsed().as_secs_f64();
    let conditions = format!(
        "load average (1 / 5 / 15 min) {load_before} at the start, {} at the end; pinned threads {}",
        machine::load_average(),
        if measure::realtime() {
            "SCHED_FIFO (`--realtime`)"
        } else {
            "at normal priority"
        }
    );
    let comparisons: Vec<Comparison> = GROUPS.iter().flat_map(|g| (g.comparisons)()).collect();

    let target = target_dir();
    let mut failed = false;
    let outputs: [(&str, report::Writer); 2] = [
        ("umrf-compare.json", report::write_json),
        ("umrf-compare-samples.json", report::write_samples),
    ];
    for (name, write) in outputs {
        let path = target.join(name);
        match write(&rows, &path) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("writing {}: {e}", path.display());
                failed = true;
            }
        }
    }
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
    let chart_dir = if config.publish {
        docs.join("perf")
    } else {
        target.join("umrf-compare")
    };
    if let Err(e) = std::fs::create_dir_all(&chart_dir) {
        eprintln!("creating {}: {e}", chart_dir.display());
        failed = true;
    }
    for group in GROUPS.iter().filter(|g| g.chart) {
        let path = chart_dir.join(format!("{}.svg", group.name));
        match chart::draw(&rows, group.name, group.title, &path) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    let link = if config.publish { Some("perf") } else { None };
    let run = publish::RunInfo {
        config: &config,
        machine: machine.describe(),
        date: machine.date.clone(),
        conditions,
        seconds,
    };
    let section = publish::markdown(&run, &GROUPS, &rows, &comparisons, link);
    println!("{section}");
    if config.publish {
        let doc = docs.join("PERFORMANCE.md");
        match publish::splice(&doc, &section) {
            Ok(()) => eprintln!("updated {}", doc.display()),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
