//! Tests that reach inside the store: corrupted tier files, the `Spilled` block state, and the
//! pin guards under Miri.

use super::*;
use crate::residency::CpuLocal;
use crate::{BlockState, Pool};

fn small(ram_pages: u64, threads: usize) -> TieredStore<CpuLocal> {
    small_on(ram_pages, threads, IoBackend::Threads).unwrap()
}

fn small_on(
    ram_pages: u64,
    threads: usize,
    io: IoBackend,
) -> Result<TieredStore<CpuLocal>, TieredError> {
    TieredStore::<CpuLocal>::builder()
        .page_size(256)
        .ram_budget(ram_pages * 256)
        .tmpfs("/dev/shm", 1 << 16)
        .io_threads(threads)
        .io(io)
        .build()
}

/// Overwrites the tier copy of `page` with other bytes, as a stray writer would.
fn corrupt(store: &TieredStore<CpuLocal>, page: u32) {
    let mut table = store.table.borrow_mut();
    let copy = table.pages[page as usize].copy.unwrap();
    let file = table.tiers[copy.tier.index()].file().unwrap();
    file.write_page(copy.slot, &[0xa5; 256]).unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "files: Miri's isolation refuses them")]
fn a_corrupt_page_is_an_error_naming_it_never_data() {
    // Inline, I/O threads and the ring: each engine's read path checks the sum.
    for (threads, io) in [
        (0, IoBackend::Threads),
        (1, IoBackend::Threads),
        (1, IoBackend::IoUring),
    ] {
        let store = match small_on(2, threads, io) {
            Ok(store) => store,
            Err(e) => {
                eprintln!("io_uring is refused here, corrupt pages checked on threads: {e}");
                continue;
            }
        };
        let mut pages = Vec::new();
        for i in 0..6u8 {
            let mut page = store.alloc::<u8>().unwrap();
            store.pin_mut(&mut page).unwrap().fill(i);
            pages.push(page);
        }
        store.quiesce();
        corrupt(&store, 1);
        // A prefetch that reads the corrupt page drops it; the pin reads again and reports.
        store.prefetch([&pages[1]]).unwrap();
        store.quiesce();
        assert!(matches!(
            store.location(&pages[1]).unwrap(),
            Location::Tier(_)
        ));
        let err = store.pin(&pages[1]).map(|_| ()).unwrap_err();
        assert!(
            matches!(
                err,
                TieredError::Corrupt {
                    page: PageId(1),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("page 1"), "{err}");
        assert!(store.stats().corrupt_reads >= 1);
        // The other pages are whole.
        for (i, page) in pages.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(store.pin(page).unwrap().iter().all(|&x| x == i as u8));
        }
    }
}

#[test]
fn a_block_handed_to_be_spilled_is_spilled_in_its_state_owner_and_log() {
    let pool = Pool::<CpuLocal>::builder()
        .block_size(256)
        .blocks_per_slot(2)
        .slots(1)
        .log_ownership(crate::events::LogConfig::new())
        .build()
        .unwrap();
    let lease = pool.attach().unwrap();
    let buffer = lease.alloc_zeroed::<u8>(256).unwrap();
    let start = buffer.as_bytes().as_ptr();
    let mut cap = buffer.into_spill_capability();
    assert_eq!(pool.block_state(0, 0), Some(BlockState::Spilled));
    assert_eq!(
        crate::provenance::owner_of(start).map(|o| o.state),
        Some(BlockState::Spilled)
    );
    cap.payload_bytes_mut()[0] = 9; // the worker's view
    let back = cap.accept(&lease).unwrap();
    assert_eq!(back[0], 9);
    assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    drop(back);
    let events = pool.ownership_log().unwrap().events();
    let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
    use crate::events::EventKind::*;
    assert_eq!(kinds, [Allocate, Spilled, Accepted, FreedLocal]);
    assert!(crate::events::validate(events).is_ok());
}

#[test]
fn pins_read_and_write_the_block_in_ram() {
    // No spill: runs under Miri (the pool's region is heap memory there), checking the guards'
    // pointers against the buffers they come from.
    let store = TieredStore::<CpuLocal>::builder()
        .page_size(256)
        .ram_budget(512)
        .io_threads(0)
        .build()
        .unwrap();
    let mut a = store.alloc::<u32>().unwrap();
    let b = store.alloc::<u64>().unwrap();
    {
        let mut w = store.pin_mut(&mut a).unwrap();
        w[0] = 1;
        w[63] = 2;
    }
    let (r1, r2) = (store.pin(&a).unwrap(), store.pin(&a).unwrap());
    let rb = store.pin(&b).unwrap();
    assert_eq!((r1[0], r2[63], r1.len(), rb.len()), (1, 2, 64, 32));
    assert_eq!(rb.iter().sum::<u64>(), 0);
    drop((r1, r2, rb));
    store.free(a).unwrap();
    store.free(b).unwrap();
    assert_eq!(store.stats().ram_pages, 0);
}

#[test]
#[cfg_attr(miri, ignore = "files: Miri's isolation refuses them")]
fn read_ahead_refills_its_window_in_batches_and_restarts_after_a_jump() {
    let store = small(12, 1);
    let mut pages = Vec::new();
    for i in 0..64u8 {
        let mut page = store.alloc::<u8>().unwrap();
        store.pin_mut(&mut page).unwrap().fill(i);
        pages.push(page);
    }
    store.quiesce();
    let next = || store.table.borrow().ahead_next;
    let pin = |i: usize| {
        assert!(store.pin(&pages[i]).unwrap().iter().all(|&x| x == i as u8));
        store.quiesce();
    };
    store.set_read_ahead(4);
    pin(0);
    assert_eq!(next(), 5, "the first pin requests pages 1 ..= 4");
    pin(1);
    assert_eq!(next(), 5, "three pages still ahead: no refill");
    pin(2);
    assert_eq!(
        next(),
        7,
        "two pages ahead (half the window): refilled to page 2 + 4"
    );
    for i in 3..=6 {
        pin(i);
    }
    assert_eq!(next(), 11);
    pin(40);
    assert_eq!(
        next(),
        45,
        "a jump starts a new window after the pinned page"
    );
    let gone = (1..=4)
        .filter(|&i| !matches!(store.location(&pages[i]).unwrap(), Location::Ram { .. }))
        .count();
    assert!(gone >= 3, "the jump's pages took the RAM of pages 1 ..= 4");
    pin(0);
    assert_eq!(next(), 5, "a scan starting over starts a new window");
    let s = store.stats();
    // The new window brought back those of pages 1 ..= 4 that had left RAM: their pins are
    // prefetch hits.
    let hits = s.prefetch_hits;
    for i in 1..=4 {
        pin(i);
    }
    assert_eq!(store.stats().prefetch_hits - hits, gone as u64);
    pin(63);
    assert_eq!(
        next(),
        9,
        "no page past the last: the window is left as it was"
    );
}
