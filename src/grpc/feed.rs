//! The `WatchEvents` change feed (RULES §13). The engine publishes each
//! numbered order event into a bounded ring (`tokio::sync::broadcast`) as
//! its change is journaled; each subscriber reads from the ring at its own
//! pace. Publishing never waits for a subscriber.
//!
//! A subscriber that resumes (`after_sequence`), or falls more than the
//! ring's capacity behind, reads the events it lacks from the journal on
//! disk (`storage::retained`) and then rejoins the ring, skipping what it
//! already sent: no gap, no duplicate, and memory bounded by the ring and
//! one record per reader. Events are sent only once their change is
//! durable, so a subscriber never sees a change a crash could undo.
//! Without a data directory there is nothing to read back: a subscriber
//! that falls behind is then disconnected with RESOURCE_EXHAUSTED.

use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::engine::{Engine, EventSink};
use crate::error::Error;
use crate::model::{MerchantId, OrderEvent, Timestamp};
use crate::storage::retained::{self, Retained};
use crate::storage::Store;
use crate::telemetry::names;

use super::{proto, shipping};

/// An event and the LSN of the journal record that carries it.
struct Published {
    event: OrderEvent,
    lsn: u64,
}

pub struct EventFeed {
    ring: broadcast::Sender<Arc<Published>>,
    /// Flips to true at shutdown, ending every subscription.
    closed: watch::Sender<bool>,
    /// For the sequence a live-only subscription starts after.
    engine: Engine,
}

type Sent = Result<proto::OrderEvent, Status>;

impl EventFeed {
    /// A feed of `engine`'s events whose subscribers may fall `capacity`
    /// events behind before they read from disk.
    pub fn new(engine: Engine, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: broadcast::channel(capacity.max(1)).0,
            closed: watch::channel(false).0,
            engine,
        })
    }

    /// End every subscription (UNAVAILABLE), so shutdown need not wait for them.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Refuse a resume point older than the retained journal.
    pub fn check_resumable(store: Option<&Store>, after: u64) -> Result<(), Error> {
        let Some(store) = store else {
            return Err(Error::FailedPrecondition(
                "this server keeps no data directory, so no events to resume from".into(),
            ));
        };
        match retained::retained(store.dir()) {
            Ok(Retained::Everything) => Ok(()),
            Ok(Retained::From(oldest)) if after.saturating_add(1) >= oldest => Ok(()),
            Ok(Retained::Nothing) => Ok(()),
            Ok(Retained::From(oldest)) => Err(Error::OutOfRange(format!(
                "after_sequence {after} is older than the retained journal; the oldest \
                 sequence still available is {oldest} (resync with ListOrders, then resume \
                 after {})",
                oldest - 1
            ))),
            Err(error) => Err(Error::Unavailable(format!(
                "cannot read the journal: {error}"
            ))),
        }
    }

    /// The events after `after` (retained, then live), or from now on,
    /// optionally of one merchant only, converted. Must be called within a
    /// tokio runtime, after `check_resumable` for `after`.
    pub fn subscribe(
        &self,
        merchant: Option<MerchantId>,
        after: Option<u64>,
        store: Option<Arc<Store>>,
    ) -> ReceiverStream<Sent> {
        let live = self.ring.subscribe();
        // Events numbered before this read were published before it too
        // (numbering and publishing share a lock): a live subscription
        // starts after them.
        let resume = after.is_some() && store.is_some();
        let after = after.unwrap_or(self.engine.next_event_sequence() - 1);
        // One message in flight to the client; the backlog is the ring's.
        let (out, stream) = mpsc::channel(1);
        let subscription = Subscription {
            ring: self.ring.clone(),
            closed: self.closed.subscribe(),
            merchant,
            store,
            out,
            last: after,
            last_lsn: 0,
        };
        tokio::spawn(subscription.run(live, resume));
        ReceiverStream::new(stream)
    }
}

impl EventSink for EventFeed {
    fn wants_events(&self) -> bool {
        self.ring.receiver_count() > 0
    }

    fn publish(&self, event: OrderEvent, lsn: u64) {
        let sampled = event.sequence.is_multiple_of(64);
        // Fails only when nobody listens, which is fine.
        let _ = self.ring.send(Arc::new(Published { event, lsn }));
        // The ring's length is what its slowest receiver has not read yet.
        // Sampled: reading it takes the ring's lock.
        if sampled {
            metrics::gauge!(names::FEED_EVENTS_BEHIND).set(self.ring.len() as f64);
        }
    }
}

/// One subscriber's task.
struct Subscription {
    ring: broadcast::Sender<Arc<Published>>,
    closed: watch::Receiver<bool>,
    merchant: Option<MerchantId>,
    store: Option<Arc<Store>>,
    out: mpsc::Sender<Sent>,
    /// Every event up to this sequence has been sent or filtered out.
    last: u64,
    /// The journal record of the event at `last`, when known: a catch-up
    /// reads on from there instead of from the oldest segment.
    last_lsn: u64,
}

/// Why a subscription stopped reading live events.
enum Stop {
    /// The client went away, or was told why it ends.
    Done,
    /// It fell behind the ring: read on from disk.
    Behind,
}

