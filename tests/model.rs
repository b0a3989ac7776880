//! Model test (invariants I1, I6, I7): random sequences of alloc / free / into_capability /
//! send / accept / take / drop / lease drop and re-attach / mailbox close, over 2 to 4 real
//! threads, checked step by step against a model of who holds which block.
//!
//! The threads run in lockstep: each worker owns a command channel, and the driver sends one
//! step at a time and waits for the worker's report before the next, so every run is
//! deterministic and the pool is quiescent between steps. After every step the driver checks:
//!
//! - the worker's report against the model's prediction (success, exhaustion, a full or closed
//!   mailbox, a request the blocks cannot hold, the token each buffer carries);
//! - no block is handed out twice (I1): the addresses out are pairwise different;
//! - `Pool::stats` against the model's counts: allocations, local and remote frees, blocks in
//!   use, exhaustion events, per slot;
//! - `Pool::block_state` of every block against the model: free, owned by the lease of slot u,
//!   or in flight, counted per home slot.
//!
//! At the end every worker exits holding whatever it holds (buffers, capabilities, queued
//! capabilities), and every block must be home with the counts the model predicts. Pools are
//! small (1 to 3 blocks per slot) and mailboxes hold 2 messages, so exhaustion, full
//! mailboxes, the remote-free drain and re-attached leases are reached, not only the happy path.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::mpsc;
use std::thread;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use umrf::mailbox::{Receiver, Sender, TrySendError};
use umrf::residency::CpuLocal;
use umrf::{BlockState, Capability, Error, LocalPool, Pool, SharedBuffer};

/// Bytes per block: 8 `u64`s.
const BLOCK: usize = 64;
/// Elements of `u64` per block.
const MAX_LEN: usize = BLOCK / 8;
/// Messages each worker's inbox holds.
const INBOX: usize = 2;

type Buf = SharedBuffer<u64, CpuLocal>;
type Cap = Capability<u64, CpuLocal>;

/// One step of one thread.
#[derive(Clone, Debug)]
enum Op {
    /// Allocate `len` elements (0 and `MAX_LEN + 1` are bad requests) and fill them with a token.
    Alloc { len: usize },
    /// Drop a held buffer.
    Free { pick: usize },
    /// Turn a held buffer into a capability.
    IntoCap { pick: usize },
    /// Send a held capability to a thread's inbox (possibly this thread's).
    Send { pick: usize, to: usize },
    /// Receive the oldest capability of the inbox and accept it with this thread's lease.
    Accept,
    /// Receive the oldest capability of the inbox and keep it as a capability.
    Take,
    /// Drop a held capability unaccepted.
    DropCap { pick: usize },
    /// Lease slot `slot` (may be busy, or this thread may hold a lease already).
    Attach { slot: usize },
    /// Give the lease back; buffers stay valid.
    DropLease,
    /// Drop this thread's inbox receiver, with whatever is queued.
    CloseInbox,
}

/// What a worker reports for a step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Report {
    /// Nothing to do it with (no buffer, capability or message to pick, or already leased).
    Nothing,
    /// An allocation that needs a lease, made without one.
    NoLease,
    Allocated {
        addr: usize,
        home: usize,
    },
    ZeroLength,
    TooLarge,
    Exhausted,
    /// A buffer given up or made a capability: the token the worker read from its data.
    Released {
        token: u64,
    },
    Converted {
        token: u64,
    },
    /// A capability sent, refused (and handed back), taken or dropped: its `cap_id`.
    Sent {
        id: u64,
    },
    Full {
        id: u64,
    },
    Disconnected {
        id: u64,
    },
    Taken {
        id: u64,
    },
    CapDropped {
        id: u64,
    },
    /// A capability accepted: the token read from the data it carried.
    Accepted {
        token: u64,
        home: usize,
    },
    Empty,
    Closed,
    Attached,
    SlotBusy,
    LeaseDropped,
    InboxClosed,
}

