//! Metrics: the Prometheus recorder, the `/metrics` HTTP endpoint, and the
//! handles the edge records into.
//!
//! Hot-path cost is kept to atomic adds: every per-RPC counter and histogram
//! handle is registered once at start-up (no registry lookup per request),
//! and the state gauges (units on hand and reserved, orders waiting) are
//! computed when Prometheus scrapes, not maintained on every change.
//! Histograms have explicit buckets, so they render as Prometheus
//! histograms (aggregatable across instances), not summaries.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::engine::{Engine, PassCounts};
use crate::model::OrderStatus;

/// Latency buckets, in seconds: 50 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];
/// Journal batch sizes, in records.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];

/// Every RPC name, so labels stay a fixed, low-cardinality set.
pub const METHODS: &[&str] = &[
    "UpsertMerchant",
    "GetMerchant",
    "RegisterSkus",
    "SetInventory",
    "AdjustInventory",
    "GetInventory",
    "Allocate",
    "AllocateBatch",
    "GetOrder",
    "ListOrders",
    "HoldOrder",
    "ReleaseOrder",
    "CancelOrder",
    "MarkPicked",
    "ShipOrder",
    "RecordTrackingEvent",
    "GetShipment",
    "Reprocess",
    "FifoRelease",
    "WatchEvents",
    "Snapshot",
];

/// gRPC status code names, indexed by code.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const STATUSES: [(OrderStatus, &str); 8] = [
    (OrderStatus::Processing, "processing"),
    (OrderStatus::PartiallyAllocated, "partially_allocated"),
    (OrderStatus::Exception, "exception"),
    (OrderStatus::OnHold, "on_hold"),
    (OrderStatus::Shipped, "shipped"),
    (OrderStatus::Completed, "completed"),
    (OrderStatus::Cancelled, "cancelled"),
    (OrderStatus::Rejected, "rejected"),
];

struct MethodMetrics {
    handled: Vec<Counter>,
    latency: Histogram,
}

/// Handles for what the edge records. Cheap to share.
pub struct Telemetry {
    methods: Vec<MethodMetrics>,
    outcomes: Vec<Counter>,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

impl Telemetry {
    /// The process-wide handles, registered with whatever recorder is
    /// installed when first called (none in most tests: then they do nothing).
    pub fn get() -> &'static Telemetry {
        TELEMETRY.get_or_init(|| Telemetry {
            methods: METHODS
                .iter()
                .map(|&method| MethodMetrics {
                    handled: CODES
                        .iter()
                        .map(|&code| counter!("grpc_server_handled_total", "method" => method, "code" => code))
                        .collect(),
                    latency: histogram!("grpc_server_handling_seconds", "method" => method),
                })
                .collect(),
            outcomes: STATUSES
                .iter()
                .map(|&(_, status)| counter!("allocation_outcomes_total", "status" => status))
                .collect(),
        })
    }

    /// Record one handled RPC. `method` must be one of `METHODS`.
    pub fn rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        if let Some(index) = METHODS.iter().position(|&m| m == method) {
            let metrics = &self.methods[index];
            metrics.handled[(code as usize).min(CODES.len() - 1)].increment(1);
            metrics.latency.record(elapsed.as_secs_f64());
        }
    }

    /// Record the outcome of one allocation decision.
    pub fn outcome(&self, status: OrderStatus) {
        if let Some(index) = STATUSES.iter().position(|&(s, _)| s == status) {
            self.outcomes[index].increment(1);
        }
    }
}

/// Time `work` and record it as one call of `method`.
pub async fn metered<T>(
    method: &'static str,
    work: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let started = Instant::now();
    let result = work.await;
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    Telemetry::get().rpc(method, code, started.elapsed());
    result
}

/// Record a reprocessing or FIFO pass.
pub fn pass(kind: &'static str, counts: PassCounts, elapsed: Duration) {
    histogram!("reprocess_pass_seconds", "kind" => kind).record(elapsed.as_secs_f64());
    counter!("reprocess_orders_examined_total", "kind" => kind).increment(counts.examined);
    counter!("reprocess_orders_allocated_total", "kind" => kind)
        .increment(counts.allocated + counts.partially_allocated);
}

