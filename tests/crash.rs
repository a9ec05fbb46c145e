//! Crash test: the real binary, concurrent clients sending every kind of
//! change (allocations single and batched, holds, releases, cancels,
//! picks, shipments, carrier scans, receipts, losses, absolute counts,
//! reprocessing, snapshots), `kill -9` at seeded random moments, many
//! rounds on one data directory.
//!
//! After every kill, `inspect` recovers the directory offline and checks
//! the invariants; the restarted server must then hold every change
//! acknowledged in that round and before, in its acknowledged state or a
//! legal later one, with no SKU at any FC over-reserved and units
//! conserved. A change sent and never answered may or may not be there.
//!
//! `CRASH_ROUNDS` (default 30, about 35 s) sets the rounds, `CRASH_SEED` the seed; both
//! are printed (`cargo test --test crash -- --nocapture`).

#[path = "support/binary.rs"]
mod binary;
#[path = "crash/load.rs"]
mod load;
#[path = "crash/orders.rs"]
mod orders;
#[path = "support/rng.rs"]
mod rng;
#[path = "crash/told.rs"]
mod told;
#[path = "crash/verify.rs"]
mod verify;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic::transport::Channel;

use binary::Binary;
use load::{Client, FCS};
use rng::Rng;
use told::{Bounds, Cell, Op, Told};
use verify::Totals;

const SKUS: usize = 8;
const CLIENTS: usize = 4;
const INITIAL: u64 = 4;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
        Err(_) => default,
    }
}

async fn connect(server: &Binary) -> AllocationServiceClient<Channel> {
    AllocationServiceClient::connect(server.url())
        .await
        .expect("connect")
}

fn cells() -> Vec<Cell> {
    (0..SKUS)
        .flat_map(|s| (0..FCS).map(move |f| (format!("s{s}"), format!("fc{f}"))))
        .collect()
}

/// Recover the data directory offline, as `inspect` does: it refuses a
/// directory whose recovered state breaks an invariant.
fn inspect(dir: &Path, round: usize) -> Totals {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_allocation-service"))
        .args(["inspect", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run inspect");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("invariants: ok"),
        "round {round}: inspect refused the data directory: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|line| line.starts_with("merchants:"))
        .unwrap_or_else(|| panic!("no totals in {stdout}"));
    let value = |name: &str| -> u64 {
        line.split("  ")
            .find_map(|part| part.strip_prefix(name)?.strip_prefix(": "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    Totals {
        orders: value("orders"),
        on_hand: value("on hand"),
        reserved: value("reserved"),
    }
}

/// Give each client a share of the known orders and of the stock cells, so
/// that each order and each cell has one client changing it.
fn shares<T: Clone>(items: &[T], rng: &mut Rng) -> Vec<Vec<T>> {
    let mut shares = vec![Vec::new(); CLIENTS];
    for item in items {
        shares[rng.below(CLIENTS)].push(item.clone());
    }
    shares
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_acknowledged() {
    let seed = env_number("CRASH_SEED", 0xC0FFEE);
    let rounds = env_number("CRASH_ROUNDS", 30) as usize;
    println!("crash test: seed {seed}, {rounds} rounds (rerun with CRASH_SEED={seed} CRASH_ROUNDS={rounds})");
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("allocation-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rng = Rng(seed);
    let skus: Vec<String> = (0..SKUS).map(|s| format!("s{s}")).collect();
    let told = Arc::new(Mutex::new(Told::default()));
    let flags = ["--snapshot-interval-seconds", "3600"];

    let mut server = Binary::start(&dir, &flags).await;
    let levels = cells()
        .into_iter()
        .map(|(sku, fc_id)| InventoryLevel {
            sku,
            fc_id,
            on_hand: INITIAL,
        })
        .collect();
    connect(&server)
        .await
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels,
            ..Default::default()
        })
        .await
        .expect("initial stock");
    told.lock().unwrap().cells = cells()
        .into_iter()
        .map(|cell| (cell, Bounds::exactly(INITIAL as i64)))
        .collect();

    for round in 0..rounds {
        let round_started = Instant::now();
        let (orders, stock) = {
            let mut told = told.lock().unwrap();
            told.round.clear();
            told.killed = false;
            let mut ids: Vec<String> = told.orders.keys().cloned().collect();
            ids.sort();
            (shares(&ids, &mut rng), shares(&cells(), &mut rng))
        };
        let mut tasks = Vec::new();
        for (index, (mine, mut my_cells)) in orders.into_iter().zip(stock).enumerate() {
            if my_cells.is_empty() {
                my_cells.push(cells()[index].clone());
            }
            let client = Client::new(
                connect(&server).await,
                rng.next_u64(),
                format!("r{round}c{index}"),
                mine,
                my_cells,
                SKUS,
                Arc::clone(&told),
            );
            tasks.push(tokio::spawn(client.run()));
        }
        let load_ms = 300 + rng.below(1200) as u64;
        if rng.below(2) == 0 {
            // A snapshot while the load runs, then the crash.
            let at = rng.below(load_ms as usize) as u64;
            tokio::time::sleep(Duration::from_millis(at)).await;
            let info = connect(&server)
                .await
                .snapshot(SnapshotRequest {})
                .await
                .expect("snapshot")
                .into_inner();
            assert!(info.bytes > 0);
            tokio::time::sleep(Duration::from_millis(load_ms - at)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
        }
        told.lock().unwrap().killed = true;
        server.child.kill().expect("kill -9");
        server.child.wait().unwrap();
        for task in tasks {
            task.await.expect("a client found a defect");
        }

        let (acked, changes) = {
            let mut told = told.lock().unwrap();
            told.resolve_pending_counts();
            let acked: u64 = told.round.values().sum();
            let reads_only = [Op::Retry, Op::Snapshot, Op::Reprocess];
            let changes: u64 = told
                .round
                .iter()
                .filter(|(op, _)| !reads_only.contains(op))
                .map(|(_, n)| n)
                .sum();
            (acked, changes)
        };
        assert!(
            changes > 0,
            "round {round}: no change was acknowledged, so the round checked nothing"
        );

        let offline = inspect(&dir, round);
        server = Binary::start(&dir, &flags).await;
        let online = {
            // No client runs now: take what they were told out for the check.
            let mut checked = std::mem::take(&mut *told.lock().unwrap());
            let mut client = connect(&server).await;
            let totals = verify::verify(&mut client, &mut checked, &skus, round).await;
            *told.lock().unwrap() = checked;
            totals
        };
        assert_eq!(
            online, offline,
            "round {round}: the server and inspect recovered different states"
        );
        println!(
            "round {round}: killed after {load_ms} ms, {acked} requests acknowledged ({changes} changes), {} orders, {:.1} s",
            online.orders,
            round_started.elapsed().as_secs_f64()
        );
    }
    drop(server);

    let told = told.lock().unwrap();
    println!("acknowledged over the run: {:?}", told.total);
    let missing: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| !told.total.contains_key(op))
        .collect();
    assert!(
        missing.is_empty(),
        "never acknowledged in {rounds} rounds: {missing:?} (the mix does not cover them)"
    );
    println!(
        "crash test: seed {seed}, {rounds} rounds in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
