//! `AllocateStream` (RULES §15) over real gRPC: one result per order in the
//! order sent, the same answers unary `Allocate` gives, refusals that do
//! not end the stream, per-message dry runs and views, shutdown, and
//! acknowledged results that survive `kill -9` of the real binary.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/in_process.rs"]
mod in_process;

use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use binary::Binary;
use in_process::{as_stored, get_order, order, set_stock, time, Client};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

const M: &str = "stream";

/// A stream to `client`: the sender for its requests, its results.
async fn open(
    client: &mut Client,
) -> (
    mpsc::UnboundedSender<AllocateStreamRequest>,
    Streaming<AllocateResult>,
) {
    let (requests, outbound) = mpsc::unbounded_channel();
    let results = client
        .allocate_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(
            outbound,
        ))
        .await
        .expect("open the stream")
        .into_inner();
    (requests, results)
}

fn request(order: Option<Order>) -> AllocateStreamRequest {
    AllocateStreamRequest {
        order,
        as_of: time(1_700_000_100),
        ..Default::default()
    }
}

/// The next result, failing after 30 s without one.
async fn next(
    results: &mut Streaming<AllocateResult>,
) -> Result<Option<AllocateResult>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(30), results.message())
        .await
        .expect("a result within 30 s")
}

fn state(result: &AllocateResult) -> &OrderState {
    match &result.outcome {
        Some(allocate_result::Outcome::State(state)) => state,
        other => panic!("expected a state, got {other:?}"),
    }
}

