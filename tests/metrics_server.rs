//! Starts `examples/metrics_server`, scrapes `/metrics` over HTTP twice, and sees the pipeline's
//! counters move. The example binary is the one `cargo test` builds; when only this test was
//! built (`cargo test --test metrics_server`), it is built here with the same cargo.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

/// `target/<profile>/examples/metrics_server`, built if missing.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("metrics_server");
    if !binary.exists() {
        let target_dir = profile_dir.parent().unwrap();
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--example", "metrics_server", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the example failed");
    }
    binary
}

/// Kills the child on the way out if the test fails early.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_owned(), body.to_owned())
}

fn counter(scrape: &Scrape, metric: &str) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get("pool") == Some("pipeline"))
        .unwrap_or_else(|| panic!("no {metric}"));
    match sample.value {
        Value::Counter(v) => v,
        ref other => panic!("{metric} is {other:?}"),
    }
}

#[test]
fn the_example_serves_metrics_that_move_while_the_pipeline_runs() {
    let child = Command::new(example_binary())
        .args(["--scrapes", "2", "--seconds", "120"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let mut server = Server(child);
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback());

    let (head, body) = get(addr, "/nothing-here");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(body.contains("/metrics"));

    let scrape = |n: usize| {
        let (head, body) = get(addr, "/metrics");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "scrape {n}: {head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
        Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
    };
    // The example announces itself once its pipeline runs: the first scrape sees traffic.
    let one = scrape(1);
    assert!(counter(&one, "umrf_pool_allocations_total") > 0.0);
    std::thread::sleep(Duration::from_millis(300));
    let two = scrape(2); // the example stops after this one
    let moved = |metric: &str| counter(&two, metric) - counter(&one, metric);
    assert!(moved("umrf_pool_allocations_total") > 0.0);
    assert!(moved("umrf_pool_remote_frees_total") > 0.0);
    let events = |scrape: &Scrape| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "umrf_pool_ownership_events_total"
                    && s.labels.get("event") == Some("accepted")
            })
            .map(|s| match s.value {
                Value::Counter(v) => v,
                _ => panic!("not a counter"),
            })
            .unwrap()
    };
    assert!(events(&two) > events(&one));

    // The example stops by itself after its scrapes; wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the example did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("in use 0"), "{rest}");
}
