//! Every foundation RPC over real gRPC against a real server on 127.0.0.1:0.

#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;
use tonic::Code;

#[tokio::test]
async fn merchant_settings_round_trip_and_default() {
    let server = start().await;
    let mut client = server.client.clone();
    let defaults = client
        .get_merchant(GetMerchantRequest {
            merchant_id: "new".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!defaults.partial_shipments);
    assert_eq!(defaults.fifo_strategy(), FifoStrategy::None);

    let settings = Merchant {
        merchant_id: "m".into(),
        partial_shipments: true,
        fifo_strategy: FifoStrategy::Full as i32,
        fc_priority: vec!["fc2".into(), "fc1".into()],
        auto_acknowledge: true,
        accept_regardless_of_inventory: false,
        split_tags: vec!["cold".into()],
        routing_strategy: RoutingStrategy::Closest as i32,
    };
    let stored = client
        .upsert_merchant(settings.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored, settings);
    let read = client
        .get_merchant(GetMerchantRequest {
            merchant_id: "m".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, settings);
}

#[tokio::test]
async fn catalog_and_inventory_rpcs() {
    let server = start().await;
    let mut client = server.client.clone();
    let counts = client
        .register_skus(RegisterSkusRequest {
            merchant_id: "m".into(),
            skus: vec![
                Sku {
                    sku: "a".into(),
                    tags: vec![],
                    replenishable: true,
                },
                Sku {
                    sku: "b".into(),
                    tags: vec!["cold".into()],
                    replenishable: false,
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((counts.registered, counts.updated), (2, 0));

    let set = client
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![
                InventoryLevel {
                    sku: "a".into(),
                    fc_id: "fc1".into(),
                    on_hand: 10,
                },
                InventoryLevel {
                    sku: "a".into(),
                    fc_id: "fc2".into(),
                    on_hand: 4,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.views.len(), 1, "one view per distinct SKU");
    assert_eq!(set.views[0].fcs.len(), 2);

    let adjusted = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: "a".into(),
                fc_id: "fc1".into(),
                delta: -3,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let fc1 = &adjusted.views[0].fcs[0];
    assert_eq!(
        (fc1.fc_id.as_str(), fc1.on_hand, fc1.available),
        ("fc1", 7, 7)
    );

    let view = client
        .get_inventory(GetInventoryRequest {
            merchant_id: "m".into(),
            sku: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.fcs, adjusted.views[0].fcs);

    let missing = client
        .get_inventory(GetInventoryRequest {
            merchant_id: "m".into(),
            sku: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let below_zero = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: "a".into(),
                fc_id: "fc2".into(),
                delta: -5,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(below_zero.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn order_lifecycle_over_grpc() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 3).await;

    let state = allocate(&mut client, order("m", "o1", &[("a", 2)])).await;
    assert_eq!(state.status(), OrderStatus::Processing);
    assert_eq!(
        state.allocations,
        vec![Allocation {
            fc_id: "fc1".into(),
            sku: "a".into(),
            quantity: 2
        }]
    );
    assert_eq!(state.version, 1);

    // An identical retry returns the stored state; a different one is refused.
    assert_eq!(
        allocate(&mut client, order("m", "o1", &[("a", 2)])).await,
        as_stored(&state)
    );
    let conflict = client
        .allocate(AllocateRequest {
            order: Some(order("m", "o1", &[("a", 1)])),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);

    assert_eq!(
        get_order(&mut client, "m", "o1").await.unwrap(),
        as_stored(&state)
    );
    assert_eq!(
        get_order(&mut client, "m", "zz").await.unwrap_err().code(),
        Code::NotFound
    );

    let held = client
        .hold_order(HoldOrderRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            reason: "customer called".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.status(), OrderStatus::OnHold);
    assert_eq!(held.hold_reason, "customer called");
    assert!(held.allocations.is_empty());

    let released = client
        .release_order(ReleaseOrderRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.status(), OrderStatus::Processing);
    let again = client
        .release_order(ReleaseOrderRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    let picked = client
        .mark_picked(MarkPickedRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(picked.picked);
    let hold_picked = client
        .hold_order(HoldOrderRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            reason: String::new(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(hold_picked.code(), Code::FailedPrecondition);

    let cancelled = client
        .cancel_order(CancelOrderRequest {
            merchant_id: "m".into(),
            order_id: "o1".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    let stock = client
        .get_inventory(GetInventoryRequest {
            merchant_id: "m".into(),
            sku: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.fcs[0].reserved, stock.fcs[0].picked), (0, 0));
}

#[tokio::test]
async fn count_below_reserved_sends_the_newest_order_to_exception() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 4).await;
    let mut old = order("m", "old", &[("a", 2)]);
    old.purchase_time = time(100);
    let mut new = order("m", "new", &[("a", 2)]);
    new.purchase_time = time(200);
    allocate(&mut client, old).await;
    allocate(&mut client, new).await;
    let response = client
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![InventoryLevel {
                sku: "a".into(),
                fc_id: "fc1".into(),
                on_hand: 3,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.shortage_order_ids, vec!["new".to_string()]);
    let new = get_order(&mut client, "m", "new").await.unwrap();
    assert_eq!(new.status(), OrderStatus::Exception);
    assert_eq!(
        new.exceptions[0].reason(),
        ExceptionReason::InventoryShortage
    );
}

#[tokio::test]
async fn list_orders_pages_oldest_first_with_status_filter() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 3).await;
    for (id, seconds) in [("d", 40), ("b", 20), ("a", 10), ("c", 30), ("e", 50)] {
        let mut o = order("m", id, &[("a", 1)]);
        o.purchase_time = time(seconds);
        allocate(&mut client, o).await;
    }
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_orders(ListOrdersRequest {
                merchant_id: "m".into(),
                status: None,
                page_size: 2,
                page_token: token.clone(),
                as_of: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.orders.len() <= 2);
        ids.extend(page.orders.into_iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);

    // d, b, a were imported first and took the three units.
    let exceptions = client
        .list_orders(ListOrdersRequest {
            merchant_id: "m".into(),
            status: Some(OrderStatus::Exception as i32),
            page_size: 0,
            page_token: String::new(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<String> = exceptions.orders.into_iter().map(|o| o.order_id).collect();
    assert_eq!(ids, ["c", "e"]);

    let bad_token = client
        .list_orders(ListOrdersRequest {
            merchant_id: "m".into(),
            status: None,
            page_size: 0,
            page_token: "garbage".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_token), ["page_token"]);
}

#[tokio::test]
async fn a_bad_order_in_a_batch_fails_alone() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 5).await;
    let mut bad = order("m", "bad", &[("a", 1)]);
    bad.lines[0].quantity = 0;
    let response = client
        .allocate_batch(AllocateBatchRequest {
            orders: vec![
                order("m", "good1", &[("a", 2)]),
                bad,
                order("m", "good2", &[("a", 2)]),
            ],
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 3);
    for i in [0, 2] {
        match &response.results[i].outcome {
            Some(allocate_result::Outcome::State(state)) => {
                assert_eq!(state.status(), OrderStatus::Processing)
            }
            other => panic!("result {i}: {other:?}"),
        }
    }
    match &response.results[1].outcome {
        Some(allocate_result::Outcome::Error(status)) => {
            assert_eq!(status.code, Code::InvalidArgument as i32);
            assert!(
                status.message.contains("orders[1].lines[0].quantity"),
                "{}",
                status.message
            );
            assert!(
                !status.details.is_empty(),
                "BadRequest details travel with the error"
            );
        }
        other => panic!("result 1: {other:?}"),
    }
    let missing = get_order(&mut client, "m", "bad").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn a_memory_only_server_cannot_snapshot() {
    let server = start().await;
    let mut client = server.client.clone();
    // A server without a data directory cannot snapshot.
    let status = client.snapshot(SnapshotRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}