fn refusal(result: &AllocateResult) -> Code {
    match &result.outcome {
        Some(allocate_result::Outcome::Error(status)) => Code::from(status.code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The orders both tests below send: scarce stock, so some wait; a retry
/// of an earlier order; a refused one in the middle.
fn workload() -> Vec<Option<Order>> {
    let mut orders: Vec<Option<Order>> = (0..40)
        .map(|n| {
            let sku = ["mug", "cap", "pen"][n % 3];
            Some(order(M, &format!("o{n}"), &[(sku, 1 + (n % 4) as u32)]))
        })
        .collect();
    orders.insert(10, Some(order(M, "bad", &[])));
    orders.insert(20, None);
    orders.insert(30, orders[3].clone());
    orders
}

async fn stock(client: &mut Client) {
    for (sku, fc, units) in [
        ("mug", "fc-a", 20),
        ("mug", "fc-b", 5),
        ("cap", "fc-a", 12),
        ("pen", "fc-b", 30),
    ] {
        set_stock(client, M, sku, fc, units).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_each_order_in_order_as_unary_allocate_would() {
    let streamed = in_process::start().await;
    let unary = in_process::start().await;
    let (mut streamed_client, mut unary_client) = (streamed.client.clone(), unary.client.clone());
    stock(&mut streamed_client).await;
    stock(&mut unary_client).await;

    let orders = workload();
    let (requests, mut results) = open(&mut streamed_client).await;
    // Everything is sent before anything is read: answers queue in order.
    for order in &orders {
        requests.send(request(order.clone())).unwrap();
    }
    drop(requests); // half-close: the stream ends once every answer is out
    let mut answers = Vec::new();
    while let Some(result) = next(&mut results).await.expect("the stream ends OK") {
        answers.push(result);
    }
    assert_eq!(answers.len(), orders.len(), "one result per order");

    for (order, answer) in orders.iter().zip(&answers) {
        let expected = unary_client
            .allocate(AllocateRequest {
                order: order.clone(),
                as_of: time(1_700_000_100),
                ..Default::default()
            })
            .await;
        match expected {
            Ok(response) => {
                let expected = response.into_inner().orders.remove(0);
                assert_eq!(state(answer), &expected, "order {}", expected.order_id);
            }
            Err(status) => assert_eq!(refusal(answer), status.code()),
        }
    }
    assert_eq!(refusal(&answers[10]), Code::InvalidArgument, "no lines");
    assert_eq!(refusal(&answers[20]), Code::InvalidArgument, "no order");
    assert_eq!(
        as_stored(state(&answers[30])),
        as_stored(state(&answers[3])),
        "a retry answers the stored order"
    );
    let states: Vec<&OrderState> = answers
        .iter()
        .filter(|a| matches!(a.outcome, Some(allocate_result::Outcome::State(_))))
        .map(state)
        .collect();
    let statuses: std::collections::BTreeSet<i32> = states.iter().map(|s| s.status).collect();
    assert!(
        statuses.len() > 1,
        "the workload both allocates and waits: {statuses:?}"
    );

    // What was answered is what is stored.
    for answered in states {
        let stored = get_order(&mut streamed_client, M, &answered.order_id)
            .await
            .unwrap();
        assert_eq!(stored.allocations, answered.allocations);
        assert_eq!(stored.status, answered.status);
        assert_eq!(stored.version, answered.version);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_has_its_own_dry_run_and_view() {
    let server = in_process::start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "mug", "fc-a", 3).await;
    let (requests, mut results) = open(&mut client).await;

    let mut dry = request(Some(order(M, "d1", &[("mug", 2)])));
    dry.dry_run = true;
    requests.send(dry).unwrap();
    let answer = next(&mut results).await.unwrap().unwrap();
    assert_eq!(state(&answer).status, OrderStatus::Processing as i32);
    assert_eq!(
        get_order(&mut client, M, "d1").await.unwrap_err().code(),
        Code::NotFound,
        "a dry run stores nothing"
    );

    let mut lean = request(Some(order(M, "d1", &[("mug", 2)])));
    lean.view = OrderView::Decision as i32;
    requests.send(lean).unwrap();
    let answer = next(&mut results).await.unwrap().unwrap();
    assert!(
        state(&answer).lines.is_empty(),
        "the lean view echoes no lines"
    );
    assert_eq!(state(&answer).allocations.len(), 1);

    let mut full = request(Some(order(M, "d2", &[("mug", 1)])));
    full.view = OrderView::Full as i32;
    requests.send(full).unwrap();
    let answer = next(&mut results).await.unwrap().unwrap();
    assert_eq!(
        state(&answer).lines.len(),
        1,
        "the full view echoes the lines"
    );

    let mut unknown = request(Some(order(M, "d3", &[("mug", 1)])));
    unknown.view = 99;
    requests.send(unknown).unwrap();
    assert_eq!(
        refusal(&next(&mut results).await.unwrap().unwrap()),
        Code::InvalidArgument
    );
    // The stream goes on after a refusal.
    requests
        .send(request(Some(order(M, "d4", &[("mug", 5)]))))
        .unwrap();
    let answer = next(&mut results).await.unwrap().unwrap();
    assert_eq!(state(&answer).status, OrderStatus::Exception as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_an_open_stream_with_unavailable() {
    let server = in_process::start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, M, "mug", "fc-a", 3).await;
    let (requests, mut results) = open(&mut client).await;
    requests
        .send(request(Some(order(M, "s1", &[("mug", 1)]))))
        .unwrap();
    next(&mut results).await.unwrap().unwrap();
    drop(server); // starts the shutdown; the client keeps the stream open
    let ended = next(&mut results)
        .await
        .expect_err("the stream ends with a status");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_answered_survives_kill_9() {
    let dir = std::env::temp_dir().join(format!("allocation-stream-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Binary::start(&dir, &["--fsync", "always"]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    set_stock(&mut client, M, "mug", "fc-a", 1_000_000).await;

    let (requests, outbound) = mpsc::channel(64);
    let mut results = client
        .allocate_stream(ReceiverStream::new(outbound))
        .await
        .unwrap()
        .into_inner();
    // Keep sending until the process is gone.
    let sender = tokio::spawn(async move {
        for n in 0.. {
            let order = order(M, &format!("k{n}"), &[("mug", 1 + n % 3)]);
            if requests.send(request(Some(order))).await.is_err() {
                return;
            }
        }
    });
    let mut answered = Vec::new();
    while answered.len() < 500 {
        answered.push(state(&next(&mut results).await.unwrap().unwrap()).clone());
    }
    drop(server); // SIGKILL, with orders still in flight
                  // Answers already on the wire may still arrive; each is acknowledged.
    while let Ok(Some(result)) = next(&mut results).await {
        answered.push(state(&result).clone());
    }
    sender.abort();

    let server = Binary::start(&dir, &[]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    for answer in &answered {
        let stored = get_order(&mut client, M, &answer.order_id).await.unwrap();
        assert_eq!(
            stored.allocations, answer.allocations,
            "{}",
            answer.order_id
        );
        assert_eq!(stored.version, answer.version);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
