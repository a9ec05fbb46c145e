//! The `WatchEvents` change feed: the engine publishes order events into a
//! bounded ring (`tokio::sync::broadcast`); each subscriber reads from it
//! at its own pace. Publishing never waits: a subscriber that falls more
//! than the ring's capacity behind loses its place, is told so with
//! RESOURCE_EXHAUSTED, and is disconnected, so a slow connector can never
//! slow allocation down.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::engine::EventSink;
use crate::error::Error;
use crate::model::{MerchantId, OrderEvent, Timestamp};

use super::{proto, shipping};

pub struct EventFeed {
    ring: broadcast::Sender<Arc<OrderEvent>>,
    /// Flips to true at shutdown, ending every subscription.
    closed: watch::Sender<bool>,
}

impl EventFeed {
    /// A feed whose subscribers may fall at most `capacity` events behind.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: broadcast::channel(capacity.max(1)).0,
            closed: watch::channel(false).0,
        })
    }

    /// End every subscription (UNAVAILABLE), so shutdown need not wait for them.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// The events from now on, optionally of one merchant only, converted.
    /// Must be called within a tokio runtime.
    pub fn subscribe(
        &self,
        merchant: Option<MerchantId>,
    ) -> ReceiverStream<Result<proto::OrderEvent, Status>> {
        let mut events = self.ring.subscribe();
        let mut closed = self.closed.subscribe();
        // One message in flight to the client; the backlog is the ring's.
        let (out, stream) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = out.closed() => return,
                    _ = closed.wait_for(|closed| *closed) => {
                        Err(Error::Unavailable("the server is shutting down".into()).into())
                    }
                    received = events.recv() => match received {
                        Ok(event) => {
                            if merchant.as_ref().is_some_and(|m| *m != event.merchant_id) {
                                continue;
                            }
                            Ok(shipping::event_to_proto(&event, Timestamp::now()))
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            Err(Error::Exhausted(format!(
                                "this subscriber fell {missed} events behind the change feed and was \
                                 disconnected; resubscribe and resync with ListOrders"
                            ))
                            .into())
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                };
                let last = next.is_err();
                if out.send(next).await.is_err() || last {
                    return;
                }
            }
        });
        ReceiverStream::new(stream)
    }
}

impl EventSink for EventFeed {
    fn wants_events(&self) -> bool {
        self.ring.receiver_count() > 0
    }

    fn publish(&self, event: OrderEvent) {
        // Fails only when nobody listens, which is fine.
        let _ = self.ring.send(Arc::new(event));
    }
}
