//! Shipping, tracking, completion, auto-split and order events (RULES §6,
//! §4 auto-split, `WatchEvents`).

use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::model::{EventKind, LabelSource, OrderEvent, TrackingEvent, TrackingStatus};

/// Wednesday 2026-01-14 15:30 Central (21:30 UTC).
const WEDNESDAY: i64 = 1_768_426_200;
const HOUR: i64 = 3_600;

fn ship(e: &Engine, id: &str, fc: &str, tracking: &str) -> crate::error::Result<Order> {
    e.ship(ShipRequest {
        order: key(id),
        fc: FcId::new(fc),
        tracking_number: tracking.into(),
        carrier: "UPS".into(),
        label_source: LabelSource::Service,
        at: Timestamp::from_seconds(WEDNESDAY),
    })
}

fn scan(e: &Engine, tracking: &str, status: TrackingStatus, seconds: i64) -> Order {
    e.record_tracking(TrackingScan {
        tracking_number: tracking.into(),
        event: TrackingEvent {
            status,
            time: Timestamp::from_seconds(seconds),
            misdelivery_confirmed: false,
        },
    })
    .expect("known tracking number")
    .0
}

fn on_hand(e: &Engine, sku: &str, fc: &str) -> (u32, u32) {
    let view = e.inventory(&M.into(), &sku.into()).unwrap();
    let row = view.fcs.iter().find(|row| row.fc == FcId::new(fc)).unwrap();
    (row.on_hand, row.reserved)
}

#[test]
fn shipping_consumes_the_reservations_at_that_fc() {
    let e = engine();
    set(&e, "a", "fc1", 5);
    allocate(&e, request("o", 0, &[("a", 3)]));
    assert_eq!(on_hand(&e, "a", "fc1"), (5, 3));

    let order = ship(&e, "o", "fc1", "T1").unwrap();
    assert_eq!(order.status, OrderStatus::Shipped);
    assert!(order.allocations.is_empty());
    assert_eq!(order.shipments()[0].items, [allocation("fc1", "a", 3)]);
    assert_eq!(order.shipments()[0].status(), TrackingStatus::AtDepot);
    assert_eq!(on_hand(&e, "a", "fc1"), (2, 0));
    assert_eq!(e.audit().shipped_units, 3);
    assert_consistent(&e);
}

#[test]
fn a_split_order_ships_once_per_fc_and_is_shipped_after_the_last() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    set(&e, "a", "fc2", 1);
    let order = allocate(&e, partial(request("o", 0, &[("a", 2)])));
    assert_eq!(order.allocations.len(), 2);
    e.mark_picked(&key("o")).unwrap();

    let first = ship(&e, "o", "fc1", "T1").unwrap();
    assert_eq!(first.status, OrderStatus::Processing, "fc2 has not shipped");
    assert!(first.picked, "what stays is still picked");
    assert!(first.extras().completes_at.is_none());
    let second = ship(&e, "o", "fc2", "T2").unwrap();
    assert_eq!(second.status, OrderStatus::Shipped);
    assert_eq!(second.shipments().len(), 2);
    assert_eq!(on_hand(&e, "a", "fc1"), (0, 0));
    assert_eq!(on_hand(&e, "a", "fc2"), (0, 0));
    assert_consistent(&e);
}

#[test]
fn a_partially_allocated_order_ships_what_it_has_and_the_rest_later() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    let order = allocate(&e, partial(request("o", 0, &[("a", 5)])));
    assert_eq!(order.status, OrderStatus::PartiallyAllocated);
    let order = ship(&e, "o", "fc1", "T1").unwrap();
    assert_eq!(order.status, OrderStatus::Exception, "3 units still wait");
    assert_eq!(order.exceptions[0].quantity, 3);

    // Replenished: only the 3 outstanding units are allocated again.
    set(&e, "a", "fc1", 10);
    e.reprocess(None, now());
    let order = e.order(&key("o")).unwrap();
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(order.allocations, [allocation("fc1", "a", 3)]);
    let order = ship(&e, "o", "fc1", "T2").unwrap();
    assert_eq!(order.status, OrderStatus::Shipped);
    assert_eq!(on_hand(&e, "a", "fc1"), (7, 0));
    assert_consistent(&e);
}

