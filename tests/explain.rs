//! Decisions, dry runs, ExplainOrder and SimulateSettings over real gRPC
//! (RULES §11).

#[path = "support/binary.rs"]
mod binary;
#[path = "support/in_process.rs"]
mod in_process;

use std::collections::BTreeMap;

use allocation::grpc::proto::*;
use in_process::*;
use tokio_stream::StreamExt;
use tonic::Code;

const M: &str = "m";

fn rule(state: &OrderState) -> DecisionRule {
    state.decision.as_ref().expect("a decision").rule()
}

/// The candidate FCs of a decision: (fc, chosen, rank, can fill, shortfalls as (sku, needed, available)).
type Assessed = (String, bool, u32, bool, Vec<(String, u32, u64)>);

fn assessed(state: &OrderState) -> Vec<Assessed> {
    assessed_by(state.decision.as_ref().expect("a decision"))
}

fn assessed_by(decision: &Decision) -> Vec<Assessed> {
    decision
        .fcs
        .iter()
        .map(|fc| {
            let short = fc
                .short
                .iter()
                .map(|line| (line.sku.clone(), line.needed, line.available))
                .collect();
            (
                fc.fc_id.clone(),
                fc.chosen,
                fc.rank,
                fc.can_fill_order,
                short,
            )
        })
        .collect()
}

fn short(sku: &str, needed: u32, available: u64) -> (String, u32, u64) {
    (sku.into(), needed, available)
}

async fn merchant(client: &mut Client, settings: Merchant) {
    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            ..settings
        })
        .await
        .unwrap();
}

