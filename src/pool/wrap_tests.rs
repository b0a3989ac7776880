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