impl Report {
    /// The report's variant, for the coverage tally.
    fn kind(&self) -> &'static str {
        match self {
            Report::Nothing => "Nothing",
            Report::NoLease => "NoLease",
            Report::Allocated { .. } => "Allocated",
            Report::ZeroLength => "ZeroLength",
            Report::TooLarge => "TooLarge",
            Report::Exhausted => "Exhausted",
            Report::Released { .. } => "Released",
            Report::Converted { .. } => "Converted",
            Report::Sent { .. } => "Sent",
            Report::Full { .. } => "Full",
            Report::Disconnected { .. } => "Disconnected",
            Report::Taken { .. } => "Taken",
            Report::CapDropped { .. } => "CapDropped",
            Report::Accepted { .. } => "Accepted",
            Report::Empty => "Empty",
            Report::Closed => "Closed",
            Report::Attached => "Attached",
            Report::SlotBusy => "SlotBusy",
            Report::LeaseDropped => "LeaseDropped",
            Report::InboxClosed => "InboxClosed",
        }
    }
}

/// The seed of the default run (`PROPTEST_RNG_SEED` overrides it).
const DEFAULT_SEED: u64 = 0x756d_7266;

/// Every kind of report: a run of the default size must have seen each.
const ALL_KINDS: [&str; 20] = [
    "Nothing",
    "NoLease",
    "Allocated",
    "ZeroLength",
    "TooLarge",
    "Exhausted",
    "Released",
    "Converted",
    "Sent",
    "Full",
    "Disconnected",
    "Taken",
    "CapDropped",
    "Accepted",
    "Empty",
    "Closed",
    "Attached",
    "SlotBusy",
    "LeaseDropped",
    "InboxClosed",
];

/// A step as the driver sends it: the op, and for an allocation the token to write.
struct Command {
    op: Op,
    token: u64,
}

/// A worker thread's state. Field order is drop order at thread exit: buffers first (freed
/// locally when the lease still holds their home slot), then capabilities, the lease, and the
/// inbox with whatever is still queued.
struct Worker {
    pool: Pool<CpuLocal>,
    bufs: Vec<Buf>,
    caps: Vec<Cap>,
    lease: Option<LocalPool<CpuLocal>>,
    inbox: Option<Receiver<Cap>>,
    outboxes: Vec<Sender<Cap>>,
}

/// The token a buffer carries in every element; checks that its contents travelled with it.
fn token_of(data: &[u64]) -> u64 {
    let token = data[0];
    assert!(
        data.iter().all(|&x| x == token),
        "a buffer's contents changed while it was owned: {data:?}"
    );
    token
}

