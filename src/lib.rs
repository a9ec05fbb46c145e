//! An inventory allocation service for fulfillment networks.
//!
//! Comments cite the rules the service guarantees as "RULES §n": the
//! sections of `docs/RULES.md`. `docs/ARCHITECTURE.md` is the tour.
//!
//! # Layout
//!
//! The pure core (no network, no clock, no disk):
//! - [`model`]: validated domain types (ids, orders, merchants, time, limits).
//! - [`ledger`]: on-hand / reserved / picked units per (merchant, SKU, FC),
//!   in lock stripes; atomic multi-SKU reservation.
//! - [`policy`]: the allocation decision (RULES §4) as arithmetic over a stock matrix.
//! - [`order_book`]: every order behind its own lock.
//! - [`engine`]: the operations (allocate, hold, release, cancel, pick,
//!   counts, queries) over ledger + order book + merchant settings.
//! - [`error`]: the core's error enum.
//!
//! The edge:
//! - [`grpc`]: generated protobuf code, request validation and conversion,
//!   the tonic service, the one mapping from core errors to gRPC statuses.
//! - [`server`]: binds the service to a listener and runs it until shutdown.
//! - [`background`]: periodic jobs (reprocessing, snapshots), owned by guards.
//! - [`storage`]: the on-disk encoding, the journal (group commit), snapshots
//!   and recovery.
//! - [`config`]: command-line flags and environment variables.
//! - [`commands`]: the binary's subcommands (`serve`, `inspect`, `health`).
//! - [`fuzzing`]: the entry points of the fuzz targets in `fuzz/`.

pub mod background;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod ledger;
pub mod model;
pub mod order_book;
pub mod policy;
pub mod server;
pub mod storage;
pub mod telemetry;
