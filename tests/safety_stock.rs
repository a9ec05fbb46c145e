//! Safety stock over real gRPC (RULES §12): allocation never takes the last
//! units of a (SKU, FC), and every view's `available` says so.

#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;

const M: &str = "m";

fn level(sku: &str, fc: &str, units: i64) -> SafetyStockLevel {
    SafetyStockLevel {
        sku: sku.into(),
        fc_id: fc.into(),
        units,
    }
}

async fn safety(
    client: &mut Client,
    levels: Vec<SafetyStockLevel>,
) -> Result<InventoryResponse, tonic::Status> {
    let request = SetSafetyStockRequest {
        merchant_id: M.into(),
        levels,
        ..Default::default()
    };
    Ok(client.set_safety_stock(request).await?.into_inner())
}

/// (fc, on hand, reserved, safety stock, available) of every row of `sku`.
async fn stock(client: &mut Client, sku: &str) -> Vec<(String, u64, u64, u64, u64)> {
    client
        .get_inventory(GetInventoryRequest {
            merchant_id: M.into(),
            sku: sku.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .fcs
        .into_iter()
        .map(|fc| {
            (
                fc.fc_id,
                fc.on_hand,
                fc.reserved,
                fc.safety_stock,
                fc.available,
            )
        })
        .collect()
}

fn rule(state: &OrderState) -> DecisionRule {
    state.decision.as_ref().unwrap().rule()
}

#[tokio::test]
async fn the_last_units_are_never_allocated_and_available_subtracts_them() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 5).await;
    let answer = safety(&mut client, vec![level("a", "fc1", 2)])
        .await
        .unwrap();
    assert_eq!(answer.views[0].fcs[0].available, 3);
    assert_eq!(answer.views[0].fcs[0].safety_stock, 2);

    let too_much = allocate(&mut client, order(M, "o1", &[("a", 4)])).await;
    assert_eq!(too_much.status(), OrderStatus::Exception);
    let short = &too_much.decision.as_ref().unwrap().fcs[0].short[0];
    assert_eq!((short.needed, short.available), (4, 3));
    let fits = allocate(&mut client, order(M, "o2", &[("a", 3)])).await;
    assert_eq!(fits.status(), OrderStatus::Processing);
    assert_eq!(stock(&mut client, "a").await, [("fc1".into(), 5, 3, 2, 0)]);

    // Lowering it frees units for the next pass.
    safety(&mut client, vec![level("a", "fc1", 0)])
        .await
        .unwrap();
    assert_eq!(stock(&mut client, "a").await, [("fc1".into(), 5, 3, 0, 2)]);
    let pass = client
        .reprocess(ReprocessRequest {
            merchant_id: M.into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (pass.examined, pass.allocated),
        (1, 0),
        "o1 needs 4, 2 are free"
    );
}

#[tokio::test]
async fn a_level_for_every_fc_applies_where_no_fc_has_its_own() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 5).await;
    set_stock(&mut client, M, "a", "fc2", 2).await;
    safety(&mut client, vec![level("a", "", 1)]).await.unwrap();
    assert_eq!(
        stock(&mut client, "a").await,
        [("fc1".into(), 5, 0, 1, 4), ("fc2".into(), 2, 0, 1, 1)]
    );
    safety(&mut client, vec![level("a", "fc2", 0)])
        .await
        .unwrap();
    assert_eq!(
        stock(&mut client, "a").await,
        [("fc1".into(), 5, 0, 1, 4), ("fc2".into(), 2, 0, 0, 2)]
    );
}

