//! The derives: what they generate, observed through the traits.

use umrf::residency::{CpuLocal, Cxl, Hugepage, NumaNode, Residency, Strategy};
use umrf::typenum::U3;
use umrf::{Capability, Message, Pool, Transferable};

#[derive(umrf::Residency)]
#[residency(like = Hugepage, name = "staging")]
struct Staging;

#[derive(umrf::Residency)]
#[residency(like = NumaNode<U3>)]
struct Far;

#[derive(umrf::Residency)]
#[residency(like = Cxl, name = "capacity-tier")]
struct CapacityTier {}

#[test]
fn residency_derive_copies_the_strategy_under_its_own_name() {
    assert_eq!(
        (Staging::NAME, Staging::STRATEGY),
        ("staging", Strategy::Hugepage)
    );
    assert_eq!(
        (Far::NAME, Far::STRATEGY),
        ("Far", Strategy::Numa { node: 3 })
    );
    assert_eq!(
        (CapacityTier::NAME, CapacityTier::STRATEGY),
        ("capacity-tier", Strategy::Cxl)
    );
    let pool = Pool::<Staging>::builder()
        .block_size(64)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .unwrap();
    assert_eq!(pool.residency_name(), "staging");
    assert_eq!(pool.backing()[0].strategy, Strategy::Hugepage);
}

#[derive(Message)]
enum Event<T> {
    Tick,
    Data {
        seq: u64,
        payload: Capability<u8, CpuLocal>,
    },
    Custom(T),
}

#[test]
fn message_derive_carries_capabilities_through_a_mailbox() {
    fn transferable<M: Transferable>() {}
    transferable::<Event<String>>();
    let pool = Pool::<CpuLocal>::builder()
        .block_size(64)
        .blocks_per_slot(2)
        .slots(2)
        .build()
        .unwrap();
    let (tx, rx) = umrf::mailbox::<Event<String>>(4);
    let lease = pool.attach().unwrap();
    tx.send(Event::Tick).unwrap();
    tx.send(Event::Data {
        seq: 1,
        payload: lease.alloc_from_slice(b"hi").unwrap().into_capability(),
    })
    .unwrap();
    tx.send(Event::Custom("done".into())).unwrap();
    let q = pool.clone();
    let seen = std::thread::spawn(move || {
        let there = q.attach().unwrap();
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            seen.push(match event {
                Event::Tick => "tick".to_string(),
                Event::Data { seq, payload } => {
                    format!("{seq}:{:?}", &payload.accept(&there).unwrap()[..])
                }
                Event::Custom(s) => s,
            });
        }
        seen
    })
    .join()
    .unwrap();
    assert_eq!(seen, ["tick", "1:[104, 105]", "done"]);
    assert_eq!(pool.stats().in_use(), 0);
}
