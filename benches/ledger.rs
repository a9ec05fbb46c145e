//! Criterion benchmarks of the reservation primitive itself: the striped
//! ledger without order records, ids or the policy around it (those are in
//! `benches/allocation.rs`), and of the on-disk encoding of one order.
//! Run: `cargo bench --bench ledger`.

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use allocation::engine::EffectRef;
use allocation::ledger::{FcStock, Ledger, SafetyStock, SkuInfo, SkuRecord};
use allocation::model::{
    Allocation, FcId, MerchantId, Order, OrderLine, OrderRequest, OrderStatus, Sku, SkuKey,
    Timestamp,
};
use allocation::storage::codec::{Reader, Writer};

const SKUS: usize = 100_000;
const FCS: usize = 4;

fn key(sku: usize) -> SkuKey {
    SkuKey::new(&MerchantId::new("m"), &Sku::new(&format!("sku-{sku}")))
}

fn fcs() -> Vec<FcId> {
    (0..FCS).map(|fc| FcId::new(&format!("fc-{fc}"))).collect()
}

/// A ledger of `SKUS` SKUs × `FCS` FCs with stock that never runs out.
fn ledger(keys: &[SkuKey]) -> Ledger {
    let ledger = Ledger::new(1024);
    for key in keys {
        let record = SkuRecord {
            info: SkuInfo::default(),
            fcs: fcs()
                .into_iter()
                .map(|fc| FcStock {
                    on_hand: u32::MAX,
                    ..FcStock::new(fc)
                })
                .collect(),
            safety: SafetyStock::default(),
        };
        ledger.restore(key.clone(), record);
    }
    ledger
}

/// Reserve one unit of each of `keys` at `fc`, atomically: lock, check every
/// line, reserve every line.
fn reserve_order(ledger: &Ledger, keys: &[SkuKey], fc: &FcId) -> bool {
    let mut locked = ledger.lock(keys);
    if !keys
        .iter()
        .all(|key| locked.get(key).is_some_and(|r| r.available_at(fc) >= 1))
    {
        return false;
    }
    for key in keys {
        if let Some(record) = locked.get_mut(key) {
            record.reserve(fc, 1);
        }
    }
    true
}

/// Spread over the SKUs by a multiplicative step, so consecutive orders
/// touch unrelated SKUs.
fn pick(keys: &[SkuKey], n: usize, lines: usize) -> Vec<SkuKey> {
    (0..lines)
        .map(|i| keys[(n * 7_919 + i * 104_729) % keys.len()].clone())
        .collect()
}

fn reservation(c: &mut Criterion) {
    let keys: Vec<SkuKey> = (0..SKUS).map(key).collect();
    let ledger = ledger(&keys);
    let fc = fcs().remove(0);
    for lines in [1, 5] {
        // Orders prepared up front: the measurement is the ledger, not id building.
        let orders: Vec<Vec<SkuKey>> = (0..4_096).map(|n| pick(&keys, n, lines)).collect();
        let mut n = 0;
        c.bench_function(&format!("ledger_reserve_{lines}_line_order"), |b| {
            b.iter(|| {
                n = (n + 1) % orders.len();
                reserve_order(&ledger, &orders[n], &fc)
            })
        });
    }
    let hot = vec![keys[0].clone()];
    c.bench_function("ledger_reserve_hot_sku", |b| {
        b.iter(|| reserve_order(&ledger, &hot, &fc))
    });
}

/// `iters` single-line reservations split over `threads` threads; the
/// wall-clock time of the whole, so 2 threads at perfect scaling take half.
fn parallel(
    ledger: &Ledger,
    orders: &[Vec<SkuKey>],
    fc: &FcId,
    threads: usize,
    iters: u64,
) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..threads {
            scope.spawn(move || {
                let share = iters / threads as u64;
                for n in 0..share as usize {
                    let order = &orders[(n * threads + thread) % orders.len()];
                    reserve_order(ledger, order, fc);
                }
            });
        }
    });
    started.elapsed()
}

fn scaling(c: &mut Criterion) {
    let keys: Vec<SkuKey> = (0..SKUS).map(key).collect();
    let ledger = ledger(&keys);
    let fc = fcs().remove(0);
    let uniform: Vec<Vec<SkuKey>> = (0..65_536).map(|n| pick(&keys, n, 1)).collect();
    let hot = vec![vec![keys[0].clone()]];
    let mut group = c.benchmark_group("ledger_threads");
    for threads in [1, 2] {
        group.bench_function(format!("uniform_{threads}"), |b| {
            b.iter_custom(|iters| parallel(&ledger, &uniform, &fc, threads, iters))
        });
        group.bench_function(format!("hot_sku_{threads}"), |b| {
            b.iter_custom(|iters| parallel(&ledger, &hot, &fc, threads, iters))
        });
    }
    group.finish();
}

fn three_line_order() -> Order {
    let lines: Vec<OrderLine> = (0..3)
        .map(|i| OrderLine {
            sku: Sku::new(&format!("sku-{i}")),
            quantity: 2,
        })
        .collect();
    let allocations = lines
        .iter()
        .map(|line| Allocation {
            fc: FcId::new("fc-1"),
            sku: line.sku.clone(),
            quantity: line.quantity,
        })
        .collect();
    let request = OrderRequest::new(
        MerchantId::new("merchant-1"),
        "order-123456".into(),
        Timestamp::from_seconds(1_700_000_000),
        lines,
    );
    let mut order = Order::imported(request, Timestamp::from_seconds(1_700_000_000));
    order.status = OrderStatus::Processing;
    order.allocations = allocations;
    order.version = 1;
    order
}

fn encoding(c: &mut Criterion) {
    let order = three_line_order();
    let mut writer = Writer::default();
    c.bench_function("codec_encode_3_line_order", |b| {
        b.iter(|| {
            writer.bytes.clear();
            writer.effect(EffectRef::Order(&order));
            writer.bytes.len()
        })
    });
    let mut encoded = Writer::default();
    encoded.effect(EffectRef::Order(&order));
    c.bench_function("codec_decode_3_line_order", |b| {
        b.iter(|| Reader::new(&encoded.bytes, 0).effect().is_ok())
    });
}

criterion_group!(benches, reservation, scaling, encoding);
criterion_main!(benches);
