//! Runs the gRPC service on a listener until a shutdown future completes.
//! The caller binds the listener, so tests can bind `127.0.0.1:0` and learn
//! the port before the server starts.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::engine::Engine;
use crate::grpc::proto::allocation_service_server::AllocationServiceServer;
use crate::grpc::Service;
use crate::storage::Store;
use tonic::service::interceptor::InterceptedService;

/// Largest request or response message, in bytes. A full batch of 10,000
/// orders of a few lines each fits well within it.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Serve until `shutdown` completes. With a `store`, every change is
/// journaled before it is acknowledged, and once the journal has failed
/// every request is refused with UNAVAILABLE.
pub async fn run(
    listener: TcpListener,
    engine: Engine,
    store: Option<Arc<Store>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let journal = store.as_ref().map(|store| Arc::clone(store.journal()));
    let service = AllocationServiceServer::new(Service::new(engine, store))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    let refuse_after_disk_failure = move |request: tonic::Request<()>| match &journal {
        Some(journal) if journal.has_failed() => Err(tonic::Status::unavailable(
            "the journal failed; this server no longer serves (see its log)",
        )),
        _ => Ok(request),
    };
    tonic::transport::Server::builder()
        .add_service(InterceptedService::new(service, refuse_after_disk_failure))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