impl Worker {
    fn run(&mut self, command: Command) -> Report {
        match command.op {
            Op::Alloc { len } => {
                let Some(lease) = &self.lease else {
                    return Report::NoLease;
                };
                match lease.alloc::<u64>(len) {
                    Ok(mut buf) => {
                        buf.fill(command.token);
                        let report = Report::Allocated {
                            addr: buf.as_ptr() as usize,
                            home: buf.home_slot(),
                        };
                        self.bufs.push(buf);
                        report
                    }
                    Err(Error::ZeroLength) => Report::ZeroLength,
                    Err(Error::TooLarge { .. }) => Report::TooLarge,
                    Err(Error::Exhausted { .. }) => Report::Exhausted,
                    Err(other) => panic!("unexpected allocation error: {other}"),
                }
            }
            Op::Free { pick } => match pick_from(&mut self.bufs, pick) {
                Some(buf) => Report::Released {
                    token: token_of(&buf),
                },
                None => Report::Nothing,
            },
            Op::IntoCap { pick } => match pick_from(&mut self.bufs, pick) {
                Some(buf) => {
                    let token = token_of(&buf);
                    self.caps.push(buf.into_capability());
                    Report::Converted { token }
                }
                None => Report::Nothing,
            },
            Op::Send { pick, to } => {
                if self.caps.is_empty() {
                    return Report::Nothing;
                }
                let at = pick % self.caps.len();
                let cap = self.caps.remove(at);
                let id = cap_id(&cap);
                match self.outboxes[to].try_send(cap) {
                    Ok(()) => Report::Sent { id },
                    Err(TrySendError::Full(cap)) => {
                        self.caps.insert(at, cap); // handed back intact
                        Report::Full { id }
                    }
                    Err(TrySendError::Disconnected(cap)) => {
                        self.caps.insert(at, cap);
                        Report::Disconnected { id }
                    }
                }
            }
            Op::Accept => {
                let Some(lease) = &self.lease else {
                    return Report::NoLease;
                };
                let Some(inbox) = &self.inbox else {
                    return Report::Closed;
                };
                match inbox.try_recv() {
                    Ok(cap) => {
                        let buf = cap.accept(lease).expect("a capability of this very pool");
                        let report = Report::Accepted {
                            token: token_of(&buf),
                            home: buf.home_slot(),
                        };
                        self.bufs.push(buf);
                        report
                    }
                    Err(_) => Report::Empty,
                }
            }
            Op::Take => {
                let Some(inbox) = &self.inbox else {
                    return Report::Closed;
                };
                match inbox.try_recv() {
                    Ok(cap) => {
                        let id = cap_id(&cap);
                        self.caps.push(cap);
                        Report::Taken { id }
                    }
                    Err(_) => Report::Empty,
                }
            }
            Op::DropCap { pick } => match pick_from(&mut self.caps, pick) {
                Some(cap) => Report::CapDropped { id: cap_id(&cap) },
                None => Report::Nothing,
            },
            Op::Attach { slot } => {
                if self.lease.is_some() {
                    return Report::Nothing;
                }
                match self.pool.attach_slot(slot) {
                    Ok(lease) => {
                        self.lease = Some(lease);
                        Report::Attached
                    }
                    Err(Error::SlotBusy { .. }) => Report::SlotBusy,
                    Err(other) => panic!("unexpected attach error: {other}"),
                }
            }
            Op::DropLease => match self.lease.take() {
                Some(lease) => {
                    drop(lease);
                    Report::LeaseDropped
                }
                None => Report::Nothing,
            },
            Op::CloseInbox => match self.inbox.take() {
                Some(inbox) => {
                    drop(inbox);
                    Report::InboxClosed
                }
                None => Report::Nothing,
            },
        }
    }
}

/// Removes item `pick % len`; `None` when there is none.
fn pick_from<T>(items: &mut Vec<T>, pick: usize) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items.remove(pick % items.len()))
    }
}

/// What identifies a capability to the model: its length and home slot (a capability gives no
/// access to its data; the data's token is checked again when it is accepted).
fn cap_id(cap: &Cap) -> u64 {
    (cap.len() as u64) << 32 | cap.home_slot() as u64
}

/// A block the model tracks while it is out.
#[derive(Clone, Debug)]
struct Item {
    token: u64,
    len: usize,
    home: usize,
    addr: usize,
    /// The lease epoch under which a buffer frees locally (its home slot's lease at the time it
    /// was allocated or accepted at home), if any.
    local_epoch: Option<u64>,
    /// The slot a buffer's state word names (the lease that allocated or accepted it).
    owner_slot: usize,
}

impl Item {
    fn cap_id(&self) -> u64 {
        (self.len as u64) << 32 | self.home as u64
    }
}

/// Expected counters of one slot.
#[derive(Clone, Debug, Default)]
struct SlotModel {
    out: u64,
    allocations: u64,
    local_frees: u64,
    remote_frees: u64,
    exhausted: u64,
}

#[derive(Debug, Default)]
struct ThreadModel {
    /// `(slot, epoch)` of the lease held.
    lease: Option<(usize, u64)>,
    bufs: Vec<Item>,
    caps: Vec<Item>,
    /// `None` once closed.
    inbox: Option<VecDeque<Item>>,
}

struct Model {
    blocks: u64,
    slots: Vec<SlotModel>,
    threads: Vec<ThreadModel>,
    /// Lease holders by slot.
    leased: Vec<Option<usize>>,
    next_epoch: u64,
    addrs_out: HashSet<usize>,
}

