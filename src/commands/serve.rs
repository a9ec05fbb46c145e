//! `serve`: the whole life of a server process, from binding its ports to
//! releasing its data directory.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::background::Periodic;
use crate::config::ServeConfig;
use crate::engine::Engine;
use crate::model::Timestamp;
use crate::server::Lifecycle;
use crate::storage::Store;
use crate::telemetry;

/// Run the service until `shutdown` completes: bind, recover (health says
/// NOT_SERVING meanwhile), serve with the background passes running, then
/// drain, write a final snapshot and release the data directory.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let engine = Engine::new(config.engine_config());
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_address = if config.no_metrics {
        "off".to_string()
    } else {
        let handle =
            telemetry::install().map_err(|error| anyhow::anyhow!("installing metrics: {error}"))?;
        let metrics_listener = TcpListener::bind(&config.metrics_listen)
            .await
            .with_context(|| format!("binding {}", config.metrics_listen))?;
        let address = metrics_listener.local_addr()?.to_string();
        tokio::spawn(telemetry::serve(
            metrics_listener,
            handle,
            engine.clone(),
            async {
                let _ = metrics_stopped.await;
            },
        ));
        address
    };

    // Serve health (NOT_SERVING) and refuse requests while recovering.
    let (lifecycle, health) = Lifecycle::new().await;
    let options = config.server_options();
    let address = listener.local_addr()?;
    tracing::info!(%address, metrics = %metrics_address, data_dir = %config.data_dir.display(), "listening; recovering the data directory");
    let server = tokio::spawn(crate::server::run(
        listener,
        engine.clone(),
        Arc::clone(&lifecycle),
        health,
        options,
        shutdown,
    ));

    let store_config = config.store_config();
    let recovery_engine = engine.clone();
    let started = Instant::now();
    let (store, recovery) =
        tokio::task::spawn_blocking(move || Store::open(&store_config, &recovery_engine))
            .await?
            .with_context(|| format!("recovering from {}", config.data_dir.display()))?;
    tracing::info!(
        snapshot = ?recovery.snapshot.as_ref().map(|(path, _)| path.display().to_string()),
        records_replayed = recovery.records_replayed,
        orders = engine.order_count(),
        next_lsn = recovery.next_lsn,
        seconds = started.elapsed().as_secs_f64(),
        "recovered"
    );
    let store = Arc::new(store);
    lifecycle.open(Some(Arc::clone(&store))).await;
    tracing::info!(%address, "serving");

    let pass_engine = engine.clone();
    let reprocessor = Periodic::spawn(
        "reprocess",
        Duration::from_secs(config.reprocess_interval_seconds),
        move || {
            let started = Instant::now();
            let counts = pass_engine.reprocess(None, Timestamp::now());
            telemetry::pass("reprocess", counts, started.elapsed());
            tracing::info!(
                ?counts,
                seconds = started.elapsed().as_secs_f64(),
                "reprocess pass"
            );
        },
    );
    // Shipped orders read COMPLETED on time regardless; this records it and
    // tells the change feed, within a minute.
    let completion_engine = engine.clone();
    let completer = Periodic::spawn("complete", Duration::from_secs(60), move || {
        let completed = completion_engine.complete_due(Timestamp::now());
        if completed > 0 {
            tracing::info!(completed, "shipped orders completed");
        }
    });
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

    server.await??;
    reprocessor.stop().await;
    completer.stop().await;
    snapshotter.stop().await;
    let final_store = Arc::clone(&store);
    let info = tokio::task::spawn_blocking(move || final_store.snapshot(&engine))
        .await?
        .context("writing the final snapshot")?;
    tracing::info!(path = %info.path.display(), bytes = info.bytes, "final snapshot written");
    store.close();
    let _ = stop_metrics.send(());
    tracing::info!("stopped");
    Ok(())
}
