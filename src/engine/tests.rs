//! Engine behaviour, rule by rule (RULES §3, §4, §5 hold/release, §7).

use super::reprocess::PassCounts;
use super::*;
use crate::error::Error;
use crate::ledger::SkuInfo;
use crate::model::OrderId;
use crate::model::{
    Acknowledgement, Allocation, Channel, ExceptionLine, ExceptionReason, FcId, MarketplaceStatus,
    Order, OrderKey, OrderLine, OrderRequest, OrderStatus, Sku, Timestamp,
};

const M: &str = "merchant";

fn engine() -> Engine {
    Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    })
}

fn now() -> Timestamp {
    Timestamp::from_seconds(1_700_000_000)
}

/// One count or adjustment of merchant `M`'s SKU at an FC.
fn change(
    engine: &Engine,
    sku: &str,
    fc: &str,
    change: CountChange,
) -> crate::error::Result<InventoryOutcome> {
    let change = InventoryChange {
        sku: sku.into(),
        fc: FcId::new(fc),
        change,
    };
    engine.update_inventory(&M.into(), &[change], now())
}

fn set(engine: &Engine, sku: &str, fc: &str, units: u64) {
    change(engine, sku, fc, CountChange::Set(units)).expect("count accepted");
}

fn request(id: &str, age: i64, lines: &[(&str, u32)]) -> OrderRequest {
    OrderRequest::new(
        M.into(),
        id.into(),
        Timestamp::from_seconds(1_600_000_000 + age),
        lines
            .iter()
            .map(|&(sku, quantity)| OrderLine {
                sku: sku.into(),
                quantity,
            })
            .collect(),
    )
}

fn partial(mut request: OrderRequest) -> OrderRequest {
    request.partial_shipments = Some(true);
    request
}

fn allocate(engine: &Engine, request: OrderRequest) -> Order {
    engine
        .allocate(request, now())
        .expect("order accepted")
        .order
}

fn allocation(fc: &str, sku: &str, quantity: u32) -> Allocation {
    Allocation {
        fc: FcId::new(fc),
        sku: sku.into(),
        quantity,
    }
}

fn exception(sku: &str, quantity: u32, reason: ExceptionReason) -> ExceptionLine {
    ExceptionLine {
        sku: sku.into(),
        quantity,
        reason,
    }
}

fn key(id: &str) -> OrderKey {
    OrderKey::new(&M.into(), &id.into())
}

fn available(engine: &Engine, sku: &str, fc: &str) -> u32 {
    engine
        .inventory(&M.into(), &sku.into())
        .unwrap()
        .fcs
        .iter()
        .find(|row| row.fc == FcId::new(fc))
        .map_or(0, crate::ledger::FcStock::unreserved)
}

fn assert_consistent(engine: &Engine) {
    let audit = engine.audit();
    assert!(audit.violations.is_empty(), "{:#?}", audit.violations);
    assert_eq!(audit.reserved_units, audit.allocated_units);
}

#[test]
fn one_fc_fills_the_order() {
    let e = engine();
    set(&e, "a", "fc1", 5);
    set(&e, "b", "fc1", 5);
    let order = allocate(&e, request("o1", 0, &[("a", 2), ("b", 3)]));
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(
        order.allocations,
        vec![allocation("fc1", "a", 2), allocation("fc1", "b", 3)]
    );
    assert_eq!(available(&e, "a", "fc1"), 3);
    assert_consistent(&e);
}

#[test]
fn fc_choice_follows_merchant_priority_then_fc_id() {
    let e = engine();
    for fc in ["fc-a", "fc-b", "fc-c"] {
        set(&e, "a", fc, 10);
    }
    // No priority list: the smallest FC id.
    assert_eq!(
        allocate(&e, request("o1", 0, &[("a", 1)])).allocations[0].fc,
        FcId::new("fc-a")
    );
    let mut merchant = Merchant::with_defaults(M.into());
    merchant.fc_priority = vec![FcId::new("fc-c")];
    e.upsert_merchant(merchant);
    // Listed FCs first.
    assert_eq!(
        allocate(&e, request("o2", 0, &[("a", 1)])).allocations[0].fc,
        FcId::new("fc-c")
    );
    set(&e, "a", "fc-c", 1);
    // fc-c cannot fill 2 units; unlisted FCs follow by id.
    assert_eq!(
        allocate(&e, request("o3", 0, &[("a", 2)])).allocations[0].fc,
        FcId::new("fc-a")
    );
}

