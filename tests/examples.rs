//! The client examples in `examples/` run against a real server and do
//! what they say: the Rust and Python clients, and the Rust and Python
//! change-feed connectors across a `kill -9` of the connector. `cargo test`
//! builds the Rust ones next to the test binaries.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/in_process.rs"]
mod in_process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use allocation::grpc::proto::*;
use binary::Binary;
use in_process::Client;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_allocates_reads_back_and_sees_the_event() {
    let server = in_process::start().await;
    let url = format!("http://{}", server.address);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(example("allocate"))
            .arg(url)
            .output()
            .expect("examples are built by `cargo test` (a run filtered to one test builds none: `cargo build --examples` first)")
    })
    .await
    .unwrap();
    let printed = succeeded(&output);
    // 5 mugs: fc-east has 3, so fc-west (10) ships the whole order.
    assert!(printed.contains(": Processing"), "{printed}");
    assert!(printed.contains("5 x mug from fc-west"), "{printed}");
    assert!(printed.contains("read back example-"), "{printed}");
    assert!(printed.contains("event: "), "{printed}");
}

/// A Python with `examples/python/requirements.txt` installed, named by
/// `ALLOCATION_PYTHON` (`.ci/run` always sets it, so CI always runs the
/// Python examples), and the stubs generated with the README's command into
/// a fresh directory: a change to the proto is tested at once, never
/// against stale stubs. None, said on stderr, when the variable is unset.
fn python_with_stubs(test: &str) -> Option<(std::ffi::OsString, RemoveOnDrop)> {
    let Some(python) = std::env::var_os("ALLOCATION_PYTHON") else {
        // Written to the real stderr, past the test harness's capture (which
        // only takes `eprintln!`), so a plain `cargo test`, which needs
        // nothing but Rust, shows what it left out although the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: ALLOCATION_PYTHON is not set (bash .ci/run sets it; see \
             CONTRIBUTING.md)"
        );
        return None;
    };
    let stubs = std::env::temp_dir().join(format!(
        "allocation-python-stubs-{test}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&stubs);
    std::fs::create_dir_all(&stubs).unwrap();
    let stubs = RemoveOnDrop(stubs);
    let generated = std::process::Command::new(&python)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-m", "grpc_tools.protoc", "-I", "proto"])
        .arg(format!("--python_out={}", stubs.0.display()))
        .arg(format!("--grpc_python_out={}", stubs.0.display()))
        .args([
            "proto/allocation/v1/allocation.proto",
            "proto/google/rpc/status.proto",
        ])
        .output()
        .unwrap_or_else(|error| panic!("run ALLOCATION_PYTHON={python:?}: {error}"));
    assert!(
        generated.status.success(),
        "generating the Python stubs failed:\n{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    Some((python, stubs))
}

fn python_example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/python")
        .join(name)
}

/// `examples/python/allocate.py` against a real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_allocates_reads_back_and_sees_the_event() {
    let Some((python, stubs)) = python_with_stubs("python_allocate") else {
        return;
    };
    let server = in_process::start().await;
    let address = server.address.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(python_example("allocate.py"))
            .args(["--address", &address])
            .env("ALLOCATION_PYTHON_STUBS", &stubs.0)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = succeeded(&output);
    // The script checks every answer itself; these make sure it got that far.
    assert!(printed.contains(": ORDER_STATUS_PROCESSING\n"), "{printed}");
    assert!(printed.contains(" from fc-west\n"), "{printed}");
    assert!(printed.contains("read back example-py-"), "{printed}");
    assert!(
        printed.contains("event: ORDER_EVENT_KIND_ALLOCATED example-py-"),
        "{printed}"
    );
    assert!(printed.ends_with("ok\n"), "{printed}");
}

const FEED_MERCHANT: &str = "shop";

