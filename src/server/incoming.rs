//! Accepting connections: at most `max_open` at once, a deadline for a new
//! connection's first byte, and a loop that backs off when `accept` fails
//! (out of file descriptors, say) instead of spinning on the error.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Limits on the connections clients hold.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once; one more is closed on accept.
    pub max_open: usize,
    /// How long a new connection may stay silent before it is closed.
    pub handshake_timeout: Duration,
    /// HTTP/2 ping interval on idle connections.
    pub keepalive: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_open: 4096,
            handshake_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(60),
        }
    }
}

/// The first wait after a failed `accept`, doubled up to the last.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one log line per this long for each kind of trouble.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Accepted connections, as tonic's `serve_with_incoming` takes them. The
/// accept loop ends when the server stops taking connections.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> ReceiverStream<io::Result<Connection>> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        tokio::select! {
            () = accept_loop(&listener, &limits, &sender) => {}
            () = sender.closed() => {}
        }
    });
    ReceiverStream::new(receiver)
}

async fn accept_loop(
    listener: &TcpListener,
    limits: &ConnectionLimits,
    sender: &mpsc::Sender<io::Result<Connection>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_open));
    let mut failures = AcceptBackoff::new("grpc");
    let mut refusals = RateLimitedLog::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                metrics::counter!(crate::telemetry::names::ACCEPT_ERRORS).increment(1);
                tokio::time::sleep(failures.failed(&error)).await;
                continue;
            }
        };
        failures.reset();
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!(crate::telemetry::names::CONNECTIONS_REFUSED).increment(1);
            refusals.warn(|suppressed| {
                tracing::warn!(
                    limit = limits.max_open,
                    suppressed,
                    "connection limit reached; closing new connections"
                )
            });
            continue; // dropping the stream closes it
        };
        // Nagle's algorithm off: a response must not wait for the client's
        // delayed ACK (a 40 ms stall per small response).
        if stream.set_nodelay(true).is_err() {
            continue; // the peer is already gone
        }
        let connection = Connection::new(stream, slot, limits.handshake_timeout);
        if sender.send(Ok(connection)).await.is_err() {
            return;
        }
    }
}

/// What to do after `accept` failed (out of file descriptors, say): retrying
/// at once would spin a CPU and log without end, so wait, longer each time
/// in a row, and log now and then.
pub struct AcceptBackoff {
    listener: &'static str,
    pause: Duration,
    log: RateLimitedLog,
}

impl AcceptBackoff {
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            pause: ACCEPT_BACKOFF_MIN,
            log: RateLimitedLog::default(),
        }
    }

    /// How long to wait before accepting again.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        let pause = self.pause;
        let listener = self.listener;
        self.log.warn(|suppressed| {
            tracing::warn!(%error, listener, suppressed, backoff_ms = pause.as_millis() as u64, "accepting a connection failed; backing off")
        });
        self.pause = (pause * 2).min(ACCEPT_BACKOFF_MAX);
        pause
    }

    /// An accept succeeded: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.pause = ACCEPT_BACKOFF_MIN;
    }
}

/// One warning now and then, with how many were left out since the last.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, log: impl FnOnce(u64)) {
        if self.last.is_some_and(|last| last.elapsed() < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        log(self.suppressed);
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// An accepted connection: holds its slot until closed, and fails its
/// reads if the client has sent nothing by the handshake deadline.
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    /// Until the first byte arrives.
    silent_deadline: Option<Pin<Box<Sleep>>>,
}

impl Connection {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, handshake_timeout: Duration) -> Self {
        metrics::gauge!(crate::telemetry::names::CONNECTIONS_OPEN).increment(1);
        Self {
            stream,
            _slot: slot,
            silent_deadline: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        metrics::gauge!(crate::telemetry::names::CONNECTIONS_OPEN).decrement(1);
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled_before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(context, buf);
        if let Some(deadline) = self.silent_deadline.as_mut() {
            match &result {
                Poll::Ready(Ok(())) if buf.filled().len() > filled_before => {
                    self.silent_deadline = None;
                }
                Poll::Pending if deadline.as_mut().poll(context).is_ready() => {
                    metrics::counter!(crate::telemetry::names::CONNECTIONS_TIMED_OUT).increment(1);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the handshake timeout",
                    )));
                }
                _ => {}
            }
        }
        result
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