impl Model {
    fn new(threads: usize, blocks: u64) -> Self {
        Model {
            blocks,
            slots: vec![SlotModel::default(); threads],
            threads: (0..threads)
                .map(|_| ThreadModel {
                    inbox: Some(VecDeque::new()),
                    ..ThreadModel::default()
                })
                .collect(),
            leased: vec![None; threads],
            next_epoch: 0,
            addrs_out: HashSet::new(),
        }
    }

    /// Leases slot `slot` for thread `t` (the setup and `Op::Attach`).
    fn attach(&mut self, t: usize, slot: usize) {
        self.next_epoch += 1;
        self.threads[t].lease = Some((slot, self.next_epoch));
        self.leased[slot] = Some(t);
    }

    /// A block comes home, freed by thread `t` (`local` when it goes onto the owner's list).
    fn release(&mut self, item: &Item, local: bool) {
        let slot = &mut self.slots[item.home];
        slot.out -= 1;
        if local {
            slot.local_frees += 1;
        } else {
            slot.remote_frees += 1;
        }
        assert!(self.addrs_out.remove(&item.addr), "a block freed twice");
    }

    /// Whether buffer `item` held by thread `t` frees locally now.
    fn frees_locally(&self, t: usize, item: &Item) -> bool {
        matches!((item.local_epoch, self.threads[t].lease), (Some(e), Some((_, now))) if e == now)
    }

    /// Applies step `op` of thread `t` (with its worker's `report`) and checks the report.
    fn step(&mut self, t: usize, op: &Op, token: u64, report: &Report) {
        let expected = match *op {
            Op::Alloc { len } => match self.threads[t].lease {
                None => Report::NoLease,
                Some(_) if len == 0 => Report::ZeroLength,
                Some(_) if len > MAX_LEN => Report::TooLarge,
                Some((slot, epoch)) => {
                    if self.slots[slot].out == self.blocks {
                        self.slots[slot].exhausted += 1;
                        Report::Exhausted
                    } else {
                        let Report::Allocated { addr, home } = *report else {
                            panic!("thread {t}: expected an allocation, got {report:?}");
                        };
                        assert_eq!(home, slot, "allocated from the leased slot");
                        assert!(
                            self.addrs_out.insert(addr),
                            "block {addr:#x} handed out twice"
                        );
                        self.slots[slot].out += 1;
                        self.slots[slot].allocations += 1;
                        self.threads[t].bufs.push(Item {
                            token,
                            len,
                            home,
                            addr,
                            local_epoch: Some(epoch),
                            owner_slot: slot,
                        });
                        report.clone()
                    }
                }
            },
            Op::Free { pick } => match pick_from(&mut self.threads[t].bufs, pick) {
                Some(item) => {
                    let local = self.frees_locally(t, &item);
                    self.release(&item, local);
                    Report::Released { token: item.token }
                }
                None => Report::Nothing,
            },
            Op::IntoCap { pick } => match pick_from(&mut self.threads[t].bufs, pick) {
                Some(item) => {
                    let token = item.token;
                    self.threads[t].caps.push(item);
                    Report::Converted { token }
                }
                None => Report::Nothing,
            },
            Op::Send { pick, to } => {
                let caps = &self.threads[t].caps;
                if caps.is_empty() {
                    Report::Nothing
                } else {
                    let at = pick % caps.len();
                    let id = caps[at].cap_id();
                    match &self.threads[to].inbox {
                        None => Report::Disconnected { id },
                        Some(queue) if queue.len() == INBOX => Report::Full { id },
                        Some(_) => {
                            let item = self.threads[t].caps.remove(at);
                            self.threads[to].inbox.as_mut().unwrap().push_back(item);
                            Report::Sent { id }
                        }
                    }
                }
            }
            Op::Accept => match (self.threads[t].lease, &self.threads[t].inbox) {
                (None, _) => Report::NoLease,
                (_, None) => Report::Closed,
                (Some((slot, epoch)), Some(_)) => {
                    match self.threads[t].inbox.as_mut().unwrap().pop_front() {
                        None => Report::Empty,
                        Some(mut item) => {
                            item.local_epoch = (item.home == slot).then_some(epoch);
                            item.owner_slot = slot;
                            let report = Report::Accepted {
                                token: item.token,
                                home: item.home,
                            };
                            self.threads[t].bufs.push(item);
                            report
                        }
                    }
                }
            },
            Op::Take => match self.threads[t].inbox.as_mut() {
                None => Report::Closed,
                Some(queue) => match queue.pop_front() {
                    None => Report::Empty,
                    Some(item) => {
                        let id = item.cap_id();
                        self.threads[t].caps.push(item);
                        Report::Taken { id }
                    }
                },
            },
            Op::DropCap { pick } => match pick_from(&mut self.threads[t].caps, pick) {
                Some(item) => {
                    self.release(&item, false);
                    Report::CapDropped { id: item.cap_id() }
                }
                None => Report::Nothing,
            },
            Op::Attach { slot } => {
                if self.threads[t].lease.is_some() {
                    Report::Nothing
                } else if self.leased[slot].is_some() {
                    Report::SlotBusy
                } else {
                    self.attach(t, slot);
                    Report::Attached
                }
            }
            Op::DropLease => match self.threads[t].lease.take() {
                Some((slot, _)) => {
                    self.leased[slot] = None;
                    Report::LeaseDropped
                }
                None => Report::Nothing,
            },
            Op::CloseInbox => match self.threads[t].inbox.take() {
                Some(queue) => {
                    for item in queue {
                        self.release(&item, false);
                    }
                    Report::InboxClosed
                }
                None => Report::Nothing,
            },
        };
        assert_eq!(report, &expected, "thread {t}, step {op:?}");
    }

