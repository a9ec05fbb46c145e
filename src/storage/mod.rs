//! Durability: the on-disk encoding, the journal, snapshots and recovery.

pub mod codec;
