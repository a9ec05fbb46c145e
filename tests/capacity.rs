//! Daily FC capacity over real gRPC (RULES §12): an FC takes at most its
//! `daily_order_capacity` of orders per operations day (06:00 to 06:00
//! America/Chicago), counted with each call's `as_of`.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;

const M: &str = "m";
/// 2026-01-14 10:00 CST: the operations day of January 14.
const JAN_14: i64 = 1_768_406_400;
const DAY: i64 = 86_400;

async fn fc(client: &mut Client, id: &str, daily_order_capacity: u32) {
    client
        .upsert_fulfillment_center(FulfillmentCenter {
            fc_id: id.into(),
            name: id.into(),
            daily_order_capacity,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A merchant that ranks `east` first and ships partially when `partial`.
async fn merchant(client: &mut Client, partial: bool, fifo: FifoStrategy) {
    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            fc_priority: vec!["east".into(), "west".into()],
            partial_shipments: partial,
            fifo_strategy: fifo as i32,
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn allocate_at(client: &mut Client, id: &str, at: i64) -> OrderState {
    let mut response = client
        .allocate(AllocateRequest {
            order: Some(order(M, id, &[("a", 1)])),
            as_of: time(at),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    response.orders.remove(0)
}

fn fcs_of(state: &OrderState) -> Vec<&str> {
    let mut fcs: Vec<&str> = state.allocations.iter().map(|a| a.fc_id.as_str()).collect();
    fcs.dedup();
    fcs
}

/// `orders_today` of every FC, as listed for `at`'s operations day.
async fn taken(client: &mut Client, at: i64) -> Vec<(String, u32, u32)> {
    client
        .list_fulfillment_centers(ListFulfillmentCentersRequest { as_of: time(at) })
        .await
        .unwrap()
        .into_inner()
        .fcs
        .into_iter()
        .map(|fc| (fc.fc_id, fc.daily_order_capacity, fc.orders_today))
        .collect()
}

async fn cancel_at(client: &mut Client, id: &str, at: i64) {
    client
        .cancel_order(CancelOrderRequest {
            merchant_id: M.into(),
            order_id: id.into(),
            as_of: time(at),
        })
        .await
        .unwrap();
}

async fn reprocess_at(client: &mut Client, at: i64) {
    client
        .reprocess(ReprocessRequest {
            merchant_id: M.into(),
            as_of: time(at),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_order_after_the_capacity_goes_elsewhere_or_waits_until_the_next_day() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 2).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    set_stock(&mut client, M, "a", "east", 10).await;
    set_stock(&mut client, M, "a", "west", 1).await;

    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o1", JAN_14).await),
        ["east"]
    );
    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o2", JAN_14 + 60).await),
        ["east"]
    );
    // East has stock but no slot left today: the next FC ships.
    let third = allocate_at(&mut client, "o3", JAN_14 + 120).await;
    assert_eq!(fcs_of(&third), ["west"]);
    let decision = third.decision.as_ref().unwrap();
    let east = decision.fcs.iter().find(|fc| fc.fc_id == "east").unwrap();
    assert!(east.at_capacity && east.can_fill_order && !east.chosen);
    // Nowhere left to go: it waits.
    let fourth = allocate_at(&mut client, "o4", JAN_14 + 180).await;
    assert_eq!(fourth.status(), OrderStatus::Exception);
    assert_eq!(
        taken(&mut client, JAN_14).await,
        [("east".into(), 2, 2)],
        "west is not an upserted FC: it has no limit and is not listed"
    );
    // A pass later the same day leaves it waiting; the next day it ships.
    reprocess_at(&mut client, JAN_14 + 3_600).await;
    let state = get_order(&mut client, M, "o4").await.unwrap();
    assert_eq!(state.status(), OrderStatus::Exception);
    reprocess_at(&mut client, JAN_14 + DAY).await;
    let state = get_order(&mut client, M, "o4").await.unwrap();
    assert_eq!(fcs_of(&state), ["east"]);
    assert_eq!(taken(&mut client, JAN_14 + DAY).await[0].2, 1);
    assert_eq!(taken(&mut client, JAN_14).await[0].2, 2, "yesterday's stay");

    // The explanation of a waiting order says the FC is full.
    let later = allocate_at(&mut client, "o5", JAN_14 + DAY).await;
    assert_eq!(fcs_of(&later), ["east"]);
    let waiting = allocate_at(&mut client, "o6", JAN_14 + DAY).await;
    assert_eq!(waiting.status(), OrderStatus::Exception);
    let explanation = client
        .explain_order(ExplainOrderRequest {
            merchant_id: M.into(),
            order_id: "o6".into(),
            as_of: time(JAN_14 + DAY),
        })
        .await
        .unwrap()
        .into_inner();
    let now = explanation.now.unwrap();
    assert!(now
        .fcs
        .iter()
        .any(|fc| fc.fc_id == "east" && fc.at_capacity));
}

#[tokio::test]
async fn cancel_and_hold_give_the_slot_back_and_shipping_keeps_it() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 1).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    set_stock(&mut client, M, "a", "east", 10).await;

    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o1", JAN_14).await),
        ["east"]
    );
    let second = allocate_at(&mut client, "o2", JAN_14).await;
    assert_eq!(second.status(), OrderStatus::Exception);

    cancel_at(&mut client, "o1", JAN_14).await;
    assert_eq!(taken(&mut client, JAN_14).await[0].2, 0);
    reprocess_at(&mut client, JAN_14).await;
    let state = get_order(&mut client, M, "o2").await.unwrap();
    assert_eq!(fcs_of(&state), ["east"], "the freed slot went to o2");

    client
        .hold_order(HoldOrderRequest {
            merchant_id: M.into(),
            order_id: "o2".into(),
            reason: "address check".into(),
            as_of: time(JAN_14),
        })
        .await
        .unwrap();
    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o3", JAN_14).await),
        ["east"]
    );
    // Released the same day, o2 finds east full again.
    let released = client
        .release_order(ReleaseOrderRequest {
            merchant_id: M.into(),
            order_id: "o2".into(),
            as_of: time(JAN_14),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.status(), OrderStatus::Exception);

    client
        .ship_order(ShipOrderRequest {
            merchant_id: M.into(),
            order_id: "o3".into(),
            fc_id: "east".into(),
            tracking_number: "1Z1".into(),
            carrier: "UPS".into(),
            label_source: LabelSource::Service as i32,
            as_of: time(JAN_14),
        })
        .await
        .unwrap();
    assert_eq!(
        taken(&mut client, JAN_14).await[0].2,
        1,
        "a shipped order keeps its slot"
    );
}

/// The day starts at 06:00 Central: 12:00 UTC in winter, 11:00 UTC in
/// summer, and the count follows the clock change on both weekends.
#[tokio::test]
async fn the_count_resets_at_six_central_across_daylight_saving_changes() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 1).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    set_stock(&mut client, M, "a", "east", 10).await;
    set_stock(&mut client, M, "a", "west", 10).await;

    // (order, as_of, FC): 2026-03-07 12:00 CST takes March 7's slot;
    // March 8 05:59 CDT (10:59 UTC, after the change) is still March 7;
    // 06:00 CDT (11:00 UTC) is March 8.
    let spring = [
        ("s1", 1_772_906_400, "east"),
        ("s2", 1_772_967_540, "west"),
        ("s3", 1_772_967_600, "east"),
    ];
    // 2026-10-31 12:00 CDT; November 1 05:59 CST (11:59 UTC, after the
    // change) is still October 31; 06:00 CST (12:00 UTC) is November 1.
    let autumn = [
        ("a1", 1_793_466_000, "east"),
        ("a2", 1_793_534_340, "west"),
        ("a3", 1_793_534_400, "east"),
    ];
    for (id, at, expected) in spring.into_iter().chain(autumn) {
        let state = allocate_at(&mut client, id, at).await;
        assert_eq!(fcs_of(&state), [expected], "{id}");
    }
}