    /// Thread `t` exits: its buffers, capabilities, lease and inbox drop in `Worker` field order.
    fn exit(&mut self, t: usize) {
        for item in std::mem::take(&mut self.threads[t].bufs) {
            let local = self.frees_locally(t, &item);
            self.release(&item, local);
        }
        for item in std::mem::take(&mut self.threads[t].caps) {
            self.release(&item, false);
        }
        if let Some((slot, _)) = self.threads[t].lease.take() {
            self.leased[slot] = None;
        }
        for item in self.threads[t].inbox.take().unwrap_or_default() {
            self.release(&item, false);
        }
    }

    /// Checks the pool's counters and block states against the model.
    fn check(&self, pool: &Pool<CpuLocal>) {
        let stats = pool.stats();
        for (s, (real, model)) in stats.slots.iter().zip(&self.slots).enumerate() {
            let got = (
                real.allocations,
                real.local_frees,
                real.remote_frees,
                real.in_use,
                real.free,
                real.exhaustion_events,
            );
            let want = (
                model.allocations,
                model.local_frees,
                model.remote_frees,
                model.out,
                self.blocks - model.out,
                model.exhausted,
            );
            assert_eq!(
                got, want,
                "slot {s}: (allocations, local frees, remote frees, in use, free, exhaustion events)"
            );
            assert_eq!(real.leased, self.leased[s].is_some(), "slot {s} leased");
        }
        // Block states, counted per home slot.
        let mut want: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); self.slots.len()];
        for thread in &self.threads {
            for item in &thread.bufs {
                let state = format!(
                    "{:?}",
                    BlockState::Owned {
                        slot: item.owner_slot
                    }
                );
                *want[item.home].entry(state).or_default() += 1;
            }
            let queued = thread.inbox.iter().flatten();
            for item in thread.caps.iter().chain(queued) {
                *want[item.home]
                    .entry(format!("{:?}", BlockState::InFlight))
                    .or_default() += 1;
            }
        }
        for (s, want) in want.iter_mut().enumerate() {
            let free = self.blocks - self.slots[s].out;
            if free > 0 {
                want.insert(format!("{:?}", BlockState::Free), free);
            }
            let mut got = BTreeMap::new();
            for b in 0..self.blocks as usize {
                let state = pool.block_state(s, b).expect("a block of the pool");
                *got.entry(format!("{state:?}")).or_insert(0u64) += 1;
            }
            assert_eq!(&got, want, "block states of slot {s}");
        }
    }
}

