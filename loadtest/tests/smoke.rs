//! The harness against a real server on 127.0.0.1:0, briefly, in every mode:
//! it must drive real load and its invariant check must pass.

use std::time::Duration;

use allocation::engine::{Engine, EngineConfig};
use allocation::server::{Lifecycle, ServerOptions};
use clap::Parser;
use loadtest::Args;

async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (lifecycle, health) = Lifecycle::new().await;
    lifecycle.open(None).await;
    tokio::spawn(allocation::server::run(
        listener,
        Engine::new(EngineConfig::default()),
        lifecycle,
        health,
        ServerOptions::default(),
        std::future::pending(),
    ));
    format!("http://{address}")
}

fn args(target: &str, extra: &[&str]) -> Args {
    let mut argv = vec![
        "loadtest",
        "--target",
        target,
        "--merchants",
        "3",
        "--skus",
        "200",
        "--fcs",
        "3",
        "--initial-stock",
        "3",
        "--replenish-units-per-second",
        "300",
    ];
    argv.extend_from_slice(extra);
    Args::parse_from(argv)
}

async fn check(extra: &[&str]) {
    let target = server().await;
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        loadtest::run(&args(&target, extra)),
    )
    .await
    .expect("a bounded run ends")
    .unwrap();
    assert!(report.orders > 0, "{}", report.table());
    assert!(!report.latency.is_empty());
    let verification = report.verification.as_ref().expect("verified");
    assert!(verification.passed, "{}", report.table());
    assert!(
        verification.reserved_units > 0,
        "stock was actually reserved"
    );
    assert_eq!(
        verification.cells,
        3 * 200 * 3,
        "every stocked cell was checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_unary_with_a_mix_of_operations() {
    check(&[
        "--concurrency",
        "8",
        "--get-percent",
        "10",
        "--hold-percent",
        "10",
        "--cancel-percent",
        "10",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_batches() {
    check(&["--concurrency", "4", "--batch-size", "50"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_at_a_fixed_rate() {
    check(&["--mode", "open", "--rate", "500"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_streams() {
    check(&[
        "--mode",
        "stream",
        "--concurrency",
        "32",
        "--connections",
        "2",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_budget_bounds_the_run() {
    let target = server().await;
    let report = loadtest::run(&args(
        &target,
        &["--requests-max", "25", "--duration-seconds", "30"],
    ))
    .await
    .unwrap();
    assert_eq!(report.requests, 25);
    assert!(report.verification.unwrap().passed);
}
