//! Command-line flags. Every flag can also be set by an environment variable
//! prefixed `ALLOCATION_`; the defaults let `serve` run with no flags.
//! Where the library has a default of its own (`ServerOptions`,
//! `ConnectionLimits`, `EngineConfig`), the flag's default is read from it,
//! so the two never disagree.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::engine::EngineConfig;
use crate::server::{ConnectionLimits, ServerOptions};
use crate::storage::{FsyncPolicy, StoreConfig};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Inventory allocation service for fulfillment networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gRPC service.
    Serve(ServeConfig),
    /// Check a data directory without changing it: snapshots, journal
    /// segments, a full recovery in memory, and the invariants.
    Inspect(InspectConfig),
    /// Ask a running server's grpc.health.v1 service whether it is serving
    /// (exit 0) or not (exit 1). For container health checks.
    Health(HealthConfig),
}

#[derive(clap::Args, Debug, Clone)]
pub struct HealthConfig {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "ALLOCATION_HEALTH_ADDRESS",
        default_value = "127.0.0.1:50051",
        value_parser = host_port
    )]
    pub address: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_seconds: u64,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct InspectConfig {
    /// The data directory to inspect.
    #[arg(long, env = "ALLOCATION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// When an acknowledged change is on disk (like Redis' appendfsync).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// fdatasync before acknowledging: survives power loss.
    Always,
    /// write before acknowledging, fdatasync once a second.
    Everysec,
    /// write before acknowledging; the OS syncs when it likes.
    Off,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address the gRPC service listens on.
    #[arg(long, env = "ALLOCATION_LISTEN", default_value = "127.0.0.1:50051", value_parser = host_port)]
    pub listen: String,

    /// Address of the Prometheus endpoint (`GET /metrics`).
    #[arg(
        long,
        env = "ALLOCATION_METRICS_LISTEN",
        default_value = "127.0.0.1:9464",
        value_parser = host_port
    )]
    pub metrics_listen: String,

    /// Record and serve no metrics at all (to measure what metrics cost).
    #[arg(long, env = "ALLOCATION_NO_METRICS")]
    pub no_metrics: bool,

    /// Log format (the level comes from RUST_LOG, default info).
    #[arg(long, env = "ALLOCATION_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Requests in progress at once across all connections; more are
    /// refused at once with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, env = "ALLOCATION_CONCURRENCY_LIMIT", default_value_t = ServerOptions::default().concurrency_limit)]
    pub concurrency_limit: usize,

    /// Requests one connection may have in progress (HTTP/2 streams).
    #[arg(long, env = "ALLOCATION_STREAMS_PER_CONNECTION", default_value_t = ServerOptions::default().streams_per_connection)]
    pub streams_per_connection: u32,

    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "ALLOCATION_MESSAGE_BYTES_MAX", default_value_t = ServerOptions::default().message_bytes_max)]
    pub message_bytes_max: usize,

    /// Open client connections at once; one more is closed as soon as it
    /// is accepted (counted in `allocation_connections_refused_total`). Keep it
    /// below the process's open-file limit.
    #[arg(long, env = "ALLOCATION_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_open as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Seconds a new connection may take to send its first byte before
    /// it is closed (a client that never speaks holds no slot for long).
    #[arg(long, env = "ALLOCATION_HANDSHAKE_TIMEOUT_SECONDS", default_value_t = ConnectionLimits::default().handshake_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout_seconds: u64,

    /// Seconds between HTTP/2 keepalive pings on an idle connection; a
    /// peer that does not answer one within 20 s is disconnected.
    #[arg(long, env = "ALLOCATION_KEEPALIVE_SECONDS", default_value_t = ConnectionLimits::default().keepalive.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub keepalive_seconds: u64,

    /// Seconds requests in progress at shutdown may take to finish.
    #[arg(long, env = "ALLOCATION_DRAIN_TIMEOUT_SECONDS", default_value_t = ServerOptions::default().drain_timeout.as_secs())]
    pub drain_timeout_seconds: u64,

    /// Directory for the journal and snapshots (created if missing).
    #[arg(long, env = "ALLOCATION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Ledger lock stripes (rounded up to a power of two).
    #[arg(long, env = "ALLOCATION_STRIPES", default_value_t = EngineConfig::default().stripe_count)]
    pub stripes: usize,

    /// Seconds between exception reprocessing passes (RULES §5: 30 minutes).
    #[arg(
        long,
        env = "ALLOCATION_REPROCESS_INTERVAL_SECONDS",
        default_value_t = 1800,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub reprocess_interval_seconds: u64,

    /// Business days without a carrier scan after which a parcel counts as
    /// stalled, so a lost-parcel claim may be filed (weekends do not count).
    #[arg(
        long,
        env = "ALLOCATION_STALLED_AFTER_BUSINESS_DAYS",
        default_value_t = EngineConfig::default().stalled_after_business_days,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub stalled_after_business_days: u32,

    /// Change-feed events a `WatchEvents` subscriber may fall behind before
    /// it is disconnected.
    #[arg(
        long,
        env = "ALLOCATION_WATCH_BUFFER",
        default_value_t = ServerOptions::default().watch_buffer as u64,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    pub watch_buffer: u64,

    /// When an acknowledged change is durable.
    #[arg(long, env = "ALLOCATION_FSYNC", value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,

    /// Seconds between snapshots (the journal before a snapshot is then dropped).
    #[arg(
        long,
        env = "ALLOCATION_SNAPSHOT_INTERVAL_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub snapshot_interval_seconds: u64,

    /// Keep journal segments written within this many seconds even when
    /// snapshots no longer need them, so change-feed subscribers can resume
    /// from further back (0: the journal since the older kept snapshot).
    #[arg(
        long,
        env = "ALLOCATION_JOURNAL_RETENTION_SECONDS",
        default_value_t = 0
    )]
    pub journal_retention_seconds: u64,

    /// If the newest snapshot is corrupt, start from the previous one (and
    /// the journal kept since it) instead of refusing to start.
    #[arg(long, env = "ALLOCATION_FALLBACK_TO_PREVIOUS_SNAPSHOT")]
    pub fallback_to_previous_snapshot: bool,
}

impl ServeConfig {
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            stripe_count: self.stripes,
            stalled_after_business_days: self.stalled_after_business_days,
        }
    }

    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            concurrency_limit: self.concurrency_limit,
            streams_per_connection: self.streams_per_connection,
            message_bytes_max: self.message_bytes_max,
            drain_timeout: Duration::from_secs(self.drain_timeout_seconds),
            connections: ConnectionLimits {
                max_open: self.max_connections as usize,
                handshake_timeout: Duration::from_secs(self.handshake_timeout_seconds),
                keepalive: Duration::from_secs(self.keepalive_seconds),
            },
            // Bounded by the argument parser.
            watch_buffer: self.watch_buffer as usize,
        }
    }

    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            dir: self.data_dir.clone(),
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Everysec => FsyncPolicy::EverySecond,
                Fsync::Off => FsyncPolicy::Off,
            },
            fallback_to_previous_snapshot: self.fallback_to_previous_snapshot,
            journal_retention: Duration::from_secs(self.journal_retention_seconds),
        }
    }
}

/// `HOST:PORT`, the host a name (`localhost`) or an address (`[::1]` for
/// IPv6); resolved when used.
fn host_port(value: &str) -> Result<String, String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_string())
        }
        _ => Err(format!(
            "`{value}` is not HOST:PORT (such as localhost:50051)"
        )),
    }
}
