//! The binary: parse flags, recover, bind, serve until SIGINT or SIGTERM,
//! then write a final snapshot.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use allocation::background::Periodic;
use allocation::config::{Cli, Command, Fsync, InspectConfig, ServeConfig};
use allocation::engine::{Engine, EngineConfig};
use allocation::storage::{store, FsyncPolicy, Store, StoreConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(config) => serve(config).await,
        Command::Inspect(config) => inspect(config),
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let engine = Engine::new(EngineConfig {
        stripe_count: config.stripes,
    });
    let store_config = StoreConfig {
        dir: config.data_dir.clone(),
        fsync: match config.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Everysec => FsyncPolicy::EverySecond,
            Fsync::Off => FsyncPolicy::Off,
        },
        fallback_to_previous_snapshot: config.fallback_to_previous_snapshot,
    };
    let recovery_engine = engine.clone();
    let (store, recovery) =
        tokio::task::spawn_blocking(move || Store::open(&store_config, &recovery_engine))
            .await?
            .with_context(|| format!("recovering from {}", config.data_dir.display()))?;
    tracing::info!(
        snapshot = ?recovery.snapshot.as_ref().map(|(path, _)| path.display().to_string()),
        records_replayed = recovery.records_replayed,
        orders = engine.order_count(),
        next_lsn = recovery.next_lsn,
        "recovered"
    );
    let store = Arc::new(store);

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let pass_engine = engine.clone();
    let reprocessor = Periodic::spawn(
        "reprocess",
        Duration::from_secs(config.reprocess_interval_seconds),
        move || {
            let counts = pass_engine.reprocess(None);
            tracing::info!(?counts, "reprocess pass");
        },
    );
    let (snapshot_engine, snapshot_store) = (engine.clone(), Arc::clone(&store));
    let snapshotter = Periodic::spawn(
        "snapshot",
        Duration::from_secs(config.snapshot_interval_seconds),
        move || match snapshot_store.snapshot(&snapshot_engine) {
            Ok(info) => {
                tracing::info!(path = %info.path.display(), bytes = info.bytes, seconds = info.duration.as_secs_f64(), "snapshot")
            }
            Err(error) => tracing::error!(%error, "snapshot failed"),
        },
    );
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");
    allocation::server::run(
        listener,
        engine.clone(),
        Some(Arc::clone(&store)),
        shutdown_signal(),
    )
    .await?;
    reprocessor.stop().await;
    snapshotter.stop().await;

    let final_store = Arc::clone(&store);
    let info = tokio::task::spawn_blocking(move || final_store.snapshot(&engine))
        .await?
        .context("writing the final snapshot")?;
    tracing::info!(path = %info.path.display(), bytes = info.bytes, "final snapshot written");
    store.close();
    tracing::info!("stopped");
    Ok(())
}

fn inspect(config: InspectConfig) -> anyhow::Result<()> {
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
            "torn tail: {} from byte {offset} (start-up would cut it)",
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

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested");
}