#[tokio::test]
async fn a_fifo_release_passes_over_a_full_fc_until_the_next_day() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 1).await;
    merchant(&mut client, true, FifoStrategy::Partial).await;
    set_stock(&mut client, M, "a", "east", 1).await;
    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o1", JAN_14).await),
        ["east"]
    );
    let waiting = allocate_at(&mut client, "o2", JAN_14 + 60).await;
    assert_eq!(waiting.status(), OrderStatus::Exception);

    let receipt = |at: i64| AdjustInventoryRequest {
        merchant_id: M.into(),
        deltas: vec![InventoryDelta {
            sku: "a".into(),
            fc_id: "east".into(),
            delta: 1,
        }],
        as_of: time(at),
    };
    // The receipt's FIFO release runs the same day: east is full.
    let response = client.adjust_inventory(receipt(JAN_14)).await.unwrap();
    assert!(response.into_inner().fifo_released_order_ids.is_empty());
    assert_eq!(
        get_order(&mut client, M, "o2").await.unwrap().status(),
        OrderStatus::Exception
    );
    // The next day's receipt releases to o2, and o1 keeps yesterday's slot.
    let response = client
        .adjust_inventory(receipt(JAN_14 + DAY))
        .await
        .unwrap();
    assert_eq!(response.into_inner().fifo_released_order_ids, ["o2"]);
    assert_eq!(
        fcs_of(&get_order(&mut client, M, "o1").await.unwrap()),
        ["east"]
    );
    assert_eq!(taken(&mut client, JAN_14).await[0].2, 1);
    assert_eq!(taken(&mut client, JAN_14 + DAY).await[0].2, 1);
}