/// Runs one case: `threads` workers, `blocks` per slot, `steps` in order; returns the final
/// counters and the kinds of report seen.
fn run_case(
    threads: usize,
    blocks: usize,
    steps: &[(usize, Op)],
) -> (umrf::PoolStats, BTreeSet<&'static str>) {
    let mut kinds = BTreeSet::new();
    let pool = Pool::<CpuLocal>::builder()
        .block_size(BLOCK)
        .blocks_per_slot(blocks)
        .slots(threads)
        .prefault(false)
        .build()
        .unwrap();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| umrf::try_mailbox::<Cap>(INBOX).unwrap())
        .unzip();
    let mut model = Model::new(threads, blocks as u64);
    let mut commands = Vec::new();
    let mut workers = Vec::new();
    let (report_tx, report_rx) = mpsc::channel::<Report>();
    for (t, inbox) in receivers.into_iter().enumerate() {
        let (command_tx, command_rx) = mpsc::channel::<Command>();
        commands.push(command_tx);
        let (pool, outboxes, report_tx) = (pool.clone(), senders.clone(), report_tx.clone());
        workers.push(thread::spawn(move || {
            let lease = pool
                .attach_slot(t)
                .expect("each worker starts on its own slot");
            let mut worker = Worker {
                pool,
                bufs: Vec::new(),
                caps: Vec::new(),
                lease: Some(lease),
                inbox: Some(inbox),
                outboxes,
            };
            report_tx.send(Report::Attached).unwrap();
            for command in command_rx {
                report_tx.send(worker.run(command)).unwrap();
            }
            // The thread exits holding whatever it holds.
        }));
        assert_eq!(report_rx.recv().unwrap(), Report::Attached);
        model.attach(t, t);
    }
    drop(senders);
    model.check(&pool);
    for (n, (t, op)) in steps.iter().enumerate() {
        let token = n as u64 + 1;
        commands[*t]
            .send(Command {
                op: op.clone(),
                token,
            })
            .unwrap();
        let report = report_rx.recv().unwrap();
        kinds.insert(report.kind());
        model.step(*t, op, token, &report);
        model.check(&pool);
    }
    // Every worker exits, one at a time, with what it holds.
    for (t, (command_tx, worker)) in commands.into_iter().zip(workers).enumerate() {
        drop(command_tx);
        worker.join().expect("a worker panicked");
        model.exit(t);
        model.check(&pool);
    }
    let stats = pool.stats();
    assert_eq!(stats.in_use(), 0, "every block is home");
    assert_eq!(stats.free(), (threads * blocks) as u64);
    assert_eq!(
        stats.allocations(),
        stats.local_frees() + stats.remote_frees(),
        "every allocation was freed once"
    );
    assert!(model.addrs_out.is_empty());
    (stats, kinds)
}

fn op(threads: usize) -> impl Strategy<Value = Op> {
    let pick = any::<usize>();
    prop_oneof![
        12 => (0..=MAX_LEN + 1).prop_map(|len| Op::Alloc { len }),
        6 => pick.prop_map(|pick| Op::Free { pick }),
        6 => pick.prop_map(|pick| Op::IntoCap { pick }),
        8 => (pick, 0..threads).prop_map(|(pick, to)| Op::Send { pick, to }),
        6 => Just(Op::Accept),
        2 => Just(Op::Take),
        3 => pick.prop_map(|pick| Op::DropCap { pick }),
        3 => (0..threads).prop_map(|slot| Op::Attach { slot }),
        2 => Just(Op::DropLease),
        1 => Just(Op::CloseInbox),
    ]
}

fn case(max_steps: usize) -> impl Strategy<Value = (usize, usize, Vec<(usize, Op)>)> {
    (2usize..=4, 1usize..=3).prop_flat_map(move |(threads, blocks)| {
        (
            Just(threads),
            Just(blocks),
            proptest::collection::vec((0..threads, op(threads)), 1..=max_steps),
        )
    })
}