impl Subscription {
    /// A resumption reads from disk first; a live subscription only once
    /// it falls behind.
    async fn run(mut self, mut live: broadcast::Receiver<Arc<Published>>, resume: bool) {
        let _counted = Counted::new(names::FEED_SUBSCRIBERS);
        let mut from_disk = resume;
        loop {
            if from_disk {
                // Subscribed before the catch-up, so the ring holds
                // whatever the disk does not.
                live = self.ring.subscribe();
                if !self.catch_up().await {
                    return;
                }
            }
            match self.follow(&mut live).await {
                Stop::Done => return,
                Stop::Behind => from_disk = true,
            }
        }
    }

    /// Send the retained events after `last` that are durable now. False
    /// when the subscription has ended.
    async fn catch_up(&mut self) -> bool {
        let Some(store) = self.store.clone() else {
            return true;
        };
        let _counted = Counted::new(names::FEED_CATCHING_UP);
        metrics::counter!(names::FEED_CATCH_UPS).increment(1);
        let journal = store.journal();
        let below = journal.appended_next();
        if journal.wait_durable(below).await.is_err() {
            self.end(Error::Unavailable("the journal failed".into()))
                .await;
            return false;
        }
        let (after, merchant, out) = (self.last, self.merchant.clone(), self.out.clone());
        let lsns = self.last_lsn..below;
        // A thread of its own, not the blocking pool: it waits on a slow
        // client for as long as that takes, and a pool of such waits would
        // starve the batches and passes that share it.
        let (done, read) = tokio::sync::oneshot::channel();
        let reader = move || {
            let read = retained::read_events(store.dir(), after, lsns, |event| {
                if merchant.as_ref().is_some_and(|m| *m != event.merchant_id) {
                    return ControlFlow::Continue(());
                }
                let sent = shipping::event_to_proto(&event, Timestamp::now());
                match out.blocking_send(Ok(sent)) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            });
            let _ = done.send(read);
        };
        if let Err(error) = std::thread::Builder::new()
            .name("feed-reader".into())
            .spawn(reader)
        {
            self.end(Error::Unavailable(format!(
                "cannot start a feed reader: {error}"
            )))
            .await;
            return false;
        }
        match read.await {
            Ok(Ok(last)) => {
                if self.out.is_closed() {
                    return false;
                }
                if let Some((sequence, lsn)) = last {
                    (self.last, self.last_lsn) = (sequence, lsn);
                }
                true
            }
            Ok(Err(error)) => {
                let message = format!(
                    "this subscriber fell behind the retained journal ({error}); resync with \
                     ListOrders and resubscribe"
                );
                self.end(Error::OutOfRange(message)).await;
                false
            }
            Err(_) => {
                self.end(Error::Internal("the feed reader stopped".into()))
                    .await;
                false
            }
        }
    }

    /// Send live events until the client leaves, the server closes, or the
    /// ring has moved on past this subscriber.
    async fn follow(&mut self, live: &mut broadcast::Receiver<Arc<Published>>) -> Stop {
        loop {
            let received = tokio::select! {
                () = self.out.closed() => return Stop::Done,
                _ = self.closed.wait_for(|closed| *closed) => None,
                received = live.recv() => Some(received),
            };
            let published = match received {
                None => {
                    self.end(Error::Unavailable("the server is shutting down".into()))
                        .await;
                    return Stop::Done;
                }
                Some(Ok(published)) => published,
                Some(Err(broadcast::error::RecvError::Lagged(missed))) if self.store.is_none() => {
                    self.end(Error::Exhausted(format!(
                        "this subscriber fell {missed} events behind the change feed and was \
                         disconnected (this server keeps no journal to read them from); \
                         resubscribe and resync with ListOrders"
                    )))
                    .await;
                    return Stop::Done;
                }
                Some(Err(broadcast::error::RecvError::Lagged(_))) => return Stop::Behind,
                Some(Err(broadcast::error::RecvError::Closed)) => return Stop::Done,
            };
            let event = &published.event;
            if event.sequence <= self.last {
                continue;
            }
            if let Some(store) = &self.store {
                if store
                    .journal()
                    .wait_durable(published.lsn + 1)
                    .await
                    .is_err()
                {
                    self.end(Error::Unavailable("the journal failed".into()))
                        .await;
                    return Stop::Done;
                }
            }
            (self.last, self.last_lsn) = (event.sequence, published.lsn);
            if self
                .merchant
                .as_ref()
                .is_some_and(|m| *m != event.merchant_id)
            {
                continue;
            }
            let sent = shipping::event_to_proto(event, Timestamp::now());
            if self.out.send(Ok(sent)).await.is_err() {
                return Stop::Done;
            }
        }
    }

    /// Tell the client why its subscription ends.
    async fn end(&self, error: Error) {
        let _ = self.out.send(Err(error.into())).await;
    }
}

/// A gauge counting the values alive.
struct Counted(metrics::Gauge);

impl Counted {
    fn new(name: &'static str) -> Self {
        let gauge = metrics::gauge!(name);
        gauge.increment(1);
        Self(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}
