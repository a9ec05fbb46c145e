//! Durability: the on-disk encoding, the journal, snapshots and recovery.

pub mod codec;
pub mod journal;
pub mod snapshot;
