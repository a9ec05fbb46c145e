//! Durability: the on-disk encoding, the journal, snapshots and recovery.

pub mod codec;
pub mod journal;
pub mod retained;
pub mod snapshot;
pub mod store;

pub use journal::{FsyncPolicy, Journal};
pub use store::{OpenError, Recovery, SnapshotInfo, Store, StoreConfig};
