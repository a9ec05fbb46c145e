//! Reprocess and FifoRelease over real gRPC (RULES §5).

#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;
use tonic::Code;

async fn status_of(client: &mut Client, id: &str) -> OrderStatus {
    get_order(client, "m", id).await.unwrap().status()
}

#[tokio::test]
async fn reprocess_allocates_waiting_orders_and_reports_counts() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 0).await;
    let mut older = order("m", "older", &[("a", 2)]);
    older.purchase_time = time(100);
    let mut younger = order("m", "younger", &[("a", 2)]);
    younger.purchase_time = time(200);
    allocate(&mut client, younger).await;
    allocate(&mut client, older).await;
    set_stock(&mut client, "m", "a", "fc1", 3).await;

    let response = client
        .reprocess(ReprocessRequest {
            merchant_id: "m".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.examined, 2);
    assert_eq!(response.allocated, 1);
    assert_eq!(response.partially_allocated, 0);
    assert_eq!(response.still_in_exception, 1);
    assert!(response.duration.is_some());
    assert_eq!(
        status_of(&mut client, "older").await,
        OrderStatus::Processing
    );
    assert_eq!(
        status_of(&mut client, "younger").await,
        OrderStatus::Exception
    );

    // Another merchant's pass does not touch these orders.
    let other = client
        .reprocess(ReprocessRequest {
            merchant_id: "other".into(),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other.examined, 0);

    let bad = client
        .reprocess(ReprocessRequest {
            merchant_id: "x".repeat(200),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["merchant_id"]);
}

#[tokio::test]
async fn a_receipt_for_a_fifo_merchant_releases_to_the_oldest_order_first() {
    let server = start().await;
    let mut client = server.client.clone();
    client
        .upsert_merchant(Merchant {
            merchant_id: "m".into(),
            fifo_strategy: FifoStrategy::Full as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    set_stock(&mut client, "m", "a", "fc1", 0).await;
    let mut oldest = order("m", "oldest", &[("a", 2)]);
    oldest.purchase_time = time(100);
    allocate(&mut client, oldest).await;

    let receipt = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: "a".into(),
                fc_id: "fc1".into(),
                delta: 2,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(receipt.fifo_released_order_ids, ["oldest"]);
    assert_eq!(
        receipt.views[0].fcs[0].reserved, 2,
        "the view shows stock after the release"
    );
    assert_eq!(
        status_of(&mut client, "oldest").await,
        OrderStatus::Processing
    );

    // A newer order took stock freed by a cancel; an explicit release gives
    // it to an older waiting order instead.
    let mut newer = order("m", "newer", &[("a", 2)]);
    newer.purchase_time = time(300);
    let mut middle = order("m", "middle", &[("a", 2)]);
    middle.purchase_time = time(200);
    allocate(&mut client, middle).await;
    client
        .cancel_order(CancelOrderRequest {
            merchant_id: "m".into(),
            order_id: "oldest".into(),
            as_of: None,
        })
        .await
        .unwrap();
    allocate(&mut client, newer).await;
    assert_eq!(
        status_of(&mut client, "newer").await,
        OrderStatus::Processing
    );
    let released = client
        .fifo_release(FifoReleaseRequest {
            merchant_id: "m".into(),
            skus: vec!["a".into()],
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.released_order_ids, ["middle"]);
    assert_eq!(released.preempted_order_ids, ["newer"]);
    assert_eq!(
        status_of(&mut client, "newer").await,
        OrderStatus::Exception
    );
}

#[tokio::test]
async fn fifo_release_bad_input() {
    let server = start().await;
    let mut client = server.client.clone();
    let not_fifo = client
        .fifo_release(FifoReleaseRequest {
            merchant_id: "m".into(),
            skus: vec![],
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(not_fifo.code(), Code::FailedPrecondition);
    let bad = client
        .fifo_release(FifoReleaseRequest {
            merchant_id: String::new(),
            skus: vec![String::new()],
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad), ["merchant_id", "skus[0]"]);
}
