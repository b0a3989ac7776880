//! loom models of the page map's publication: a region registered by one thread and looked up
//! by another, and a region unregistered (and its addresses registered again) while another
//! thread looks it up.
//!
//! The page map never reads the records its words point to, so the models store records of
//! their own behind the pointers: a loom cell written before the region is registered and read
//! by whichever thread finds the entry. A lookup that found the word without the insert's
//! `Release` and the lookup's `Acquire` ordering it after that write is reported by loom as a
//! data race (a torn or stale record). Under loom the map covers the first 32 KiB of addresses
//! (four leaves of two chunks), so the models use small made-up addresses.

use core::ptr::NonNull;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use super::{CHUNK_SHIFT, Entry, get, insert, remove};

const CHUNK: usize = 1 << CHUNK_SHIFT;

/// What a page-map word points to in the models: a value written before publication.
struct Record {
    value: UnsafeCell<u64>,
}

// SAFETY: the cell is written by one thread before the record is published and only read
// afterwards; loom checks exactly that ordering (a violation is its data-race report).
unsafe impl Sync for Record {}
// SAFETY: as for Sync.
unsafe impl Send for Record {}

impl Record {
    fn new() -> Arc<Record> {
        Arc::new(Record {
            value: UnsafeCell::new(0),
        })
    }

    /// Writes the record's value: the part of a region's record made before it is mapped.
    fn fill(&self, value: u64) {
        // SAFETY: only the registering thread writes, before `insert` publishes the record.
        self.value.with_mut(|v| unsafe { *v = value });
    }
}

/// The entry of `record`, tagged as a large slot or not.
fn entry_of(record: &Record, large: bool) -> Entry {
    let ptr = NonNull::from(record);
    if large {
        Entry::Large(ptr.cast())
    } else {
        Entry::Class(ptr.cast())
    }
}

/// The value of the record behind a found entry, and whether it came back as a large slot.
fn read(entry: Entry) -> (u64, bool) {
    let (ptr, large) = match entry {
        Entry::Class(cell) => (cell.cast::<Record>(), false),
        Entry::Large(slot) => (slot.cast::<Record>(), true),
    };
    // SAFETY: every record of a model lives (in an `Arc` the model holds) until its end.
    let record = unsafe { ptr.as_ref() };
    // SAFETY: a read; loom reports it as a race unless it is ordered after the record's fill.
    let value = record.value.with(|v| unsafe { *v });
    (value, large)
}

/// Two threads each register a region of one leaf (chunks 2 and 3, so the leaf's lazy creation
/// races too: one of them may lose the CAS and free its leaf) while the main thread looks both
/// up. Each lookup finds nothing or the whole record, never a stale one; after the joins both
/// are found.
///
/// Mutations it catches: the insert's word store, or the lookup's word load, weakened to
/// `Relaxed` (loom: a data race on the record), and the leaf's publishing CAS weakened to
/// `Relaxed` (loom: a leaf's words used without their construction ordered before).
#[test]
fn loom_pagemap_lookup_sees_nothing_or_the_whole_entry() {
    let outcomes = crate::sync::model(
        "loom_pagemap_lookup_sees_nothing_or_the_whole_entry",
        || {
            let records = [Record::new(), Record::new()];
            assert!(get(0).is_none()); // makes this execution's map before the threads start
            let registrars: Vec<_> = records
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    let record = record.clone();
                    thread::spawn(move || {
                        record.fill(10 + i as u64);
                        insert((2 + i) * CHUNK, CHUNK, entry_of(&record, false))
                            .expect("the model's addresses are inside the map");
                    })
                })
                .collect();
            // One lookup (of region 1): a second load of the same leaf word by this thread would
            // hide the first from loom's exploration (tokio-rs/loom#392).
            // Lets the registrars run first: without a yield here, loom 0.7 explored no execution
            // in which they did (the lookup always found nothing).
            thread::yield_now();
            let seen = get(3 * CHUNK + 8).map(read);
            assert!(
                seen.is_none_or(|found| found == (11, false)),
                "a lookup found a partial entry: {seen:?}"
            );
            for registrar in registrars {
                registrar.join().unwrap();
            }
            for i in 0..2 {
                assert_eq!(
                    get((2 + i) * CHUNK + CHUNK - 1).map(read),
                    Some((10 + i as u64, false)),
                    "a registered region was not found after its registration"
                );
                assert!(get((2 + i) * CHUNK - 1).is_none_or(|e| read(e).0 != 10 + i as u64));
            }
            seen.is_some()
        },
    );
    for reached in [false, true] {
        assert!(
            outcomes.contains(&reached),
            "the lookups never saw {reached:?}: {outcomes:?}"
        );
    }
}

/// A region (record X, a class cell) is unregistered by one thread, which then registers the
/// same addresses again for another region (record Z, a large slot), as when the operating
/// system hands the range out again; the main thread looks the address up meanwhile. It finds
/// X, nothing, or all of Z; once it knows the removal happened (a flag the remover sets after
/// it), never X.
///
/// Mutations it catches: the removal step left out (the region is still found after its last
/// removal), and the insert's word store or the lookup's load weakened to `Relaxed` (a data
/// race on Z's record).
#[test]
fn loom_pagemap_unregister_against_lookups() {
    let outcomes = crate::sync::model("loom_pagemap_unregister_against_lookups", || {
        let (x, z) = (Record::new(), Record::new());
        x.fill(1);
        insert(2 * CHUNK, 2 * CHUNK, entry_of(&x, false)).unwrap();
        let removed = Arc::new(AtomicBool::new(false));
        let remover = {
            let (z, removed) = (z.clone(), removed.clone());
            thread::spawn(move || {
                remove(2 * CHUNK, 2 * CHUNK);
                removed.store(true, Ordering::Release);
                z.fill(2);
                insert(2 * CHUNK, 2 * CHUNK, entry_of(&z, true)).unwrap();
            })
        };
        let after_removal = removed.load(Ordering::Acquire);
        let seen = get(3 * CHUNK + 100).map(read);
        assert!(
            matches!(seen, None | Some((1, false)) | Some((2, true))),
            "a lookup found a partial entry: {seen:?}"
        );
        assert!(
            !(after_removal && seen == Some((1, false))),
            "a lookup ordered after the removal still found the removed region"
        );
        remover.join().unwrap();
        assert_eq!(get(2 * CHUNK).map(read), Some((2, true)));
        remove(2 * CHUNK, 2 * CHUNK);
        assert!(get(2 * CHUNK).is_none() && get(3 * CHUNK).is_none());
        seen.map(|(value, _)| value)
    });
    for reached in [None, Some(1), Some(2)] {
        assert!(
            outcomes.contains(&reached),
            "the lookup never saw {reached:?}: {outcomes:?}"
        );
    }
}
