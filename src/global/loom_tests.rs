//! loom model of a global-allocator thread's exit: its row is released (as `ThreadRow`'s drop
//! does, through the row's `RowLease`) while another thread frees one of the row's blocks
//! remotely, and a new thread adopts the orphaned row.
//!
//! The model drives the row protocol the thread-locals sit on (`Core::claim_row`, `RowLease`,
//! and the two free paths of `free_class_block`), not the thread-locals themselves: loom runs
//! a model's threads on one OS thread, which `std`'s thread-locals cannot tell apart. The
//! family is the global allocator's own configuration, cut to one class of two 16-byte blocks
//! over two rows, without the page map (whose publication `sized::pagemap`'s models check):
//! the freeing thread finds the block's slot as `free_mapped` would. Regions come from
//! `loom::alloc`, so a pool freed twice or never is reported, and `PoolInner`'s loom-only
//! `Drop` asserts that every block is home when a pool's memory goes.

use core::ptr::NonNull;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::GlobalPool;
use crate::pool::{BlockRef, Slot, UNKNOWN_TRIP};
use crate::residency::CpuLocal;
use crate::sized::Core;
use crate::sized::row::RowLease;

/// Blocks in each class pool of the model's family.
const BLOCKS: usize = 2;

/// The global allocator's family, cut down: one class, two rows of `BLOCKS` blocks.
fn family() -> Arc<Core> {
    let mut config = GlobalPool::<CpuLocal>::new()
        .rows(2)
        .largest_class(16)
        .bytes_per_class(16 * BLOCKS)
        .max_blocks_per_class(BLOCKS)
        .borrow_classes(0)
        .config();
    config.min_blocks = BLOCKS;
    config.map_pages = false;
    Arc::new(Core::new(config))
}

/// A row of `core`, `preferred` first, as `RowList::row_of` claims it; `None` when every row is
/// claimed.
fn claim(core: &Arc<Core>, preferred: usize) -> Option<RowLease<Arc<Core>>> {
    let row = core.claim_row(preferred)?;
    // SAFETY: `row` was just claimed, and the claim goes to the lease.
    Some(unsafe { RowLease::new(core.clone(), row) })
}

/// A block of the model, sent between its threads as the pointer a program would send.
#[derive(Clone, Copy)]
struct Held {
    slot: NonNull<Slot>,
    index: u32,
    usable: usize,
}

// SAFETY: a block handed to another thread is owned by that thread alone (the model checks it
// with `holders`); the slot it names is `Sync`.
unsafe impl Send for Held {}

/// `holders[row][block]`: how many threads hold the block now. `Relaxed` counters (their
/// modification order is enough to see two holders at once), so they add no ordering of their
/// own to the protocol under test.
type Holders = [[AtomicUsize; BLOCKS]; 2];

/// Allocates one 8-byte block from `lease` and counts its holder; `None` when the row has no
/// free block. A second holder fails the model: a block handed out twice.
fn take(lease: &RowLease<Arc<Core>>, holders: &Holders) -> Option<Held> {
    let block = lease.alloc(8, 8).ok()?;
    let before = holders[lease.row()][block.index as usize].fetch_add(1, Ordering::Relaxed);
    assert_eq!(
        before,
        0,
        "block {} of row {} was handed out twice",
        block.index,
        lease.row()
    );
    Some(Held {
        slot: block.slot,
        index: block.index,
        usable: block.usable,
    })
}

/// Gives `held` (a block of `row`) up: through the calling thread's own row if it has one, as
/// a remote free otherwise (the two paths of `free_class_block`).
fn give_up(held: Held, row: usize, own: Option<&RowLease<Arc<Core>>>, holders: &Holders) {
    holders[row][held.index as usize].fetch_sub(1, Ordering::Relaxed);
    match own {
        // SAFETY: the block is out and this thread owns it (the holders say so); it gives it
        // up here, once.
        Some(lease) => unsafe {
            lease.free_block(held.slot, held.index, crate::sized::class_of(held.usable))
        },
        None => {
            let block = BlockRef {
                slot: held.slot,
                index: held.index,
                trip: UNKNOWN_TRIP,
            };
            // SAFETY: as above; a thread without a row frees remotely.
            unsafe { block.release_remote() }
        }
    }
}

