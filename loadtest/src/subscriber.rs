//! A slow change-feed subscriber running beside the load
//! (`--slow-subscriber-sleep-ms`): it sleeps after every event, so it falls
//! behind the server's live ring at once. The run then shows what such a
//! subscriber costs allocation, and whether it was ever cut off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::WatchEventsRequest;
use tonic::transport::Channel;

/// What the subscriber saw, read when the run ends.
#[derive(Default)]
pub struct Seen {
    pub events: AtomicU64,
    /// Every sequence was above the one before.
    pub out_of_order: AtomicU64,
    /// The status its stream ended with, if it ended.
    pub ended: Mutex<Option<String>>,
}

/// Subscribe (live, every merchant) and read with `sleep` after each event
/// until the process ends.
pub async fn start(
    mut client: AllocationServiceClient<Channel>,
    sleep: Duration,
) -> anyhow::Result<Arc<Seen>> {
    let mut events = client
        .watch_events(WatchEventsRequest::default())
        .await?
        .into_inner();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            match events.message().await {
                Ok(Some(event)) => {
                    if event.sequence <= last {
                        counts.out_of_order.fetch_add(1, Ordering::Relaxed);
                    }
                    last = event.sequence;
                    counts.events.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(sleep).await;
                }
                Ok(None) => {
                    *counts.ended.lock().unwrap() = Some("the stream ended".into());
                    return;
                }
                Err(status) => {
                    *counts.ended.lock().unwrap() = Some(format!("{:?}", status.code()));
                    return;
                }
            }
        }
    });
    Ok(seen)
}
