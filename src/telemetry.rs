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
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_stream::Stream;

use crate::engine::{Engine, PassCounts};
use crate::model::OrderStatus;

mod process;

/// Latency buckets, in seconds: 50 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];
/// Journal batch sizes, in records.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];

/// Metric names, in one place for the call sites and `install`.
///
/// The gRPC server metrics follow the conventions of go-grpc-prometheus
/// (`grpc_server_*`, labels `grpc_service`, `grpc_method`, `grpc_type`,
/// `grpc_code`), so the usual gRPC dashboards and alerts work unchanged;
/// everything else the service measures starts with `allocation_`.
pub mod names {
    pub const GRPC_STARTED: &str = "grpc_server_started_total";
    pub const GRPC_HANDLED: &str = "grpc_server_handled_total";
    pub const GRPC_HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
    pub const OUTCOMES: &str = "allocation_outcomes_total";
    pub const ORDERS_AWAITING_STOCK: &str = "allocation_orders_awaiting_stock";
    pub const INVENTORY_ON_HAND_UNITS: &str = "allocation_inventory_on_hand_units";
    pub const INVENTORY_RESERVED_UNITS: &str = "allocation_inventory_reserved_units";
    pub const FC_DAILY_ORDER_CAPACITY: &str = "allocation_fc_daily_order_capacity";
    pub const FC_ORDERS_TODAY: &str = "allocation_fc_orders_today";
    pub const JOURNAL_FSYNC_SECONDS: &str = "allocation_journal_fsync_seconds";
    pub const JOURNAL_BATCH_RECORDS: &str = "allocation_journal_batch_records";
    pub const SNAPSHOT_SECONDS: &str = "allocation_snapshot_seconds";
    pub const SNAPSHOT_BYTES: &str = "allocation_snapshot_bytes";
    pub const REPROCESS_PASS_SECONDS: &str = "allocation_reprocess_pass_seconds";
    pub const REPROCESS_ORDERS_EXAMINED: &str = "allocation_reprocess_orders_examined_total";
    pub const REPROCESS_ORDERS_ALLOCATED: &str = "allocation_reprocess_orders_allocated_total";
    pub const REQUESTS_SHED: &str = "allocation_requests_shed_total";
    pub const CONNECTIONS_OPEN: &str = "allocation_connections_open";
    pub const CONNECTIONS_REFUSED: &str = "allocation_connections_refused_total";
    pub const CONNECTIONS_TIMED_OUT: &str = "allocation_connections_timed_out_total";
    pub const ACCEPT_ERRORS: &str = "allocation_accept_errors_total";
    pub const BUILD_INFO: &str = "allocation_build_info";
    pub const FEED_SUBSCRIBERS: &str = "allocation_feed_subscribers";
    pub const FEED_CATCHING_UP: &str = "allocation_feed_catching_up";
    pub const FEED_CATCH_UPS: &str = "allocation_feed_catch_ups_total";
    pub const FEED_EVENTS_BEHIND: &str = "allocation_feed_events_behind";
}

/// `grpc_service`: the fully qualified service name, as in request paths.
pub const SERVICE: &str = "allocation.v1.AllocationService";

/// `grpc_type`: how many messages each side of an RPC sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcType {
    Unary,
    ServerStream,
    BidiStream,
}

impl RpcType {
    pub fn label(self) -> &'static str {
        match self {
            RpcType::Unary => "unary",
            RpcType::ServerStream => "server_stream",
            RpcType::BidiStream => "bidi_stream",
        }
    }
}