#[test]
fn split_across_fewest_fcs_when_partial_shipments_allowed() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    set(&e, "b", "fc1", 1);
    set(&e, "a", "fc2", 3);
    set(&e, "b", "fc3", 3);
    let order = allocate(&e, partial(request("o1", 0, &[("a", 3), ("b", 3)])));
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(
        order.allocations,
        vec![allocation("fc2", "a", 3), allocation("fc3", "b", 3)]
    );
    assert_consistent(&e);
}

#[test]
fn merchant_setting_allows_split_and_order_setting_overrides_it() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    set(&e, "a", "fc2", 1);
    let mut merchant = Merchant::with_defaults(M.into());
    merchant.partial_shipments = true;
    e.upsert_merchant(merchant);
    assert_eq!(
        allocate(&e, request("o1", 0, &[("a", 2)])).status,
        OrderStatus::Processing
    );
    // Counts are absolute and include o1's reserved unit at each FC.
    set(&e, "a", "fc1", 2);
    set(&e, "a", "fc2", 2);
    let mut refused = request("o2", 0, &[("a", 2)]);
    refused.partial_shipments = Some(false);
    let order = allocate(&e, refused);
    assert_eq!(order.status, OrderStatus::Exception);
    assert_eq!(
        order.exceptions,
        vec![exception("a", 2, ExceptionReason::SplitNotAllowed)]
    );
}

#[test]
fn split_needed_without_partial_shipments_is_split_not_allowed() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    set(&e, "a", "fc2", 1);
    let order = allocate(&e, request("o1", 0, &[("a", 2)]));
    assert_eq!(order.status, OrderStatus::Exception);
    assert_eq!(
        order.exceptions,
        vec![exception("a", 2, ExceptionReason::SplitNotAllowed)]
    );
    assert!(order.allocations.is_empty());
    assert_eq!(
        available(&e, "a", "fc1"),
        1,
        "a failed order reserves nothing"
    );
}

#[test]
fn network_short_with_partial_shipments_is_partially_allocated() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    set(&e, "b", "fc1", 1);
    let order = allocate(&e, partial(request("o1", 0, &[("a", 5), ("b", 1)])));
    assert_eq!(order.status, OrderStatus::PartiallyAllocated);
    assert_eq!(
        order.allocations,
        vec![allocation("fc1", "a", 2), allocation("fc1", "b", 1)]
    );
    assert_eq!(
        order.exceptions,
        vec![exception(
            "a",
            3,
            ExceptionReason::InsufficientNetworkInventory
        )]
    );
    assert_consistent(&e);
}

#[test]
fn network_short_without_partial_shipments_is_an_exception() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    let order = allocate(&e, request("o1", 0, &[("a", 5)]));
    assert_eq!(order.status, OrderStatus::Exception);
    assert_eq!(
        order.exceptions,
        vec![exception(
            "a",
            5,
            ExceptionReason::InsufficientNetworkInventory
        )]
    );
    assert_eq!(available(&e, "a", "fc1"), 2);
}

#[test]
fn nothing_available_is_an_exception_even_with_partial_shipments() {
    let e = engine();
    set(&e, "a", "fc1", 0);
    let order = allocate(&e, partial(request("o1", 0, &[("a", 1)])));
    assert_eq!(order.status, OrderStatus::Exception);
    assert_eq!(
        order.exceptions,
        vec![exception(
            "a",
            1,
            ExceptionReason::InsufficientNetworkInventory
        )]
    );
}