#[test]
fn a_count_short_after_a_partial_shipment_puts_only_the_unshipped_units_in_exception() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    set(&e, "b", "fc1", 1);
    set(&e, "a", "fc2", 3);
    let order = allocate(&e, partial(request("o", 0, &[("a", 5), ("b", 1)])));
    assert_eq!(
        order.allocations,
        [
            allocation("fc1", "a", 2),
            allocation("fc2", "a", 3),
            allocation("fc1", "b", 1)
        ]
    );
    ship(&e, "o", "fc1", "T1").unwrap();

    // 3 of a are reserved at fc2, and a count finds 1: the order gives
    // back its reservation. 2 of a and all of b have left already, so
    // what waits for stock is the 3 unshipped units of a, nothing of b.
    let outcome = change(&e, "a", "fc2", CountChange::Set(1)).unwrap();
    assert_eq!(outcome.shortage_orders, vec![OrderId::new("o")]);
    let order = e.order(&key("o")).unwrap();
    assert_eq!(order.status, OrderStatus::Exception);
    assert!(order.allocations.is_empty());
    assert_eq!(
        order.exceptions,
        [exception("a", 3, ExceptionReason::InventoryShortage)]
    );
    assert_consistent(&e);

    // Restocked, reprocessing allocates exactly those 3 again.
    set(&e, "a", "fc2", 10);
    e.reprocess(None, now());
    let order = e.order(&key("o")).unwrap();
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(order.allocations, [allocation("fc2", "a", 3)]);
}

