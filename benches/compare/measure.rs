//! The measurement core every group shares: configuration, contenders, calibration,
//! interleaved repetitions, and the rows they produce.
//!
//! A group hands [`measure`] a list of [`Contender`]s. Each contender is a closure that runs
//! `iters` iterations of its operation and returns the time they took, so set-up (pools,
//! threads, queues) stays outside the clock. `measure` calibrates each closure to the sample
//! length, then takes the repetitions round-robin, rotating the order every round, so the
//! contenders of one group share the same stretch of machine time (the machine is shared and
//! its load drifts): ABC, BCA, CAB, ...
//!
//! Clocks: a one-thread contender times itself with [`timed`], which reads the thread's CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`), so time the scheduler gives other processes on a shared
//! machine is not counted. A two-thread contender ([`two_threads`]) is timed by the wall clock
//! from a barrier to the end of both threads: waiting for the other core is what it measures.
//! With `--realtime` the pinned threads run `SCHED_FIFO`, so other processes cannot take
//! their cores in the middle of a sample; a pause after every sample keeps them under the
//! kernel's real-time throttle and lets the rest of the machine run.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::pin_to;

/// Whether benchmark threads run `SCHED_FIFO`; set once from the command line, read when a
/// thread is pinned (never in a timed loop).
static REALTIME: AtomicBool = AtomicBool::new(false);

/// How much to measure; read once from the command line, never inside a timed loop.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--quick`: fewer, shorter samples (the whole run under two minutes on two cores).
    pub quick: bool,
    /// Samples per contender (median, min and max are taken over them).
    pub reps: usize,
    /// Target length of one sample.
    pub sample: Duration,
    /// Only contenders whose `group/case/impl` contains this text.
    pub filter: Option<String>,
    /// Write the charts and the generated section of `docs/PERFORMANCE.md`.
    pub publish: bool,
    /// Run the pinned benchmark threads `SCHED_FIFO` (needs root or `CAP_SYS_NICE`).
    pub realtime: bool,
}

impl Config {
    /// Quick mode: 7 samples of 30 ms each.
    pub fn quick() -> Self {
        Config {
            quick: true,
            reps: 7,
            sample: Duration::from_millis(30),
            filter: None,
            publish: false,
            realtime: false,
        }
    }

    /// Full mode: 21 samples of 100 ms each.
    pub fn full() -> Self {
        Config {
            quick: false,
            reps: 21,
            sample: Duration::from_millis(100),
            filter: None,
            publish: false,
            realtime: false,
        }
    }

    /// Parses the harness arguments (after `cargo bench --bench compare --`).
    ///
    /// `cargo bench` itself passes `--bench`, which is accepted and ignored.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut quick = false;
        let mut publish = false;
        let mut realtime = false;
        let mut reps = None;
        let mut filter = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--bench" => {}
                "--quick" => quick = true,
                "--publish" => publish = true,
                "--realtime" => realtime = true,
                "--reps" => {
                    let value = args.next().ok_or("--reps needs a number")?;
                    let n: usize = value
                        .parse()
                        .map_err(|_| format!("--reps {value}: not a number"))?;
                    if n < 7 {
                        return Err(format!("--reps {n}: at least 7 repetitions"));
                    }
                    reps = Some(n);
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                flag if flag.starts_with('-') => {
                    return Err(format!("unknown option {flag}\n{USAGE}"));
                }
                text => filter = Some(text.to_string()),
            }
        }
        let mut config = if quick {
            Config::quick()
        } else {
            Config::full()
        };
        config.publish = publish;
        config.realtime = realtime;
        config.filter = filter;
        if let Some(reps) = reps {
            config.reps = reps;
        }
        Ok(config)
    }

    /// Whether a contender is selected by the filter.
    fn selects(&self, group: &str, case: &str, imp: &str) -> bool {
        match &self.filter {
            None => true,
            Some(text) => format!("{group}/{case}/{imp}").contains(text.as_str()),
        }
    }
}

