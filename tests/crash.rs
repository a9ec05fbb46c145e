//! Crash test: the real binary, concurrent clients, `kill -9` at seeded
//! random moments, several rounds on one data directory. After every
//! restart, every acknowledged change is there and no invariant is broken.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/rng.rs"]
mod rng;
use binary::Binary;
use rng::Rng;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic::transport::Channel;

const SKUS: usize = 8;
const FCS: usize = 3;
const CLIENTS: usize = 4;
const ROUNDS: usize = 4;

async fn connect(server: &Binary) -> AllocationServiceClient<Channel> {
    AllocationServiceClient::connect(server.url())
        .await
        .expect("connect")
}

fn cell(sku: usize, fc: usize) -> (String, String) {
    (format!("s{sku}"), format!("fc{fc}"))
}

/// What the clients were told, and what they sent without an answer.
#[derive(Clone, Default)]
struct Acknowledged {
    orders: HashMap<String, OrderState>,
    /// Net units added by acknowledged adjustments, per (SKU, FC).
    received: HashMap<(String, String), u64>,
    /// Units of adjustments sent but never answered (the crash hit them).
    maybe_received: HashMap<(String, String), u64>,
}

async fn client_load(
    mut client: AllocationServiceClient<Channel>,
    seed: u64,
    prefix: String,
    acknowledged: Arc<Mutex<Acknowledged>>,
) {
    let mut rng = Rng(seed);
    let mut mine: Vec<String> = Vec::new();
    for n in 0.. {
        match rng.below(10) {
            0..=5 => {
                let id = format!("{prefix}-{n}");
                let first = rng.below(SKUS);
                let order = Order {
                    merchant_id: "m".into(),
                    order_id: id.clone(),
                    purchase_time: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000 + n as i64,
                        nanos: 0,
                    }),
                    lines: (0..1 + rng.below(3))
                        .map(|i| OrderLine {
                            sku: format!("s{}", (first + i) % SKUS),
                            quantity: 1 + rng.below(3) as u32,
                        })
                        .collect(),
                    partial_shipments: Some(rng.below(2) == 0),
                    ..Default::default()
                };
                let request = AllocateRequest {
                    order: Some(order),
                    as_of: None,
                };
                match client.allocate(request).await {
                    Ok(response) => {
                        let state = response.into_inner().orders.remove(0);
                        acknowledged
                            .lock()
                            .unwrap()
                            .orders
                            .insert(id.clone(), state);
                        mine.push(id);
                    }
                    Err(_) => return,
                }
            }
            6 | 7 if !mine.is_empty() => {
                let id = mine.swap_remove(rng.below(mine.len()));
                let request = CancelOrderRequest {
                    merchant_id: "m".into(),
                    order_id: id.clone(),
                    as_of: None,
                };
                match client.cancel_order(request).await {
                    Ok(response) => {
                        acknowledged
                            .lock()
                            .unwrap()
                            .orders
                            .insert(id, response.into_inner());
                    }
                    Err(_) => return,
                }
            }
            _ => {
                let (sku, fc) = cell(rng.below(SKUS), rng.below(FCS));
                let units = 1 + rng.below(3) as u64;
                acknowledged
                    .lock()
                    .unwrap()
                    .maybe_received
                    .entry((sku.clone(), fc.clone()))
                    .and_modify(|u| *u += units)
                    .or_insert(units);
                let request = AdjustInventoryRequest {
                    merchant_id: "m".into(),
                    deltas: vec![InventoryDelta {
                        sku: sku.clone(),
                        fc_id: fc.clone(),
                        delta: units as i64,
                    }],
                };
                let answered = client.adjust_inventory(request).await.is_ok();
                let mut acknowledged = acknowledged.lock().unwrap();
                if answered {
                    *acknowledged
                        .maybe_received
                        .get_mut(&(sku.clone(), fc.clone()))
                        .unwrap() -= units;
                    *acknowledged.received.entry((sku, fc)).or_default() += units;
                } else {
                    return;
                }
            }
        }
    }
}

