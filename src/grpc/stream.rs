//! `AllocateStream` (RULES §15): orders arrive one per message and are
//! decided as they arrive, on the runtime's worker as a unary `Allocate`
//! is; each result goes out in the order sent, once the journal holds its
//! change. Deciding never waits for the journal, so while one group of
//! records is written and synced the next orders are already being decided:
//! the stream group-commits by itself, and a client gets the per-order
//! answer of `Allocate` at close to the cost of `AllocateBatch`.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Status, Streaming};

use crate::engine::Engine;
use crate::error::Error;
use crate::storage::Journal;

use super::convert;
use super::proto::{AllocateResult, AllocateStreamRequest};
use super::service::{allocate_one, allocate_result};

pub type ResultStream = Pin<Box<dyn Stream<Item = Result<AllocateResult, Status>> + Send>>;

/// Results decided and not yet sent, at most. Beyond it the stream reads no
/// more orders until the client reads results, and HTTP/2 flow control then
/// holds the client's sends back: a client that never reads cannot make the
/// server queue without bound.
const DECIDED_AHEAD_MAX: usize = 1024;

/// A result, and the journal position below which everything must be
/// durable before it is sent (0: nothing to wait for).
struct Decided {
    result: Result<AllocateResult, Status>,
    durable_below: u64,
}

/// Open a stream over `inbound`: a task decides each order as it arrives,
/// and the returned stream answers them in order, each once durable. The
/// stream ends after the client half-closes and every answer is sent; it
/// ends with the status of an undecodable message, with `UNAVAILABLE` when
/// the journal fails or the server shuts down (answers decided before that
/// are sent first).
pub fn open(
    engine: Engine,
    journal: Option<Arc<Journal>>,
    closing: watch::Receiver<bool>,
    inbound: Streaming<AllocateStreamRequest>,
) -> ResultStream {
    let (decided, pending) = mpsc::channel(DECIDED_AHEAD_MAX);
    tokio::spawn(decide_all(
        engine,
        journal.clone(),
        closing,
        inbound,
        decided,
    ));
    Box::pin(ReceiverStream::new(pending).then(move |decided| {
        let journal = journal.clone();
        async move { answer(journal.as_deref(), decided).await }
    }))
}

/// Decide every order the client sends until it half-closes, a message
/// fails, the server closes, or nobody reads the answers any more. An
/// order decided is applied whether or not its answer is ever sent, as for
/// a unary call whose client went away.
async fn decide_all(
    engine: Engine,
    journal: Option<Arc<Journal>>,
    mut closing: watch::Receiver<bool>,
    mut inbound: Streaming<AllocateStreamRequest>,
    decided: mpsc::Sender<Decided>,
) {
    loop {
        let message = tokio::select! {
            biased;
            () = closed(&mut closing) => Err(Status::from(Error::Unavailable(
                "the server is shutting down".into(),
            ))),
            message = inbound.message() => message,
        };
        let next = match message {
            Ok(Some(request)) => decide(&engine, journal.as_deref(), request),
            Ok(None) => return,
            Err(status) => Decided {
                result: Err(status),
                durable_below: 0,
            },
        };
        let last = next.result.is_err();
        if decided.send(next).await.is_err() || last {
            return;
        }
    }
}

/// Completes once the server starts shutting down (never if it cannot tell).
async fn closed(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Decide one message; a refused order is a result like any other, with its
/// own status, and the stream goes on.
fn decide(engine: &Engine, journal: Option<&Journal>, request: AllocateStreamRequest) -> Decided {
    let AllocateStreamRequest {
        order,
        as_of,
        dry_run,
        view,
    } = request;
    let decided = (|| {
        let now = convert::as_of(as_of)?;
        let view = convert::order_view(view)?;
        let order = order.ok_or_else(|| Error::invalid("order", "is required"))?;
        let request = convert::order_request(order, &"order")?;
        let imported = allocate_one(engine, request, now, dry_run, view)?;
        Ok((imported, now, view))
    })();
    // Everything appended so far, this order's record included: a retry of
    // a stored order waits for that order's record too.
    let durable_below = match (&decided, journal) {
        (Ok(_), Some(journal)) if !dry_run => journal.appended_next(),
        _ => 0,
    };
    Decided {
        result: Ok(allocate_result(decided)),
        durable_below,
    }
}

/// Wait until `decided`'s change is durable, then answer it.
async fn answer(journal: Option<&Journal>, decided: Decided) -> Result<AllocateResult, Status> {
    if let (Some(journal), true) = (journal, decided.durable_below > 0) {
        journal
            .wait_durable(decided.durable_below)
            .await
            .map_err(|error| Status::from(Error::Unavailable(error.to_string())))?;
    }
    decided.result
}
