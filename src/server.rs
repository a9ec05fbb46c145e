//! Runs the gRPC service on a listener until a shutdown future completes.
//! The caller binds the listener, so tests can bind `127.0.0.1:0` and learn
//! the port before the server starts.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::engine::Engine;
use crate::grpc::proto::allocation_service_server::AllocationServiceServer;
use crate::grpc::Service;

/// Largest request or response message, in bytes. A full batch of 10,000
/// orders of a few lines each fits well within it.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

pub async fn run(
    listener: TcpListener,
    engine: Engine,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let service = AllocationServiceServer::new(Service::new(engine))
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
