//! Operations (RULES §10): metrics over HTTP, health, reflection, SIGTERM
//! under load, load shedding.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/scrape.rs"]
mod scrape;
use scrape::{sample, scrape, series, Series};
#[path = "support/in_process.rs"]
mod in_process;

use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use binary::Binary;
use in_process::{order, time};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("allocation-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn allocate(
    client: &mut AllocationServiceClient<tonic::transport::Channel>,
    order: Order,
) -> Result<OrderState, tonic::Status> {
    client
        .allocate(AllocateRequest {
            order: Some(order),
            as_of: None,
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner().orders.remove(0))
}

fn has(series: &Series, key: &str, value: &str) -> bool {
    series.labels.iter().any(|(k, v)| k == key && v == value)
}

/// Every counter and histogram, with every label combination, is in the
/// first scrape at 0, so `rate()` counts the first call of anything.
#[tokio::test]
async fn a_fresh_server_exports_every_series_at_zero() {
    let dir = data_dir("fresh");
    let server = Binary::start(&dir, &[]).await;
    let text = scrape(&server.metrics_address).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let all = series(&text);
    let named = |name: &str| -> Vec<&Series> { all.iter().filter(|s| s.name == name).collect() };

    let (methods, codes) = (27, 17);
    for (name, count) in [
        ("grpc_server_handled_total", methods * codes),
        ("grpc_server_started_total", methods),
        ("grpc_server_handling_seconds_count", methods),
        ("grpc_server_handling_seconds_sum", methods),
        // 17 bounds and +Inf.
        ("grpc_server_handling_seconds_bucket", methods * 18),
    ] {
        let found = named(name);
        assert_eq!(found.len(), count, "{name}:\n{text}");
        assert!(found.iter().all(|s| s.value == 0.0), "{name}:\n{text}");
        assert!(found
            .iter()
            .all(|s| has(s, "grpc_service", "allocation.v1.AllocationService")));
    }
    let handled = named("grpc_server_handled_total");
    for (method, kind) in [("Allocate", "unary"), ("WatchEvents", "server_stream")] {
        for code in ["OK", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED"] {
            assert!(
                handled.iter().any(|s| has(s, "grpc_method", method)
                    && has(s, "grpc_type", kind)
                    && has(s, "grpc_code", code)),
                "{method} {code}"
            );
        }
    }
    assert_eq!(named("allocation_outcomes_total").len(), 8);
    for kind in ["reprocess", "fifo"] {
        for name in [
            "allocation_reprocess_pass_seconds_count",
            "allocation_reprocess_orders_examined_total",
            "allocation_reprocess_orders_allocated_total",
        ] {
            assert_eq!(
                named(name).iter().filter(|s| has(s, "kind", kind)).count(),
                1,
                "{name} {kind}:\n{text}"
            );
        }
    }
    for name in [
        "allocation_journal_fsync_seconds_count",
        "allocation_journal_batch_records_count",
        "allocation_snapshot_seconds_count",
        "allocation_snapshot_bytes",
        "allocation_requests_shed_total",
        "allocation_connections_open",
        "allocation_connections_refused_total",
        "allocation_connections_timed_out_total",
        "allocation_accept_errors_total",
        "allocation_inventory_on_hand_units",
        "allocation_inventory_reserved_units",
        "allocation_orders_awaiting_stock",
    ] {
        assert_eq!(named(name).len(), 1, "{name}:\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "allocation_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    if cfg!(target_os = "linux") {
        for name in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
        ] {
            assert_eq!(named(name).len(), 1, "{name}:\n{text}");
        }
        assert!(sample(&text, "process_resident_memory_bytes", &[]) > 1e6);
        assert!(sample(&text, "process_open_fds", &[]) >= 3.0);
        let started = sample(&text, "process_start_time_seconds", &[]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - started).abs() < 120.0,
            "started {started}, now {now}"
        );
    }
}

/// A change-feed stream is started when opened and handled when it ends:
/// here the client goes away, so CANCELLED.
#[tokio::test]
async fn a_watch_stream_counts_as_handled_when_it_ends() {
    let dir = data_dir("watch-metrics");
    let server = Binary::start(&dir, &[]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    let watch = [("grpc_method", "WatchEvents")];
    let cancelled = [("grpc_method", "WatchEvents"), ("grpc_code", "CANCELLED")];
    let stream = client
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap();
    let open = scrape(&server.metrics_address).await;
    assert_eq!(sample(&open, "grpc_server_started_total", &watch), 1.0);
    let handled = |text: &str| {
        series(text)
            .iter()
            .filter(|s| {
                s.name == "grpc_server_handled_total" && has(s, "grpc_method", "WatchEvents")
            })
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert_eq!(handled(&open), 0.0, "{open}");

    drop(stream);
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(&server.metrics_address).await;
        if sample(&text, "grpc_server_handled_total", &cancelled) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(&text, "grpc_server_handled_total", &cancelled),
        1.0,
        "{text}"
    );
    assert_eq!(handled(&text), 1.0);
    assert_eq!(
        sample(&text, "grpc_server_handling_seconds_count", &watch),
        1.0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn metrics_move_by_exactly_what_was_done() {
    let dir = data_dir("metrics");
    let server = Binary::start(&dir, &[]).await;
    let before = scrape(&server.metrics_address).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    client
        .upsert_fulfillment_center(FulfillmentCenter {
            fc_id: "fc".into(),
            daily_order_capacity: 5,
            ..Default::default()
        })
        .await
        .unwrap();

    for (sku, units) in [("a", 3), ("b", 0)] {
        client
            .set_inventory(SetInventoryRequest {
                merchant_id: "m".into(),
                levels: vec![InventoryLevel {
                    sku: sku.into(),
                    fc_id: "fc".into(),
                    on_hand: units,
                }],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    allocate(&mut client, order("m", "o1", &[("a", 1)]))
        .await
        .unwrap();
    allocate(&mut client, order("m", "o2", &[("a", 2)]))
        .await
        .unwrap();
    allocate(&mut client, order("m", "o3", &[("b", 1)]))
        .await
        .unwrap();
    let mut bad = order("m", "o4", &[("a", 1)]);
    bad.lines[0].quantity = 0;
    assert_eq!(
        allocate(&mut client, bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    let after = scrape(&server.metrics_address).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(
        moved(
            "grpc_server_handled_total",
            &[("grpc_method", "Allocate"), ("grpc_code", "OK")]
        ),
        3.0
    );
    assert_eq!(
        moved(
            "grpc_server_handled_total",
            &[
                ("grpc_method", "Allocate"),
                ("grpc_code", "INVALID_ARGUMENT")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "grpc_server_handled_total",
            &[("grpc_method", "SetInventory"), ("grpc_code", "OK")]
        ),
        2.0
    );
    assert_eq!(
        moved(
            "grpc_server_handling_seconds_count",
            &[("grpc_method", "Allocate")]
        ),
        4.0
    );
    assert!(
        series(&after)
            .iter()
            .any(|one| one.name == "grpc_server_handling_seconds_bucket"
                && has(one, "grpc_method", "Allocate")
                && has(one, "grpc_type", "unary")
                && has(one, "grpc_service", "allocation.v1.AllocationService")
                && has(one, "le", "0.001")),
        "latency is a bucketed histogram:\n{after}"
    );
    assert_eq!(
        moved("grpc_server_started_total", &[("grpc_method", "Allocate")]),
        4.0
    );
    assert_eq!(
        moved("allocation_outcomes_total", &[("status", "processing")]),
        2.0
    );
    assert_eq!(
        moved("allocation_outcomes_total", &[("status", "exception")]),
        1.0
    );
    // State gauges are recomputed at most once a second: scrape until fresh.
    let mut gauges = after.clone();
    for _ in 0..50 {
        if sample(&gauges, "allocation_inventory_reserved_units", &[]) == 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        gauges = scrape(&server.metrics_address).await;
    }
    assert_eq!(
        sample(&gauges, "allocation_inventory_reserved_units", &[]),
        3.0
    );
    assert_eq!(
        sample(&gauges, "allocation_inventory_on_hand_units", &[]),
        3.0
    );
    assert_eq!(
        sample(&gauges, "allocation_orders_awaiting_stock", &[]),
        1.0
    );
    let fc = [("fc_id", "fc")];
    assert_eq!(
        sample(&gauges, "allocation_fc_daily_order_capacity", &fc),
        5.0
    );
    // o1 and o2 took today's slots at fc; o3 waits and holds none.
    assert_eq!(sample(&gauges, "allocation_fc_orders_today", &fc), 2.0);
    // Every acknowledged change was synced (fsync always): at least one sync, records batched.
    assert!(sample(&after, "allocation_journal_fsync_seconds_count", &[]) >= 1.0);
    assert!(sample(&after, "allocation_journal_batch_records_sum", &[]) >= 5.0);

    client.snapshot(SnapshotRequest {}).await.unwrap();
    let last = scrape(&server.metrics_address).await;
    assert_eq!(sample(&last, "allocation_snapshot_seconds_count", &[]), 1.0);
    assert!(sample(&last, "allocation_snapshot_bytes", &[]) > 0.0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn health_serves_and_reflection_lists_the_service() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let dir = data_dir("health");
    let server = Binary::start(&dir, &[]).await;
    assert_eq!(server.health().await, Some(ServingStatus::Serving));

    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"allocation.v1.AllocationService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    // The health subcommand agrees (it is what the container health check runs).
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_allocation-service"))
        .args(["health", "--address", &server.address])
        .status()
        .unwrap();
    assert!(status.success());
    // By name too; and a port nobody serves is named in the answer.
    let port = server.address.rsplit(':').next().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_allocation-service"))
        .args(["health", "--address", &format!("localhost:{port}")])
        .status()
        .unwrap();
    assert!(status.success());
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_allocation-service"))
        .args(["health", "--address", "localhost:1"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    let said = String::from_utf8_lossy(&unreachable.stdout);
    assert!(said.contains("cannot reach localhost:1"), "{said}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sigterm_under_load_drains_exits_zero_and_keeps_every_acknowledged_change() {
    let dir = data_dir("sigterm");
    let mut server = Binary::start(&dir, &[]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    client
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![InventoryLevel {
                sku: "a".into(),
                fc_id: "fc".into(),
                on_hand: 1_000_000,
            }],
            ..Default::default()
        })
        .await
        .unwrap();

    let mut workers = Vec::new();
    for worker in 0..4 {
        let mut client = AllocationServiceClient::connect(server.url())
            .await
            .unwrap();
        workers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let mut o = order("m", &format!("w{worker}-{n}"), &[("a", 1)]);
                o.purchase_time = time(n);
                match allocate(&mut client, o).await {
                    Ok(state) => acknowledged.push(state),
                    Err(status) => {
                        // Refused while draining or after the listener closed: never anything else.
                        assert!(
                            matches!(
                                status.code(),
                                Code::Unavailable | Code::Cancelled | Code::Unknown
                            ),
                            "{status:?}"
                        );
                        return acknowledged;
                    }
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    });
    let (status, server) = tokio::time::timeout(Duration::from_secs(60), exit)
        .await
        .expect("exited in time")
        .unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    drop(server);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    assert!(acknowledged.len() > 10, "the load ran");

    let restarted = Binary::start(&dir, &[]).await;
    let mut client = AllocationServiceClient::connect(restarted.url())
        .await
        .unwrap();
    for state in &acknowledged {
        let now = client
            .get_order(GetOrderRequest {
                merchant_id: "m".into(),
                order_id: state.order_id.clone(),
                as_of: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now, in_process::as_stored(state));
    }
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_requests_are_shed_at_once_counted_and_the_server_stays_healthy() {
    let dir = data_dir("shed");
    let server = Binary::start(&dir, &["--concurrency-limit", "1", "--fsync", "off"]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    in_process::set_stock(&mut client, "m", "a", "fc", 1_000_000).await;
    // Slow enough requests: batches of 5,000 orders, 12 at once.
    let mut calls = Vec::new();
    for call in 0..12 {
        let mut client = client.clone();
        calls.push(tokio::spawn(async move {
            let orders = (0..5_000)
                .map(|n| order("m", &format!("c{call}-{n}"), &[("a", 1)]))
                .collect();
            let request = AllocateBatchRequest {
                orders,
                as_of: None,
                ..Default::default()
            };
            tokio::time::timeout(Duration::from_secs(60), client.allocate_batch(request))
                .await
                .expect("no request hangs")
        }));
    }
    let mut shed = 0;
    let mut served = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("across all connections"),
                    "{status:?}"
                );
                shed += 1;
            }
        }
    }
    assert!(shed > 0, "some requests were shed");
    assert!(served > 0, "some requests were served");
    // Shed requests are answered requests: counted with their code.
    let metrics = scrape(&server.metrics_address).await;
    let handled = |code| {
        sample(
            &metrics,
            "grpc_server_handled_total",
            &[("grpc_method", "AllocateBatch"), ("grpc_code", code)],
        )
    };
    assert_eq!(handled("RESOURCE_EXHAUSTED"), shed as f64, "{metrics}");
    assert_eq!(handled("OK"), served as f64);
    assert_eq!(
        sample(&metrics, "allocation_requests_shed_total", &[]),
        shed as f64
    );
    // Still healthy: a request now succeeds.
    let state = allocate(&mut client, order("m", "after", &[("a", 1)]))
        .await
        .unwrap();
    assert_eq!(state.status(), OrderStatus::Processing);
}
