//! Criterion benchmarks of the core: reservation through the engine (and
//! with the candidate FCs assessed, as the full answer view asks, or with
//! every FC under a daily capacity), the policy alone, and contention on one
//! hot SKU.
//! Run: `cargo bench --bench allocation`.

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::limits::UNITS_MAX;
use allocation::model::{FcId, FulfillmentCenter, GeoPoint, OrderLine, OrderRequest, Timestamp};
use allocation::policy::{decide, Rules, StockMatrix};

const SKUS: usize = 10_000;
const FCS: usize = 4;

fn stocked_engine() -> Engine {
    let engine = Engine::new(EngineConfig::default());
    for chunk in (0..SKUS).collect::<Vec<_>>().chunks(1_000) {
        let changes: Vec<InventoryChange> = chunk
            .iter()
            .flat_map(|&sku| {
                (0..FCS).map(move |fc| InventoryChange {
                    sku: format!("sku-{sku}").as_str().into(),
                    fc: FcId::new(&format!("fc-{fc}")),
                    // As much as one cell may hold, so no order of the run ever waits.
                    change: CountChange::Set(UNITS_MAX),
                })
            })
            .collect();
        engine
            .update_inventory(&"m".into(), &changes, Timestamp::default())
            .unwrap();
    }
    engine
}

fn order(n: u64, lines: usize) -> OrderRequest {
    OrderRequest::new(
        "m".into(),
        format!("o{lines}-{n}").as_str().into(),
        Timestamp::from_seconds(n as i64),
        (0..lines)
            .map(|i| OrderLine {
                sku: format!("sku-{}", (n as usize * 7 + i * 13) % SKUS)
                    .as_str()
                    .into(),
                quantity: 1,
            })
            .collect(),
    )
}

fn engine_allocate(c: &mut Criterion) {
    let engine = stocked_engine();
    for (lines, assess) in [(1, false), (5, false), (5, true)] {
        let mut n = 0;
        let name = match assess {
            false => format!("engine_allocate_{lines}_line_order"),
            true => format!("engine_allocate_{lines}_line_order_assessed"),
        };
        c.bench_function(&name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    // Ids of their own: assessed orders are new orders too.
                    order(n + if assess { 1 << 40 } else { 0 }, lines)
                },
                |request| {
                    engine
                        .allocate_assessed(request, Timestamp::default(), assess)
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
}

/// Every FC with a daily capacity no run reaches: each decision counts and
/// takes slots under the slot lock, and works out its operations day.
fn engine_allocate_with_capacity(c: &mut Criterion) {
    let engine = stocked_engine();
    for fc in 0..FCS {
        engine.upsert_fulfillment_center(FulfillmentCenter {
            fc: FcId::new(&format!("fc-{fc}")),
            name: String::new(),
            location: None,
            daily_order_capacity: u32::MAX,
        });
    }
    let mut n = 0;
    c.bench_function("engine_allocate_5_line_order_daily_capacity", |b| {
        b.iter_batched(
            || {
                n += 1;
                order(n + (2 << 40), 5)
            },
            |request| engine.allocate(request, Timestamp::default()).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn policy_split(c: &mut Criterion) {
    // Five lines, ten FCs, no single FC fills the order: the fewest-FC search runs.
    let mut matrix = StockMatrix::new(vec![4; 5], 10);
    for line in 0..5 {
        for fc in 0..10 {
            matrix.set_available(line, fc, if (line + fc) % 3 == 0 { 3 } else { 1 });
        }
    }
    let rules = Rules::ordinary(true, false);
    c.bench_function("policy_split_5_lines_10_fcs", |b| {
        b.iter(|| decide(&matrix, rules))
    });
}

/// Closest routing over 50 located FCs (RULES §12): the destination's
/// place, the matrix (copied, as the engine builds one per order), then
/// the decision. The whole order fits at 20 of them
/// (the nearest of those wins), or nowhere, which makes it split.
fn policy_closest(c: &mut Criterion) {
    let fcs = 50;
    let place = |i: usize| {
        GeoPoint::new(25.0 + (i % 10) as f64 * 2.0, -120.0 + (i / 10) as f64 * 9.0)
            .unwrap()
            .unit_vector()
    };
    // Computed once per FC when it is upserted, as the engine does.
    let places: Vec<[f64; 3]> = (0..fcs).map(place).collect();
    let destination = GeoPoint::new(40.7, -74.0).unwrap();
    for (name, fill) in [("single", true), ("split", false)] {
        let mut matrix = StockMatrix::new(vec![2; 5], fcs);
        for line in 0..5 {
            for fc in 0..fcs {
                let units = match (fill, fc % 5 == line) {
                    (true, _) if fc % 5 < 2 => 4,
                    (_, true) => 4,
                    _ => 0,
                };
                matrix.set_available(line, fc, units);
            }
        }
        let rules = Rules::ordinary(true, false);
        c.bench_function(&format!("policy_closest_5_lines_50_fcs_{name}"), |b| {
            b.iter(|| {
                let mut matrix = matrix.clone();
                let to = destination.unit_vector();
                matrix.set_places(to, places.iter().map(|&place| Some(place)));
                decide(&matrix, rules)
            })
        });
    }
}

criterion_group!(
    benches,
    engine_allocate,
    engine_allocate_with_capacity,
    policy_split,
    policy_closest
);
criterion_main!(benches);
