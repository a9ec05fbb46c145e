//! Runs the gRPC services on a listener until a shutdown future completes:
//! the allocation service, gRPC health checking and server reflection. The
//! caller binds the listener, so tests can bind `127.0.0.1:0` and learn the
//! port before the server starts.
//!
//! A `Lifecycle` says whether requests are admitted: not while the data
//! directory is being recovered, not once draining for shutdown, never
//! again after the journal failed. Health answers NOT_SERVING then, and
//! the allocation service answers UNAVAILABLE.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::Status;
use tonic_health::server::HealthReporter;
use tower::util::MapResponseLayer;

mod incoming;
mod shed;

pub use incoming::{AcceptBackoff, ConnectionLimits};

use crate::engine::Engine;
use crate::error::Error;
use crate::grpc::feed::EventFeed;
use crate::grpc::proto::allocation_service_server::AllocationServiceServer;
use crate::grpc::proto::FILE_DESCRIPTOR_SET;
use crate::grpc::Service;
use crate::storage::Store;

/// Limits on what clients may ask of the server at once.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Requests in progress across all connections; one more is refused at
    /// once with RESOURCE_EXHAUSTED rather than queued.
    pub concurrency_limit: usize,
    /// HTTP/2 streams (requests) one connection may have open.
    pub streams_per_connection: u32,
    /// Largest request or response message, in bytes.
    pub message_bytes_max: usize,
    /// How long requests in progress at shutdown may take to finish.
    pub drain_timeout: Duration,
    /// How many change-feed events a `WatchEvents` subscriber may fall
    /// behind before it is disconnected.
    pub watch_buffer: usize,
    pub connections: ConnectionLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            concurrency_limit: 1_024,
            streams_per_connection: 256,
            // A full batch of 10,000 orders of a few lines fits well within it.
            message_bytes_max: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(10),
            watch_buffer: 4_096,
            connections: ConnectionLimits::default(),
        }
    }
}

/// How long a keepalive ping may go unanswered before the connection is
/// closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

const STARTING: u8 = 0;
const SERVING: u8 = 1;
const DRAINING: u8 = 2;

/// Whether the server admits requests, shared by the binary (which opens it
/// after recovery and drains it at shutdown), the gate and health.
pub struct Lifecycle {
    state: AtomicU8,
    health: HealthReporter,
    /// The journal and snapshots, once recovered; none for memory-only
    /// servers. Shared with the allocation service, which waits on the
    /// journal before it answers.
    store: Arc<OnceLock<Arc<Store>>>,
}

impl Lifecycle {
    /// A closed lifecycle and the health service reporting on it.
    pub async fn new() -> (
        Arc<Self>,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (health, service) = tonic_health::server::health_reporter();
        health
            .set_not_serving::<AllocationServiceServer<Service>>()
            .await;
        let lifecycle = Arc::new(Self {
            state: AtomicU8::new(STARTING),
            health,
            store: Arc::default(),
        });
        (lifecycle, service)
    }

    /// Start admitting requests (after recovery, with its store if any).
    /// A server already draining stays closed.
    pub async fn open(&self, store: Option<Arc<Store>>) {
        if let Some(store) = store {
            // A journal that fails takes the service out of rotation: it
            // can no longer acknowledge anything.
            let (journal, health) = (Arc::clone(store.journal()), self.health.clone());
            tokio::spawn(async move {
                journal.failed().await;
                health
                    .set_not_serving::<AllocationServiceServer<Service>>()
                    .await;
                // Probes that name no service (Kubernetes') ask for "".
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
            });
            let _ = self.store.set(store);
        }
        let opened = self
            .state
            .compare_exchange(STARTING, SERVING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if opened {
            self.health
                .set_serving::<AllocationServiceServer<Service>>()
                .await;
        }
    }

    /// Stop admitting requests: shutting down.
    pub async fn drain(&self) {
        self.state.store(DRAINING, Ordering::Release);
        self.health
            .set_not_serving::<AllocationServiceServer<Service>>()
            .await;
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.get()
    }

    /// The gate every allocation-service request passes.
    fn admit(&self) -> Result<(), Error> {
        match self.state.load(Ordering::Acquire) {
            STARTING => Err(Error::Unavailable(
                "recovering the data directory; retry shortly".into(),
            )),
            DRAINING => Err(Error::Unavailable("shutting down".into())),
            _ if self
                .store()
                .is_some_and(|store| store.journal().has_failed()) =>
            {
                Err(Error::Unavailable(
                    "the journal failed; this server no longer serves (see its log)".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Serve until `shutdown` completes, then drain: health goes NOT_SERVING,
/// new requests get UNAVAILABLE, requests in progress get up to
/// `drain_timeout` to finish.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    lifecycle: Arc<Lifecycle>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    // Both reflection versions: older grpcurl releases only speak v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the compiled-in descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the compiled-in descriptor sets are valid");
    let feed = EventFeed::new(engine.clone(), options.watch_buffer);
    // An engine served twice keeps publishing to the first feed.
    let _ = engine.attach_event_sink(Arc::clone(&feed) as Arc<dyn crate::engine::EventSink>);
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    let service = Service::new(
        engine,
        Arc::clone(&lifecycle.store),
        Arc::clone(&feed),
        closing_seen,
    );
    let service = AllocationServiceServer::new(service)
        .max_decoding_message_size(options.message_bytes_max)
        .max_encoding_message_size(options.message_bytes_max);
    let gate = Arc::clone(&lifecycle);
    let gated = InterceptedService::new(service, move |request: tonic::Request<()>| {
        gate.admit().map(|()| request).map_err(Status::from)
    });

    let (drained, draining) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        shutdown.await;
        feed.close();
        closing.send_replace(true);
        lifecycle.drain().await;
        let _ = drained.send(());
    };
    let serve = tonic::transport::Server::builder()
        .max_concurrent_streams(options.streams_per_connection)
        .http2_keepalive_interval(Some(options.connections.keepalive))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(
            tower::ServiceBuilder::new()
                .layer(MapResponseLayer::new(
                    crate::grpc::status::size_limit_as_resource_exhausted,
                ))
                .layer(shed::ShedLayer::new(options.concurrency_limit)),
        )
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(gated)
        .serve_with_incoming_shutdown(
            incoming::incoming(listener, options.connections.clone()),
            shutdown,
        );
    let drain_timeout = options.drain_timeout;
    tokio::select! {
        result = serve => result,
        _ = async {
            let _ = draining.await;
            tokio::time::sleep(drain_timeout).await;
        } => {
            tracing::warn!(seconds = drain_timeout.as_secs_f64(), "requests still running after the drain timeout; stopping anyway");
            Ok(())
        }
    }
}