/// Every RPC of `SERVICE`, so labels stay a fixed, low-cardinality set.
pub const METHODS: &[(&str, RpcType)] = &[
    ("UpsertMerchant", RpcType::Unary),
    ("GetMerchant", RpcType::Unary),
    ("UpsertFulfillmentCenter", RpcType::Unary),
    ("ListFulfillmentCenters", RpcType::Unary),
    ("RegisterSkus", RpcType::Unary),
    ("SetInventory", RpcType::Unary),
    ("AdjustInventory", RpcType::Unary),
    ("GetInventory", RpcType::Unary),
    ("SetSafetyStock", RpcType::Unary),
    ("Allocate", RpcType::Unary),
    ("AllocateBatch", RpcType::Unary),
    ("AllocateStream", RpcType::BidiStream),
    ("GetOrder", RpcType::Unary),
    ("ListOrders", RpcType::Unary),
    ("HoldOrder", RpcType::Unary),
    ("ReleaseOrder", RpcType::Unary),
    ("CancelOrder", RpcType::Unary),
    ("MarkPicked", RpcType::Unary),
    ("ShipOrder", RpcType::Unary),
    ("RecordTrackingEvent", RpcType::Unary),
    ("GetShipment", RpcType::Unary),
    ("Reprocess", RpcType::Unary),
    ("FifoRelease", RpcType::Unary),
    ("ExplainOrder", RpcType::Unary),
    ("SimulateSettings", RpcType::Unary),
    ("WatchEvents", RpcType::ServerStream),
    ("Snapshot", RpcType::Unary),
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

/// `kind` of a reprocessing pass.
const PASS_KINDS: [&str; 2] = ["reprocess", "fifo"];

struct MethodMetrics {
    started: Counter,
    handled: Vec<Counter>,
    latency: Histogram,
}

struct PassMetrics {
    seconds: Histogram,
    examined: Counter,
    allocated: Counter,
}

/// Handles for what the edge records. Cheap to share.
pub struct Telemetry {
    methods: Vec<MethodMetrics>,
    outcomes: Vec<Counter>,
    passes: Vec<PassMetrics>,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

impl Telemetry {
    /// The process-wide handles, registered with whatever recorder is
    /// installed when first called (`install` calls it; in most tests no
    /// recorder is installed, and then they do nothing).
    pub fn get() -> &'static Telemetry {
        TELEMETRY.get_or_init(|| Telemetry {
            methods: METHODS
                .iter()
                .map(|&(method, kind)| {
                    let labels = [
                        ("grpc_service", SERVICE),
                        ("grpc_method", method),
                        ("grpc_type", kind.label()),
                    ];
                    MethodMetrics {
                        started: counter!(names::GRPC_STARTED, &labels),
                        handled: CODES
                            .iter()
                            .map(|&code| {
                                let mut labels = labels.to_vec();
                                labels.push(("grpc_code", code));
                                counter!(names::GRPC_HANDLED, &labels)
                            })
                            .collect(),
                        latency: histogram!(names::GRPC_HANDLING_SECONDS, &labels),
                    }
                })
                .collect(),
            outcomes: STATUSES
                .iter()
                .map(|&(_, status)| counter!(names::OUTCOMES, "status" => status))
                .collect(),
            passes: PASS_KINDS
                .iter()
                .map(|&kind| PassMetrics {
                    seconds: histogram!(names::REPROCESS_PASS_SECONDS, "kind" => kind),
                    examined: counter!(names::REPROCESS_ORDERS_EXAMINED, "kind" => kind),
                    allocated: counter!(names::REPROCESS_ORDERS_ALLOCATED, "kind" => kind),
                })
                .collect(),
        })
    }

    /// One RPC of `method` (one of `METHODS`; others are not recorded),
    /// counted as started now and as handled when the `Call` is finished
    /// or dropped.
    pub fn start(&'static self, method: &str) -> Call {
        let method = METHODS.iter().position(|&(m, _)| m == method);
        if let Some(index) = method {
            self.methods[index].started.increment(1);
        }
        Call {
            telemetry: self,
            method,
            started: Instant::now(),
            code: tonic::Code::Cancelled,
        }
    }

    /// `start` for a request path, `/allocation.v1.AllocationService/<method>`;
    /// other services' requests are not recorded.
    pub fn start_path(&'static self, path: &str) -> Call {
        let method = path
            .strip_prefix('/')
            .and_then(|path| path.strip_prefix(SERVICE))
            .and_then(|path| path.strip_prefix('/'))
            .unwrap_or_default();
        self.start(method)
    }

    /// Record the outcome of one allocation decision.
    pub fn outcome(&self, status: OrderStatus) {
        if let Some(index) = STATUSES.iter().position(|&(s, _)| s == status) {
            self.outcomes[index].increment(1);
        }
    }
}

/// An RPC in progress. Dropped unfinished (the client went away and the
/// handler with it), it counts as `CANCELLED`.
pub struct Call {
    telemetry: &'static Telemetry,
    method: Option<usize>,
    started: Instant,
    code: tonic::Code,
}

impl Call {
    /// The RPC was answered with `code`.
    pub fn finish(mut self, code: tonic::Code) {
        self.code = code;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(index) = self.method {
            let metrics = &self.telemetry.methods[index];
            metrics.handled[(self.code as usize).min(CODES.len() - 1)].increment(1);
            metrics.latency.record(self.started.elapsed().as_secs_f64());
        }
    }
}

/// Time `work` and record it as one unary call of `method`.
pub async fn metered<T>(
    method: &'static str,
    work: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let call = Telemetry::get().start(method);
    let result = work.await;
    call.finish(match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    });
    result
}

/// Record one server-streaming call of `method` that `work` opens: handled
/// when the stream ends (OK, or the code of the error it ends with), or
/// when the client drops it (CANCELLED), timed from the request to then.
pub async fn metered_stream<S, T>(
    method: &'static str,
    work: impl std::future::Future<Output = Result<tonic::Response<S>, tonic::Status>>,
) -> Result<tonic::Response<MeteredStream<S>>, tonic::Status>
where
    S: Stream<Item = Result<T, tonic::Status>> + Unpin,
{
    let call = Telemetry::get().start(method);
    match work.await {
        Ok(response) => Ok(response.map(|inner| MeteredStream {
            inner,
            call: Some(call),
        })),
        Err(status) => {
            call.finish(status.code());
            Err(status)
        }
    }
}

