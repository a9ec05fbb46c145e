//! The data directory under the real binary: a second process on the same
//! directory is turned away, and a full disk stops acknowledging without
//! bricking the directory: once space is freed, a restart serves again
//! with every acknowledged order.

#[path = "support/binary.rs"]
mod binary;
use binary::Binary;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic_health::pb::health_check_response::ServingStatus;

fn data_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("allocation-data-dir-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Run `serve` on `dir` expecting it to exit by itself: its exit success
/// and everything it printed.
fn serve_until_exit(dir: &Path) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allocation-service"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-metrics",
            "--data-dir",
        ])
        .arg(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_directory_exits_naming_the_first() {
    let dir = data_dir("two");
    let first = Binary::start(&dir, &[]).await;
    let (success, printed) = serve_until_exit(&dir);
    assert!(!success, "the second server must not run: {printed}");
    assert!(
        printed.contains("in use by another process")
            && printed.contains(&format!("pid {}", first.child.id())),
        "{printed}"
    );
    // It said it was listening, never that it was serving.
    assert!(
        printed.contains("recovering") && !printed.contains(" serving"),
        "{printed}"
    );
    // The first one still serves.
    let mut client = AllocationServiceClient::connect(first.url()).await.unwrap();
    let request = AllocateRequest {
        order: Some(order(1)),
        ..Default::default()
    };
    client
        .allocate(request)
        .await
        .expect("the first server still acknowledges");
}

/// A tmpfs of a few hundred kilobytes mounted for one test.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// None when this process may not mount (not root): the test says so.
    fn mount(name: &str, kib: usize) -> Option<Self> {
        let path = data_dir(name);
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Self { path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn order(id: usize) -> Order {
    Order {
        merchant_id: "m".into(),
        order_id: format!("o{id}"),
        purchase_time: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 + id as i64,
            nanos: 0,
        }),
        lines: vec![OrderLine {
            sku: format!("sku-{}", id % 20),
            quantity: 1,
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acknowledgements_and_a_restart_after_freeing_space_serves_them_all() {
    let Some(disk) = SmallDisk::mount("full", 512) else {
        println!("skipped: mounting a small tmpfs needs root, and this test runs without it");
        return;
    };
    let dir = disk.path.join("data");
    // Leave the server a few dozen kilobytes: fill the rest with a file.
    let filler = disk.path.join("filler");
    std::fs::write(&filler, vec![0u8; 400 << 10]).unwrap();

    let server = Binary::start(&dir, &["--fsync", "always"]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for id in 0..100_000 {
        let request = AllocateRequest {
            order: Some(order(id)),
            ..Default::default()
        };
        match client.allocate(request).await {
            Ok(_) => acknowledged.push(id),
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("the disk filled up");
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(
        acknowledged.len() > 10,
        "some orders fit before the disk filled"
    );
    // It no longer acknowledges anything: out of rotation.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.health().await != Some(ServingStatus::NotServing) {
        assert!(
            Instant::now() < deadline,
            "health still says {:?}",
            server.health().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // So does the whole server, for probes that name no service.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let whole = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.status(), ServingStatus::NotServing);
    drop(server); // kill -9

    // Still full: start-up fails, and must not leave the directory bricked.
    let (success, printed) = serve_until_exit(&dir);
    assert!(!success, "started on a full disk: {printed}");
    let listing: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().unwrap().len(),
            )
        })
        .collect();
    println!("after the failed start: {listing:?}");

    std::fs::remove_file(&filler).unwrap();
    let server = Binary::start(&dir, &[]).await;
    let mut client = AllocationServiceClient::connect(server.url())
        .await
        .unwrap();
    for id in &acknowledged {
        client
            .get_order(GetOrderRequest {
                merchant_id: "m".into(),
                order_id: format!("o{id}"),
                as_of: None,
            })
            .await
            .unwrap_or_else(|status| panic!("acknowledged order o{id} lost: {status}"));
    }
    drop(server);
    drop(disk);
}
