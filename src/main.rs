//! The binary: parse flags, bind, recover (health NOT_SERVING meanwhile),
//! serve until SIGINT or SIGTERM, drain, write a final snapshot.

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use allocation::background::Periodic;
use allocation::config::{
    Cli, Command, Fsync, HealthConfig, InspectConfig, LogFormat, ServeConfig,
};
use allocation::engine::{Engine, EngineConfig};
use allocation::model::Timestamp;
use allocation::server::{ConnectionLimits, Lifecycle, ServerOptions};
use allocation::storage::{store, FsyncPolicy, Store, StoreConfig};
use allocation::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(config) => config.log_format,
        _ => LogFormat::Human,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match format {
        // Colours only for a person at a terminal, not for a file or a pipe.
        LogFormat::Human => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stdout().is_terminal())
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let result = match cli.command {
        Command::Serve(config) => serve(config).await,
        Command::Inspect(config) => inspect(config),
        Command::Health(config) => health(config).await,
    };
    if let (Err(error), LogFormat::Json) = (&result, format) {
        // A collector reads one JSON object per line: the fatal error too.
        tracing::error!(error = format!("{error:#}"), "stopped by a fatal error");
        std::process::exit(1);
    }
    result
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let engine = Engine::new(EngineConfig {
        stripe_count: config.stripes,
        stalled_after_business_days: config.stalled_after_business_days,
    });
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
    let options = ServerOptions {
        concurrency_limit: config.concurrency_limit,
        streams_per_connection: config.streams_per_connection,
        message_bytes_max: config.message_bytes_max,
        drain_timeout: Duration::from_secs(config.drain_timeout_seconds),
        connections: ConnectionLimits {
            max_open: config.max_connections as usize,
            handshake_timeout: Duration::from_secs(config.handshake_timeout_seconds),
            keepalive: Duration::from_secs(config.keepalive_seconds),
        },
        // Bounded by the argument parser.
        watch_buffer: config.watch_buffer as usize,
    };
    let address = listener.local_addr()?;
    tracing::info!(%address, metrics = %metrics_address, data_dir = %config.data_dir.display(), "listening; recovering the data directory");
    let server = tokio::spawn(allocation::server::run(
        listener,
        engine.clone(),
        Arc::clone(&lifecycle),
        health,
        options,
        shutdown_signal(),
    ));

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
            let counts = pass_engine.reprocess(None);
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

fn inspect(config: InspectConfig) -> anyhow::Result<()> {
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

/// Exit 0 if the server's allocation service is SERVING, 1 otherwise.
async fn health(config: HealthConfig) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let check = async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", config.address))?
                .connect()
                .await?;
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest {
                service: "allocation.v1.AllocationService".into(),
            })
            .await?;
        anyhow::Ok(response.into_inner().status())
    };
    match tokio::time::timeout(Duration::from_secs(config.timeout_seconds), check).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            Ok(())
        }
        Ok(Ok(status)) => {
            println!("{}", status.as_str_name());
            std::process::exit(1)
        }
        Ok(Err(error)) => {
            println!("cannot reach {}: {error:#}", config.address);
            std::process::exit(1)
        }
        Err(_) => {
            println!(
                "no answer from {} within {} s",
                config.address, config.timeout_seconds
            );
            std::process::exit(1)
        }
    }
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
