//! Command-line flags. Every flag can also be set by an environment variable
//! prefixed `ALLOCATION_`; the defaults let `serve` run with no flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address the gRPC service listens on.
    #[arg(long, env = "ALLOCATION_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for the journal and snapshots (created if missing).
    #[arg(long, env = "ALLOCATION_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Ledger lock stripes (rounded up to a power of two).
    #[arg(long, env = "ALLOCATION_STRIPES", default_value_t = 1024)]
    pub stripes: usize,

    /// Seconds between exception reprocessing passes (SPEC §5: 30 minutes).
    #[arg(
        long,
        env = "ALLOCATION_REPROCESS_INTERVAL_SECONDS",
        default_value_t = 1800,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub reprocess_interval_seconds: u64,
}
