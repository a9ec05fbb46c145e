//! Connections under abuse, against the real binary: clients that connect
//! and never speak, more connections than the limit, and a process out of
//! file descriptors. A normal client keeps being served, and the server
//! does not spin.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/scrape.rs"]
mod scrape;
use binary::Binary;
use scrape::{sample, scrape};

use std::process::Command;
use std::time::{Duration, Instant};

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("allocation-conn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A real request on a fresh connection, within `patience`.
async fn served(url: &str, patience: Duration) -> bool {
    let attempt = async {
        let mut client = AllocationServiceClient::connect(url.to_string())
            .await
            .ok()?;
        client
            .get_inventory(GetInventoryRequest {
                merchant_id: "m".into(),
                sku: "nothing".into(),
            })
            .await
            .err()
            .map(|status| status.code() == tonic::Code::NotFound)
    };
    tokio::time::timeout(patience, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ
}

/// Whether the server closes `stream` within 5 s (what it sends before,
/// such as its HTTP/2 settings, is read and dropped).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let until_closed = async {
        let mut buffer = [0u8; 256];
        while let Ok(1..) = stream.read(&mut buffer).await {}
    };
    tokio::time::timeout(Duration::from_secs(5), until_closed)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_timed_out_and_excess_ones_refused() {
    let dir = data_dir("idle");
    let server = Binary::start(
        &dir,
        &["--max-connections", "8", "--handshake-timeout-seconds", "1"],
    )
    .await;
    // A working client holds one slot; twenty clients that connect and
    // say nothing take the other seven, the rest are closed at once.
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    let request = || GetInventoryRequest {
        merchant_id: "m".into(),
        sku: "nothing".into(),
    };
    assert_eq!(
        client.get_inventory(request()).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&server.address).await.unwrap());
    }
    // The working client keeps working meanwhile.
    for _ in 0..10 {
        assert_eq!(
            client.get_inventory(request()).await.unwrap_err().code(),
            tonic::Code::NotFound
        );
    }
    let started = Instant::now();
    let mut closed = 0;
    for stream in &mut silent {
        if closed_by_server(stream).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 20, "every silent connection was closed");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The slots are free again: a normal client is served.
    assert!(served(&server.url(), Duration::from_secs(5)).await);
    // Each silent connection was either refused or timed out. How many of
    // each depends on how many slots the start-up health checks still held.
    let metrics = scrape(&server.metrics_address).await;
    let refused = sample(&metrics, "allocation_connections_refused_total", &[]);
    let timed_out = sample(&metrics, "allocation_connections_timed_out_total", &[]);
    assert_eq!(refused + timed_out, 20.0, "{metrics}");
    assert!(refused >= 12.0 && timed_out >= 1.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    let dir = data_dir("fds");
    let mut shell = Command::new("sh");
    shell.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_allocation-service"),
    ]);
    // A long handshake timeout: the connections below hold their
    // descriptors until the test closes them.
    let server = Binary::spawn(Binary::command(
        shell,
        &dir,
        &["--handshake-timeout-seconds", "600"],
    ))
    .await;
    let pid = server.child.id();
    let mut hogs = Vec::new();
    for _ in 0..100 {
        match TcpStream::connect(&server.address).await {
            Ok(stream) => hogs.push(stream),
            Err(_) => break,
        }
    }
    // The server's descriptors are gone; a scrape runs into that too.
    let _scrape = TcpStream::connect(&server.metrics_address).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.5,
        "the server used {used} CPU-s in 2 s while out of descriptors"
    );
    assert!(
        !served(&server.url(), Duration::from_millis(500)).await,
        "the descriptors ran out"
    );
    drop(hogs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served(&server.url(), Duration::from_secs(2)).await {
        assert!(
            Instant::now() < deadline,
            "not served again after the descriptors came back"
        );
    }
    let metrics = scrape(&server.metrics_address).await;
    assert!(
        sample(&metrics, "allocation_accept_errors_total", &[]) > 0.0,
        "{metrics}"
    );
}