/// Install the Prometheus recorder for this process. Call once, first.
pub fn install() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full("journal_batch_records".into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|error| error.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|error| error.to_string())?;
    describe();
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "grpc_server_handled_total",
        "RPCs completed, by method and gRPC status code."
    );
    describe_histogram!(
        "grpc_server_handling_seconds",
        Unit::Seconds,
        "RPC handling time, by method."
    );
    describe_counter!(
        "allocation_outcomes_total",
        "Orders decided by Allocate and AllocateBatch, by resulting status."
    );
    describe_gauge!(
        "orders_awaiting_stock",
        "Orders in EXCEPTION or PARTIALLY_ALLOCATED."
    );
    describe_gauge!(
        "inventory_reserved_units",
        "Units reserved across all SKUs and FCs."
    );
    describe_gauge!(
        "inventory_on_hand_units",
        "Units on hand across all SKUs and FCs."
    );
    describe_histogram!(
        "journal_fsync_seconds",
        Unit::Seconds,
        "Journal fdatasync time."
    );
    describe_histogram!(
        "journal_batch_records",
        "Records written by one journal write (group commit)."
    );
    describe_histogram!(
        "snapshot_seconds",
        Unit::Seconds,
        "Time to write a snapshot."
    );
    describe_gauge!("snapshot_bytes", Unit::Bytes, "Size of the last snapshot.");
    describe_histogram!(
        "reprocess_pass_seconds",
        Unit::Seconds,
        "Reprocessing or FIFO pass time."
    );
    describe_counter!(
        "reprocess_orders_examined_total",
        "Orders examined by reprocessing passes."
    );
    describe_counter!(
        "reprocess_orders_allocated_total",
        "Orders that got stock in reprocessing passes."
    );
    describe_counter!(
        "grpc_requests_shed_total",
        "Requests refused with RESOURCE_EXHAUSTED by the concurrency limit."
    );
    describe_gauge!("grpc_connections_open", "Client connections open now.");
    describe_counter!(
        "grpc_connections_refused_total",
        "Connections closed on accept because --max-connections were open."
    );
    describe_counter!(
        "grpc_connections_timed_out_total",
        "Connections closed for sending nothing within --handshake-timeout-seconds."
    );
    describe_counter!(
        "grpc_accept_errors_total",
        "Failed accepts (such as running out of file descriptors); each is followed by a back-off."
    );
}

/// Serve `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    engine: Engine,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let state = Arc::new(Scrape {
        handle,
        engine,
        last_gauges: parking_lot::Mutex::new(None),
    });
    tokio::pin!(shutdown);
    let mut failures = crate::server::AcceptBackoff::new("metrics");
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failures.reset();
                stream
            }
            Err(error) => {
                let pause = failures.failed(&error);
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(state.respond(&request)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// Gauges are recomputed at most this often, however often Prometheus scrapes.
const GAUGE_REFRESH: Duration = Duration::from_secs(1);

struct Scrape {
    handle: PrometheusHandle,
    engine: Engine,
    last_gauges: parking_lot::Mutex<Option<Instant>>,
}

impl Scrape {
    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/metrics" {
            let mut response =
                Response::new(Full::new(Bytes::from_static(b"not found; try /metrics\n")));
            *response.status_mut() = hyper::StatusCode::NOT_FOUND;
            return response;
        }
        self.refresh_gauges();
        let mut response = Response::new(Full::new(Bytes::from(self.handle.render())));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }

    /// Scan the ledger and the order book (a stripe and an order at a time).
    fn refresh_gauges(&self) {
        let mut last = self.last_gauges.lock();
        if last.is_some_and(|at| at.elapsed() < GAUGE_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        let (mut on_hand, mut reserved) = (0u64, 0u64);
        for stripe in 0..self.engine.stripe_count() {
            self.engine.with_stripe(stripe, |records| {
                for (_, record) in records {
                    let (stripe_on_hand, stripe_reserved) = record.totals();
                    on_hand += stripe_on_hand;
                    reserved += stripe_reserved;
                }
            });
        }
        let awaiting = self
            .engine
            .order_handles()
            .iter()
            .filter(|order| order.lock().status.awaits_stock())
            .count();
        gauge!("inventory_on_hand_units").set(on_hand as f64);
        gauge!("inventory_reserved_units").set(reserved as f64);
        gauge!("orders_awaiting_stock").set(awaiting as f64);
    }
}