const USAGE: &str =
    "usage: cargo bench --bench compare -- [--quick] [--reps N] [--publish] [FILTER]
  --quick    7 short samples per contender (under two minutes); default: full mode
  --reps N   samples per contender (at least 7)
  --publish  also write docs/perf/*.svg and the generated section of docs/PERFORMANCE.md
  --realtime run the pinned threads SCHED_FIFO (root or CAP_SYS_NICE): for a loaded machine
  FILTER     only contenders whose group/case/impl contains FILTER";

/// One implementation of one case: a closure running `iters` iterations and timing them.
pub struct Contender<'a> {
    pub case: String,
    pub imp: &'static str,
    /// Operations in one iteration; results are reported per operation.
    ops_per_iter: u64,
    /// The fewest iterations of one sample (keeps a fixed cost per sample, such as starting
    /// threads, small against the operations measured).
    min_iters: u64,
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Contender<'a> {
    pub fn new(
        case: impl Into<String>,
        imp: &'static str,
        run: impl FnMut(u64) -> Duration + 'a,
    ) -> Self {
        Contender {
            case: case.into(),
            imp,
            ops_per_iter: 1,
            min_iters: 1,
            run: Box::new(run),
        }
    }

    /// Each iteration does `ops` operations (a batch): report the time per operation.
    pub fn per_iter(mut self, ops: u64) -> Self {
        self.ops_per_iter = ops;
        self
    }

    /// One sample: nanoseconds per operation over `iters` iterations.
    fn sample(&mut self, iters: u64) -> f64 {
        let elapsed = (self.run)(iters);
        elapsed.as_nanos() as f64 / (iters * self.ops_per_iter) as f64
    }
}

/// This thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Times `iters` runs of `body` on this thread, in this thread's CPU time. `body` is inlined
/// into the loop: no call per iteration beyond what the body itself makes.
#[inline(always)]
pub fn timed(iters: u64, mut body: impl FnMut()) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        body();
    }
    thread_cpu_time() - start
}

/// Turns real-time scheduling of benchmark threads on (see the module docs). Says so, and
/// carries on without, when the system refuses.
pub fn enable_realtime() {
    REALTIME.store(true, Ordering::Relaxed);
    pin(0);
}

/// Pins this thread to `cpu` and, with `--realtime`, makes it `SCHED_FIFO`.
pub fn pin(cpu: usize) {
    pin_to(cpu);
    if REALTIME.load(Ordering::Relaxed) {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is this thread; `param` is a valid sched_param.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        if rc != 0 {
            eprintln!(
                "--realtime: SCHED_FIFO refused ({}); measuring without it",
                std::io::Error::last_os_error()
            );
            REALTIME.store(false, Ordering::Relaxed);
        }
    }
}

/// Whether real-time scheduling is on (it may have been refused).
pub fn realtime() -> bool {
    REALTIME.load(Ordering::Relaxed)
}

/// Runs two threads at once: `first` on this thread, pinned to CPU 0, and `second` on a new
/// thread pinned to CPU 1. Each is a set-up that returns the work to time; both set-ups finish
/// before the clock starts, and it stops when both works have returned.
pub fn two_threads<F, FW, S, SW>(first: F, second: S) -> Duration
where
    F: FnOnce() -> FW,
    FW: FnOnce(),
    S: FnOnce() -> SW + Send,
    SW: FnOnce(),
{
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            pin(1);
            let work = second();
            barrier.wait();
            work();
        });
        pin(0);
        let work = first();
        barrier.wait();
        let start = Instant::now();
        work();
        other.join().expect("second thread panicked");
        start.elapsed()
    })
}

/// One row of results: the JSON schema of `target/umrf-compare.json`.
#[derive(Clone, Debug)]
pub struct Row {
    pub group: String,
    pub case: String,
    pub imp: String,
    pub median_ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub reps: usize,
    /// Every sample, in the order taken (round by round), for `umrf-compare-samples.json`.
    pub samples: Vec<f64>,
}

impl Row {
    fn from_samples(group: &str, case: &str, imp: &str, samples: Vec<f64>) -> Row {
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        Row {
            group: group.to_string(),
            case: case.to_string(),
            imp: imp.to_string(),
            median_ns: median(&sorted),
            min_ns: sorted[0],
            max_ns: sorted[sorted.len() - 1],
            reps: sorted.len(),
            samples,
        }
    }
}

/// The median of sorted samples (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Iterations that make one sample last about `target`: grows the count until a run takes a
/// tenth of the target, then scales. The runs double as the warm-up.
fn calibrate(contender: &mut Contender<'_>, target: Duration) -> u64 {
    let mut iters = contender.min_iters;
    loop {
        let elapsed = (contender.run)(iters).max(Duration::from_nanos(1));
        if elapsed >= target / 10 || iters >= 1 << 40 {
            let scaled = iters as f64 * target.as_secs_f64() / elapsed.as_secs_f64();
            return (scaled as u64).max(contender.min_iters);
        }
        iters = if elapsed < target / 1000 {
            iters * 10
        } else {
            iters * 2
        };
    }
}

/// Measures every selected contender of one group: calibration, then `config.reps` rounds with
/// the order rotated each round. Progress goes to stderr.
pub fn measure(config: &Config, group: &str, contenders: Vec<Contender<'_>>) -> Vec<Row> {
    let mut contenders: Vec<_> = contenders
        .into_iter()
        .filter(|c| config.selects(group, &c.case, c.imp))
        .collect();
    if contenders.is_empty() {
        return Vec::new();
    }
    let iters: Vec<u64> = contenders
        .iter_mut()
        .map(|c| calibrate(c, config.sample))
        .collect();
    let n = contenders.len();
    let mut samples = vec![Vec::with_capacity(config.reps); n];
    let pause = config.sample / 8;
    for round in 0..config.reps {
        for k in 0..n {
            let i = (k + round) % n;
            let ns = contenders[i].sample(iters[i]);
            samples[i].push(black_box(ns));
            if realtime() {
                std::thread::sleep(pause);
            }
        }
    }
    contenders
        .iter()
        .zip(samples)
        .map(|(c, s)| {
            let row = Row::from_samples(group, &c.case, c.imp, s);
            eprintln!(
                "  {group}/{}/{}: {:.2} ns (min {:.2}, max {:.2})",
                row.case, row.imp, row.median_ns, row.min_ns, row.max_ns
            );
            row
        })
        .collect()
}

/// [`measure`] for contenders with a fixed cost per sample (two-thread ones start a thread):
/// every sample runs at least `min_iters` iterations.
pub fn measure_at_least(
    config: &Config,
    group: &str,
    contenders: Vec<Contender<'_>>,
    min_iters: u64,
) -> Vec<Row> {
    let contenders = contenders
        .into_iter()
        .map(|mut c| {
            c.min_iters = min_iters;
            c
        })
        .collect();
    measure(config, group, contenders)
}

/// Waits for another thread: spins with a CPU hint, and yields the CPU once the wait grows
/// long (the other thread may have been descheduled by unrelated load on a shared machine).
#[derive(Default)]
pub struct Spin(u32);

impl Spin {
    const SPINS_BEFORE_YIELD: u32 = 1 << 12;

    #[inline(always)]
    pub fn wait(&mut self) {
        if self.0 < Self::SPINS_BEFORE_YIELD {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
