//! Serves a pool's metrics at `http://127.0.0.1:PORT/metrics` while a producer/consumer
//! pipeline runs on it.
//!
//! ```text
//! cargo run --example metrics_server                          # 30 s, port chosen by the system
//! cargo run --example metrics_server -- --addr 127.0.0.1:9187 --seconds 300
//! cargo run --example metrics_server -- --scrapes 2           # stop after two scrapes
//! curl -s http://127.0.0.1:PORT/metrics | promtool check metrics
//! ```
//!
//! The first line printed, once the pipeline runs, is `listening on http://ADDR/metrics`, so a
//! script (or the integration test `tests/metrics_server.rs`) can find the port. The pipeline stops after
//! `--seconds` or after `--scrapes` answered scrapes, whichever comes first.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use umrf::events::LogConfig;
use umrf::metrics::{MetricsServer, Registry};
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, mailbox};

struct Options {
    addr: String,
    seconds: u64,
    scrapes: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:0".into(),
        seconds: 30,
        scrapes: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--addr" => options.addr = value.clone(),
            "--seconds" => options.seconds = number()?,
            "--scrapes" => options.scrapes = number()?,
            other => {
                return Err(format!(
                    "unknown option {other}: use --addr HOST:PORT, --seconds N, --scrapes N"
                ));
            }
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let pool = Pool::<CpuLocal>::builder()
        .name("pipeline")
        .block_size(4096)
        .blocks_per_slot(256)
        .slots(2)
        .log_ownership(LogConfig::new().ring_capacity(1024))
        .build()?;
    let registry = Arc::new(Registry::new());
    registry.register(&pool)?;
    let server = MetricsServer::bind(options.addr.as_str(), registry)?;

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mailbox::<Capability<u64, CpuLocal>>(64);
    let consumer = {
        let pool = pool.clone();
        std::thread::spawn(move || -> Result<u64, umrf::Error> {
            let lease = pool.attach_slot(1)?;
            let mut sum = 0u64;
            for cap in rx.iter() {
                let buf = cap.accept(&lease).map_err(|e| umrf::Error::InvalidConfig {
                    reason: e.to_string(),
                })?;
                sum = sum.wrapping_add(buf[0]);
            } // each buffer goes home to slot 0: a remote free
            Ok(sum)
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (pool, stop, sent) = (pool.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || -> Result<(), umrf::Error> {
            let lease = pool.attach_slot(0)?;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // A burst, then a pause: the pipeline moves without taking a whole core.
                for _ in 0..100 {
                    let mut buf = lease.alloc::<u64>(512)?;
                    buf[0] = i;
                    i += 1;
                    if tx.send(buf.into_capability()).is_err() {
                        return Ok(());
                    }
                }
                sent.store(i, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })
    };

    // Announce the endpoint once the pipeline runs, so the first scrape already sees it move.
    while sent.load(Ordering::Relaxed) == 0 && !producer.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("listening on http://{}/metrics", server.local_addr());
    std::io::stdout().flush()?;

    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    while Instant::now() < deadline && (options.scrapes == 0 || server.scrapes() < options.scrapes)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().map_err(|_| "the producer panicked")??;
    let checksum = consumer.join().map_err(|_| "the consumer panicked")??;
    let scrapes = server.scrapes();
    server.shutdown();

    let stats = pool.stats();
    println!(
        "sent {} buffers (checksum {checksum}); {scrapes} scrapes; allocations {}, remote frees {}, in use {}",
        sent.load(Ordering::Relaxed),
        stats.allocations(),
        stats.remote_frees(),
        stats.in_use()
    );
    Ok(())
}
