//! `inspect`: check a data directory without changing it.

use anyhow::Context;

use crate::config::InspectConfig;
use crate::engine::{Engine, EngineConfig};
use crate::storage::store;

/// Recover the directory in memory, print what was found, check the
/// invariants.
pub fn inspect(config: InspectConfig) -> anyhow::Result<()> {
    // Reading needs no lock, but a running server may be writing meanwhile.
    if let Some(pid) = store::locked_by(&config.data_dir) {
        let holder = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
        println!(
            "note: a running process{holder} holds the data directory's lock; \
             reading files it may be writing"
        );
    }
    let engine = Engine::new(EngineConfig::default());
    let recovery = store::recover(&config.data_dir, &engine, false, false)
        .with_context(|| format!("inspecting {}", config.data_dir.display()))?;
    match &recovery.snapshot {
        Some((path, lsn)) => println!(
            "snapshot: {} (LSN {lsn}, {} entries)",
            path.display(),
            recovery.snapshot_entries
        ),
        None => println!("snapshot: none"),
    }
    println!("journal records replayed: {}", recovery.records_replayed);
    if let Some((path, offset)) = &recovery.torn_tail {
        println!(
            "torn tail: {} from byte {offset} (start-up would move it aside)",
            path.display()
        );
    }
    println!("next LSN: {}", recovery.next_lsn);
    let audit = engine.audit();
    println!(
        "merchants: {}  orders: {}  on hand: {}  reserved: {}",
        engine.merchants().len(),
        engine.order_count(),
        audit.on_hand_units,
        audit.reserved_units
    );
    println!("invariants: ok");
    Ok(())
}
