//! One reprocessing pass over 1,000,000 exception orders (1–5 lines,
//! 100,000 SKUs, 10 FCs, Zipf popularity, stock for about half the demand),
//! on a 1-thread and a 2-thread rayon pool; a pass over 1,000,000 orders of
//! which one in a hundred waits; and `SimulateSettings` over a queue of
//! 100,000 such orders.
//! Run: `cargo bench --bench reprocess` (each pass sample rebuilds the
//! engine, untimed; only the pass is timed; a simulation changes nothing,
//! so one engine serves every sample). `REPROCESS_BENCH_ORDERS` and
//! `SIMULATE_BENCH_ORDERS` shrink them.

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/rng.rs"]
mod rng;
#[path = "../loadtest/src/zipf.rs"]
mod zipf;
use rng::Rng;
use zipf::Zipf;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rayon::prelude::*;

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::{FcId, Merchant, MerchantId, OrderLine, OrderRequest, Sku, Timestamp};

const SKUS: usize = 100_000;
const FCS: usize = 10;
const ZIPF_EXPONENT: f64 = 1.0;

fn orders_count() -> usize {
    count_from("REPROCESS_BENCH_ORDERS", 1_000_000)
}

fn count_from(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// `orders` imported against empty shelves (all in exception), then stock
/// for about half of the demand spread over the FCs.
fn build(orders: usize) -> Engine {
    let engine = Engine::new(EngineConfig::default());
    let merchant = MerchantId::new("m");
    let mut settings = Merchant::with_defaults(merchant.clone());
    settings.partial_shipments = true;
    engine.upsert_merchant(settings);
    let skus: Vec<Sku> = (0..SKUS).map(|i| Sku::new(&format!("sku-{i}"))).collect();
    let fcs: Vec<FcId> = (0..FCS).map(|i| FcId::new(&format!("fc-{i}"))).collect();
    // Make every SKU known, with nothing on hand.
    for chunk in skus.chunks(10_000) {
        let changes: Vec<InventoryChange> = chunk
            .iter()
            .map(|sku| InventoryChange {
                sku: sku.clone(),
                fc: fcs[0],
                change: CountChange::Set(0),
            })
            .collect();
        engine
            .update_inventory(&merchant, &changes, Timestamp::default())
            .unwrap();
    }

    let zipf = Zipf::new(SKUS, ZIPF_EXPONENT);
    let mut rng = Rng(7);
    let mut demand = vec![0u64; SKUS];
    let requests: Vec<OrderRequest> = (0..orders)
        .map(|n| {
            let line_count = 1 + (rng.next_u64() % 5) as usize;
            let mut lines: Vec<OrderLine> = Vec::with_capacity(line_count);
            while lines.len() < line_count {
                let sku = zipf.sample(rng.unit());
                if lines.iter().all(|line| line.sku != skus[sku]) {
                    let quantity = 1 + (rng.next_u64() % 3) as u32;
                    demand[sku] += u64::from(quantity);
                    lines.push(OrderLine {
                        sku: skus[sku].clone(),
                        quantity,
                    });
                }
            }
            OrderRequest::new(
                merchant.clone(),
                format!("o{n}").as_str().into(),
                Timestamp::from_seconds((rng.next_u64() % 86_400) as i64),
                lines,
            )
        })
        .collect();
    requests.into_par_iter().for_each(|request| {
        engine.allocate(request, Timestamp::default()).unwrap();
    });

    let mut changes = Vec::new();
    for (sku, &wanted) in demand.iter().enumerate() {
        let mut left = wanted / 2;
        while left > 0 {
            let units = left.min(1 + rng.next_u64() % 8);
            changes.push((sku, (rng.next_u64() % FCS as u64) as usize, units));
            left -= units;
        }
    }
    let mut cells = std::collections::HashMap::new();
    for (sku, fc, units) in changes {
        *cells.entry((sku, fc)).or_insert(0u64) += units;
    }
    let changes: Vec<InventoryChange> = cells
        .into_iter()
        .map(|((sku, fc), units)| InventoryChange {
            sku: skus[sku].clone(),
            fc: fcs[fc],
            change: CountChange::Set(units),
        })
        .collect();
    for chunk in changes.chunks(10_000) {
        engine
            .update_inventory(&merchant, chunk, Timestamp::default())
            .unwrap();
    }
    engine
}

fn reprocess_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("reprocess_pass");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(1));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        group.bench_function(
            format!("{}_orders_{threads}_threads", orders_count()),
            |b| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let engine = build(orders_count());
                        let started = Instant::now();
                        let counts = pool.install(|| engine.reprocess(None, Timestamp::default()));
                        total += started.elapsed();
                        assert_eq!(counts.examined as usize, orders_count());
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

/// A pass over a book where few orders wait: `orders_count()` orders, one
/// in a hundred waiting for a SKU with nothing on hand, the rest allocated.
/// The pass starts from the waiting-order index, so its cost follows the
/// waiting orders, not the book. Nothing changes, so one engine serves
/// every sample.
fn reprocess_pass_few_waiting(c: &mut Criterion) {
    let orders = orders_count();
    let engine = Engine::new(EngineConfig::default());
    let merchant = MerchantId::new("m");
    let changes: Vec<InventoryChange> = ["plenty", "none"]
        .into_iter()
        .map(|sku| InventoryChange {
            sku: Sku::new(sku),
            fc: FcId::new("fc-0"),
            change: CountChange::Set(if sku == "plenty" { 4_000_000_000 } else { 0 }),
        })
        .collect();
    engine
        .update_inventory(&merchant, &changes, Timestamp::default())
        .unwrap();
    (0..orders).into_par_iter().for_each(|n| {
        let sku = if n % 100 == 0 { "none" } else { "plenty" };
        let request = OrderRequest::new(
            merchant.clone(),
            format!("o{n}").as_str().into(),
            Timestamp::from_seconds(n as i64),
            vec![OrderLine {
                sku: Sku::new(sku),
                quantity: 1,
            }],
        );
        engine.allocate(request, Timestamp::default()).unwrap();
    });
    let waiting = orders.div_ceil(100);
    let mut group = c.benchmark_group("reprocess_pass");
    group.sample_size(10);
    group.bench_function(format!("{orders}_orders_{waiting}_waiting"), |b| {
        b.iter(|| {
            let counts = engine.reprocess(None, Timestamp::default());
            assert_eq!(counts.examined as usize, waiting);
            counts
        })
    });
    group.finish();
}

/// What turning partial shipments off would do to the whole waiting queue:
/// the operator's question before changing the setting (RULES §11).
fn simulate_settings(c: &mut Criterion) {
    let orders = count_from("SIMULATE_BENCH_ORDERS", 100_000);
    let engine = build(orders);
    let mut proposed = Merchant::with_defaults(MerchantId::new("m"));
    proposed.partial_shipments = false;
    let mut group = c.benchmark_group("simulate_settings");
    group.sample_size(10);
    group.bench_function(format!("{orders}_waiting_orders"), |b| {
        b.iter(|| {
            let simulation = engine.simulate_settings(&proposed, 100, Timestamp::default());
            assert_eq!(simulation.counts.examined as usize, orders);
            simulation
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    reprocess_pass,
    reprocess_pass_few_waiting,
    simulate_settings
);
criterion_main!(benches);
