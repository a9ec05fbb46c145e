//! The parallel reprocessing pass must equal one sequential pass over the
//! waiting orders, oldest purchase time first (ties: order id), whatever the
//! number of rayon threads. Seeded random workloads; a failure names its seed.

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange, PassCounts};
use allocation::model::{
    FcId, Merchant, MerchantId, Order, OrderKey, OrderLine, OrderRequest, OrderStatus, Sku,
    Timestamp,
};

const MERCHANTS: [&str; 3] = ["m0", "m1", "m2"];
const SKUS: usize = 150;
const FCS: usize = 4;
const ORDERS: usize = 3_000;

fn sku(i: usize) -> Sku {
    Sku::new(&format!("sku-{i}"))
}

fn fc(i: usize) -> FcId {
    FcId::new(&format!("fc-{i}"))
}

/// The same engine state for the same seed: imports against scarce stock,
/// holds, picks, then a replenishment that leaves many orders waiting.
fn build(seed: u64) -> Engine {
    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let mut rng = Rng(seed);
    for (i, merchant) in MERCHANTS.iter().enumerate() {
        let mut settings = Merchant::with_defaults(MerchantId::new(merchant));
        settings.partial_shipments = i != 0;
        if i == 2 {
            settings.fc_priority = vec![fc(3), fc(1)];
        }
        engine.upsert_merchant(settings);
        let changes: Vec<InventoryChange> = (0..SKUS)
            .flat_map(|s| (0..FCS).map(move |f| (s, f)))
            .map(|(s, f)| InventoryChange {
                sku: sku(s),
                fc: fc(f),
                change: CountChange::Set(rng.below(3) as u64),
            })
            .collect();
        engine
            .update_inventory(&MerchantId::new(merchant), &changes, Timestamp::default())
            .unwrap();
    }
    for n in 0..ORDERS {
        let merchant = MERCHANTS[rng.below(MERCHANTS.len())];
        let line_count = 1 + rng.below(5);
        let mut skus: Vec<usize> = (0..line_count).map(|_| rng.skewed(SKUS)).collect();
        skus.sort_unstable();
        skus.dedup();
        let lines = skus
            .into_iter()
            .map(|s| OrderLine {
                sku: sku(s),
                quantity: 1 + rng.below(3) as u32,
            })
            .collect();
        // Few distinct times, so ties by order id matter.
        let purchase_time = Timestamp::from_seconds(rng.below(500) as i64);
        let request = OrderRequest {
            assigned_fc: (rng.below(10) == 0).then(|| fc(rng.below(FCS))),
            partial_shipments: (rng.below(8) == 0).then(|| rng.below(2) == 0),
            ..OrderRequest::new(
                MerchantId::new(merchant),
                format!("o{n}").as_str().into(),
                purchase_time,
                lines,
            )
        };
        let key = request.key();
        let order = engine
            .allocate(request, Timestamp::default())
            .unwrap()
            .order;
        match rng.below(20) {
            0 => {
                engine.hold(&key, "review".into()).unwrap();
            }
            1 if order.status == OrderStatus::PartiallyAllocated => {
                engine.mark_picked(&key).unwrap();
            }
            _ => {}
        }
    }
    // Replenish some cells: enough for some waiting orders, not all.
    for merchant in MERCHANTS {
        let mut changes = Vec::new();
        for (s, f) in (0..SKUS).flat_map(|s| (0..FCS).map(move |f| (s, f))) {
            if rng.below(3) == 0 {
                changes.push(InventoryChange {
                    sku: sku(s),
                    fc: fc(f),
                    change: CountChange::Adjust(1 + rng.below(6) as i64),
                });
            }
        }
        engine
            .update_inventory(&MerchantId::new(merchant), &changes, Timestamp::default())
            .unwrap();
    }
    engine
}

fn all_orders(engine: &Engine) -> Vec<Order> {
    let mut orders = Vec::new();
    for merchant in MERCHANTS {
        let mut after = None;
        loop {
            let page = engine.list_orders(&MerchantId::new(merchant), None, 1_000, after.as_ref());
            orders.extend(page.orders);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    orders
}

/// The reference: one sequential pass, oldest first, ties by order id.
fn sequential_pass(engine: &Engine) -> PassCounts {
    let mut waiting: Vec<(Timestamp, OrderKey)> = all_orders(engine)
        .into_iter()
        .filter(|order| order.status.awaits_stock() && !order.picked)
        .map(|order| (order.request.purchase_time, order.key()))
        .collect();
    waiting.sort();
    let mut counts = PassCounts::default();
    for (_, key) in waiting {
        let status = engine.reprocess_order(&key, Timestamp::default()).unwrap();
        counts.examined += 1;
        match status {
            OrderStatus::Processing => counts.allocated += 1,
            OrderStatus::PartiallyAllocated => counts.partially_allocated += 1,
            _ => counts.still_in_exception += 1,
        }
    }
    counts
}

fn stock(engine: &Engine) -> Vec<(String, String, u32, u32)> {
    let mut cells = Vec::new();
    for merchant in MERCHANTS {
        for s in 0..SKUS {
            let view = engine
                .inventory(&MerchantId::new(merchant), &sku(s))
                .unwrap();
            for row in view.fcs {
                cells.push((
                    format!("{merchant}/{s}"),
                    row.fc.to_string(),
                    row.on_hand,
                    row.reserved,
                ));
            }
        }
    }
    cells
}

#[test]
fn parallel_pass_equals_the_sequential_oldest_first_pass() {
    for seed in [11, 22, 33] {
        let reference = build(seed);
        let expected_counts = sequential_pass(&reference);
        let expected_orders = all_orders(&reference);
        let expected_stock = stock(&reference);
        assert!(
            expected_counts.allocated + expected_counts.partially_allocated > 0,
            "seed {seed}: the workload must let the pass allocate something"
        );
        assert!(
            expected_counts.still_in_exception > 0,
            "seed {seed}: and leave some waiting"
        );

        for threads in [1, 2, 8] {
            let engine = build(seed);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let counts = pool.install(|| engine.reprocess(None, Timestamp::default()));
            assert_eq!(
                counts, expected_counts,
                "seed {seed}, {threads} threads: counts"
            );
            let orders = all_orders(&engine);
            assert_eq!(orders.len(), expected_orders.len());
            for (got, want) in orders.iter().zip(&expected_orders) {
                assert_eq!(
                    got, want,
                    "seed {seed}, {threads} threads: order {}",
                    want.request.order_id
                );
            }
            assert_eq!(
                stock(&engine),
                expected_stock,
                "seed {seed}, {threads} threads: stock"
            );
            let audit = engine.audit();
            assert!(audit.violations.is_empty(), "{:#?}", audit.violations);
        }
    }
}
