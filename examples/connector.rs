//! A change-feed connector: follows `WatchEvents` for one merchant and
//! syncs shipment and tracking events to a stand-in for the store the
//! orders came from (a JSON file), keeping the last sequence it handled in
//! a second file, so that after a crash or a restart it resumes where it
//! left off (README: "The change feed").
//!
//! ```text
//! cargo run --example connector -- http://127.0.0.1:50051 acme state.txt store.json
//! ```
//!
//! Delivery is at least once: an event handled but not yet recorded in the
//! state file comes again after a restart. The store keeps, per order, the
//! sequence of the last event applied, and skips any event not above it, so
//! applying an event twice changes nothing.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::{OrderEvent, OrderEventKind, TrackingStatus, WatchEventsRequest};
use serde_json::{json, Map, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(merchant), Some(state), Some(store)) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        eprintln!("usage: connector URL MERCHANT STATE_FILE STORE_JSON");
        std::process::exit(2);
    };
    let (state, store) = (PathBuf::from(state), PathBuf::from(store));
    loop {
        let Err(status) = follow(&url, &merchant, &state, &store).await;
        if status.code() == tonic::Code::OutOfRange {
            // Asked for events the server no longer keeps: a full resync
            // (ListOrders) is needed, which this example leaves to a person.
            eprintln!("cannot resume: {}", status.message());
            std::process::exit(1);
        }
        eprintln!("feed interrupted ({status}); reconnecting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Follow the feed from the saved sequence until it fails.
async fn follow(
    url: &str,
    merchant: &str,
    state: &Path,
    store: &Path,
) -> Result<Infallible, tonic::Status> {
    let mut client = AllocationServiceClient::connect(url.to_string())
        .await
        .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let after = last_sequence(state);
    println!("resuming after sequence {after}");
    let mut events = client
        .watch_events(WatchEventsRequest {
            merchant_id: merchant.to_string(),
            after_sequence: Some(after),
        })
        .await?
        .into_inner();
    while let Some(event) = events.message().await? {
        apply(store, &event).expect("write the store");
        // Only after the store has it: a crash between the two repeats the
        // event, which `apply` ignores.
        write_atomically(state, event.sequence.to_string().as_bytes()).expect("write the state");
        println!("synced {} {:?}", event.sequence, event.kind());
    }
    Err(tonic::Status::unavailable("the server ended the stream"))
}

fn last_sequence(state: &Path) -> u64 {
    std::fs::read_to_string(state)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Record a shipment or tracking event in the store, once.
fn apply(store: &Path, event: &OrderEvent) -> std::io::Result<()> {
    let kind = event.kind();
    if kind != OrderEventKind::Shipped && kind != OrderEventKind::TrackingStatusChanged {
        return Ok(());
    }
    let mut orders: Map<String, Value> = std::fs::read(store)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let entry = orders
        .entry(event.order_id.clone())
        .or_insert_with(|| json!({ "last_sequence": 0, "updates": [] }));
    if entry["last_sequence"].as_u64().unwrap_or(0) >= event.sequence {
        return Ok(()); // Applied before.
    }
    entry["last_sequence"] = json!(event.sequence);
    entry["updates"]
        .as_array_mut()
        .expect("updates is a list")
        .push(json!({
            "sequence": event.sequence,
            "tracking_number": event.tracking_number,
            "tracking_status": TrackingStatus::try_from(event.tracking_status)
                .map(|status| status.as_str_name())
                .unwrap_or("TRACKING_STATUS_UNSPECIFIED"),
        }));
    write_atomically(store, &serde_json::to_vec_pretty(&orders)?)
}

/// Replace `path` with `bytes` so a crash leaves the old or the new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)
}