/// The allocation table's rows (RULES §4), each decided on stock that
/// only suffices once safety stock is ignored, or that suffices after it.
#[tokio::test]
async fn the_allocation_rules_count_only_stock_above_the_safety_level() {
    let server = start().await;
    let mut client = server.client.clone();
    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            fc_priority: vec!["fc1".into(), "fc2".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    // a: 3 at fc1 and 3 at fc2, 1 of each kept back. b: 2 at fc2, 1 kept.
    set_stock(&mut client, M, "a", "fc1", 3).await;
    set_stock(&mut client, M, "a", "fc2", 3).await;
    set_stock(&mut client, M, "b", "fc2", 2).await;
    safety(&mut client, vec![level("a", "", 1), level("b", "fc2", 1)])
        .await
        .unwrap();

    // fc1 has 3 of a on the shelf but only 2 to give: fc2 cannot either,
    // so a×3 may not split, yet the network holds 4.
    let not_allowed = allocate(&mut client, order(M, "not-allowed", &[("a", 3)])).await;
    assert_eq!(rule(&not_allowed), DecisionRule::SplitNotAllowed);
    // b×2: 2 on the shelf, 1 to give: the network is short.
    let short = allocate(&mut client, order(M, "short", &[("b", 2)])).await;
    assert_eq!(rule(&short), DecisionRule::InsufficientNetwork);
    let assigned = allocate(
        &mut client,
        Order {
            assigned_fc_id: Some("fc2".into()),
            ..order(M, "assigned", &[("a", 3)])
        },
    )
    .await;
    assert_eq!(rule(&assigned), DecisionRule::InsufficientAtAssignedFc);
    let single = allocate(&mut client, order(M, "single", &[("a", 2)])).await;
    assert_eq!(rule(&single), DecisionRule::SingleFc);
    assert_eq!(single.allocations[0].fc_id, "fc1");

    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            fc_priority: vec!["fc1".into(), "fc2".into()],
            partial_shipments: true,
            ..Default::default()
        })
        .await
        .unwrap();
    // Left to give: a 0 at fc1, 2 at fc2; b 1 at fc2.
    let partial = allocate(&mut client, order(M, "partial", &[("a", 3), ("b", 1)])).await;
    assert_eq!(rule(&partial), DecisionRule::Partial);
    assert_eq!(partial.allocations.len(), 2);
    for sku in ["a", "b"] {
        for (fc, on_hand, reserved, safety, available) in stock(&mut client, sku).await {
            assert!(
                on_hand - reserved >= safety,
                "{sku} at {fc}: the safety stock was taken"
            );
            assert_eq!(available, on_hand - reserved - safety);
        }
    }
}

#[tokio::test]
async fn marketplace_out_of_stock_counts_safety_stock_and_fifo_merchants_get_lowered_levels_at_once(
) {
    let server = start().await;
    let mut client = server.client.clone();
    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            auto_acknowledge: true,
            fifo_strategy: FifoStrategy::Full as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .register_skus(RegisterSkusRequest {
            merchant_id: M.into(),
            skus: vec![Sku {
                sku: "last".into(),
                tags: vec![],
                replenishable: false,
            }],
        })
        .await
        .unwrap();
    set_stock(&mut client, M, "last", "fc1", 2).await;
    safety(&mut client, vec![level("last", "fc1", 2)])
        .await
        .unwrap();
    let cancelled = allocate(
        &mut client,
        Order {
            channel: Channel::Marketplace as i32,
            ..order(M, "mp", &[("last", 1)])
        },
    )
    .await;
    assert_eq!(
        cancelled.acknowledgement(),
        Acknowledgement::CancelledNoInventory
    );

    let waiting = allocate(&mut client, order(M, "waiting", &[("last", 1)])).await;
    assert_eq!(waiting.status(), OrderStatus::Exception);
    safety(&mut client, vec![level("last", "fc1", 1)])
        .await
        .unwrap();
    let released = get_order(&mut client, M, "waiting").await.unwrap();
    assert_eq!(released.status(), OrderStatus::Processing);
}

#[tokio::test]
async fn bad_levels_are_refused_naming_the_field_and_change_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 5).await;
    let before = stock(&mut client, "a").await;
    for (levels, field) in [
        (
            vec![level("a", "fc1", 1), level("a", "nowhere", 1)],
            "levels[1].fc_id",
        ),
        (vec![level("a", "fc1", -1)], "levels[0].units"),
        (vec![level("a", "fc1", 5_000_000_000)], "levels[0].units"),
        (
            vec![level("a", "fc1", 1), level("unknown", "fc1", 1)],
            "levels[1].sku",
        ),
        (vec![], "levels"),
    ] {
        let refused = safety(&mut client, levels).await.unwrap_err();
        assert_eq!(violated_fields(&refused), [field]);
    }
    assert_eq!(stock(&mut client, "a").await, before, "nothing changed");
}
