//! The real server binary, started for a test: `--listen 127.0.0.1:0` and
//! `--metrics-listen 127.0.0.1:0`, addresses read from its log, and only
//! handed over once its health check says SERVING.
#![allow(dead_code)] // Each user needs a different part.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

pub struct Binary {
    pub child: Child,
    pub address: String,
    pub metrics_address: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Remove ANSI colour sequences from a log line.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn field(line: &str, name: &str) -> Option<String> {
    let at = line.find(&format!("{name}="))?;
    let rest = &line[at + name.len() + 1..];
    Some(rest.split_whitespace().next()?.to_string())
}

impl Binary {
    /// Start `serve` on `data_dir` with `extra` flags and wait until it serves.
    pub async fn start(data_dir: &Path, extra: &[&str]) -> Binary {
        Self::spawn(Self::command(
            Command::new(env!("CARGO_BIN_EXE_allocation-service")),
            data_dir,
            extra,
        ))
        .await
    }

    /// `serve` on `data_dir` with `extra` flags, run by `program` (the
    /// binary, or a shell that execs it with other limits).
    pub fn command(mut program: Command, data_dir: &Path, extra: &[&str]) -> Command {
        program
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        program
    }

    /// Start `command` (see `command`) and wait until it serves.
    pub async fn spawn(mut command: Command) -> Binary {
        let mut child = command.spawn().expect("start the server binary");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (address, metrics_address) = loop {
            let line = plain(&lines.next().expect("server exited before serving").unwrap());
            if let (Some(address), Some(metrics)) =
                (field(&line, "address"), field(&line, "metrics"))
            {
                break (address, metrics);
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let binary = Binary {
            child,
            address,
            metrics_address,
        };
        binary.wait_until_serving().await;
        binary
    }

    /// Send SIGTERM (drain, final snapshot, exit), as an orchestrator does.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|status| status.success()),
            "kill -TERM {pid}"
        );
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub async fn health(&self) -> Option<ServingStatus> {
        let channel = tonic::transport::Endpoint::from_shared(self.url())
            .ok()?
            .connect()
            .await
            .ok()?;
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest {
                service: "allocation.v1.AllocationService".into(),
            })
            .await
            .ok()?;
        Some(response.into_inner().status())
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.health().await == Some(ServingStatus::Serving) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server did not report SERVING within 60 s");
    }
}
