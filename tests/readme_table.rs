//! Every row of the README's "you want / use" table, called as written there, with `?` in a
//! `main` that returns `Result<(), umrf::Error>`: each error type converts into `umrf::Error`.
//! Then the same fallible calls with `?` into `Box<dyn Error + Send + Sync>` (anyhow's bound),
//! and a compile-time check that every public error type is `Send + Sync + 'static`.
//!
//! A test without the default harness (`harness = false` in Cargo.toml): `main` is the test.

use std::io::{BufReader, Read};
use std::sync::Arc;

use umrf::coherence::ToDevice;
use umrf::cores::Workers;
use umrf::events::{JsonLines, LogConfig, read_json_lines, validate};
use umrf::metrics::{MetricsServer, Registry, render_prometheus};
use umrf::placement::{AnyPool, Reach, Request, decide};
use umrf::residency::CpuLocal;
use umrf::topology::Topology;
use umrf::{Arena, BlockState, Capability, Exhaustion, Message, Pool, mailbox, provenance};

#[derive(Message)]
struct Work {
    id: u64,
    data: Capability<f32, CpuLocal>,
}

fn main() -> Result<(), umrf::Error> {
    every_row()?;
    boxed_send_sync().map_err(|e| umrf::Error::InvalidConfig {
        reason: e.to_string(),
    })?;
    refused_values_convert()?;
    println!("README table: every row ran with `?`");
    Ok(())
}

fn every_row() -> Result<(), umrf::Error> {
    // a pool of fixed-size blocks with a residency; a fallback when a slot runs out
    let spare = Pool::<CpuLocal>::builder()
        .name("spare")
        .block_size(4096)
        .blocks_per_slot(4)
        .slots(1)
        .build()?;
    let path = std::env::temp_dir().join(format!("umrf-readme-table-{}.jsonl", std::process::id()));
    let pool = Pool::<CpuLocal>::builder()
        .name("table")
        .block_size(4096)
        .blocks_per_slot(16)
        .slots(2)
        .exhaustion(Exhaustion::Fallback(spare))
        // an ownership log
        .log_ownership(LogConfig::new().json_lines(JsonLines::create(&path)?))
        .build()?;

    // this thread's slot; a typed buffer
    let lease = pool.attach_slot(0)?;
    let mut buf = lease.alloc::<f32>(16)?;
    buf[0] = 1.0;
    let zeroed = lease.alloc_zeroed::<u32>(8)?;
    let copied = lease.alloc_from_slice(&[1u8, 2, 3])?;
    drop((zeroed, copied));

    // to hand a buffer to another thread; messages that carry capabilities
    let (tx, rx) = mailbox::<Work>(4);
    tx.send(Work {
        id: 1,
        data: buf.into_capability(),
    })?;
    let work = rx.recv()?;
    let there = pool.attach()?;
    let data = work.data.accept(&there)?;
    assert_eq!((work.id, data[0]), (1, 1.0));
    drop((data, there));

    // what the machine has; what the OS really gave
    let topo = Topology::detect()?;
    assert!(!pool.backing().is_empty());

    // a residency chosen at run time
    let decision = decide(&Request::new(4096).reach(Reach::Local), &topo)?;
    let chosen = AnyPool::builder(&decision)
        .block_size(4096)
        .blocks_per_slot(1)
        .slots(1)
        .build()?;
    let name = chosen.residency_name().to_owned();
    match chosen.try_into_typed::<CpuLocal>() {
        Ok(typed) => drop(typed.attach()?.alloc::<u8>(1)?),
        Err(other) => assert_ne!(other.pool().residency_name(), "CpuLocal", "{name}"),
    }

    // pinned per-core workers
    let cpu = topo.online_cpus().first().expect("an online CPU");
    let worker_pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .cpus([cpu])
        .build()?;
    let workers =
        Workers::<u64, u64>::spawn(&worker_pool, [cpu], 4, |ctx| ctx.inbox().iter().sum())?;
    workers.sender(0).expect("one worker").send(5)?;
    assert_eq!(workers.join()?, [5]);

    // many short allocations, freed all at once
    let mut arena = Arena::new_in(&lease, 8192)?;
    arena.alloc::<u64>(16)?.fill(3);
    arena.reset();

    // one writer, then many readers on any cores
    let frozen = lease.alloc_from_slice(&[4u16, 5])?.freeze();
    let reader = frozen.clone();
    std::thread::spawn(move || assert_eq!(reader[1], 5))
        .join()
        .expect("reader");
    let mut thawed = frozen.try_thaw(&lease)?;
    thawed[0] = 6;

    // to hand a buffer to a device (DMA)
    let mapping = thawed.map_for_device::<ToDevice>()?;
    assert_eq!(mapping.len(), 2);
    let back = mapping.unmap();

    // what the pool is doing; who owns an address
    let owner = provenance::owner_of(&back).expect("inside the pool");
    assert_eq!(owner.pool.as_str(), "table");
    let state = pool.block_state(owner.slot, owner.block);
    assert_eq!(state, Some(BlockState::Owned { slot: 0 }));
    assert!(pool.stats().in_use() >= 1);
    drop((back, arena, lease));

    // replay the ownership log (the pool flushed its sink when its last handle went)
    drop(pool);
    let events = read_json_lines(BufReader::new(std::fs::File::open(&path)?))?;
    assert!(
        !events.is_empty(),
        "the log was flushed when the pool was dropped"
    );
    validate(events)?;
    std::fs::remove_file(&path)?;

    // Prometheus metrics
    let registry = Arc::new(Registry::new());
    registry.register(
        &Pool::<CpuLocal>::builder()
            .name("web")
            .block_size(64)
            .blocks_per_slot(1)
            .slots(1)
            .build()?,
    )?;
    assert!(render_prometheus(&registry).contains("umrf_pool_capacity_blocks"));
    let server = MetricsServer::bind("127.0.0.1:0", registry)?;
    let mut answer = String::new();
    let mut stream = std::net::TcpStream::connect(server.local_addr())?;
    std::io::Write::write_all(&mut stream, b"GET /metrics HTTP/1.0\r\n\r\n")?;
    stream.read_to_string(&mut answer)?;
    assert!(answer.contains("umrf_pool_capacity_blocks"));
    server.shutdown();
    Ok(())
}