/// Orders of unrelated SKUs compete for one FC's slots: the pass hands
/// them out oldest purchase first, whatever order they arrived in.
#[tokio::test]
async fn a_pass_gives_the_days_slots_to_the_oldest_waiting_orders() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 2).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    // Arrival order is the reverse of age order; every SKU has no stock yet.
    for (id, sku, purchased) in [("young", "y", 300), ("middle", "m", 200), ("old", "o", 100)] {
        set_stock(&mut client, M, sku, "east", 0).await;
        let order = Order {
            purchase_time: time(1_700_000_000 + purchased),
            ..order(M, id, &[(sku, 1)])
        };
        let state = client
            .allocate(AllocateRequest {
                order: Some(order),
                as_of: time(JAN_14),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .orders
            .remove(0);
        assert_eq!(state.status(), OrderStatus::Exception);
    }
    for sku in ["y", "m", "o"] {
        set_stock(&mut client, M, sku, "east", 5).await;
    }
    reprocess_at(&mut client, JAN_14).await;
    for (id, expected) in [
        ("old", OrderStatus::Processing),
        ("middle", OrderStatus::Processing),
        ("young", OrderStatus::Exception),
    ] {
        let state = get_order(&mut client, M, id).await.unwrap();
        assert_eq!(state.status(), expected, "{id}");
    }
}

#[tokio::test]
async fn slots_survive_a_kill_from_the_snapshot_and_the_journal() {
    let dir = std::env::temp_dir().join(format!("allocation-capacity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = binary::Binary::start(&dir, &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();
    fc(&mut client, "east", 2).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    set_stock(&mut client, M, "a", "east", 10).await;
    set_stock(&mut client, M, "a", "west", 10).await;
    allocate_at(&mut client, "o1", JAN_14).await;
    // One slot in the snapshot, one in the journal after it.
    client.snapshot(SnapshotRequest {}).await.unwrap();
    allocate_at(&mut client, "o2", JAN_14).await;
    drop(client);
    drop(server); // SIGKILL

    let server = binary::Binary::start(&dir, &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();
    assert_eq!(taken(&mut client, JAN_14).await, [("east".into(), 2, 2)]);
    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o3", JAN_14).await),
        ["west"]
    );
    cancel_at(&mut client, "o1", JAN_14).await;
    assert_eq!(
        fcs_of(&allocate_at(&mut client, "o4", JAN_14).await),
        ["east"]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_dry_run_counts_slots_without_taking_them() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "east", 1).await;
    merchant(&mut client, false, FifoStrategy::None).await;
    set_stock(&mut client, M, "a", "east", 10).await;
    set_stock(&mut client, M, "a", "west", 10).await;
    let dry = |id: &str| AllocateRequest {
        order: Some(order(M, id, &[("a", 1)])),
        as_of: time(JAN_14),
        dry_run: true,
        ..Default::default()
    };
    let answer = client.allocate(dry("d1")).await.unwrap().into_inner();
    assert_eq!(fcs_of(&answer.orders[0]), ["east"]);
    assert_eq!(taken(&mut client, JAN_14).await[0].2, 0);
    allocate_at(&mut client, "o1", JAN_14).await;
    let answer = client.allocate(dry("d2")).await.unwrap().into_inner();
    assert_eq!(fcs_of(&answer.orders[0]), ["west"]);
    assert_eq!(taken(&mut client, JAN_14).await[0].2, 1);
}

#[tokio::test]
async fn a_bad_as_of_on_an_inventory_call_is_refused_by_name() {
    let server = start().await;
    let mut client = server.client.clone();
    let error = client
        .set_inventory(SetInventoryRequest {
            merchant_id: M.into(),
            levels: vec![InventoryLevel {
                sku: "a".into(),
                fc_id: "east".into(),
                on_hand: 1,
            }],
            as_of: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&error), ["as_of"]);
    let unknown = client
        .get_inventory(GetInventoryRequest {
            merchant_id: M.into(),
            sku: "a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "nothing was counted");
}
