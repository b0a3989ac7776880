//! Block states stay true when a block's trip counter wraps around, seen through the public
//! queries (`Pool::block_state`, `provenance::owner_of`) on a real pool.

use super::state::LAST_TRIP;
use super::{BlockState, Pool};
use crate::provenance;
use crate::residency::CpuLocal;

#[test]
fn a_block_past_the_trip_wrap_is_reported_where_it_is() {
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(2)
        .build()
        .unwrap();
    let home = pool.attach_slot(0).unwrap();
    // One journey to slot 1, freed there: the block's remote word keeps that journey's trip.
    let cap = home.alloc_from_slice(&[7u8]).unwrap().into_capability();
    let away = pool.clone();
    std::thread::spawn(move || drop(cap.accept(&away.attach_slot(1).unwrap()).unwrap()))
        .join()
        .unwrap();
    let mut buf = home.alloc::<u8>(1).unwrap(); // drained home: the same, only block
    let addr = buf.as_ptr();
    let owned = Some(BlockState::Owned { slot: 0 });
    assert_eq!(pool.block_state(0, 0), owned);
    pool.raw().inner().slots[0]
        .states()
        .start_trips_at(0, LAST_TRIP - 4);
    // Capabilities made and accepted at home, across the wrap and past the old journey's trip.
    for round in 0..8 {
        let cap = buf.into_capability();
        assert_eq!(
            pool.block_state(0, 0),
            Some(BlockState::InFlight),
            "round {round}"
        );
        buf = cap.accept(&home).unwrap();
        assert_eq!(pool.block_state(0, 0), owned, "round {round}");
        let owner = provenance::owner_of(addr).unwrap();
        assert_eq!(owner.state, BlockState::Owned { slot: 0 }, "round {round}");
    }
}

/// Blocks freed remotely on the last trip of a lap come home with a wrap of their trips, which
/// resets their remote words while the drain walks the remote queue: every queued block still
/// comes home, and is handed out again.
#[test]
fn blocks_whose_trips_wrap_on_the_way_home_all_come_home() {
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(3)
        .slots(2)
        .build()
        .unwrap();
    let home = pool.attach_slot(0).unwrap();
    let bufs: Vec<_> = (0..3u8)
        .map(|k| home.alloc_from_slice(&[k]).unwrap())
        .collect();
    let states = pool.raw().inner().slots[0].states();
    for block in 0..3 {
        // Departure takes the last trip of the lap; the return home wraps.
        states.start_trips_at(block, LAST_TRIP - 1);
    }
    // Sent away and freed there, block 0 last: the queue's head, its link read first.
    let caps: Vec<_> = bufs
        .into_iter()
        .rev()
        .map(|b| b.into_capability())
        .collect();
    let away = pool.clone();
    std::thread::spawn(move || {
        let lease = away.attach_slot(1).unwrap();
        for cap in caps {
            drop(cap.accept(&lease).unwrap());
        }
    })
    .join()
    .unwrap();
    let again: Vec<_> = (0..3).map(|_| home.alloc::<u8>(1).unwrap()).collect();
    let mut blocks: Vec<_> = (0..3)
        .filter(|&b| pool.block_state(0, b) == Some(BlockState::Owned { slot: 0 }))
        .collect();
    blocks.sort_unstable();
    assert_eq!(
        blocks,
        [0, 1, 2],
        "every block came home and was handed out again"
    );
    assert!(home.alloc::<u8>(1).is_err(), "three blocks, all out");
    for block in 0..3 {
        assert_eq!(states.trip(block), 0, "block {block}'s trips wrapped");
    }
    drop(again);
    assert_eq!(pool.stats().in_use(), 0);
}