/// The errors that hand a value back (a capability, a reader handle, a pool) work with `?`
/// into anyhow's bound, `Box<dyn Error + Send + Sync>`.
fn boxed_send_sync() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let a = Pool::<CpuLocal>::builder()
        .name("a")
        .block_size(64)
        .blocks_per_slot(2)
        .slots(1)
        .build()?;
    let b = Pool::<CpuLocal>::builder()
        .name("b")
        .block_size(64)
        .blocks_per_slot(2)
        .slots(1)
        .build()?;
    let (la, lb) = (a.attach()?, b.attach()?);
    let refused = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        a.attach().map(drop).ok();
        drop(la.alloc::<u8>(1)?.into_capability().accept(&lb)?);
        Ok(())
    })();
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("belongs to pool `a`")
    );
    let frozen = la.alloc::<u8>(1)?.freeze();
    let _reader = frozen.clone();
    let thaw = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        drop(frozen.try_thaw(&la)?);
        Ok(())
    })();
    assert!(thaw.unwrap_err().to_string().contains("2 readers"));
    let typed = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _: Pool<umrf::residency::Hugepage> = AnyPool::from(b.clone()).try_into_typed()?;
        Ok(())
    })();
    assert!(typed.unwrap_err().to_string().contains("not Hugepage"));
    Ok(())
}

/// Refusals converted into `umrf::Error` say what happened to the value.
fn refused_values_convert() -> Result<(), umrf::Error> {
    let a = Pool::<CpuLocal>::builder()
        .name("a")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()?;
    let b = Pool::<CpuLocal>::builder()
        .name("b")
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()?;
    let (la, lb) = (a.attach()?, b.attach()?);
    let cap = la.alloc::<u8>(1)?.into_capability();
    let err: umrf::Error = cap.accept(&lb).unwrap_err().into();
    assert!(err.to_string().contains("its block went home"), "{err}");
    assert_eq!(a.stats().in_use(), 0, "the block went home");
    Ok(())
}

/// Every public error type is `Send + Sync + 'static` (checked at compile time).
#[allow(dead_code)]
fn every_error_is_send_sync() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {}
    check::<umrf::Error>();
    check::<umrf::AcceptError<u8, CpuLocal>>();
    check::<umrf::ThawError<u8, CpuLocal>>();
    check::<umrf::placement::IntoTypedError>();
    check::<umrf::topology::TopologyError>();
    check::<umrf::topology::CpuSetError>();
    check::<umrf::events::ReadError>();
    check::<umrf::events::ReplayError>();
    check::<umrf::cores::WorkerPanic>();
    check::<umrf::coherence::UnsupportedInstruction>();
    check::<umrf::mailbox::SendError<u8>>();
    check::<umrf::mailbox::TrySendError<u8>>();
    check::<umrf::mailbox::SendTimeoutError<u8>>();
    check::<umrf::mailbox::RecvError>();
    check::<umrf::mailbox::TryRecvError>();
    check::<umrf::mailbox::RecvTimeoutError>();
}
