//! The main example: a producer fills `SharedBuffer<f32, _>`s and sends them as capabilities
//! to N workers over mailboxes; each worker accepts, processes and drops them (the blocks go
//! home to the producer's slot as remote frees). It prints throughput and pool stats.
//!
//! ```text
//! cargo run --release --example pipeline            # a few seconds
//! cargo run --release --example pipeline -- 4 200000 16384
//!                                         workers  buffers  floats per buffer
//! ```

use std::time::Instant;

use umrf::residency::CpuLocal;
use umrf::{Capability, Message, Pool, mailbox};

/// What the producer sends: a sequence number and the data, by capability.
#[derive(Message)]
struct Batch {
    seq: u64,
    samples: Capability<f32, CpuLocal>,
}

/// What a worker reports when its mailbox closes.
struct Report {
    batches: u64,
    checksum: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let workers = args.next().transpose()?.unwrap_or(2).max(1);
    let buffers = args.next().transpose()?.unwrap_or(1_000_000);
    let floats = args.next().transpose()?.unwrap_or(1024);

    // One slot for the producer and one per worker; each slot holds enough blocks to keep
    // every worker's mailbox full.
    let queue = 64;
    let pool = Pool::<CpuLocal>::builder()
        .name("pipeline")
        .block_size(floats * size_of::<f32>())
        .blocks_per_slot(queue * (workers + 1))
        .slots(workers + 1)
        .build()?;
    println!(
        "pool `{}`: {} slots x {} blocks of {} bytes ({})",
        pool.name(),
        pool.slots(),
        pool.blocks_per_slot(),
        pool.block_size(),
        pool.backing()[0].mechanism
    );

    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (tx, rx) = mailbox::<Batch>(queue);
        senders.push(tx);
        let pool = pool.clone();
        handles.push(std::thread::spawn(
            move || -> Result<Report, umrf::Error> {
                let lease = pool.attach_slot(worker + 1)?;
                let mut report = Report {
                    batches: 0,
                    checksum: 0.0,
                };
                for batch in rx.iter() {
                    let samples =
                        batch
                            .samples
                            .accept(&lease)
                            .map_err(|e| umrf::Error::InvalidConfig {
                                reason: format!("worker {worker}: {e}"),
                            })?;
                    // The work: a sum of squares, in place of whatever a stage computes.
                    let energy: f32 = samples.iter().map(|x| x * x).sum();
                    report.checksum += f64::from(energy) + batch.seq as f64 * 1e-9;
                    report.batches += 1;
                } // `samples` drops each round: its block goes home to slot 0.
                Ok(report)
            },
        ));
    }

    let producer = pool.attach_slot(0)?;
    let start = Instant::now();
    for seq in 0..buffers as u64 {
        let mut samples = producer.alloc::<f32>(floats)?;
        let base = (seq % 1000) as f32 * 1e-3;
        for (i, x) in samples.iter_mut().enumerate() {
            *x = base + i as f32 * 1e-6;
        }
        let worker = (seq % workers as u64) as usize;
        senders[worker]
            .send(Batch {
                seq,
                samples: samples.into_capability(),
            })
            .map_err(|_| format!("worker {worker} stopped early"))?;
    }
    drop(senders);

    let mut total = Report {
        batches: 0,
        checksum: 0.0,
    };
    for handle in handles {
        let report = handle.join().map_err(|_| "a worker panicked")??;
        total.batches += report.batches;
        total.checksum += report.checksum;
    }
    let elapsed = start.elapsed();
    assert_eq!(
        total.batches, buffers as u64,
        "every batch was processed once"
    );

    let bytes = buffers as f64 * (floats * size_of::<f32>()) as f64;
    println!(
        "{buffers} buffers of {floats} f32 through {workers} workers in {:.3} s: {:.2} M buffers/s, {:.2} GiB/s (checksum {:.3})",
        elapsed.as_secs_f64(),
        buffers as f64 / elapsed.as_secs_f64() / 1e6,
        bytes / elapsed.as_secs_f64() / (1u64 << 30) as f64,
        total.checksum
    );
    let stats = pool.stats();
    println!(
        "pool stats: capacity {} blocks, in use {}, high water {}, allocations {}, local frees {}, remote frees {}, reuse rate {:.4}, exhaustion events {}, external fragmentation {:.3}",
        stats.capacity(),
        stats.in_use(),
        stats.high_water(),
        stats.allocations(),
        stats.local_frees(),
        stats.remote_frees(),
        stats.reuse_rate(),
        stats.exhaustion_events(),
        stats.external_fragmentation()
    );
    assert_eq!(stats.in_use(), 0, "every block came home");
    Ok(())
}
