//! Durability figures (a measurement program, not a criterion statistic:
//! the quantities are one-off times, a maximum latency and a ratio).
//! Run: `cargo bench --bench durability`. `DURABILITY_BENCH_SKUS` and
//! `DURABILITY_BENCH_ORDERS` scale it down (defaults 1,000,000 each).
//!
//! 1. Snapshot of N SKUs × 10 FCs and N orders: write time, size, load time.
//! 2. The longest engine-level Allocate (with journal append) while that
//!    snapshot is being written.
//! 3. Allocate + wait-until-durable throughput with 64 concurrent clients,
//!    fsync `always` against `off`: group commit at work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::{FcId, MerchantId, OrderLine, OrderRequest, Sku, Timestamp};
use allocation::storage::{snapshot, FsyncPolicy, Store, StoreConfig};

const FCS: usize = 10;

fn scale(name: &str) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn order(merchant: &MerchantId, id: &str, n: usize, skus: usize) -> OrderRequest {
    OrderRequest {
        partial_shipments: Some(true),
        ..OrderRequest::new(
            merchant.clone(),
            id.into(),
            Timestamp::from_seconds(n as i64),
            (0..3)
                .map(|i| OrderLine {
                    sku: Sku::new(&format!("sku-{}", (n * 7 + i * 101) % skus)),
                    quantity: 1,
                })
                .collect(),
        )
    }
}

/// Counts live heap bytes, so the memory held per cell and per order can be
/// read exactly (resident size would also count freed, reusable memory).
struct Counting;

static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> u64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn populate(engine: &Engine, skus: usize, orders: usize) {
    let merchant = MerchantId::new("m");
    let before = live_bytes();
    let fcs: Vec<FcId> = (0..FCS).map(|i| FcId::new(&format!("fc-{i}"))).collect();
    (0..skus)
        .collect::<Vec<_>>()
        .par_chunks(1_000)
        .for_each(|chunk| {
            let changes: Vec<InventoryChange> = chunk
                .iter()
                .flat_map(|&sku| {
                    let name = Sku::new(&format!("sku-{sku}"));
                    fcs.iter().map(move |fc| InventoryChange {
                        sku: name.clone(),
                        fc: *fc,
                        change: CountChange::Set(1_000),
                    })
                })
                .collect();
            engine
                .update_inventory(&merchant, &changes, Timestamp::default())
                .unwrap();
        });
    let stocked = live_bytes();
    if skus > 0 {
        println!(
            "memory: {:.0} heap bytes per (SKU, FC) cell",
            stocked.saturating_sub(before) as f64 / (skus * FCS) as f64
        );
    }
    (0..orders).into_par_iter().for_each(|n| {
        engine
            .allocate(
                order(&merchant, &format!("o{n}"), n, skus),
                Timestamp::default(),
            )
            .unwrap();
    });
    if orders > 0 {
        println!(
            "memory: {:.0} heap bytes per stored 3-line order",
            live_bytes().saturating_sub(stocked) as f64 / orders as f64
        );
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("allocation-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn snapshot_figures(skus: usize, orders: usize) {
    let dir = temp_dir("snapshot");
    let engine = Engine::new(EngineConfig::default());
    let started = Instant::now();
    populate(&engine, skus, orders);
    println!(
        "populated {skus} SKUs x {FCS} FCs and {orders} orders in {:.1?}",
        started.elapsed()
    );
    // Opened after populating, so the memory figures count the state alone,
    // not journal buffers; the snapshot copies the whole engine either way.
    let (store, _) = Store::open(
        &StoreConfig {
            dir: dir.clone(),
            fsync: FsyncPolicy::Always,
            fallback_to_previous_snapshot: false,
            journal_retention: std::time::Duration::ZERO,
        },
        &engine,
    )
    .unwrap();

    // An allocating thread measures its worst latency while the snapshot is written.
    let stop = AtomicBool::new(false);
    let worst = AtomicU64::new(0);
    let count = AtomicU64::new(0);
    let info = std::thread::scope(|scope| {
        scope.spawn(|| {
            let merchant = MerchantId::new("m");
            let mut n = orders;
            while !stop.load(Ordering::Relaxed) {
                let request = order(&merchant, &format!("during-{n}"), n, skus);
                let started = Instant::now();
                engine.allocate(request, Timestamp::default()).unwrap();
                let nanos = started.elapsed().as_nanos() as u64;
                worst.fetch_max(nanos, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        });
        let info = store.snapshot(&engine).unwrap();
        stop.store(true, Ordering::Relaxed);
        info
    });
    println!(
        "snapshot write: {:.2?}, {:.1} MiB ({})",
        info.duration,
        info.bytes as f64 / (1 << 20) as f64,
        info.path.display()
    );
    println!(
        "allocations during the snapshot: {}, longest {:.2?}",
        count.load(Ordering::Relaxed),
        Duration::from_nanos(worst.load(Ordering::Relaxed))
    );

    // Loaded as at start-up: by a process holding no other copy of the state.
    store.close();
    drop(engine);
    let fresh = Engine::new(EngineConfig::default());
    let started = Instant::now();
    let loaded = snapshot::read(&info.path, |effect| fresh.restore(effect)).unwrap();
    println!(
        "snapshot load: {:.2?} ({} entries)",
        started.elapsed(),
        loaded.entries
    );
    drop(fresh);
    let _ = std::fs::remove_dir_all(&dir);
}

fn throughput(policy: FsyncPolicy, clients: usize, duration: Duration) -> f64 {
    let dir = temp_dir("commit");
    let engine = Engine::new(EngineConfig::default());
    let (store, _) = Store::open(
        &StoreConfig {
            dir: dir.clone(),
            fsync: policy,
            fallback_to_previous_snapshot: false,
            journal_retention: std::time::Duration::ZERO,
        },
        &engine,
    )
    .unwrap();
    populate(&engine, 10_000, 0);
    let store = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (engine, store, done) = (engine.clone(), Arc::clone(&store), Arc::clone(&done));
            tasks.push(tokio::spawn(async move {
                let merchant = MerchantId::new("m");
                let mut n = 0;
                while Instant::now() < deadline {
                    let id = format!("c{client}-{n}");
                    engine
                        .allocate(
                            order(&merchant, &id, client * 1_000_000 + n, 10_000),
                            Timestamp::default(),
                        )
                        .unwrap();
                    let journal = store.journal();
                    journal.wait_durable(journal.appended_next()).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    store.close();
    let _ = std::fs::remove_dir_all(&dir);
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let skus = scale("DURABILITY_BENCH_SKUS");
    let orders = scale("DURABILITY_BENCH_ORDERS");
    snapshot_figures(skus, orders);
    let seconds = Duration::from_secs(3);
    let off = throughput(FsyncPolicy::Off, 64, seconds);
    let always = throughput(FsyncPolicy::Always, 64, seconds);
    println!("64 clients, allocate + wait durable: fsync off {off:.0}/s, always {always:.0}/s, ratio {:.2}", always / off);
}
