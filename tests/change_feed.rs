//! The change feed (RULES §13) against the real binary: numbered events,
//! resumption after a disconnect and after `kill -9`, a slow subscriber
//! that falls behind the live ring and is never cut off, and a resume
//! point older than the retained journal.

#[path = "support/binary.rs"]
mod binary;
use binary::Binary;
#[path = "support/scrape.rs"]
mod scrape;
use scrape::{sample, scrape};

use std::path::PathBuf;
use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic::transport::Channel;
use tonic::Streaming;

type Client = AllocationServiceClient<Channel>;

const M: &str = "feed";

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("allocation-feed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn connect(server: &Binary) -> Client {
    AllocationServiceClient::connect(server.url())
        .await
        .expect("connect")
}

async fn watch(client: &mut Client, after: Option<u64>) -> Streaming<OrderEvent> {
    client
        .watch_events(WatchEventsRequest {
            merchant_id: M.into(),
            after_sequence: after,
        })
        .await
        .expect("subscribe")
        .into_inner()
}

/// The next `count` events, failing after 30 s without one.
async fn take(events: &mut Streaming<OrderEvent>, count: usize) -> Vec<OrderEvent> {
    let mut taken = Vec::new();
    while taken.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(30), events.message())
            .await
            .expect("an event within 30 s")
            .expect("the stream stays open")
            .expect("the stream does not end");
        taken.push(next);
    }
    taken
}

async fn stock(client: &mut Client, sku: &str, on_hand: u64) {
    client
        .set_inventory(SetInventoryRequest {
            merchant_id: M.into(),
            levels: vec![InventoryLevel {
                sku: sku.into(),
                fc_id: "fc1".into(),
                on_hand,
            }],
            ..Default::default()
        })
        .await
        .expect("set inventory");
}

fn order(id: &str, sku: &str) -> Order {
    Order {
        merchant_id: M.into(),
        order_id: id.into(),
        purchase_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        lines: vec![OrderLine {
            sku: sku.into(),
            quantity: 1,
        }],
        ..Default::default()
    }
}

async fn allocate(client: &mut Client, id: &str) {
    client
        .allocate(AllocateRequest {
            order: Some(order(id, "mug")),
            as_of: None,
            ..Default::default()
        })
        .await
        .expect("allocate");
}

fn key(event: &OrderEvent) -> (String, i32) {
    (event.order_id.clone(), event.kind)
}

