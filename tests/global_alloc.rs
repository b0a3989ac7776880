//! A whole test program on umrf's global allocator: threads churning `HashMap`s, `String`s and
//! `Vec`s, a producer/consumer pipeline whose frees are all remote, threads that exit holding
//! nothing, and a fork; at the end the pool's books balance.

use std::collections::HashMap;

use umrf::GlobalPool;
use umrf::residency::CpuLocal;

#[global_allocator]
static ALLOC: GlobalPool<CpuLocal> = GlobalPool::new();

fn in_use() -> u64 {
    ALLOC
        .stats()
        .sized
        .expect("initialised by the harness")
        .in_use()
}

fn churn(seed: usize, rounds: usize) -> usize {
    let mut map: HashMap<String, Vec<u8>> = HashMap::new();
    let mut total = 0;
    for i in 0..rounds {
        let key = format!("key-{seed}-{}", i % 997);
        let value = vec![(i % 251) as u8; (i * 7919 + seed) % 600 + 1];
        total += value.len();
        map.insert(key, value);
        if i % 3 == 0 {
            map.remove(&format!("key-{seed}-{}", (i / 3) % 997));
        }
    }
    total + map.len()
}

fn pipeline(messages: usize) -> usize {
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(64);
    let consumer = std::thread::spawn(move || rx.iter().map(|m| m.len()).sum::<usize>());
    for i in 0..messages {
        tx.send(vec![i as u8; i % 2000 + 1]).unwrap();
    }
    drop(tx);
    consumer.join().unwrap()
}

#[cfg(not(miri))]
fn fork_child_allocates_and_frees() {
    // SAFETY: the child only allocates, frees and calls `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = churn(99, 2000) > 0 && pipeline(200) > 0;
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
}

fn workload(scale: usize) {
    let workers: Vec<_> = (0..4)
        .map(|seed| std::thread::spawn(move || churn(seed, 300 * scale)))
        .collect();
    let sums: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(sums.iter().all(|&s| s > 0));
    let moved = pipeline(50 * scale);
    assert_eq!(moved, (0..50 * scale).map(|i| i % 2000 + 1).sum::<usize>());
    #[cfg(not(miri))]
    fork_child_allocates_and_frees();
}

#[test]
fn a_program_on_umrf_memory_balances_its_books() {
    let scale = if cfg!(miri) { 1 } else { 100 };
    // A first small round makes what the process keeps for good (the channel's thread-local
    // context, the runtime's lazily made state), so the books can be compared after.
    std::thread::spawn(|| workload(1)).join().unwrap();
    let before = in_use();
    let rows_before = ALLOC.stats().sized.unwrap().rows_claimed;
    // On a thread of its own, whose thread-locals (the channel's wait context among them) are
    // freed when it exits.
    std::thread::spawn(move || workload(scale)).join().unwrap();
    let (rows, remote, allocations, system) = {
        let after = ALLOC.stats();
        let sized = after.sized.unwrap();
        let remote: u64 = sized.classes.iter().map(|c| c.remote_frees).sum();
        (
            sized.rows_claimed,
            remote,
            sized.allocations(),
            after.system_allocations,
        )
    }; // the snapshot is freed before the books are read again
    assert_eq!(in_use(), before, "every block of the workload came home");
    assert_eq!(rows, rows_before, "every exited thread released its row");
    assert!(
        remote >= 50 * scale as u64,
        "the consumer's frees were remote: {remote}"
    );
    assert!(allocations > 1000 * scale as u64);
    assert!(
        system * 100 < allocations,
        "system fallbacks {system} of {allocations}"
    );
}