/// What an execution of the model ended with: the adopter's row and how many blocks it got
/// (`None`: every row was claimed), and whether the freer had a row of its own.
type Outcome = (Option<(usize, usize)>, bool);

/// The main thread holds row 0 with a block out, hands the block to a freeing thread and
/// exits (its row lease drops); a third thread claims a row meanwhile, row 0 first, and takes
/// every block it can. No block is held by two threads at once; a thread that adopts row 0
/// gets its fresh block at least (the exiting thread's slot lease is given back before its
/// claim), and the remotely freed block too when the free came first; once every thread is
/// done, row 0 serves both of its blocks again (none lost), and every block is home when the
/// pools go.
///
/// Mutations it catches: `RowLease`'s drop releasing the row's claim before its slot leases
/// (the adopter finds the slot still leased and gets nothing), the remote push's CAS weakened to
/// `Relaxed` (the drain follows a link it cannot see yet), and the hand-over of the row weakened
/// on both of its edges (the slot lease's release and the claim's release both `Relaxed`: the
/// adopter gets nothing). Either edge alone orders the hand-over, so weakening one is not a bug.
#[test]
fn loom_row_released_at_exit_while_a_block_is_freed_remotely() {
    let outcomes = crate::sync::model(
        "loom_row_released_at_exit_while_a_block_is_freed_remotely",
        || {
            let core = family();
            let holders: Arc<Holders> = Arc::new(Default::default());
            let exiting = claim(&core, 0).expect("a fresh family has a free row");
            assert_eq!(exiting.row(), 0);
            let out = take(&exiting, &holders).expect("a fresh class pool serves");
            let freer = {
                let (core, holders) = (core.clone(), holders.clone());
                thread::spawn(move || {
                    let own = claim(&core, 1);
                    give_up(out, 0, own.as_ref(), &holders);
                    own.is_some()
                })
            };
            let adopter = {
                let (core, holders) = (core.clone(), holders.clone());
                thread::spawn(move || {
                    let lease = claim(&core, 0)?;
                    let got: Vec<Held> = core::iter::from_fn(|| take(&lease, &holders))
                        .take(BLOCKS + 1)
                        .collect();
                    assert!(got.len() <= BLOCKS, "a row served more blocks than it has");
                    if lease.row() == 0 {
                        assert!(
                            !got.is_empty(),
                            "the adopted row served nothing though its fresh block was free"
                        );
                    }
                    let row = lease.row();
                    for held in got.iter().copied() {
                        give_up(held, row, Some(&lease), &holders);
                    }
                    Some((row, got.len()))
                })
            };
            drop(exiting); // the thread's exit: its row's leases, then its claim, go
            let freer_had_row = freer.join().unwrap();
            let adopted = adopter.join().unwrap();
            let again = claim(&core, 0).expect("every row is free again");
            assert_eq!(again.row(), 0);
            let all: Vec<Held> = core::iter::from_fn(|| take(&again, &holders))
                .take(BLOCKS + 1)
                .collect();
            assert_eq!(all.len(), BLOCKS, "row 0 lost a block");
            for held in all {
                give_up(held, 0, Some(&again), &holders);
            }
            (adopted, freer_had_row)
        },
    );
    let reached = |want: fn(&Outcome) -> bool, what: &str| {
        assert!(
            outcomes.iter().any(want),
            "never reached: {what}: {outcomes:?}"
        );
    };
    reached(
        |o| o.0 == Some((0, BLOCKS)),
        "row 0 adopted after the remote free",
    );
    reached(
        |o| o.0 == Some((0, 1)),
        "row 0 adopted before the remote free",
    );
    reached(|o| o.0.is_none(), "the adopter found every row claimed");
    reached(|o| !o.1, "the freer without a row of its own");
    reached(|o| o.1, "the freer with a row of its own");
}