async fn reprocess(client: &mut Client) -> ReprocessResponse {
    client
        .reprocess(ReprocessRequest {
            merchant_id: M.into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn each_allocation_rule_names_itself_and_the_fcs_it_weighed() {
    let server = start().await;
    let mut client = server.client.clone();
    merchant(
        &mut client,
        Merchant {
            fc_priority: vec!["fc1".into(), "fc2".into()],
            ..Default::default()
        },
    )
    .await;
    set_stock(&mut client, M, "a", "fc1", 1).await;
    set_stock(&mut client, M, "a", "fc2", 5).await;
    set_stock(&mut client, M, "b", "fc1", 3).await;

    // fc1 ranks first but is short of a; fc2 holds the whole order.
    let single = allocate(&mut client, order(M, "single", &[("a", 2)])).await;
    assert_eq!(rule(&single), DecisionRule::SingleFc);
    assert_eq!(
        assessed(&single),
        [
            ("fc2".into(), true, 2, true, vec![]),
            ("fc1".into(), false, 1, false, vec![short("a", 2, 1)]),
        ]
    );
    let summary = &single.decision.as_ref().unwrap().summary;
    assert!(summary.contains("fc2"), "{summary}");

    let assigned = allocate(
        &mut client,
        Order {
            assigned_fc_id: Some("fc1".into()),
            ..order(M, "assigned", &[("b", 1)])
        },
    )
    .await;
    assert_eq!(rule(&assigned), DecisionRule::AssignedFc);
    assert_eq!(assessed(&assigned), [("fc1".into(), true, 1, true, vec![])]);

    let assigned_short = allocate(
        &mut client,
        Order {
            assigned_fc_id: Some("fc1".into()),
            ..order(M, "assigned-short", &[("a", 2)])
        },
    )
    .await;
    assert_eq!(
        rule(&assigned_short),
        DecisionRule::InsufficientAtAssignedFc
    );
    assert_eq!(
        assessed(&assigned_short),
        [("fc1".into(), false, 1, false, vec![short("a", 2, 1)])]
    );

    // Left: a×1 at fc1 and a×3 at fc2, b×2 at fc1 only. No FC holds a×4
    // and b×1; the two together do.
    let not_allowed = allocate(&mut client, order(M, "not-allowed", &[("a", 4), ("b", 1)])).await;
    assert_eq!(rule(&not_allowed), DecisionRule::SplitNotAllowed);
    assert_eq!(
        assessed(&not_allowed),
        [
            ("fc1".into(), false, 1, false, vec![short("a", 4, 1)]),
            (
                "fc2".into(),
                false,
                2,
                false,
                vec![short("a", 4, 3), short("b", 1, 0)]
            ),
        ]
    );

    let insufficient = allocate(&mut client, order(M, "insufficient", &[("a", 9)])).await;
    assert_eq!(rule(&insufficient), DecisionRule::InsufficientNetwork);
    assert_eq!(
        assessed(&insufficient),
        [
            ("fc1".into(), false, 1, false, vec![short("a", 9, 1)]),
            ("fc2".into(), false, 2, false, vec![short("a", 9, 3)]),
        ]
    );

    // The same shapes with partial shipments on split, or take what is there.
    merchant(
        &mut client,
        Merchant {
            fc_priority: vec!["fc1".into(), "fc2".into()],
            partial_shipments: true,
            ..Default::default()
        },
    )
    .await;
    let split = allocate(&mut client, order(M, "split", &[("a", 4), ("b", 1)])).await;
    assert_eq!(rule(&split), DecisionRule::SplitFewestFcs);
    let chosen: Vec<(String, bool)> = assessed(&split)
        .into_iter()
        .map(|fc| (fc.0, fc.1))
        .collect();
    assert_eq!(chosen, [("fc1".into(), true), ("fc2".into(), true)]);

    let partial = allocate(&mut client, order(M, "partial", &[("b", 5)])).await;
    assert_eq!(rule(&partial), DecisionRule::Partial);
    assert_eq!(partial.status(), OrderStatus::PartiallyAllocated);
    assert_eq!(
        assessed(&partial),
        [("fc1".into(), true, 1, false, vec![short("b", 5, 1)])]
    );

    // A later read carries the rule and the summary, not the candidates.
    let read = get_order(&mut client, M, "split").await.unwrap();
    assert_eq!(read, as_stored(&split));
    assert_eq!(rule(&read), DecisionRule::SplitFewestFcs);
}

#[tokio::test]
async fn holds_refusals_fifo_shortages_and_splits_name_their_rules() {
    let server = start().await;
    let mut client = server.client.clone();
    merchant(
        &mut client,
        Merchant {
            auto_acknowledge: true,
            split_tags: vec!["cold".into()],
            ..Default::default()
        },
    )
    .await;
    client
        .register_skus(RegisterSkusRequest {
            merchant_id: M.into(),
            skus: vec![
                Sku {
                    sku: "gone".into(),
                    tags: vec![],
                    replenishable: false,
                },
                Sku {
                    sku: "ice".into(),
                    tags: vec!["cold".into()],
                    replenishable: false,
                },
            ],
        })
        .await
        .unwrap();
    set_stock(&mut client, M, "gone", "fc1", 0).await;
    set_stock(&mut client, M, "ice", "fc1", 5).await;
    set_stock(&mut client, M, "soap", "fc1", 5).await;

    let held = allocate(
        &mut client,
        Order {
            hold_reason: "address check".into(),
            ..order(M, "held", &[("soap", 1)])
        },
    )
    .await;
    assert_eq!(rule(&held), DecisionRule::OnHold);
    assert!(held.decision.unwrap().summary.contains("address check"));

    let marketplace = |id: &str, lines: &[(&str, u32)]| Order {
        channel: Channel::Marketplace as i32,
        ..order(M, id, lines)
    };
    let cancelled = allocate(
        &mut client,
        marketplace("cancelled", &[("nobody-knows", 1)]),
    )
    .await;
    assert_eq!(rule(&cancelled), DecisionRule::MarketplaceCancelled);
    let rejected = allocate(
        &mut client,
        marketplace("rejected", &[("gone", 1), ("soap", 1)]),
    )
    .await;
    assert_eq!(rule(&rejected), DecisionRule::MarketplaceRejected);

    let response = client
        .allocate(AllocateRequest {
            order: Some(order(M, "parent", &[("ice", 1)])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rule(&response.orders[0]), DecisionRule::SplitIntoChildren);
    assert_eq!(rule(&response.orders[1]), DecisionRule::SingleFc);

    // A count below what an order holds.
    allocate(&mut client, order(M, "counted", &[("soap", 3)])).await;
    set_stock(&mut client, M, "soap", "fc1", 1).await;
    let counted = get_order(&mut client, M, "counted").await.unwrap();
    assert_eq!(rule(&counted), DecisionRule::InventoryShortage);

    // A FIFO release gives a younger order's units to an older one.
    merchant(
        &mut client,
        Merchant {
            fifo_strategy: FifoStrategy::Full as i32,
            ..Default::default()
        },
    )
    .await;
    set_stock(&mut client, M, "tea", "fc1", 1).await;
    let mut younger = order(M, "younger", &[("tea", 1)]);
    younger.purchase_time = time(200);
    let mut older = order(M, "older", &[("tea", 1)]);
    older.purchase_time = time(100);
    allocate(&mut client, younger).await;
    allocate(&mut client, older).await;
    client
        .fifo_release(FifoReleaseRequest {
            merchant_id: M.into(),
            skus: vec!["tea".into()],
            as_of: None,
        })
        .await
        .unwrap();
    let preempted = get_order(&mut client, M, "younger").await.unwrap();
    assert_eq!(rule(&preempted), DecisionRule::Fifo);

    // A person's cancel leaves no rule behind.
    let cancelled_by_hand = client
        .cancel_order(CancelOrderRequest {
            merchant_id: M.into(),
            order_id: "older".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled_by_hand.decision.is_none());
}

#[tokio::test]
async fn the_decision_view_answers_without_echoes() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 5).await;
    let lean = client
        .allocate(AllocateRequest {
            order: Some(order(M, "o", &[("a", 2)])),
            view: OrderView::Decision as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders
        .remove(0);
    assert_eq!(lean.allocations.len(), 1);
    assert_eq!(lean.version, 1);
    assert!(lean.lines.is_empty() && lean.purchase_time.is_none());
    let decision = lean.decision.unwrap();
    assert_eq!(decision.rule(), DecisionRule::SingleFc);
    assert!(decision.fcs.is_empty() && decision.summary.is_empty());

    let bad = client
        .allocate(AllocateRequest {
            order: Some(order(M, "p", &[("a", 1)])),
            view: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["view"]);
}

fn journal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("journal-"))
        .map(|entry| entry.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_even_under_load_and_answers_what_allocating_would() {
    let dir = std::env::temp_dir().join(format!("allocation-dry-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = binary::Binary::start(&dir, &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();
    set_stock(&mut client, M, "a", "fc1", 1_000).await;
    set_stock(&mut client, M, "b", "fc1", 1_000).await;
    let mut events = client
        .watch_events(WatchEventsRequest {
            merchant_id: M.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let dry = |id: &str, lines: &[(&str, u32)]| AllocateRequest {
        order: Some(order(M, id, lines)),
        dry_run: true,
        ..Default::default()
    };
    let before = journal_bytes(&dir);
    let answer = client
        .allocate(dry("o1", &[("a", 3), ("b", 1)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(journal_bytes(&dir), before, "nothing journaled");
    assert_eq!(
        get_order(&mut client, M, "o1").await.unwrap_err().code(),
        Code::NotFound
    );
    let stock = client
        .get_inventory(GetInventoryRequest {
            merchant_id: M.into(),
            sku: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stock.fcs[0].reserved, 0, "nothing reserved");

    // The same order for real gets the same answer; its event is the first
    // the feed delivers, so the dry run announced nothing.
    let real = client
        .allocate(AllocateRequest {
            order: Some(order(M, "o1", &[("a", 3), ("b", 1)])),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(real, answer);
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.order_id, "o1");

    // A stored id does not matter to a dry run: it answers as if new.
    let again = client
        .allocate(dry("o1", &[("b", 2)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.orders[0].allocations[0].quantity, 2);

    // Under concurrent allocation, dry runs reserve nothing: every reserved
    // unit belongs to a stored order.
    let mut writer = client.clone();
    let load = tokio::spawn(async move {
        for i in 0..200 {
            writer
                .allocate(AllocateRequest {
                    order: Some(order(M, &format!("w{i}"), &[("a", 1), ("b", 1)])),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    });
    for i in 0..200 {
        let batch = AllocateBatchRequest {
            orders: vec![order(M, &format!("d{i}"), &[("a", 2)]); 3],
            dry_run: true,
            ..Default::default()
        };
        let results = client
            .allocate_batch(batch)
            .await
            .unwrap()
            .into_inner()
            .results;
        assert_eq!(results.len(), 3);
    }
    load.await.unwrap();
    for sku in ["a", "b"] {
        let stock = client
            .get_inventory(GetInventoryRequest {
                merchant_id: M.into(),
                sku: sku.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let held_by_orders = if sku == "a" { 3 + 200 } else { 1 + 200 };
        assert_eq!(stock.fcs[0].reserved, held_by_orders, "{sku}");
    }
    assert_eq!(
        get_order(&mut client, M, "d0").await.unwrap_err().code(),
        Code::NotFound
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn explain(client: &mut Client, order_id: &str) -> Result<Explanation, tonic::Status> {
    let request = ExplainOrderRequest {
        merchant_id: M.into(),
        order_id: order_id.into(),
        as_of: None,
    };
    Ok(client.explain_order(request).await?.into_inner())
}

#[tokio::test]
async fn explain_order_names_what_a_stuck_order_misses_at_each_fc() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "a", "fc1", 1).await;
    set_stock(&mut client, M, "a", "fc2", 2).await;
    set_stock(&mut client, M, "b", "fc2", 4).await;
    let stuck = allocate(&mut client, order(M, "stuck", &[("a", 3), ("b", 1)])).await;
    assert_eq!(stuck.status(), OrderStatus::Exception);

    let explanation = explain(&mut client, "stuck").await.unwrap();
    assert_eq!(explanation.order.unwrap(), as_stored(&stuck));
    let now = explanation.now.unwrap();
    assert_eq!(now.rule(), DecisionRule::SplitNotAllowed);
    assert_eq!(
        assessed_by(&now),
        [
            (
                "fc1".into(),
                false,
                1,
                false,
                vec![short("a", 3, 1), short("b", 1, 0)]
            ),
            ("fc2".into(), false, 2, false, vec![short("a", 3, 2)]),
        ]
    );
    // Per line: (sku, [(fc, on hand, available)]).
    type Levels = Vec<(String, u64, u64)>;
    let lines: Vec<(String, Levels)> = explanation
        .lines
        .iter()
        .map(|line| {
            let fcs = line
                .fcs
                .iter()
                .map(|fc| (fc.fc_id.clone(), fc.on_hand, fc.available))
                .collect();
            (line.sku.clone(), fcs)
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("a".into(), vec![("fc1".into(), 1, 1), ("fc2".into(), 2, 2)]),
            ("b".into(), vec![("fc2".into(), 4, 4)]),
        ]
    );

    // With one more unit at fc2 it would ship from there: ExplainOrder says
    // so, and changes nothing until a pass runs.
    set_stock(&mut client, M, "a", "fc2", 3).await;
    let explanation = explain(&mut client, "stuck").await.unwrap();
    assert_eq!(explanation.now.unwrap().rule(), DecisionRule::SingleFc);
    assert_eq!(
        get_order(&mut client, M, "stuck").await.unwrap().status(),
        OrderStatus::Exception
    );

    let unknown = explain(&mut client, "nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

/// Orders in exception over a few SKUs at two FCs, then stock for part of
/// them; the merchant does not ship partially.
async fn waiting_queue(client: &mut Client) -> Vec<String> {
    for sku in ["a", "b", "c"] {
        set_stock(client, M, sku, "fc1", 0).await;
    }
    let mut ids = Vec::new();
    for i in 0..30u32 {
        let lines: &[(&str, u32)] = match i % 3 {
            0 => &[("a", 2)],
            1 => &[("a", 1), ("b", 2)],
            _ => &[("b", 1), ("c", 3)],
        };
        let mut waiting = order(M, &format!("w{i:02}"), lines);
        waiting.purchase_time = time(1_000 + i64::from(30 - i));
        allocate(client, waiting).await;
        ids.push(format!("w{i:02}"));
    }
    set_stock(client, M, "a", "fc1", 9).await;
    set_stock(client, M, "b", "fc2", 7).await;
    set_stock(client, M, "c", "fc1", 4).await;
    set_stock(client, M, "c", "fc2", 4).await;
    ids
}

async fn simulate(client: &mut Client, settings: Merchant) -> SimulationResult {
    client
        .simulate_settings(SimulateSettingsRequest {
            merchant: Some(Merchant {
                merchant_id: M.into(),
                ..settings
            }),
            as_of: None,
            orders_max: 100,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every order's (status, allocations), by id.
async fn states(client: &mut Client, ids: &[String]) -> BTreeMap<String, (i32, Vec<Allocation>)> {
    let mut states = BTreeMap::new();
    for id in ids {
        let state = get_order(client, M, id).await.unwrap();
        states.insert(id.clone(), (state.status, state.allocations));
    }
    states
}

fn simulated(result: &SimulationResult) -> BTreeMap<String, (i32, Vec<Allocation>)> {
    result
        .orders
        .iter()
        .map(|state| {
            (
                state.order_id.clone(),
                (state.status, state.allocations.clone()),
            )
        })
        .collect()
}

#[tokio::test]
async fn simulating_the_current_settings_predicts_the_next_reprocess_exactly() {
    let server = start().await;
    let mut client = server.client.clone();
    let ids = waiting_queue(&mut client).await;
    let before = states(&mut client, &ids).await;

    let prediction = simulate(&mut client, Merchant::default()).await;
    assert_eq!(states(&mut client, &ids).await, before, "nothing changed");
    assert_eq!(prediction.examined, 30);
    assert!(prediction.would_allocate > 0 && prediction.would_stay > 0);
    // Oldest first: w29 was bought first.
    assert_eq!(prediction.orders[0].order_id, "w29");

    let pass = reprocess(&mut client).await;
    assert_eq!(
        (
            pass.examined,
            pass.allocated,
            pass.partially_allocated,
            pass.still_in_exception
        ),
        (
            prediction.examined,
            prediction.would_allocate,
            prediction.would_partially_allocate,
            prediction.would_stay
        )
    );
    assert_eq!(states(&mut client, &ids).await, simulated(&prediction));
}

#[tokio::test]
async fn simulating_partial_shipments_predicts_partial_allocations_and_changes_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    let ids = waiting_queue(&mut client).await;
    let before = states(&mut client, &ids).await;
    let current = simulate(&mut client, Merchant::default()).await;

    let partial = Merchant {
        partial_shipments: true,
        ..Default::default()
    };
    let prediction = simulate(&mut client, partial.clone()).await;
    assert_eq!(states(&mut client, &ids).await, before, "nothing changed");
    assert!(prediction.would_partially_allocate > 0, "{prediction:?}");
    assert!(prediction.would_split > 0, "{prediction:?}");
    assert!(prediction.would_stay < current.would_stay);

    // Once the merchant takes the setting, a pass does what was predicted.
    merchant(&mut client, partial).await;
    let pass = reprocess(&mut client).await;
    assert_eq!(
        pass.partially_allocated,
        prediction.would_partially_allocate
    );
    assert_eq!(states(&mut client, &ids).await, simulated(&prediction));

    // A FIFO strategy is simulated as the FIFO release a pass would run.
    let fifo = simulate(
        &mut client,
        Merchant {
            fifo_strategy: FifoStrategy::Partial as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fifo.examined, 30, "every movable order: {fifo:?}");
}

#[tokio::test]
async fn bad_simulations_are_refused_naming_the_field() {
    let server = start().await;
    let mut client = server.client.clone();
    let refused = client
        .simulate_settings(SimulateSettingsRequest {
            merchant: Some(Merchant {
                merchant_id: M.into(),
                fc_priority: vec!["fc1".into(), "fc1".into()],
                ..Default::default()
            }),
            as_of: None,
            orders_max: 1_001,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["merchant.fc_priority[1]"]);
    let refused = client
        .simulate_settings(SimulateSettingsRequest {
            merchant: Some(Merchant {
                merchant_id: M.into(),
                ..Default::default()
            }),
            as_of: None,
            orders_max: 1_001,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["orders_max"]);
    let refused = client
        .simulate_settings(SimulateSettingsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["merchant"]);
}
