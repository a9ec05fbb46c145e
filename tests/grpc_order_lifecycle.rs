//! Shipping, tracking, claims, completion, marketplace rules, auto-split and
//! the WatchEvents change feed, over real gRPC against a real server.

#[path = "support/in_process.rs"]
mod in_process;

use std::time::Duration;

use allocation::grpc::proto::*;
use allocation::server::ServerOptions;
use in_process::*;
use tokio_stream::StreamExt;
use tonic::Code;

const M: &str = "m";
/// Friday 2026-11-20 17:00 Central.
const FRIDAY_5PM: i64 = 1_795_215_600;
const DAY: i64 = 86_400;

fn ship_request(
    order_id: &str,
    fc: &str,
    tracking: &str,
    label: LabelSource,
    at: i64,
) -> ShipOrderRequest {
    ShipOrderRequest {
        merchant_id: M.into(),
        order_id: order_id.into(),
        fc_id: fc.into(),
        tracking_number: tracking.into(),
        carrier: "UPS".into(),
        label_source: label as i32,
        as_of: time(at),
    }
}

/// An order of one unit of `sku`, allocated at `fc1` and shipped under `tracking`.
async fn shipped(
    client: &mut Client,
    id: &str,
    tracking: &str,
    label: LabelSource,
    at: i64,
) -> OrderState {
    set_stock(client, M, id, "fc1", 1).await;
    allocate(client, order(M, id, &[(id, 1)])).await;
    client
        .ship_order(ship_request(id, "fc1", tracking, label, at))
        .await
        .expect("ship")
        .into_inner()
}

async fn scan(
    client: &mut Client,
    tracking: &str,
    status: TrackingStatus,
    at: i64,
    misdelivered: bool,
) -> Shipment {
    client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: tracking.into(),
            status: status as i32,
            event_time: time(at),
            misdelivery_confirmed: misdelivered,
            as_of: time(at),
        })
        .await
        .expect("record scan")
        .into_inner()
}

async fn shipment(client: &mut Client, tracking: &str, as_of: i64) -> Shipment {
    client
        .get_shipment(GetShipmentRequest {
            tracking_number: tracking.into(),
            as_of: time(as_of),
        })
        .await
        .expect("get shipment")
        .into_inner()
}

async fn status_at(client: &mut Client, id: &str, as_of: i64) -> OrderStatus {
    client
        .get_order(GetOrderRequest {
            merchant_id: M.into(),
            order_id: id.into(),
            as_of: time(as_of),
        })
        .await
        .expect("get order")
        .into_inner()
        .status()
}