/// A response stream that records its call when it ends (see `metered_stream`).
pub struct MeteredStream<S> {
    inner: S,
    call: Option<Call>,
}

impl<S, T> Stream for MeteredStream<S>
where
    S: Stream<Item = Result<T, tonic::Status>> + Unpin,
{
    type Item = Result<T, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(context);
        let code = match &next {
            Poll::Ready(None) => Some(tonic::Code::Ok),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            _ => None,
        };
        if let Some(code) = code {
            if let Some(call) = self.call.take() {
                call.finish(code);
            }
        }
        next
    }
}

/// Record a reprocessing (`kind` "reprocess") or FIFO ("fifo") pass.
pub fn pass(kind: &'static str, counts: PassCounts, elapsed: Duration) {
    let telemetry = Telemetry::get();
    if let Some(index) = PASS_KINDS.iter().position(|&k| k == kind) {
        let metrics = &telemetry.passes[index];
        metrics.seconds.record(elapsed.as_secs_f64());
        metrics.examined.increment(counts.examined);
        metrics
            .allocated
            .increment(counts.allocated + counts.partially_allocated);
    }
}

/// Install the Prometheus recorder for this process. Call once, first.
///
/// Every counter, histogram and gauge, with every label combination, is
/// registered here, so each is in the very first scrape at 0 and
/// Prometheus' `rate()` counts the first snapshot or reprocessing pass
/// too. (The exporter renders a registered histogram with all its buckets
/// at 0 before its first sample.)
pub fn install() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(names::JOURNAL_BATCH_RECORDS.into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|error| error.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|error| error.to_string())?;
    describe();
    Telemetry::get();
    for name in [
        names::JOURNAL_FSYNC_SECONDS,
        names::JOURNAL_BATCH_RECORDS,
        names::SNAPSHOT_SECONDS,
    ] {
        // Registering is enough: the exporter renders a registered histogram.
        let _ = histogram!(name);
    }
    for name in [
        names::REQUESTS_SHED,
        names::CONNECTIONS_REFUSED,
        names::CONNECTIONS_TIMED_OUT,
        names::ACCEPT_ERRORS,
        names::FEED_CATCH_UPS,
    ] {
        counter!(name).increment(0);
    }
    for name in [
        names::CONNECTIONS_OPEN,
        names::SNAPSHOT_BYTES,
        names::INVENTORY_ON_HAND_UNITS,
        names::INVENTORY_RESERVED_UNITS,
        names::ORDERS_AWAITING_STOCK,
        names::FEED_SUBSCRIBERS,
        names::FEED_CATCHING_UP,
        names::FEED_EVENTS_BEHIND,
    ] {
        gauge!(name).increment(0.0);
    }
    gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        names::GRPC_STARTED,
        "RPCs started on the server, by service, method and type."
    );
    describe_counter!(
        names::GRPC_HANDLED,
        "RPCs completed on the server, by service, method, type and gRPC status code \
         (requests shed by the concurrency limit included, as RESOURCE_EXHAUSTED)."
    );
    describe_histogram!(
        names::GRPC_HANDLING_SECONDS,
        Unit::Seconds,
        "Time from the request to the answer (to the stream's end for streams), by service, \
         method and type."
    );
    describe_counter!(
        names::OUTCOMES,
        "Orders decided by Allocate and AllocateBatch, by resulting status."
    );
    describe_gauge!(
        names::ORDERS_AWAITING_STOCK,
        "Orders in EXCEPTION or PARTIALLY_ALLOCATED."
    );
    describe_gauge!(
        names::INVENTORY_RESERVED_UNITS,
        "Units reserved across all SKUs and FCs."
    );
    describe_gauge!(
        names::INVENTORY_ON_HAND_UNITS,
        "Units on hand across all SKUs and FCs."
    );
    describe_gauge!(
        names::FC_DAILY_ORDER_CAPACITY,
        "Orders an FC takes per operations day (06:00 to 06:00 America/Chicago), \
         by fc_id, for every upserted FC; 0: no limit."
    );
    describe_gauge!(
        names::FC_ORDERS_TODAY,
        "Orders holding one of an FC's daily slots in the current operations day, \
         by fc_id (only an FC with a limit hands out slots)."
    );
    describe_histogram!(
        names::JOURNAL_FSYNC_SECONDS,
        Unit::Seconds,
        "Journal fdatasync time."
    );
    describe_histogram!(
        names::JOURNAL_BATCH_RECORDS,
        "Records written by one journal write (group commit)."
    );
    describe_histogram!(
        names::SNAPSHOT_SECONDS,
        Unit::Seconds,
        "Time to write a snapshot."
    );
    describe_gauge!(
        names::SNAPSHOT_BYTES,
        Unit::Bytes,
        "Size of the newest snapshot, written or loaded at start-up (0: none yet)."
    );
    describe_histogram!(
        names::REPROCESS_PASS_SECONDS,
        Unit::Seconds,
        "Reprocessing or FIFO pass time, by kind."
    );
    describe_counter!(
        names::REPROCESS_ORDERS_EXAMINED,
        "Orders examined by reprocessing or FIFO passes, by kind."
    );
    describe_counter!(
        names::REPROCESS_ORDERS_ALLOCATED,
        "Orders that got stock in reprocessing or FIFO passes, by kind."
    );
    describe_gauge!(
        names::FEED_SUBSCRIBERS,
        "WatchEvents subscriptions open now."
    );
    describe_gauge!(
        names::FEED_CATCHING_UP,
        "WatchEvents subscriptions reading retained events from the journal now."
    );
    describe_counter!(
        names::FEED_CATCH_UPS,
        "Times a subscription read from the journal: each resumption, and each time one \
         fell behind the live ring."
    );
    describe_gauge!(
        names::FEED_EVENTS_BEHIND,
        "Live events published and not yet read by the slowest live subscriber."
    );
    describe_counter!(
        names::REQUESTS_SHED,
        "Requests refused with RESOURCE_EXHAUSTED by the concurrency limit."
    );
    describe_gauge!(
        names::CONNECTIONS_OPEN,
        "Client connections to the gRPC listener open now."
    );
    describe_counter!(
        names::CONNECTIONS_REFUSED,
        "gRPC connections closed on accept because --max-connections were open."
    );
    describe_counter!(
        names::CONNECTIONS_TIMED_OUT,
        "gRPC connections closed for sending nothing within --handshake-timeout-seconds."
    );
    describe_counter!(
        names::ACCEPT_ERRORS,
        "Failed accepts on the gRPC listener (such as running out of file descriptors); \
         each is followed by a back-off."
    );
    describe_gauge!(
        names::BUILD_INFO,
        "Always 1; the label `version` is the server's version."
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
        let mut text = self.handle.render();
        process::render(&mut text);
        let mut response = Response::new(Full::new(Bytes::from(text)));
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
        gauge!(names::INVENTORY_ON_HAND_UNITS).set(on_hand as f64);
        gauge!(names::INVENTORY_RESERVED_UNITS).set(reserved as f64);
        gauge!(names::ORDERS_AWAITING_STOCK).set(awaiting as f64);
        let now = crate::model::Timestamp::now();
        for fc in self.engine.fulfillment_centers() {
            let label = fc.fc.to_string();
            let taken = self.engine.orders_today(fc.fc, now);
            gauge!(names::FC_DAILY_ORDER_CAPACITY, "fc_id" => label.clone())
                .set(f64::from(fc.daily_order_capacity));
            gauge!(names::FC_ORDERS_TODAY, "fc_id" => label).set(f64::from(taken));
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// `METHODS` is the service's RPCs, each with its streaming type, as the
    /// proto declares them.
    #[test]
    fn methods_match_the_proto() {
        let set = prost_types::FileDescriptorSet::decode(crate::grpc::proto::FILE_DESCRIPTOR_SET)
            .unwrap();
        let (package, service) = SERVICE.rsplit_once('.').unwrap();
        let declared: Vec<(String, RpcType)> = set
            .file
            .iter()
            .filter(|file| file.package() == package)
            .flat_map(|file| &file.service)
            .filter(|s| s.name() == service)
            .flat_map(|s| &s.method)
            .map(|method| {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => RpcType::Unary,
                    (false, true) => RpcType::ServerStream,
                    (true, true) => RpcType::BidiStream,
                    other => panic!("{}: no grpc_type for {other:?}", method.name()),
                };
                (method.name().to_string(), kind)
            })
            .collect();
        let ours: Vec<(String, RpcType)> = METHODS
            .iter()
            .map(|&(name, kind)| (name.to_string(), kind))
            .collect();
        assert_eq!(ours, declared);
    }

    #[test]
    fn request_paths_name_methods_of_this_service_only() {
        let index = |path| {
            let call = Telemetry::get().start_path(path);
            let method = call.method;
            call.finish(tonic::Code::Ok);
            method
        };
        assert_eq!(
            index("/allocation.v1.AllocationService/Allocate"),
            METHODS.iter().position(|&(m, _)| m == "Allocate")
        );
        assert_eq!(index("/grpc.health.v1.Health/Check"), None);
        assert_eq!(index("/allocation.v1.AllocationServiceX/Allocate"), None);
        assert_eq!(index("/allocation.v1.AllocationService/Nope"), None);
    }
}