/// Allocate, pick and ship `order` under `tracking`, then scan it.
async fn ship_and_scan(client: &mut Client, order: &str, tracking: &str, scan: TrackingStatus) {
    client
        .set_inventory(SetInventoryRequest {
            merchant_id: FEED_MERCHANT.into(),
            levels: vec![InventoryLevel {
                sku: format!("sku-{order}"),
                fc_id: "fc1".into(),
                on_hand: 1,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut request = in_process::order(FEED_MERCHANT, order, &[]);
    request.lines = vec![OrderLine {
        sku: format!("sku-{order}"),
        quantity: 1,
    }];
    in_process::allocate(client, request).await;
    client
        .mark_picked(MarkPickedRequest {
            merchant_id: FEED_MERCHANT.into(),
            order_id: order.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .ship_order(ShipOrderRequest {
            merchant_id: FEED_MERCHANT.into(),
            order_id: order.into(),
            fc_id: "fc1".into(),
            tracking_number: tracking.into(),
            carrier: "ups".into(),
            label_source: LabelSource::Service as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: tracking.into(),
            status: scan as i32,
            event_time: in_process::time(1_800_000_000 + scan as i64),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// The store's sequences per order, once it holds `wanted` updates in all
/// (waiting up to 30 s for the connector).
async fn synced(store: &Path, wanted: usize) -> std::collections::BTreeMap<String, Vec<u64>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let orders: serde_json::Map<String, serde_json::Value> = std::fs::read(store)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let sequences: std::collections::BTreeMap<String, Vec<u64>> = orders
            .iter()
            .map(|(order, entry)| {
                let updates = entry["updates"].as_array().cloned().unwrap_or_default();
                let sequences = updates.iter().filter_map(|u| u["sequence"].as_u64());
                (order.clone(), sequences.collect())
            })
            .collect();
        if sequences.values().map(Vec::len).sum::<usize>() >= wanted {
            return sequences;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the connector synced {sequences:?}, not {wanted} updates, within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connector (built by `command`) syncs shipments and scans to its
/// store, is killed with SIGKILL, misses changes, and after a restart has
/// every update exactly once, in order.
async fn a_connector_resumes_after_being_killed(
    name: &str,
    command: impl Fn(&str, &Path, &Path) -> std::process::Command,
) {
    let dir = std::env::temp_dir().join(format!(
        "allocation-connector-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = RemoveOnDrop(dir.clone());
    let (state, store) = (dir.join("state.txt"), dir.join("store.json"));
    let server = Binary::start(&dir.join("data"), &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();

    ship_and_scan(&mut client, "o1", "T1", TrackingStatus::PickedUp).await;
    let connector = Running(command(&server.address, &state, &store).spawn().unwrap());
    let first = synced(&store, 2).await;
    assert_eq!(first["o1"].len(), 2, "shipped, then picked up: {first:?}");
    drop(connector);

    // While it is down.
    ship_and_scan(&mut client, "o2", "T2", TrackingStatus::OutForDelivery).await;
    client
        .record_tracking_event(RecordTrackingEventRequest {
            tracking_number: "T1".into(),
            status: TrackingStatus::Delivered as i32,
            event_time: in_process::time(1_900_000_000),
            ..Default::default()
        })
        .await
        .unwrap();

    let connector = Running(command(&server.address, &state, &store).spawn().unwrap());
    let all = synced(&store, 5).await;
    let newest = *all.values().flatten().max().unwrap();
    // The connector records the sequence after the store has the update:
    // the state file must reach the newest one.
    saved_sequence(&state, newest).await;
    drop(connector);
    assert_eq!(all["o1"].len(), 3, "{all:?}");
    assert_eq!(all["o2"].len(), 2, "{all:?}");
    assert_eq!(&all["o1"][..2], &first["o1"][..], "kept what it had");
    let mut every: Vec<u64> = all.values().flatten().copied().collect();
    every.sort_unstable();
    every.dedup();
    assert_eq!(every.len(), 5, "no update twice: {all:?}");
    for sequences in all.values() {
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "{all:?}"
        );
    }
}

/// Waits up to 30 s for the connector's state file to reach `wanted`.
async fn saved_sequence(state: &Path, wanted: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let saved = std::fs::read_to_string(state)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if saved >= wanted {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the state file says {saved}, not {wanted}, after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_connector_resumes_after_being_killed() {
    a_connector_resumes_after_being_killed("rust", |address, state, store| {
        let mut command = std::process::Command::new(example("connector"));
        command
            .arg(format!("http://{address}"))
            .arg(FEED_MERCHANT)
            .args([state, store])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_connector_resumes_after_being_killed() {
    let Some((python, stubs)) = python_with_stubs("python_connector") else {
        return;
    };
    a_connector_resumes_after_being_killed("python", |address, state, store| {
        let mut command = std::process::Command::new(&python);
        command
            .arg(python_example("connector.py"))
            .args(["--address", address, "--merchant", FEED_MERCHANT])
            .arg("--state")
            .arg(state)
            .arg("--store")
            .arg(store)
            .env("ALLOCATION_PYTHON_STUBS", &stubs.0)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    })
    .await;
}

/// What an example printed, once it exited 0 (else its output, in the panic).
fn succeeded(output: &std::process::Output) -> String {
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// A connector process, killed with SIGKILL when dropped (a failed
/// test's included).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes a directory when dropped, a failed test's included.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
