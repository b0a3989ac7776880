//! `umrf`: the command-line face of the umrf allocator.
//!
//! ```text
//! umrf topology [--json] [--sysfs-root DIR]   what the machine has
//! umrf check-log FILE [--allow-truncated]     replay an ownership log, report the first violation
//! umrf run [--metrics ADDR] -- CMD ARGS       run a program with malloc served by umrf
//! umrf bench [--full] [--json]                the allocator workloads under every peer found
//! ```
//!
//! Exit status: 0 on success, 1 when a check fails (an invalid log, a failed workload), 2 on
//! bad usage or an environment problem (a missing file, library or compiler); `run` exits with
//! the program's own status.

mod bench;
mod check_log;
mod run;
mod topology;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

fn cli() -> Command {
    Command::new("umrf")
        .about("Typed memory residency and per-core pools: machine topology, ownership-log checks, malloc replacement, benchmarks")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("topology")
                .about("NUMA nodes, CPUs, memory kinds, tiers, distances and huge pages")
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("print JSON"))
                .arg(
                    Arg::new("sysfs-root")
                        .long("sysfs-root")
                        .value_name("DIR")
                        .value_parser(value_parser!(PathBuf))
                        .default_value("/")
                        .help("read sys/ and proc/ under DIR instead of / (an extracted sysfs tarball)"),
                ),
        )
        .subcommand(
            Command::new("check-log")
                .about("Replay an ownership log (JSON lines) and report the first violation of one owner per block")
                .arg(Arg::new("file").required(true).value_parser(value_parser!(PathBuf)))
                .arg(
                    Arg::new("allow-truncated")
                        .long("allow-truncated")
                        .action(ArgAction::SetTrue)
                        .help("accept gaps in a block's event numbers (rings that overwrote old events)"),
                ),
        )
        .subcommand(
            Command::new("run")
                .about("Run a program with libumrf_preload.so serving its malloc, free and friends")
                .arg(
                    Arg::new("metrics")
                        .long("metrics")
                        .value_name("ADDR")
                        .help("serve the program's pool metrics (Prometheus text) at http://ADDR/metrics"),
                )
                .arg(
                    Arg::new("preload")
                        .long("preload")
                        .value_name("PATH")
                        .value_parser(value_parser!(PathBuf))
                        .help("the preload library (default: $UMRF_PRELOAD, else next to this program)"),
                )
                .arg(
                    Arg::new("command")
                        .required(true)
                        .num_args(1..)
                        .last(true)
                        .value_parser(value_parser!(OsString))
                        .help("the program and its arguments, after --"),
                ),
        )
        .subcommand(
            Command::new("bench")
                .about("Run the allocator workloads (xmalloc-test, larson, cache-scratch, mstress, rptest, glibc-simple) under glibc, jemalloc, mimalloc, tcmalloc and umrf")
                .arg(Arg::new("full").long("full").action(ArgAction::SetTrue).help("the full-size workloads (default: quick ones)"))
                .arg(
                    Arg::new("repeats")
                        .long("repeats")
                        .value_parser(value_parser!(u32).range(1..=100))
                        .default_value("1")
                        .help("runs per cell; the fastest is kept"),
                )
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("print JSON"))
                .arg(
                    Arg::new("preload")
                        .long("preload")
                        .value_name("PATH")
                        .value_parser(value_parser!(PathBuf))
                        .help("the umrf preload library (default: $UMRF_PRELOAD, else next to this program)"),
                )
                .arg(
                    Arg::new("build-dir")
                        .long("build-dir")
                        .value_name("DIR")
                        .value_parser(value_parser!(PathBuf))
                        .help("where to compile the workloads (default: a folder under the temporary directory)"),
                ),
        )
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let outcome = match matches.subcommand() {
        Some(("topology", m)) => topology(m),
        Some(("check-log", m)) => check_log(m),
        Some(("run", m)) => run(m),
        Some(("bench", m)) => bench(m),
        _ => Err("unknown command; see umrf --help".to_owned()),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("umrf: {message}");
            ExitCode::from(2)
        }
    }
}

fn topology(m: &ArgMatches) -> Result<ExitCode, String> {
    let root = m
        .get_one::<PathBuf>("sysfs-root")
        .cloned()
        .unwrap_or_else(|| "/".into());
    let topo = topology::load(&root)?;
    if m.get_flag("json") {
        println!("{:#}", topology::render_json(&topo));
    } else {
        print!("{}", topology::render_text(&topo));
    }
    Ok(ExitCode::SUCCESS)
}

fn check_log(m: &ArgMatches) -> Result<ExitCode, String> {
    let path = m
        .get_one::<PathBuf>("file")
        .ok_or("check-log needs a FILE")?;
    let outcome = check_log::check(path, m.get_flag("allow-truncated"))?;
    println!("{}", outcome.report);
    Ok(if outcome.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run(m: &ArgMatches) -> Result<ExitCode, String> {
    let command: Vec<OsString> = m
        .get_many::<OsString>("command")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let (program, args) = command
        .split_first()
        .ok_or("run needs a program after --")?;
    let library = run::find_preload(m.get_one::<PathBuf>("preload").map(PathBuf::as_path))?;
    let metrics = m.get_one::<String>("metrics").map(String::as_str);
    if let Some(addr) = metrics {
        eprintln!("umrf: serving pool metrics at http://{addr}/metrics while the program runs");
    }
    let status = run::run(&library, metrics, program, args)?;
    let code = run::exit_code(status);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn bench(m: &ArgMatches) -> Result<ExitCode, String> {
    // umrf joins the table when its preload library exists; the peers need no build.
    let umrf = run::find_preload(m.get_one::<PathBuf>("preload").map(PathBuf::as_path));
    let (allocators, missing) = bench::allocators(umrf.as_ref().ok().cloned());
    if let Err(e) = &umrf {
        eprintln!("umrf: not measuring umrf itself: {e}");
    }
    for line in &missing {
        eprintln!("umrf: peer not measured: {line}");
    }
    let dir = m
        .get_one::<PathBuf>("build-dir")
        .cloned()
        .unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions and cannot fail.
            let uid = unsafe { libc::getuid() };
            std::env::temp_dir().join(format!("umrf-bench-{uid}"))
        });
    eprintln!("umrf: compiling the workloads in {}", dir.display());
    let built = bench::build(&dir)?;
    let repeats = usize::try_from(*m.get_one::<u32>("repeats").unwrap_or(&1)).unwrap_or(1);
    let table = bench::run_all(&built, &allocators, m.get_flag("full"), repeats);
    if m.get_flag("json") {
        println!("{:#}", table.render_json());
    } else {
        print!("{}", table.render_text());
    }
    let failed = table.rows.iter().any(|(_, r)| r.iter().any(Result::is_err));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