/// Everything acknowledged is there; the ledger is consistent.
async fn verify(server: &Binary, acknowledged: &Acknowledged, initial: u64, round: usize) {
    let mut client = connect(server).await;
    for (id, acked) in &acknowledged.orders {
        let now = client
            .get_order(GetOrderRequest {
                merchant_id: "m".into(),
                order_id: id.clone(),
                as_of: None,
            })
            .await
            .unwrap_or_else(|status| {
                panic!("round {round}: acknowledged order {id} lost: {status}")
            })
            .into_inner();
        assert!(
            now.version >= acked.version,
            "round {round}: order {id} went back in time"
        );
        if now.version == acked.version {
            assert_eq!(
                now, *acked,
                "round {round}: order {id} differs from what was acknowledged"
            );
        }
    }

    let mut reserved_total = 0;
    for sku in 0..SKUS {
        let view = client
            .get_inventory(GetInventoryRequest {
                merchant_id: "m".into(),
                sku: format!("s{sku}"),
            })
            .await
            .unwrap()
            .into_inner();
        for row in &view.fcs {
            assert!(
                row.reserved <= row.on_hand,
                "round {round}: over-reserved {row:?}"
            );
            let key = (view.sku.clone(), row.fc_id.clone());
            let received = acknowledged.received.get(&key).copied().unwrap_or(0);
            let maybe = acknowledged.maybe_received.get(&key).copied().unwrap_or(0);
            let expected = initial + received;
            assert!(
                row.on_hand >= expected && row.on_hand <= expected + maybe,
                "round {round}: {key:?} on hand {} but acknowledged receipts give {expected} (+{maybe} unanswered)",
                row.on_hand
            );
            reserved_total += row.reserved;
        }
    }
    let mut allocated_total = 0;
    let mut token = String::new();
    loop {
        let page = client
            .list_orders(ListOrdersRequest {
                merchant_id: "m".into(),
                status: None,
                page_size: 1000,
                page_token: token,
                as_of: None,
            })
            .await
            .unwrap()
            .into_inner();
        for order in &page.orders {
            allocated_total += order
                .allocations
                .iter()
                .map(|a| u64::from(a.quantity))
                .sum::<u64>();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        reserved_total, allocated_total,
        "round {round}: reservations and allocations disagree"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("allocation-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC0FFEE);
    println!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let initial = 4;
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));

    for round in 0..ROUNDS {
        let server = Binary::start(&dir, &["--snapshot-interval-seconds", "3600"]).await;
        let mut client = connect(&server).await;
        if round == 0 {
            let levels = (0..SKUS)
                .flat_map(|s| (0..FCS).map(move |f| (s, f)))
                .map(|(s, f)| {
                    let (sku, fc_id) = cell(s, f);
                    InventoryLevel {
                        sku,
                        fc_id,
                        on_hand: initial,
                    }
                })
                .collect();
            client
                .set_inventory(SetInventoryRequest {
                    merchant_id: "m".into(),
                    levels,
                })
                .await
                .unwrap();
        } else {
            let told = acknowledged.lock().unwrap().clone();
            verify(&server, &told, initial, round).await;
        }

        let mut tasks = Vec::new();
        for index in 0..CLIENTS {
            tasks.push(tokio::spawn(client_load(
                connect(&server).await,
                seed ^ (((round * CLIENTS + index) as u64 + 1) * 0x9E37_79B9),
                format!("r{round}c{index}"),
                Arc::clone(&acknowledged),
            )));
        }
        if round == 2 {
            // A snapshot in the middle of the load, then the crash.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let info = client
                .snapshot(SnapshotRequest {})
                .await
                .unwrap()
                .into_inner();
            assert!(info.bytes > 0);
        }
        tokio::time::sleep(Duration::from_millis(150 + rng.below(500) as u64)).await;
        let mut server = server;
        server.child.kill().expect("kill -9");
        server.child.wait().unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        let acknowledged_orders = acknowledged.lock().unwrap().orders.len();
        assert!(
            acknowledged_orders > 0,
            "round {round}: the load did something"
        );
    }

    let server = Binary::start(&dir, &[]).await;
    let told = acknowledged.lock().unwrap().clone();
    verify(&server, &told, initial, ROUNDS).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
