//! `tracing` events at pool build (with each slot's backing), exhaustion and fallback, seen by
//! a subscriber.

mod observe_support;

use std::fmt::{Debug, Write};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use umrf::Exhaustion;

/// Collects every span name and event (target, fields) as a line of text.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {} ", span.metadata().name()));
        span.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(format!("{} ", event.metadata().target()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn build_backing_exhaustion_and_fallback_are_traced() {
    let collect = Collect::default();
    tracing::subscriber::with_default(collect.clone(), || {
        let spare = observe_support::pool("spare", 64, 1, 1);
        let main = observe_support::builder("main", 64, 1, 2)
            .exhaustion(Exhaustion::Fallback(spare))
            .build()
            .unwrap();
        let lease = main.attach().unwrap();
        let _a = lease.alloc::<u8>(1).unwrap();
        let _b = lease.alloc::<u8>(1).unwrap();
    });
    let lines = collect.0.lock().unwrap().clone();
    let has = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "span umrf.pool.build",
            "pool=main",
            "slots=2",
            "block_size=64"
        ]),
        "{lines:#?}"
    );
    assert!(
        has(&[
            "umrf::backing",
            "slot=1",
            "mechanism=",
            "page_size=",
            "reason="
        ]),
        "{lines:#?}"
    );
    assert!(
        has(&["umrf::pool", "pool built", "logging=false"]),
        "{lines:#?}"
    );
    assert!(
        has(&["umrf::pool", "slot exhausted", "pool=main", "capacity=1"]),
        "{lines:#?}"
    );
    assert!(
        has(&[
            "umrf::pool",
            "fallback pool",
            "fallback=spare",
            "fallback_slot=0"
        ]),
        "{lines:#?}"
    );
}