fn assert_increasing(events: &[OrderEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].sequence < pair[1].sequence,
            "sequences go up: {} then {}",
            pair[0].sequence,
            pair[1].sequence
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubscriber_gets_what_it_missed_exactly_once_then_live_events() {
    let dir = data_dir("resume");
    let server = Binary::start(&dir, &[]).await;
    let mut client = connect(&server).await;
    stock(&mut client, "mug", 100).await;

    let mut first = watch(&mut client, Some(0)).await;
    allocate(&mut client, "a").await;
    client
        .mark_picked(MarkPickedRequest {
            merchant_id: M.into(),
            order_id: "a".into(),
            ..Default::default()
        })
        .await
        .expect("pick");
    client
        .ship_order(ShipOrderRequest {
            merchant_id: M.into(),
            order_id: "a".into(),
            fc_id: "fc1".into(),
            tracking_number: "T-a".into(),
            carrier: "ups".into(),
            label_source: LabelSource::Service as i32,
            ..Default::default()
        })
        .await
        .expect("ship");
    client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: "T-a".into(),
            status: TrackingStatus::PickedUp as i32,
            event_time: Some(prost_types::Timestamp {
                seconds: 1_700_100_000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("scan");
    let seen = take(&mut first, 3).await;
    let kinds: Vec<i32> = seen.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        [
            OrderEventKind::Allocated as i32,
            OrderEventKind::Shipped as i32,
            OrderEventKind::TrackingStatusChanged as i32
        ]
    );
    assert_increasing(&seen);
    drop(first);

    // Away: three more changes happen.
    allocate(&mut client, "b").await;
    client
        .hold_order(HoldOrderRequest {
            merchant_id: M.into(),
            order_id: "b".into(),
            reason: "address check".into(),
            ..Default::default()
        })
        .await
        .expect("hold");
    client
        .cancel_order(CancelOrderRequest {
            merchant_id: M.into(),
            order_id: "b".into(),
            ..Default::default()
        })
        .await
        .expect("cancel");

    let last = seen.last().unwrap().sequence;
    let mut again = watch(&mut client, Some(last)).await;
    let missed = take(&mut again, 3).await;
    assert_eq!(
        missed.iter().map(key).collect::<Vec<_>>(),
        [
            ("b".to_string(), OrderEventKind::Allocated as i32),
            ("b".to_string(), OrderEventKind::Held as i32),
            ("b".to_string(), OrderEventKind::Cancelled as i32),
        ]
    );
    assert!(missed[0].sequence > last);
    assert_increasing(&missed);
    // Then live ones, with nothing repeated at the seam.
    allocate(&mut client, "c").await;
    let live = take(&mut again, 1).await;
    assert_eq!(
        key(&live[0]),
        ("c".into(), OrderEventKind::Allocated as i32)
    );
    assert!(live[0].sequence > missed[2].sequence);

    // From the start: the same events with the same sequences.
    let mut whole = watch(&mut client, Some(0)).await;
    let replayed = take(&mut whole, 7).await;
    let mut expected = seen.clone();
    expected.extend(missed);
    expected.extend(live);
    let numbered = |events: &[OrderEvent]| {
        events
            .iter()
            .map(|event| (event.sequence, key(event), event.order_version))
            .collect::<Vec<_>>()
    };
    assert_eq!(numbered(&replayed), numbered(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_and_retained_events_survive_kill_9_and_a_clean_restart() {
    let dir = data_dir("kill");
    let server = Binary::start(&dir, &[]).await;
    let mut client = connect(&server).await;
    stock(&mut client, "mug", 1_000).await;
    for n in 0..20 {
        allocate(&mut client, &format!("k{n}")).await;
    }
    let mut events = watch(&mut client, Some(0)).await;
    let before = take(&mut events, 20).await;
    drop(events);
    drop(server); // kill -9: `Child::kill` sends SIGKILL.

    let server = Binary::start(&dir, &[]).await;
    let mut client = connect(&server).await;
    let mut events = watch(&mut client, Some(0)).await;
    let after = take(&mut events, 20).await;
    assert_eq!(
        after
            .iter()
            .map(|e| (e.sequence, key(e)))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|e| (e.sequence, key(e)))
            .collect::<Vec<_>>(),
        "every acknowledged change's event is still in the feed, with its sequence"
    );
    allocate(&mut client, "k-new").await;
    let new = take(&mut events, 1).await;
    assert_eq!(new[0].order_id, "k-new");
    assert!(new[0].sequence > before.last().unwrap().sequence);
    drop(events);

    // Snapshots drop the journal before the older kept one; the sequence
    // goes on from the snapshot after a clean restart all the same.
    for _ in 0..2 {
        client.snapshot(SnapshotRequest {}).await.expect("snapshot");
    }
    server.terminate();
    let mut server = server;
    assert!(server.child.wait().unwrap().success());
    let server = Binary::start(&dir, &[]).await;
    let mut client = connect(&server).await;
    let mut events = watch(&mut client, None).await;
    allocate(&mut client, "k-later").await;
    let later = take(&mut events, 1).await;
    assert!(later[0].sequence > new[0].sequence);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_older_than_the_retained_journal_is_out_of_range() {
    let dir = data_dir("range");
    let server = Binary::start(&dir, &[]).await;
    let mut client = connect(&server).await;
    stock(&mut client, "mug", 100).await;
    allocate(&mut client, "old").await;
    client.snapshot(SnapshotRequest {}).await.expect("snapshot");
    allocate(&mut client, "kept").await;
    // The second snapshot drops the journal before the first.
    client.snapshot(SnapshotRequest {}).await.expect("snapshot");

    let refused = client
        .watch_events(WatchEventsRequest {
            merchant_id: M.into(),
            after_sequence: Some(0),
        })
        .await
        .expect_err("sequence 0 is no longer retained");
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");
    let oldest: u64 = refused
        .message()
        .split("oldest sequence still available is ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("the message names the oldest: {}", refused.message()));

    let mut events = watch(&mut client, Some(oldest - 1)).await;
    let first = take(&mut events, 1).await;
    assert_eq!(first[0].sequence, oldest);
    assert_eq!(
        key(&first[0]),
        ("kept".into(), OrderEventKind::Allocated as i32)
    );
}

/// How many orders the slow subscriber must see (`FEED_SLOW_ORDERS`).
fn slow_orders() -> usize {
    std::env::var("FEED_SLOW_ORDERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(50_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_falls_behind_the_ring_and_still_gets_every_event_in_order() {
    let dir = data_dir("slow");
    // A ring of 16 events: the subscriber falls behind at once.
    let server = Binary::start(&dir, &["--watch-buffer", "16", "--fsync", "off"]).await;
    let mut client = connect(&server).await;
    let orders = slow_orders();
    stock(&mut client, "mug", orders as u64).await;
    let mut events = watch(&mut client, None).await;

    let reader = tokio::spawn(async move {
        let mut received = Vec::with_capacity(orders);
        while received.len() < orders {
            let event = tokio::time::timeout(Duration::from_secs(60), events.message())
                .await
                .expect("an event within 60 s")
                .expect("never disconnected")
                .expect("the stream does not end");
            received.push((event.sequence, event.order_id));
            // Slower than allocation.
            if received.len() % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        received
    });
    for batch in 0..orders.div_ceil(1_000) {
        let ids = (batch * 1_000..((batch + 1) * 1_000).min(orders)).map(|n| format!("s{n}"));
        client
            .allocate_batch(AllocateBatchRequest {
                orders: ids.map(|id| order(&id, "mug")).collect(),
                ..Default::default()
            })
            .await
            .expect("allocate a batch");
    }
    let received = reader.await.unwrap();
    let ids: Vec<String> = received.iter().map(|(_, id)| id.clone()).collect();
    let expected: Vec<String> = (0..orders).map(|n| format!("s{n}")).collect();
    assert_eq!(ids, expected, "every order's event, once, in order");
    assert!(received.windows(2).all(|pair| pair[0].0 < pair[1].0));

    let metrics = scrape(&server.metrics_address).await;
    let catch_ups = sample(&metrics, "allocation_feed_catch_ups_total", &[]);
    assert!(catch_ups >= 1.0, "it fell behind and read from disk");
}
