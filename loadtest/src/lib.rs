//! The load-test harness: drives an allocation service over gRPC with a
//! realistic workload (many merchants, Zipf SKU popularity, several FCs,
//! 1–5 lines per order, replenishment), in closed loop (N requests in
//! flight) or open loop (a fixed rate, latency measured from the intended
//! send time so queueing is not hidden), bounded by count and time. Then it
//! checks the no-oversell invariant over gRPC.
//!
//! # Layout
//! - `workload`: what to send (orders, operations, replenishment).
//! - `drive`: closed and open loops, latency histograms.
//! - `verify`: the invariant check after the run.
//! - `zipf`: the popularity distribution.

#[cfg(feature = "baselines")]
pub mod baseline;
pub mod drive;
pub mod subscriber;
pub mod verify;
pub mod workload;
pub mod zipf;

use std::time::Duration;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use tonic::transport::Channel;

/// Closed loop: a fixed number of requests in flight. Open loop: a fixed
/// rate, whatever the latency. Stream: `AllocateStream`, one stream per
/// connection, `concurrency` orders in flight across them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Closed,
    Open,
    Stream,
}

/// How much of each order the allocation answers carry (RULES §15).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The whole order state, with the decision's candidate FCs.
    Full,
    /// Ids, status, allocations and the decision's rule: the throughput path.
    Decision,
}

impl View {
    pub fn to_proto(self) -> allocation::grpc::proto::OrderView {
        match self {
            View::Full => allocation::grpc::proto::OrderView::Full,
            View::Decision => allocation::grpc::proto::OrderView::Decision,
        }
    }
}

#[derive(clap::Parser, Clone, Debug)]
#[command(
    about = "Load-test an allocation service over gRPC, then check the no-oversell invariant"
)]
pub struct Args {
    /// The server (loopback only in this project's use). With the
    /// `baselines` feature also `redis://host:port` or `postgres://…`.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub target: String,
    #[arg(long, value_enum, default_value_t = Mode::Closed)]
    pub mode: Mode,
    /// Closed loop: requests in flight. Stream: orders in flight, over all
    /// streams.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: requests per second.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// gRPC connections the requests are spread over (stream: one stream
    /// on each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Stop after this long...
    #[arg(long, default_value_t = 10.0)]
    pub duration_seconds: f64,
    /// ...or after this many requests, whichever comes first.
    #[arg(long, default_value_t = 10_000_000)]
    pub requests_max: u64,
    /// Orders per request: 1 sends unary Allocate, more sends AllocateBatch.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// The answer view the allocation calls ask for.
    #[arg(long, value_enum, default_value_t = View::Full)]
    pub view: View,
    #[arg(long, default_value_t = 10)]
    pub merchants: usize,
    /// SKUs per merchant.
    #[arg(long, default_value_t = 10_000)]
    pub skus: usize,
    #[arg(long, default_value_t = 5)]
    pub fcs: usize,
    #[arg(long, default_value_t = 1.0)]
    pub zipf_exponent: f64,
    /// Units of every SKU at every FC before the run.
    #[arg(long, default_value_t = 20)]
    pub initial_stock: u64,
    /// Units received per second per merchant, on popular SKUs.
    #[arg(long, default_value_t = 2_000)]
    pub replenish_units_per_second: u64,
    /// Percent of operations that read an order (GetOrder).
    #[arg(long, default_value_t = 0)]
    pub get_percent: u32,
    /// Percent of operations that put an order on hold.
    #[arg(long, default_value_t = 0)]
    pub hold_percent: u32,
    /// Percent of operations that cancel an order.
    #[arg(long, default_value_t = 0)]
    pub cancel_percent: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the invariant check after the run.
    #[arg(long)]
    pub skip_verify: bool,
    /// Also run a change-feed subscriber that sleeps this long after each
    /// event (0: none), to measure what a slow connector costs.
    #[arg(long, default_value_t = 0)]
    pub slow_subscriber_sleep_ms: u64,
}

impl Args {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_seconds)
    }
}

/// `connections` channels to the target.
pub async fn connect(args: &Args) -> anyhow::Result<Vec<AllocationServiceClient<Channel>>> {
    let mut clients = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        let channel = tonic::transport::Endpoint::from_shared(args.target.clone())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        clients.push(
            AllocationServiceClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
        );
    }
    Ok(clients)
}

/// Set up, drive, verify: the whole run.
pub async fn run(args: &Args) -> anyhow::Result<drive::Report> {
    #[cfg(feature = "baselines")]
    if baseline::is_baseline(&args.target) {
        return baseline::run(args).await;
    }
    let clients = connect(args).await?;
    let workload = std::sync::Arc::new(workload::Workload::new(args));
    workload.stock(&clients[0]).await?;
    let subscriber = match args.slow_subscriber_sleep_ms {
        0 => None,
        // On a connection of its own, as a connector has: an HTTP/2 client
        // that buffers a stream nobody reads closes the whole connection.
        ms => {
            let client = AllocationServiceClient::connect(args.target.clone()).await?;
            Some(subscriber::start(client, Duration::from_millis(ms)).await?)
        }
    };
    let mut report = drive::drive(
        std::sync::Arc::new(args.clone()),
        std::sync::Arc::clone(&workload),
        &clients,
    )
    .await?;
    report.subscriber = subscriber;
    if !args.skip_verify {
        report.verification = Some(verify::verify(&workload, &clients[0], &report).await?);
    }
    Ok(report)
}