#[test]
fn random_ownership_sequences_match_the_model() {
    // Sized down under Miri, which interprets every step; PROPTEST_CASES raises the count.
    let (default_cases, max_steps) = if cfg!(miri) { (3, 24) } else { (96, 120) };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    // A fixed seed by default, so CI runs the same cases every time and the coverage check
    // below is a property of the generator, not of luck; `PROPTEST_RNG_SEED=<n>` explores
    // other cases (and skips the coverage check, which holds for the default seed only).
    let default_seed = matches!(config.rng_seed, RngSeed::Random);
    if default_seed {
        config.rng_seed = RngSeed::Fixed(DEFAULT_SEED);
    }
    eprintln!("model test: {cases} cases, seed {}", config.rng_seed);
    let seen = std::cell::RefCell::new(BTreeSet::new());
    TestRunner::new(config)
        .run(&case(max_steps), |(threads, blocks, steps)| {
            let (_, kinds) = run_case(threads, blocks, &steps);
            seen.borrow_mut().extend(kinds);
            Ok(())
        })
        .unwrap();
    // The generator reaches every outcome, slow paths included (not in the few cases of Miri).
    if default_seed && cases >= default_cases && !cfg!(miri) {
        let missing: Vec<_> = ALL_KINDS
            .iter()
            .filter(|kind| !seen.borrow().contains(*kind))
            .collect();
        assert!(missing.is_empty(), "never reached: {missing:?}");
    }
}

/// A fixed sequence that walks the slow paths in order, so they are reached whatever proptest
/// draws: exhaustion, a remote free drained by the owner, a full and a closed mailbox, a lease
/// dropped and re-attached (its old buffers then free remotely), a busy slot.
#[test]
fn the_slow_paths_in_one_scripted_run() {
    use Op::*;
    let steps = [
        (0, Alloc { len: 8 }),
        (0, Alloc { len: 1 }),
        (0, Alloc { len: 1 }), // exhausted: two blocks per slot
        (0, Alloc { len: 0 }),
        (0, Alloc { len: 9 }),
        (0, IntoCap { pick: 0 }),
        (0, Send { pick: 0, to: 1 }),
        (1, Accept),           // accepted away from home
        (1, Free { pick: 0 }), // a remote free to slot 0
        (0, Alloc { len: 2 }), // the owner drains it
        (0, IntoCap { pick: 0 }),
        (0, IntoCap { pick: 0 }),
        (0, Send { pick: 0, to: 1 }),
        (0, Send { pick: 0, to: 1 }),
        (1, Alloc { len: 1 }),
        (1, IntoCap { pick: 0 }),
        (1, Send { pick: 0, to: 1 }), // the inbox is full: handed back
        (1, Take),
        (1, Send { pick: 1, to: 0 }),
        (0, Accept), // accepted at home: frees locally
        (0, Free { pick: 0 }),
        (0, Alloc { len: 1 }), // kept across the lease change below
        (0, DropLease),
        (1, Attach { slot: 0 }), // thread 1 holds slot 1 already
        (1, DropLease),
        (1, Attach { slot: 0 }),
        (0, Attach { slot: 0 }), // busy
        (0, Attach { slot: 1 }),
        (0, Free { pick: 0 }), // its lease is gone: a remote free
        (1, Alloc { len: 1 }),
        (1, CloseInbox),              // a queued capability goes home
        (1, Send { pick: 0, to: 1 }), // disconnected: handed back
        (1, DropCap { pick: 0 }),
    ];
    let (stats, kinds) = run_case(2, 2, &steps);
    let missing: Vec<_> = ALL_KINDS.iter().filter(|k| !kinds.contains(*k)).collect();
    assert_eq!(
        missing,
        [&"NoLease", &"Empty", &"Closed"],
        "the script skips only these"
    );
    let counts = |s: &umrf::SlotStats| {
        (
            s.allocations,
            s.local_frees,
            s.remote_frees,
            s.exhaustion_events,
        )
    };
    assert_eq!(counts(&stats.slots[0]), (5, 2, 3, 1));
    assert_eq!(counts(&stats.slots[1]), (1, 0, 1, 0));
}