#[tokio::test]
async fn ship_order_consumes_stock_and_tracking_numbers_are_unique() {
    let server = start().await;
    let mut client = server.client.clone();
    let state = shipped(&mut client, "o1", "T1", LabelSource::Service, FRIDAY_5PM).await;
    assert_eq!(state.status(), OrderStatus::Shipped);
    assert!(state.allocations.is_empty());
    assert_eq!(state.shipments.len(), 1);
    assert_eq!(state.shipments[0].status(), TrackingStatus::AtDepot);
    assert_eq!(state.shipments[0].items[0].quantity, 1);
    let stock = client
        .get_inventory(GetInventoryRequest {
            merchant_id: M.into(),
            sku: "o1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.fcs[0].on_hand, stock.fcs[0].reserved), (0, 0));

    set_stock(&mut client, M, "o2", "fc1", 1).await;
    allocate(&mut client, order(M, "o2", &[("o2", 1)])).await;
    let reused = client
        .ship_order(ship_request(
            "o2",
            "fc1",
            "T1",
            LabelSource::Service,
            FRIDAY_5PM,
        ))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    let elsewhere = client
        .ship_order(ship_request(
            "o2",
            "fc9",
            "T2",
            LabelSource::Service,
            FRIDAY_5PM,
        ))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::FailedPrecondition, "{elsewhere:?}");
    let cancel = client
        .cancel_order(CancelOrderRequest {
            merchant_id: M.into(),
            order_id: "o1".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        cancel.code(),
        Code::FailedPrecondition,
        "a shipped order is refunded"
    );
    // None of that changed o2.
    let o2 = get_order(&mut client, M, "o2").await.unwrap();
    assert_eq!(o2.status(), OrderStatus::Processing);
    assert!(o2.shipments.is_empty());
}

#[tokio::test]
async fn bad_shipping_and_tracking_requests_name_the_field() {
    let server = start().await;
    let mut client = server.client.clone();
    let mut request = ship_request("o", "fc1", "", LabelSource::Service, FRIDAY_5PM);
    request.label_source = LabelSource::Unspecified as i32;
    request.carrier.clear();
    let status = client.ship_order(request).await.unwrap_err();
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["carrier", "label_source", "tracking_number"]);

    let status = client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: "T1".into(),
            status: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["status"]);
    let status = client
        .get_shipment(GetShipmentRequest {
            tracking_number: "nope".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: "nope".into(),
            status: TrackingStatus::PickedUp as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn claim_eligibility_names_the_rule_that_decided() {
    let server = start().await;
    let mut client = server.client.clone();
    let claim = |shipment: Shipment| {
        let claim = shipment
            .claim
            .expect("GetShipment answers the claim question");
        (claim.eligible, claim.rule)
    };

    shipped(
        &mut client,
        "prepaid",
        "P1",
        LabelSource::Prepaid,
        FRIDAY_5PM,
    )
    .await;
    let weeks_later = FRIDAY_5PM + 21 * DAY;
    assert_eq!(
        claim(shipment(&mut client, "P1", weeks_later).await),
        (false, "prepaid_label".into())
    );

    // Picked up on a Friday: Monday to Friday of the next week are the 5
    // business days; the weekend does not count.
    shipped(&mut client, "stall", "S1", LabelSource::Service, FRIDAY_5PM).await;
    scan(
        &mut client,
        "S1",
        TrackingStatus::PickedUp,
        FRIDAY_5PM + 3_600,
        false,
    )
    .await;
    assert_eq!(
        claim(shipment(&mut client, "S1", FRIDAY_5PM + 6 * DAY).await),
        (false, "not_stalled".into())
    );
    assert_eq!(
        claim(shipment(&mut client, "S1", FRIDAY_5PM + 7 * DAY).await),
        (true, "stalled".into())
    );

    shipped(&mut client, "home", "D1", LabelSource::Service, FRIDAY_5PM).await;
    let delivered = scan(
        &mut client,
        "D1",
        TrackingStatus::Delivered,
        FRIDAY_5PM + 4 * DAY,
        false,
    )
    .await;
    assert_eq!(delivered.status(), TrackingStatus::Delivered);
    assert_eq!(
        claim(shipment(&mut client, "D1", weeks_later).await),
        (false, "delivered".into())
    );
    let confirmed = scan(
        &mut client,
        "D1",
        TrackingStatus::Delivered,
        FRIDAY_5PM + 5 * DAY,
        true,
    )
    .await;
    assert!(confirmed.misdelivery_confirmed);
    assert_eq!(
        claim(shipment(&mut client, "D1", weeks_later).await),
        (true, "misdelivery_confirmed".into())
    );
}

#[tokio::test]
async fn tracking_expires_after_120_days_and_scans_keep_their_history() {
    let server = start().await;
    let mut client = server.client.clone();
    shipped(&mut client, "o", "T1", LabelSource::Service, FRIDAY_5PM).await;
    // Out of order: the delivery is reported before the pick-up.
    scan(
        &mut client,
        "T1",
        TrackingStatus::Delivered,
        FRIDAY_5PM + 4 * DAY,
        false,
    )
    .await;
    let late = scan(
        &mut client,
        "T1",
        TrackingStatus::PickedUp,
        FRIDAY_5PM + DAY,
        false,
    )
    .await;
    assert_eq!(
        late.status(),
        TrackingStatus::Delivered,
        "a late scan does not undo progress"
    );
    let history: Vec<TrackingStatus> = late.events.iter().map(|e| e.status()).collect();
    assert_eq!(
        history,
        [
            TrackingStatus::AtDepot,
            TrackingStatus::PickedUp,
            TrackingStatus::Delivered
        ]
    );

    let limit = FRIDAY_5PM + 120 * DAY;
    assert!(!shipment(&mut client, "T1", limit).await.expired);
    assert!(shipment(&mut client, "T1", limit + 1).await.expired);
}

#[tokio::test]
async fn completed_at_six_central_next_day_across_dst_and_weekends() {
    let server = start().await;
    let mut client = server.client.clone();
    // Saturday 2026-10-31 20:00 CDT; clocks fall back that night, so Sunday
    // 06:00 is CST: 12:00 UTC, not 11:00.
    let saturday_evening = 1_793_494_800;
    let sunday_six_cst = 1_793_534_400;
    shipped(
        &mut client,
        "fall",
        "F1",
        LabelSource::Service,
        saturday_evening,
    )
    .await;
    assert_eq!(
        status_at(&mut client, "fall", sunday_six_cst - 1_800).await,
        OrderStatus::Shipped
    );
    assert_eq!(
        status_at(&mut client, "fall", sunday_six_cst).await,
        OrderStatus::Completed
    );

    // Saturday 2026-03-07 17:00 CST; clocks spring forward that night, so
    // Sunday 06:00 is CDT: 11:00 UTC.
    let saturday = 1_772_924_400;
    let sunday_six_cdt = 1_772_967_600;
    shipped(&mut client, "spring", "S1", LabelSource::Service, saturday).await;
    assert_eq!(
        status_at(&mut client, "spring", sunday_six_cdt - 1).await,
        OrderStatus::Shipped
    );
    assert_eq!(
        status_at(&mut client, "spring", sunday_six_cdt).await,
        OrderStatus::Completed
    );
}

/// The ids ListOrders answers for `status` as of `as_of`, and the status
/// each reads there.
async fn listed(
    client: &mut Client,
    status: OrderStatus,
    as_of: i64,
) -> Vec<(String, OrderStatus)> {
    client
        .list_orders(ListOrdersRequest {
            merchant_id: M.into(),
            status: Some(status as i32),
            page_size: 100,
            page_token: String::new(),
            as_of: time(as_of),
        })
        .await
        .expect("list orders")
        .into_inner()
        .orders
        .iter()
        .map(|o| (o.order_id.clone(), o.status()))
        .collect()
}

#[tokio::test]
async fn listing_by_status_reads_each_order_as_of_like_get_order() {
    let server = start().await;
    let mut client = server.client.clone();
    shipped(&mut client, "o", "T1", LabelSource::Service, FRIDAY_5PM).await;
    // Labelled Friday 17:00: completed Saturday 06:00 Central (12:00 UTC).
    let saturday_six = FRIDAY_5PM + 13 * 3_600;
    let completed = vec![("o".to_string(), OrderStatus::Completed)];
    let shipped = vec![("o".to_string(), OrderStatus::Shipped)];
    assert_eq!(
        status_at(&mut client, "o", saturday_six).await,
        OrderStatus::Completed
    );
    assert_eq!(
        listed(&mut client, OrderStatus::Completed, saturday_six).await,
        completed
    );
    assert_eq!(
        listed(&mut client, OrderStatus::Shipped, saturday_six).await,
        []
    );
    assert_eq!(
        listed(&mut client, OrderStatus::Shipped, saturday_six - 1).await,
        shipped
    );
    assert_eq!(
        listed(&mut client, OrderStatus::Completed, saturday_six - 1).await,
        []
    );
}

async fn merchant(client: &mut Client, settings: Merchant) {
    client
        .upsert_merchant(settings)
        .await
        .expect("upsert merchant");
}

fn marketplace(id: &str, lines: &[(&str, u32)]) -> Order {
    Order {
        channel: Channel::Marketplace as i32,
        ..order(M, id, lines)
    }
}

#[tokio::test]
async fn marketplace_orders_follow_the_acknowledgement_rules() {
    let server = start().await;
    let mut client = server.client.clone();
    merchant(
        &mut client,
        Merchant {
            merchant_id: M.into(),
            auto_acknowledge: true,
            ..Default::default()
        },
    )
    .await;
    set_stock(&mut client, M, "stocked", "fc1", 5).await;
    set_stock(&mut client, M, "empty", "fc1", 0).await;
    client
        .register_skus(RegisterSkusRequest {
            merchant_id: M.into(),
            skus: vec![Sku {
                sku: "coming".into(),
                tags: vec![],
                replenishable: true,
            }],
        })
        .await
        .unwrap();

    let created = client
        .allocate(AllocateRequest {
            order: Some(Order {
                marketplace_status: MarketplaceStatus::Created as i32,
                ..marketplace("created", &[("stocked", 1)])
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(created.code(), Code::FailedPrecondition);
    assert_eq!(
        get_order(&mut client, M, "created")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    let cases = [
        (
            "unknown",
            vec![("stocked", 1), ("ghost", 1)],
            OrderStatus::Cancelled,
            Acknowledgement::CancelledUnknownSku,
        ),
        (
            "single",
            vec![("empty", 1)],
            OrderStatus::Cancelled,
            Acknowledgement::CancelledNoInventory,
        ),
        (
            "multi",
            vec![("stocked", 1), ("empty", 1)],
            OrderStatus::Rejected,
            Acknowledgement::RejectedNoInventory,
        ),
        (
            "replenishable",
            vec![("coming", 1)],
            OrderStatus::Exception,
            Acknowledgement::Acknowledged,
        ),
        (
            "fine",
            vec![("stocked", 2)],
            OrderStatus::Processing,
            Acknowledgement::Acknowledged,
        ),
    ];
    for (id, lines, status, acknowledgement) in cases {
        let state = allocate(&mut client, marketplace(id, &lines)).await;
        assert_eq!(
            (state.status(), state.acknowledgement()),
            (status, acknowledgement),
            "{id}"
        );
    }
    // The rejected multi-line order reserved nothing: 5 - 2 (fine) are left.
    let stock = client
        .get_inventory(GetInventoryRequest {
            merchant_id: M.into(),
            sku: "stocked".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stock.fcs[0].available, 3);

    merchant(
        &mut client,
        Merchant {
            merchant_id: M.into(),
            auto_acknowledge: true,
            accept_regardless_of_inventory: true,
            ..Default::default()
        },
    )
    .await;
    let regardless = allocate(&mut client, marketplace("regardless", &[("empty", 1)])).await;
    assert_eq!(
        (regardless.status(), regardless.acknowledgement()),
        (OrderStatus::Exception, Acknowledgement::Acknowledged)
    );
}

#[tokio::test]
async fn auto_split_returns_every_state_and_the_parent_lists_its_children() {
    let server = start().await;
    let mut client = server.client.clone();
    merchant(
        &mut client,
        Merchant {
            merchant_id: M.into(),
            split_tags: vec!["frozen".into()],
            ..Default::default()
        },
    )
    .await;
    client
        .register_skus(RegisterSkusRequest {
            merchant_id: M.into(),
            skus: vec![Sku {
                sku: "ice".into(),
                tags: vec!["frozen".into()],
                replenishable: false,
            }],
        })
        .await
        .unwrap();
    set_stock(&mut client, M, "ice", "cold-fc", 2).await;
    set_stock(&mut client, M, "soap", "fc1", 2).await;

    let response = client
        .allocate(AllocateRequest {
            order: Some(order(M, "o", &[("soap", 1), ("ice", 2)])),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = response
        .orders
        .iter()
        .map(|o| o.order_id.as_str())
        .collect();
    assert_eq!(ids, ["o", "o/frozen"]);
    let (parent, child) = (&response.orders[0], &response.orders[1]);
    assert_eq!(parent.child_order_ids, ["o/frozen"]);
    assert_eq!(parent.allocations[0].fc_id, "fc1");
    assert_eq!(child.parent_order_id, "o");
    assert_eq!(child.allocations[0].fc_id, "cold-fc");
    assert_eq!(child.allocations[0].quantity, 2);

    let read = get_order(&mut client, M, "o").await.unwrap();
    assert_eq!(read.child_order_ids, ["o/frozen"]);
    assert_eq!(read.lines.len(), 1, "the parent keeps its own lines");
}

async fn next_event(events: &mut tonic::Streaming<OrderEvent>) -> OrderEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream stays open")
        .expect("an event, not an error")
}

#[tokio::test]
async fn a_subscriber_sees_an_orders_whole_life_in_order() {
    let server = start().await;
    let mut client = server.client.clone();
    let mut events = client
        .watch_events(WatchEventsRequest {
            merchant_id: M.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Another merchant's orders are filtered out.
    set_stock(&mut client, "other", "x", "fc1", 1).await;
    allocate(&mut client, order("other", "x", &[("x", 1)])).await;

    shipped(&mut client, "o", "T1", LabelSource::Service, FRIDAY_5PM).await;
    scan(
        &mut client,
        "T1",
        TrackingStatus::PickedUp,
        FRIDAY_5PM + DAY,
        false,
    )
    .await;
    scan(
        &mut client,
        "T1",
        TrackingStatus::Delivered,
        FRIDAY_5PM + 3 * DAY,
        false,
    )
    .await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = next_event(&mut events).await;
        assert_eq!(
            (event.merchant_id.as_str(), event.order_id.as_str()),
            (M, "o")
        );
        seen.push((event.kind(), event.tracking_status()));
    }
    assert_eq!(
        seen,
        [
            (OrderEventKind::Allocated, TrackingStatus::Unspecified),
            (OrderEventKind::Shipped, TrackingStatus::AtDepot),
            (
                OrderEventKind::TrackingStatusChanged,
                TrackingStatus::PickedUp
            ),
            (
                OrderEventKind::TrackingStatusChanged,
                TrackingStatus::Delivered
            ),
        ]
    );
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_without_stalling_allocation() {
    let server = start_with(ServerOptions {
        watch_buffer: 16,
        ..ServerOptions::default()
    })
    .await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 1_000_000).await;
    // Subscribes, then reads nothing while far more events than the buffer
    // (and the HTTP/2 windows) can hold are produced.
    let mut slow = client
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();

    for batch in 0..3 {
        let orders = (0..10_000)
            .map(|i| order(M, &format!("o-{batch}-{i}"), &[("a", 1)]))
            .collect();
        let response = tokio::time::timeout(
            Duration::from_secs(60),
            client.allocate_batch(AllocateBatchRequest {
                orders,
                as_of: None,
                ..Default::default()
            }),
        )
        .await
        .expect("allocation is not held up by the subscriber")
        .unwrap()
        .into_inner();
        assert!(response
            .results
            .iter()
            .all(|r| matches!(r.outcome, Some(allocate_result::Outcome::State(_)))));
    }

    // What the subscriber gets: some events, then a clear status, then the end.
    let mut delivered = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("no hang")
        {
            Some(Ok(_)) => delivered += 1,
            Some(Err(status)) => break status,
            None => panic!("stream ended without saying why after {delivered} events"),
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("fell"), "{status:?}");
    assert!(delivered < 30_000, "it was cut off, not served everything");
}
