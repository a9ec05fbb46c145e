//! Criterion benchmarks of the core: reservation through the engine (and
//! with the candidate FCs assessed, as the full answer view asks), the
//! policy alone, and contention on one hot SKU.
//! Run: `cargo bench --bench allocation`.

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::limits::UNITS_MAX;
use allocation::model::{FcId, OrderLine, OrderRequest, Timestamp};
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
        engine.update_inventory(&"m".into(), &changes).unwrap();
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

criterion_group!(benches, engine_allocate, policy_split);
criterion_main!(benches);
