//! The global-allocator workload, shared by one benchmark binary per global allocator (a
//! process has one global allocator, so each contender is its own program):
//!
//! 1. build a 1 M-entry `HashMap<String, Vec<u8>>` (keys `key<i>`, values of 16 to 63 bytes),
//!    read it back, drop it;
//! 2. a producer thread sends 1 M `Vec<u8>` messages (64 to 1023 bytes) over a bounded
//!    `crossbeam-channel` to a consumer thread, which reads and drops them (every free is a
//!    cross-thread free).
//!
//! Prints one JSON line: the allocator, the time of each phase and the peak RSS of the process
//! (`getrusage`'s `ru_maxrss`).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

const ENTRIES: usize = 1_000_000;
const MESSAGES: usize = 1_000_000;

fn map_phase() -> f64 {
    let start = Instant::now();
    let mut map: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..ENTRIES {
        map.insert(format!("key{i}"), vec![i as u8; 16 + i % 48]);
    }
    let mut sum = 0usize;
    for i in (0..ENTRIES).step_by(7) {
        sum += map[&format!("key{i}")].len();
    }
    black_box(sum);
    drop(map);
    start.elapsed().as_secs_f64()
}

fn pipeline_phase() -> f64 {
    let start = Instant::now();
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
    let consumer =
        std::thread::spawn(move || rx.iter().map(|m| m[0] as usize + m.len()).sum::<usize>());
    for i in 0..MESSAGES {
        let mut message = Vec::with_capacity(64 + i % 960);
        message.resize(64 + i % 960, i as u8);
        tx.send(message).unwrap();
    }
    drop(tx);
    black_box(consumer.join().unwrap());
    start.elapsed().as_secs_f64()
}

fn peak_rss_kib() -> i64 {
    // SAFETY: a zeroed rusage is a valid output buffer for getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid buffer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

pub fn run(allocator: &str) {
    let map = map_phase();
    let pipeline = pipeline_phase();
    println!(
        "{{\"allocator\":\"{allocator}\",\"map_s\":{map:.4},\"pipeline_s\":{pipeline:.4},\"total_s\":{:.4},\"peak_rss_kib\":{}}}",
        map + pipeline,
        peak_rss_kib()
    );
}
