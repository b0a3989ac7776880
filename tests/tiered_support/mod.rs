//! What the tiered store's integration tests share: the I/O engines every integrity test runs
//! on.

use umrf::residency::CpuLocal;
use umrf::tiered::{IoBackend, IoEngine, TieredStore};

/// A background engine a test runs with: the backend asked of the builder, the I/O threads,
/// and the engine that must then run.
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    pub io: IoBackend,
    pub threads: usize,
    pub runs: IoEngine,
}

/// The background engines: I/O threads, and `io_uring` where the kernel allows it. A refused
/// ring is printed with the kernel's reason, so that a run with threads alone says so; with
/// `UMRF_REQUIRE_IO_URING=1` it fails the test instead.
pub fn backgrounds() -> Vec<Engine> {
    let threads = Engine {
        io: IoBackend::Threads,
        threads: 1,
        runs: IoEngine::Threads,
    };
    match TieredStore::<CpuLocal>::builder()
        .ram_budget(1 << 16)
        .page_size(4096)
        .io(IoBackend::IoUring)
        .build()
    {
        Ok(_) => vec![
            threads,
            Engine {
                io: IoBackend::IoUring,
                threads: 1,
                runs: IoEngine::IoUring,
            },
        ],
        Err(e) if std::env::var_os("UMRF_REQUIRE_IO_URING").is_some() => {
            panic!("UMRF_REQUIRE_IO_URING is set but the kernel refuses io_uring: {e}")
        }
        Err(e) => {
            eprintln!("io_uring is refused here, testing threads alone: {e}");
            vec![threads]
        }
    }
}

/// Every engine: no background I/O (spills written on the caller's thread), then
/// [`backgrounds`].
pub fn engines() -> Vec<Engine> {
    let mut all = vec![Engine {
        io: IoBackend::Threads,
        threads: 0,
        runs: IoEngine::Inline,
    }];
    all.extend(backgrounds());
    all
}