#[test]
fn what_cannot_be_shipped_is_refused_and_changes_nothing() {
    let e = engine();
    set(&e, "a", "fc1", 5);
    allocate(&e, request("o", 0, &[("a", 1)]));
    allocate(&e, request("held", 0, &[("a", 1)]));
    e.hold(&key("held"), "fraud review".into()).unwrap();
    allocate(&e, request("gone", 0, &[("a", 1)]));
    e.cancel(&key("gone")).unwrap();
    allocate(&e, request("waiting", 0, &[("b", 1)]));

    let refused = |result: crate::error::Result<Order>| {
        assert!(
            matches!(result, Err(Error::FailedPrecondition(_))),
            "{result:?}"
        )
    };
    refused(ship(&e, "held", "fc1", "T1"));
    refused(ship(&e, "gone", "fc1", "T1"));
    refused(ship(&e, "waiting", "fc1", "T1"));
    refused(ship(&e, "o", "fc9", "T1"));
    assert!(matches!(
        ship(&e, "nope", "fc1", "T1"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(on_hand(&e, "a", "fc1"), (5, 1));

    // The refusals did not use up the tracking number.
    ship(&e, "o", "fc1", "T1").unwrap();
    // The same shipment again is answered, not repeated.
    let again = ship(&e, "o", "fc1", "T1").unwrap();
    assert_eq!(again.shipments().len(), 1);
    assert_eq!(on_hand(&e, "a", "fc1"), (4, 0));
    // Another order cannot reuse the number; a shipped order cannot be cancelled.
    allocate(&e, request("p", 0, &[("a", 1)]));
    assert!(matches!(
        ship(&e, "p", "fc1", "T1"),
        Err(Error::AlreadyExists(_))
    ));
    refused(e.cancel(&key("o")));
    refused(e.hold(&key("o"), "late".into()));
    assert_consistent(&e);
}

#[test]
fn tracking_scans_advance_the_shipment_and_are_findable_by_number() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    allocate(&e, request("o", 0, &[("a", 1)]));
    ship(&e, "o", "fc1", "T1").unwrap();

    let order = scan(&e, "T1", TrackingStatus::PickedUp, WEDNESDAY + 20 * HOUR);
    assert_eq!(order.shipments()[0].status(), TrackingStatus::PickedUp);
    let version = order.version;
    // A duplicate changes nothing, not even the version.
    let order = scan(&e, "T1", TrackingStatus::PickedUp, WEDNESDAY + 20 * HOUR);
    assert_eq!(order.version, version);

    let (found, index) = e.shipment("T1").unwrap();
    assert_eq!(found.request.order_id, OrderId::new("o"));
    assert_eq!(found.shipments()[index].events.len(), 2);
    assert!(matches!(e.shipment("T404"), Err(Error::NotFound(_))));
}

#[test]
fn shipped_orders_read_completed_from_six_central_the_next_day() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    allocate(&e, request("o", 0, &[("a", 1)]));
    let order = ship(&e, "o", "fc1", "T1").unwrap();
    // Labelled Wednesday 15:30 CST: completed Thursday 06:00 CST = 12:00 UTC.
    let thursday_six = Timestamp::from_seconds(WEDNESDAY + 14 * HOUR + 30 * 60);
    let just_before = Timestamp::from_seconds(thursday_six.seconds - 1);
    assert_eq!(order.extras().completes_at, Some(thursday_six));
    assert_eq!(order.status_at(just_before), OrderStatus::Shipped);
    assert_eq!(order.status_at(thursday_six), OrderStatus::Completed);

    // The sweep records it once it is due, and only then.
    assert_eq!(e.complete_due(just_before), 0);
    assert_eq!(e.complete_due(thursday_six), 1);
    assert_eq!(e.order(&key("o")).unwrap().status, OrderStatus::Completed);
    assert_eq!(e.complete_due(thursday_six), 0);
}

#[test]
fn a_backdated_read_answers_the_same_before_and_after_the_sweep() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    allocate(&e, request("o", 0, &[("a", 1)]));
    ship(&e, "o", "fc1", "T1").unwrap();
    let thursday_six = Timestamp::from_seconds(WEDNESDAY + 14 * HOUR + 30 * 60);
    let just_before = Timestamp::from_seconds(thursday_six.seconds - 1);
    let unswept = e.order(&key("o")).unwrap();
    assert_eq!(unswept.status_at(just_before), OrderStatus::Shipped);

    // The sweep runs late (as the server's does, within a minute); a read
    // as of before the completion time must not see what it recorded.
    assert_eq!(
        e.complete_due(Timestamp::from_seconds(thursday_six.seconds + 60)),
        1
    );
    let swept = e.order(&key("o")).unwrap();
    assert_eq!(swept.status, OrderStatus::Completed);
    assert_eq!(swept.status_at(just_before), OrderStatus::Shipped);
    assert_eq!(swept.status_at(thursday_six), OrderStatus::Completed);
}

/// Collects published events.
#[derive(Default)]
struct Recorder(Mutex<Vec<OrderEvent>>);

impl EventSink for Recorder {
    fn wants_events(&self) -> bool {
        true
    }
    fn publish(&self, event: OrderEvent, _lsn: u64) {
        self.0.lock().push(event);
    }
}

#[test]
fn an_orders_whole_life_is_announced_in_order() {
    let e = engine();
    let recorder = Arc::new(Recorder::default());
    assert!(e.attach_event_sink(recorder.clone()).is_ok());
    set(&e, "a", "fc1", 1);

    allocate(&e, request("o", 0, &[("a", 1)]));
    e.hold(&key("o"), "check address".into()).unwrap();
    e.release(&key("o"), now()).unwrap();
    e.mark_picked(&key("o")).unwrap();
    ship(&e, "o", "fc1", "T1").unwrap();
    scan(&e, "T1", TrackingStatus::PickedUp, WEDNESDAY + 20 * HOUR);
    scan(&e, "T1", TrackingStatus::PickedUp, WEDNESDAY + 20 * HOUR);
    e.complete_due(Timestamp::from_seconds(WEDNESDAY + 48 * HOUR));

    let events = recorder.0.lock().clone();
    let kinds: Vec<EventKind> = events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Allocated,
            EventKind::Held,
            EventKind::Released,
            EventKind::Allocated,
            EventKind::Shipped,
            EventKind::TrackingStatusChanged,
            EventKind::Completed,
        ]
    );
    assert_eq!(events[4].tracking_number.as_deref(), Some("T1"));
    assert_eq!(events[5].tracking_status, Some(TrackingStatus::PickedUp));
    assert_eq!(events[6].status, OrderStatus::Completed);
    let sequences: Vec<u64> = events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, (1..=7).collect::<Vec<_>>(), "numbered in order");
    assert!(
        events
            .windows(2)
            .all(|pair| pair[0].order_version <= pair[1].order_version),
        "versions never go backwards: {events:?}"
    );
}

