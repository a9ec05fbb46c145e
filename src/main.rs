//! The binary: parse flags, bind, run until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use allocation::background::Reprocessor;
use allocation::config::{Cli, Command, ServeConfig};
use allocation::engine::{Engine, EngineConfig};

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
    }
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let engine = Engine::new(EngineConfig {
        stripe_count: config.stripes,
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let reprocessor = Reprocessor::spawn(
        engine.clone(),
        Duration::from_secs(config.reprocess_interval_seconds),
    );
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");
    allocation::server::run(listener, engine, shutdown_signal()).await?;
    reprocessor.stop().await;
    tracing::info!("stopped");
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