#[test]
fn assigned_fc_ships_whole_or_waits_never_elsewhere() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    set(&e, "a", "fc2", 10);
    let mut assigned = partial(request("o1", 0, &[("a", 2)]));
    assigned.assigned_fc = Some(FcId::new("fc1"));
    let order = allocate(&e, assigned);
    assert_eq!(order.status, OrderStatus::Exception);
    assert_eq!(
        order.exceptions,
        vec![exception("a", 2, ExceptionReason::InsufficientAtAssignedFc)]
    );
    assert_eq!(available(&e, "a", "fc2"), 10);

    let mut assigned = request("o2", 0, &[("a", 2)]);
    assigned.assigned_fc = Some(FcId::new("fc2"));
    assert_eq!(
        allocate(&e, assigned).allocations,
        vec![allocation("fc2", "a", 2)]
    );
}

#[test]
fn hold_reason_on_import_puts_the_order_on_hold() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    let mut held = request("o1", 0, &[("a", 1)]);
    held.hold_reason = Some("address check".into());
    let order = allocate(&e, held);
    assert_eq!(order.status, OrderStatus::OnHold);
    assert_eq!(order.hold_reason(), Some("address check"));
    assert_eq!(available(&e, "a", "fc1"), 1);
    // Releasing allocates it, keeping its purchase time.
    let released = e.release(&key("o1"), now()).unwrap();
    assert_eq!(released.status, OrderStatus::Processing);
    assert_eq!(released.request.purchase_time, order.request.purchase_time);
    assert_eq!(available(&e, "a", "fc1"), 0);
}

#[test]
fn unknown_sku_on_a_direct_order_puts_it_on_hold() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    let order = allocate(&e, request("o1", 0, &[("a", 1), ("ghost", 1)]));
    assert_eq!(order.status, OrderStatus::OnHold);
    assert!(order.hold_reason().unwrap().contains("ghost"));
    assert_eq!(available(&e, "a", "fc1"), 1);
    // Registering the SKU (no stock) makes it known: release decides normally.
    e.register_skus(&M.into(), &[("ghost".into(), SkuInfo::default())]);
    let released = e.release(&key("o1"), now()).unwrap();
    assert_eq!(released.status, OrderStatus::Exception);
}

#[test]
fn identical_retry_returns_the_stored_state_and_reserves_nothing_more() {
    let e = engine();
    set(&e, "a", "fc1", 5);
    let first = allocate(&e, request("o1", 0, &[("a", 2)]));
    let again = allocate(&e, request("o1", 0, &[("a", 2)]));
    assert_eq!(first, again);
    assert_eq!(available(&e, "a", "fc1"), 3);
    let different = e.allocate(request("o1", 0, &[("a", 3)]), now());
    assert!(matches!(different, Err(Error::AlreadyExists(_))));
    assert_eq!(available(&e, "a", "fc1"), 3);
}

#[test]
fn hold_frees_stock_for_others_and_cancel_gives_it_back() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    allocate(&e, partial(request("o1", 0, &[("a", 3)])));
    assert_eq!(available(&e, "a", "fc1"), 0);
    let held = e.hold(&key("o1"), "make room".into()).unwrap();
    assert_eq!(held.status, OrderStatus::OnHold);
    assert!(held.allocations.is_empty());
    assert_eq!(available(&e, "a", "fc1"), 2);
    let other = allocate(&e, request("o2", 1, &[("a", 2)]));
    assert_eq!(other.status, OrderStatus::Processing);
    let cancelled = e.cancel(&key("o2")).unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(available(&e, "a", "fc1"), 2);
    // Cancelling twice is a no-op; releasing a cancelled order is refused.
    assert_eq!(e.cancel(&key("o2")).unwrap().version, cancelled.version);
    assert!(matches!(
        e.release(&key("o2"), now()),
        Err(Error::FailedPrecondition(_))
    ));
    assert_consistent(&e);
}