fn tagging(e: &Engine, tags: &[(&str, &str)]) {
    let mut merchant = Merchant::with_defaults(M.into());
    merchant.split_tags = vec!["frozen".into(), "hazmat".into()];
    e.upsert_merchant(merchant);
    let skus: Vec<(Sku, SkuInfo)> = tags
        .iter()
        .map(|&(sku, tag)| {
            let info = SkuInfo {
                registered: true,
                tags: vec![tag.into()],
                replenishable: false,
            };
            (sku.into(), info)
        })
        .collect();
    e.register_skus(&M.into(), &skus);
}

#[test]
fn auto_split_makes_a_child_per_tag_each_allocated_on_its_own() {
    let e = engine();
    tagging(
        &e,
        &[("ice", "frozen"), ("acid", "hazmat"), ("soap", "plain")],
    );
    set(&e, "ice", "fc1", 1);
    set(&e, "soap", "fc2", 1);
    // No acid anywhere: only the hazmat child waits.
    let mixed = request("o", 0, &[("soap", 1), ("acid", 2), ("ice", 1)]);
    let imported = e.allocate(mixed.clone(), now()).unwrap();

    let parent = &imported.order;
    assert_eq!(
        parent.request.lines.len(),
        1,
        "the parent keeps the untagged line"
    );
    assert_eq!(parent.status, OrderStatus::Processing);
    assert_eq!(parent.allocations, [allocation("fc2", "soap", 1)]);
    let child_ids: Vec<&str> = parent
        .extras()
        .children
        .iter()
        .map(OrderId::as_str)
        .collect();
    assert_eq!(
        child_ids,
        ["o/frozen", "o/hazmat"],
        "in the merchant's tag order"
    );

    let [frozen, hazmat] = &imported.children[..] else {
        panic!("two children expected: {:?}", imported.children);
    };
    assert_eq!(frozen.extras().parent, Some(OrderId::new("o")));
    assert_eq!(frozen.status, OrderStatus::Processing);
    assert_eq!(frozen.allocations, [allocation("fc1", "ice", 1)]);
    assert_eq!(hazmat.status, OrderStatus::Exception);

    // A retry answers with the same states and reserves nothing more.
    let again = e.allocate(mixed, now()).unwrap();
    assert_eq!(again.order, imported.order);
    assert_eq!(again.children, imported.children);
    assert_eq!(e.order(&key("o/frozen")).unwrap(), *frozen);
    assert_consistent(&e);
}

#[test]
fn an_order_with_only_tagged_lines_leaves_an_empty_parent() {
    let e = engine();
    tagging(&e, &[("ice", "frozen")]);
    set(&e, "ice", "fc1", 1);
    let imported = e.allocate(request("o", 0, &[("ice", 1)]), now()).unwrap();
    assert!(imported.order.request.lines.is_empty());
    assert!(imported.order.allocations.is_empty());
    assert_eq!(imported.children.len(), 1);
    assert_eq!(imported.children[0].status, OrderStatus::Processing);
}

#[test]
fn a_split_that_would_collide_with_an_existing_order_is_refused() {
    let e = engine();
    tagging(&e, &[("ice", "frozen")]);
    set(&e, "ice", "fc1", 5);
    allocate(&e, request("o/frozen", 0, &[("ice", 1)]));
    let refused = e.allocate(request("o", 0, &[("ice", 1)]), now());
    assert!(
        matches!(refused, Err(Error::AlreadyExists(_))),
        "{refused:?}"
    );
    assert!(e.order(&key("o")).is_err(), "nothing stored");
    let long_id = "x".repeat(125);
    let refused = e.allocate(request(&long_id, 0, &[("ice", 1)]), now());
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );
}