#[test]
fn picked_orders_cannot_be_held_and_counts_cannot_go_below_picked_units() {
    let e = engine();
    set(&e, "a", "fc1", 3);
    allocate(&e, request("o1", 0, &[("a", 2)]));
    let picked = e.mark_picked(&key("o1")).unwrap();
    assert!(picked.picked);
    assert!(matches!(
        e.hold(&key("o1"), "x".into()),
        Err(Error::FailedPrecondition(_))
    ));
    let below_picked = change(&e, "a", "fc1", CountChange::Set(1));
    assert!(matches!(below_picked, Err(Error::FailedPrecondition(_))));
    assert_eq!(
        available(&e, "a", "fc1"),
        1,
        "a refused count changes nothing"
    );
    // Cancelling a picked order returns its units to the shelf.
    e.cancel(&key("o1")).unwrap();
    assert_eq!(available(&e, "a", "fc1"), 3);
    assert_consistent(&e);
}

#[test]
fn picking_needs_an_allocation() {
    let e = engine();
    set(&e, "a", "fc1", 0);
    allocate(&e, request("o1", 0, &[("a", 1)]));
    assert!(matches!(
        e.mark_picked(&key("o1")),
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(
        e.mark_picked(&key("nope")),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn count_below_reserved_releases_the_newest_unpicked_orders() {
    let e = engine();
    set(&e, "a", "fc1", 6);
    set(&e, "b", "fc1", 5);
    allocate(&e, request("oldest", 0, &[("a", 2)]));
    allocate(&e, request("middle", 10, &[("a", 2), ("b", 1)]));
    allocate(&e, request("newest", 20, &[("a", 2)]));
    e.mark_picked(&key("newest")).unwrap();
    // 6 reserved at a; a count of 3 must free 3 unpicked units: "middle"
    // (the newest unpicked) frees 2, then "oldest" frees 2.
    let outcome = change(&e, "a", "fc1", CountChange::Set(3)).unwrap();
    assert_eq!(
        outcome.shortage_orders,
        vec!["middle".into(), "oldest".into()]
    );
    for id in ["oldest", "middle"] {
        let order = e.order(&key(id)).unwrap();
        assert_eq!(order.status, OrderStatus::Exception);
        assert!(order.allocations.is_empty());
        assert!(order
            .exceptions
            .iter()
            .all(|line| line.reason == ExceptionReason::InventoryShortage));
    }
    assert_eq!(
        e.order(&key("newest")).unwrap().status,
        OrderStatus::Processing
    );
    assert_eq!(available(&e, "a", "fc1"), 1);
    // "middle" also gave back its unit of b.
    assert_eq!(available(&e, "b", "fc1"), 5);
    assert_consistent(&e);
}

#[test]
fn count_releases_only_as_many_orders_as_needed() {
    let e = engine();
    set(&e, "a", "fc1", 4);
    allocate(&e, request("old", 0, &[("a", 2)]));
    allocate(&e, request("new", 1, &[("a", 2)]));
    let outcome = change(&e, "a", "fc1", CountChange::Set(3)).unwrap();
    assert_eq!(outcome.shortage_orders, vec![OrderId::new("new")]);
    assert_eq!(
        e.order(&key("old")).unwrap().status,
        OrderStatus::Processing
    );
    assert_consistent(&e);
}

#[test]
fn adjustments_add_and_remove_units_but_never_below_zero() {
    let e = engine();
    let adjust = |delta| change(&e, "a", "fc1", CountChange::Adjust(delta));
    adjust(5).unwrap();
    adjust(-2).unwrap();
    assert_eq!(available(&e, "a", "fc1"), 3);
    assert!(matches!(adjust(-4), Err(Error::FailedPrecondition(_))));
    assert_eq!(available(&e, "a", "fc1"), 3);
}

#[test]
fn adjustments_never_take_a_count_past_the_units_limit() {
    // Each adjustment is within the limit; their sum is not, and would not
    // fit the ledger's 32-bit count.
    let e = engine();
    let max = i64::try_from(crate::model::limits::UNITS_MAX).unwrap();
    let adjust = |delta| change(&e, "a", "fc1", CountChange::Adjust(delta));
    adjust(max - 1).unwrap();
    assert!(matches!(adjust(max), Err(Error::FailedPrecondition(_))));
    assert_eq!(u64::from(available(&e, "a", "fc1")), max as u64 - 1);
    adjust(1).unwrap();
    assert_eq!(u64::from(available(&e, "a", "fc1")), max as u64);
}

#[test]
fn a_batch_of_inventory_changes_is_all_or_nothing() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    let result = e.update_inventory(
        &M.into(),
        &[
            InventoryChange {
                sku: "a".into(),
                fc: FcId::new("fc1"),
                change: CountChange::Set(9),
            },
            InventoryChange {
                sku: "b".into(),
                fc: FcId::new("fc1"),
                change: CountChange::Adjust(-1),
            },
        ],
        now(),
    );
    assert!(result.is_err());
    assert_eq!(available(&e, "a", "fc1"), 1);
}

#[test]
fn register_skus_counts_new_and_updated_entries() {
    let e = engine();
    let info = SkuInfo {
        registered: true,
        tags: vec!["fragile".into()],
        replenishable: true,
    };
    assert_eq!(
        e.register_skus(&M.into(), &[("a".into(), info.clone())]),
        (1, 0)
    );
    assert_eq!(
        e.register_skus(&M.into(), &[("a".into(), info.clone()), ("b".into(), info)]),
        (1, 1)
    );
    assert!(e.inventory(&M.into(), &"a".into()).unwrap().fcs.is_empty());
    assert!(matches!(
        e.inventory(&M.into(), &Sku::new("zzz")),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn merchants_do_not_share_inventory() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    let mut other = request("o1", 0, &[("a", 1)]);
    other.merchant_id = "other".into();
    // The other merchant has no SKU "a": unknown, so on hold.
    assert_eq!(allocate(&e, other).status, OrderStatus::OnHold);
    assert_eq!(available(&e, "a", "fc1"), 1);
}

#[test]
fn list_orders_pages_oldest_first_and_filters_by_status() {
    let e = engine();
    set(&e, "a", "fc1", 2);
    for (id, age) in [("c", 30), ("a", 10), ("b", 10), ("d", 40)] {
        allocate(&e, request(id, age, &[("a", 1)]));
    }
    let first = e.list_orders(&M.into(), None, 3, None);
    let ids: Vec<&str> = first
        .orders
        .iter()
        .map(|o| o.request.order_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let second = e.list_orders(&M.into(), None, 3, first.next.as_ref());
    assert_eq!(second.orders.len(), 1);
    assert_eq!(second.orders[0].request.order_id, OrderId::new("d"));
    assert!(second.next.is_none());
    // Imported c, a, b, d: c and a took the two units.
    let exceptions = e.list_orders(&M.into(), Some((OrderStatus::Exception, now())), 10, None);
    let ids: Vec<&str> = exceptions
        .orders
        .iter()
        .map(|o| o.request.order_id.as_str())
        .collect();
    assert_eq!(ids, ["b", "d"]);
}

fn marketplace(id: &str, lines: &[(&str, u32)]) -> OrderRequest {
    let mut order = request(id, 0, lines);
    order.channel = Channel::Marketplace;
    order
}

fn auto_acknowledging(e: &Engine, accept_regardless: bool) {
    let mut merchant = Merchant::with_defaults(M.into());
    merchant.auto_acknowledge = true;
    merchant.accept_regardless_of_inventory = accept_regardless;
    e.upsert_merchant(merchant);
}

#[test]
fn marketplace_orders_follow_the_acknowledgement_rules() {
    let e = engine();
    auto_acknowledging(&e, false);
    set(&e, "stocked", "fc1", 5);
    set(&e, "empty", "fc1", 0);
    e.register_skus(
        &M.into(),
        &[(
            "coming".into(),
            SkuInfo {
                registered: true,
                tags: vec![],
                replenishable: true,
            },
        )],
    );

    let unknown = allocate(&e, marketplace("unknown", &[("stocked", 1), ("ghost", 1)]));
    assert_eq!(unknown.status, OrderStatus::Cancelled);
    assert_eq!(
        unknown.acknowledgement,
        Acknowledgement::CancelledUnknownSku
    );

    let single = allocate(&e, marketplace("single", &[("empty", 1)]));
    assert_eq!(single.status, OrderStatus::Cancelled);
    assert_eq!(
        single.acknowledgement,
        Acknowledgement::CancelledNoInventory
    );

    let multi = allocate(&e, marketplace("multi", &[("stocked", 1), ("empty", 1)]));
    assert_eq!(multi.status, OrderStatus::Rejected);
    assert_eq!(multi.acknowledgement, Acknowledgement::RejectedNoInventory);
    assert_eq!(
        available(&e, "stocked", "fc1"),
        5,
        "a rejected order reserves nothing"
    );

    let replenishable = allocate(&e, marketplace("replenishable", &[("coming", 1)]));
    assert_eq!(replenishable.acknowledgement, Acknowledgement::Acknowledged);
    assert_eq!(replenishable.status, OrderStatus::Exception);

    let fine = allocate(&e, marketplace("fine", &[("stocked", 2)]));
    assert_eq!(fine.acknowledgement, Acknowledgement::Acknowledged);
    assert_eq!(fine.status, OrderStatus::Processing);

    let mut created = marketplace("created", &[("stocked", 1)]);
    created.marketplace_status = MarketplaceStatus::Created;
    assert!(matches!(
        e.allocate(created, now()),
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(e.order(&key("created")), Err(Error::NotFound(_))));
}

#[test]
fn accept_regardless_of_inventory_acknowledges_and_allocates_normally() {
    let e = engine();
    auto_acknowledging(&e, true);
    set(&e, "empty", "fc1", 0);
    let order = allocate(&e, marketplace("o1", &[("empty", 1)]));
    assert_eq!(order.acknowledgement, Acknowledgement::Acknowledged);
    assert_eq!(order.status, OrderStatus::Exception);
}

// ---------------------------------------------------------------- §5: reprocessing and FIFO

fn fifo_merchant(e: &Engine, strategy: crate::model::FifoStrategy, partial_shipments: bool) {
    let mut merchant = Merchant::with_defaults(M.into());
    merchant.fifo_strategy = strategy;
    merchant.partial_shipments = partial_shipments;
    e.upsert_merchant(merchant);
}

fn receive(e: &Engine, sku: &str, fc: &str, units: i64) -> InventoryOutcome {
    change(e, sku, fc, CountChange::Adjust(units)).unwrap()
}

#[test]
fn without_fifo_a_newer_order_takes_replenished_stock_before_the_next_pass() {
    let e = engine();
    set(&e, "a", "fc1", 0);
    let old = allocate(&e, request("old", 0, &[("a", 2)]));
    assert_eq!(old.status, OrderStatus::Exception);
    let outcome = receive(&e, "a", "fc1", 2);
    assert!(outcome.fifo.is_none());
    // The seed's documented behaviour: the newer order gets there first.
    let new = allocate(&e, request("new", 10, &[("a", 2)]));
    assert_eq!(new.status, OrderStatus::Processing);
    let counts = e.reprocess(None, now());
    assert_eq!(counts.examined, 1);
    assert_eq!(counts.still_in_exception, 1);
    assert_eq!(e.order(&key("old")).unwrap().status, OrderStatus::Exception);
}

#[test]
fn reprocessing_allocates_waiting_orders_oldest_first() {
    let e = engine();
    set(&e, "a", "fc1", 0);
    allocate(&e, request("younger", 20, &[("a", 2)]));
    allocate(&e, request("older", 10, &[("a", 2)]));
    set(&e, "a", "fc1", 2);
    let counts = e.reprocess(None, now());
    assert_eq!(
        counts,
        PassCounts {
            examined: 2,
            allocated: 1,
            partially_allocated: 0,
            still_in_exception: 1
        }
    );
    assert_eq!(
        e.order(&key("older")).unwrap().status,
        OrderStatus::Processing
    );
    let younger = e.order(&key("younger")).unwrap();
    assert_eq!(younger.status, OrderStatus::Exception);
    assert_eq!(
        younger.version, 1,
        "an unchanged decision keeps its version"
    );
    assert_consistent(&e);
}

#[test]
fn reprocessing_decides_an_order_naming_one_sku_on_two_lines() {
    // The pass queues each order once per SKU; were it queued twice in the
    // same SKU's queue it would wait for itself and never be decided.
    let e = engine();
    set(&e, "a", "fc1", 0);
    allocate(&e, request("twice", 0, &[("a", 1), ("a", 2)]));
    allocate(&e, request("behind", 10, &[("a", 1)]));
    set(&e, "a", "fc1", 4);
    let counts = e.reprocess(None, now());
    assert_eq!((counts.examined, counts.allocated), (2, 2));
    assert_eq!(e.order(&key("twice")).unwrap().allocated_units(), 3);
    assert_consistent(&e);
}

#[test]
fn reprocessing_completes_a_partially_allocated_order() {
    let e = engine();
    set(&e, "a", "fc1", 1);
    let order = allocate(&e, partial(request("o1", 0, &[("a", 3)])));
    assert_eq!(order.status, OrderStatus::PartiallyAllocated);
    set(&e, "a", "fc2", 2);
    let counts = e.reprocess(Some(&M.into()), now());
    assert_eq!(counts.allocated, 1);
    let order = e.order(&key("o1")).unwrap();
    assert_eq!(order.status, OrderStatus::Processing);
    assert_eq!(order.allocated_units(), 3);
    assert_consistent(&e);
}

#[test]
fn fifo_full_releases_the_oldest_order_only_when_it_can_be_filled_whole() {
    let e = engine();
    fifo_merchant(&e, crate::model::FifoStrategy::Full, false);
    set(&e, "a", "fc1", 0);
    set(&e, "b", "fc1", 0);
    allocate(&e, request("oldest", 0, &[("a", 2), ("b", 1)]));
    allocate(&e, request("newer", 10, &[("a", 2)]));
    // Only a arrives: the oldest cannot be filled whole, so the newer one
    // may take it.
    let outcome = receive(&e, "a", "fc1", 2).fifo.unwrap();
    assert_eq!(outcome.released, vec![OrderId::new("newer")]);
    assert_eq!(
        e.order(&key("oldest")).unwrap().status,
        OrderStatus::Exception
    );
    // b arrives: the oldest can now be filled whole and takes a back from
    // the newer order, which is preempted.
    let outcome = receive(&e, "b", "fc1", 1).fifo.unwrap();
    assert_eq!(outcome.released, vec![OrderId::new("oldest")]);
    assert_eq!(outcome.preempted, vec![OrderId::new("newer")]);
    assert_eq!(
        e.order(&key("oldest")).unwrap().status,
        OrderStatus::Processing
    );
    let newer = e.order(&key("newer")).unwrap();
    assert_eq!(newer.status, OrderStatus::Exception);
    assert_eq!(
        newer.exceptions,
        vec![exception("a", 2, ExceptionReason::PreemptedByFifo)]
    );
    assert_consistent(&e);
}

#[test]
fn fifo_partial_gives_the_oldest_order_what_there_is() {
    let e = engine();
    fifo_merchant(&e, crate::model::FifoStrategy::Partial, false);
    set(&e, "a", "fc1", 0);
    allocate(&e, request("oldest", 0, &[("a", 5)]));
    allocate(&e, request("newer", 10, &[("a", 1)]));
    let outcome = receive(&e, "a", "fc1", 3).fifo.unwrap();
    assert_eq!(outcome.released, vec![OrderId::new("oldest")]);
    let oldest = e.order(&key("oldest")).unwrap();
    assert_eq!(oldest.status, OrderStatus::PartiallyAllocated);
    assert_eq!(oldest.allocated_units(), 3);
    assert_eq!(
        e.order(&key("newer")).unwrap().status,
        OrderStatus::Exception
    );
    assert_consistent(&e);
}

#[test]
fn fifo_never_touches_picked_orders() {
    let e = engine();
    fifo_merchant(&e, crate::model::FifoStrategy::Full, false);
    set(&e, "a", "fc1", 2);
    allocate(&e, request("picked-young", 50, &[("a", 2)]));
    e.mark_picked(&key("picked-young")).unwrap();
    allocate(&e, request("old", 0, &[("a", 2)]));
    let outcome = e.fifo_release(&M.into(), &["a".into()], now()).unwrap();
    assert!(outcome.preempted.is_empty());
    let picked = e.order(&key("picked-young")).unwrap();
    assert_eq!(picked.status, OrderStatus::Processing);
    assert!(picked.picked);
    assert_eq!(e.order(&key("old")).unwrap().status, OrderStatus::Exception);
    assert_consistent(&e);
}

#[test]
fn a_held_orders_stock_goes_to_others_and_fifo_skips_it() {
    let e = engine();
    fifo_merchant(&e, crate::model::FifoStrategy::Full, false);
    set(&e, "a", "fc1", 2);
    allocate(&e, request("held", 0, &[("a", 2)]));
    allocate(&e, request("waiting", 10, &[("a", 2)]));
    e.hold(&key("held"), "fraud review".into()).unwrap();
    let outcome = e.fifo_release(&M.into(), &[], now()).unwrap();
    assert_eq!(outcome.released, vec![OrderId::new("waiting")]);
    assert_eq!(e.order(&key("held")).unwrap().status, OrderStatus::OnHold);
    // Released later, it waits: its stock is gone.
    assert_eq!(
        e.release(&key("held"), now()).unwrap().status,
        OrderStatus::Exception
    );
    assert_consistent(&e);
}

#[test]
fn fifo_release_needs_a_fifo_merchant() {
    let e = engine();
    assert!(matches!(
        e.fifo_release(&M.into(), &[], now()),
        Err(Error::FailedPrecondition(_))
    ));
}

#[test]
fn the_pass_of_a_fifo_merchant_is_a_fifo_release() {
    let e = engine();
    fifo_merchant(&e, crate::model::FifoStrategy::Full, false);
    set(&e, "a", "fc1", 2);
    allocate(&e, request("young", 10, &[("a", 2)]));
    allocate(&e, request("old", 0, &[("a", 2)]));
    // A count (not a receipt) changes nothing here; the periodic pass does.
    let counts = e.reprocess(None, now());
    assert_eq!(counts.examined, 2);
    assert_eq!(
        e.order(&key("old")).unwrap().status,
        OrderStatus::Processing
    );
    assert_eq!(
        e.order(&key("young")).unwrap().status,
        OrderStatus::Exception
    );
}

mod shipping;

#[test]
fn stored_orders_share_the_ledgers_sku_codes() {
    let e = engine();
    set(&e, "a", "fc1", 5);
    let order = allocate(&e, request("o1", 0, &[("a", 2)]));
    let ledger_code = (0..e.stripe_count())
        .find_map(|stripe| {
            e.with_stripe(stripe, |records| {
                records
                    .map(|(key, _)| key.sku().as_str())
                    .find(|sku| *sku == "a")
                    .map(str::as_ptr)
            })
        })
        .expect("the ledger has SKU a");
    let shares = |sku: &Sku| std::ptr::eq(sku.as_str().as_ptr(), ledger_code);
    assert!(
        shares(&order.request.lines[0].sku),
        "the line keeps its own copy"
    );
    assert_eq!(order.allocations, vec![allocation("fc1", "a", 2)]);
    assert!(
        shares(&order.allocations[0].sku),
        "the allocation keeps its own copy"
    );
}
