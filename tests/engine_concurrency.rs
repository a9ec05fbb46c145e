//! Many threads race for the same few units: afterwards no (SKU, FC) is
//! over-reserved and the ledger's reserved units equal the orders' allocations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::{
    FcId, FulfillmentCenter, GeoPoint, Merchant, OrderLine, OrderRequest, OrderStatus,
    RoutingStrategy, Timestamp,
};

const SKUS: usize = 12;
const FCS: usize = 3;
const UNITS_PER_CELL: u64 = 4;
const THREADS: usize = 8;
const ORDERS_PER_THREAD: usize = 400;

fn order(thread: usize, n: usize, rng: &mut u64) -> OrderRequest {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let line_count = 1 + (next() % 3) as usize;
    let first = (next() % SKUS as u64) as usize;
    let lines = (0..line_count)
        .map(|i| OrderLine {
            sku: format!("sku-{}", (first + i) % SKUS).as_str().into(),
            quantity: 1 + (next() % 3) as u32,
        })
        .collect();
    OrderRequest {
        partial_shipments: Some(next() % 2 == 0),
        ..OrderRequest::new(
            "m".into(),
            format!("t{thread}-{n}").as_str().into(),
            Timestamp::from_seconds(n as i64),
            lines,
        )
    }
}

/// Apply `change` to every (SKU, FC) cell of the tests' catalogue.
fn change_every_cell(engine: &Engine, change: CountChange) {
    let changes: Vec<InventoryChange> = (0..SKUS)
        .flat_map(|sku| {
            (0..FCS).map(move |fc| InventoryChange {
                sku: format!("sku-{sku}").as_str().into(),
                fc: FcId::new(&format!("fc-{fc}")),
                change,
            })
        })
        .collect();
    engine
        .update_inventory(&"m".into(), &changes, Timestamp::default())
        .unwrap();
}

#[test]
fn racing_allocations_never_over_reserve() {
    let engine = Engine::new(EngineConfig {
        stripe_count: 4,
        ..EngineConfig::default()
    });
    change_every_cell(&engine, CountChange::Set(UNITS_PER_CELL));
    let allocated_units = Arc::new(AtomicU64::new(0));

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let engine = engine.clone();
            let allocated_units = Arc::clone(&allocated_units);
            scope.spawn(move || {
                let mut rng = 0x2545_F491_4F6C_DD1D ^ (thread as u64 + 1);
                for n in 0..ORDERS_PER_THREAD {
                    let request = order(thread, n, &mut rng);
                    let key = request.key();
                    let order = engine
                        .allocate(request, Timestamp::default())
                        .unwrap()
                        .order;
                    allocated_units.fetch_add(order.allocated_units(), Ordering::Relaxed);
                    // Churn: give some stock back so later orders race for it.
                    if n % 5 == 0 && order.status != OrderStatus::Exception {
                        let cancelled = engine.cancel(&key).unwrap();
                        allocated_units.fetch_sub(order.allocated_units(), Ordering::Relaxed);
                        assert_eq!(cancelled.status, OrderStatus::Cancelled);
                    }
                }
            });
        }
    });

    let audit = engine.audit();
    assert!(audit.violations.is_empty(), "{:#?}", audit.violations);
    assert_eq!(audit.reserved_units, audit.allocated_units);
    assert_eq!(
        audit.reserved_units,
        allocated_units.load(Ordering::Relaxed)
    );
    assert_eq!(audit.on_hand_units, (SKUS * FCS) as u64 * UNITS_PER_CELL);
    assert!(audit.reserved_units <= audit.on_hand_units);
    // The race was real: demand far exceeded stock, so the stock is nearly all taken.
    assert!(audit.reserved_units > audit.on_hand_units / 2);
}

#[test]
fn exactly_one_of_many_racers_gets_the_last_unit() {
    let engine = Engine::new(EngineConfig::default());
    engine
        .update_inventory(
            &"m".into(),
            &[InventoryChange {
                sku: "last".into(),
                fc: FcId::new("fc"),
                change: CountChange::Set(1),
            }],
            Timestamp::default(),
        )
        .unwrap();
    let winners = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let engine = engine.clone();
            let winners = &winners;
            scope.spawn(move || {
                let request = OrderRequest::new(
                    "m".into(),
                    format!("racer-{thread}").as_str().into(),
                    Timestamp::default(),
                    vec![OrderLine {
                        sku: "last".into(),
                        quantity: 1,
                    }],
                );
                let order = engine
                    .allocate(request, Timestamp::default())
                    .unwrap()
                    .order;
                if order.status == OrderStatus::Processing {
                    winners.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(winners.load(Ordering::Relaxed), 1);
    assert!(engine.audit().violations.is_empty());
}

/// Orders of different SKUs (different stripes, so nothing else orders
/// them) race for an FC's daily slots, with cancels giving some back: no
/// moment of the race ends with more orders holding slots than the limit.
#[test]
fn racing_orders_never_take_more_daily_slots_than_an_fc_has() {
    const CAPACITY: u32 = 25;
    let engine = Engine::new(EngineConfig::default());
    let fc = FcId::new("limited");
    engine.upsert_fulfillment_center(FulfillmentCenter {
        fc,
        name: "limited".into(),
        location: None,
        daily_order_capacity: CAPACITY,
    });
    let sku = |thread: usize, n: usize| format!("sku-{thread}-{n}");
    let changes: Vec<InventoryChange> = (0..THREADS)
        .flat_map(|thread| (0..ORDERS_PER_THREAD / 4).map(move |n| (thread, n)))
        .map(|(thread, n)| InventoryChange {
            sku: sku(thread, n).as_str().into(),
            fc,
            change: CountChange::Set(1),
        })
        .collect();
    engine
        .update_inventory(&"m".into(), &changes, Timestamp::default())
        .unwrap();
    let cancelled = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (engine, cancelled) = (engine.clone(), &cancelled);
            scope.spawn(move || {
                for n in 0..ORDERS_PER_THREAD / 4 {
                    let request = OrderRequest::new(
                        "m".into(),
                        format!("slot-{thread}-{n}").as_str().into(),
                        Timestamp::default(),
                        vec![OrderLine {
                            sku: sku(thread, n).as_str().into(),
                            quantity: 1,
                        }],
                    );
                    let key = request.key();
                    let order = engine.allocate(request, Timestamp::default()).unwrap();
                    if n % 7 == 0 && order.order.status == OrderStatus::Processing {
                        engine.cancel(&key).unwrap();
                        cancelled.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let holding = || {
        engine
            .order_handles()
            .iter()
            .filter(|order| order.lock().status == OrderStatus::Processing)
            .count() as u32
    };
    let after_race = holding();
    assert!(after_race <= CAPACITY, "{after_race} orders hold slots");
    assert_eq!(engine.orders_today(fc, Timestamp::default()), after_race);
    assert!(
        cancelled.load(Ordering::Relaxed) > 0,
        "slots were given back"
    );
    // Whatever the race left free is still there to take, and no more.
    for n in 0..=CAPACITY - after_race {
        let sku = format!("after-{n}");
        let change = InventoryChange {
            sku: sku.as_str().into(),
            fc,
            change: CountChange::Set(1),
        };
        engine
            .update_inventory(&"m".into(), &[change], Timestamp::default())
            .unwrap();
        let request = OrderRequest::new(
            "m".into(),
            format!("after-{n}").as_str().into(),
            Timestamp::default(),
            vec![OrderLine {
                sku: sku.as_str().into(),
                quantity: 1,
            }],
        );
        let order = engine
            .allocate(request, Timestamp::default())
            .unwrap()
            .order;
        let expected = if n < CAPACITY - after_race {
            OrderStatus::Processing
        } else {
            OrderStatus::Exception
        };
        assert_eq!(order.status, expected, "order {n} after the race");
    }
    assert_eq!(holding(), CAPACITY);
    assert_eq!(engine.orders_today(fc, Timestamp::default()), CAPACITY);
    assert!(engine.audit().violations.is_empty());
}

/// Decisions that count slots and route by distance read the network while
/// upserts rewrite it: neither waits for the other forever.
#[test]
fn upserting_fcs_while_closest_orders_count_slots_does_not_deadlock() {
    let engine = Engine::new(EngineConfig::default());
    let place = GeoPoint::new(41.88, -87.63);
    let upsert = |engine: &Engine, n: u32| {
        engine.upsert_fulfillment_center(FulfillmentCenter {
            fc: FcId::new(&format!("near-{}", n % 2)),
            name: String::new(),
            location: place,
            daily_order_capacity: 100_000 + n,
        })
    };
    upsert(&engine, 0);
    upsert(&engine, 1);
    let mut merchant = Merchant::with_defaults("m".into());
    merchant.routing = RoutingStrategy::Closest;
    engine.upsert_merchant(merchant);
    let changes: Vec<InventoryChange> = (0..2)
        .map(|fc| InventoryChange {
            sku: "a".into(),
            fc: FcId::new(&format!("near-{fc}")),
            change: CountChange::Set(10_000),
        })
        .collect();
    engine
        .update_inventory(&"m".into(), &changes, Timestamp::default())
        .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..THREADS - 1 {
            let engine = engine.clone();
            scope.spawn(move || {
                for n in 0..ORDERS_PER_THREAD {
                    let request = OrderRequest {
                        ship_to: place,
                        ..OrderRequest::new(
                            "m".into(),
                            format!("near-{thread}-{n}").as_str().into(),
                            Timestamp::default(),
                            vec![OrderLine {
                                sku: "a".into(),
                                quantity: 1,
                            }],
                        )
                    };
                    engine.allocate(request, Timestamp::default()).unwrap();
                }
            });
        }
        let engine = engine.clone();
        scope.spawn(move || {
            for n in 0..ORDERS_PER_THREAD as u32 {
                upsert(&engine, n);
            }
        });
    });
    let taken: u32 = engine.slots_taken().iter().map(|&(_, _, n)| n).sum();
    assert_eq!(taken as usize, (THREADS - 1) * ORDERS_PER_THREAD);
    assert!(engine.audit().violations.is_empty());
}

/// Reprocessing passes (which start from the waiting-order index) while
/// other threads allocate, cancel and receive stock: no deadlock between
/// the index, the order book and the orders' locks, and afterwards the
/// index holds exactly the waiting orders (the audit checks it).
#[test]
fn reprocessing_while_orders_come_and_go_does_not_deadlock() {
    let engine = Engine::new(EngineConfig {
        stripe_count: 4,
        ..EngineConfig::default()
    });
    change_every_cell(&engine, CountChange::Adjust(1));
    let (done, finished) = std::sync::mpsc::channel();
    let worker = engine.clone();
    std::thread::spawn(move || {
        let allocating = AtomicU64::new(THREADS as u64 - 1);
        std::thread::scope(|scope| {
            for thread in 0..THREADS - 1 {
                let (engine, allocating) = (worker.clone(), &allocating);
                scope.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1);
                    // Long enough that a lock-order bug shows in most runs.
                    for n in 0..ORDERS_PER_THREAD * 10 {
                        let request = order(thread, n, &mut rng);
                        let key = request.key();
                        engine.allocate(request, Timestamp::default()).unwrap();
                        if n % 3 == 0 {
                            engine.cancel(&key).unwrap();
                        }
                    }
                    allocating.fetch_sub(1, Ordering::Relaxed);
                });
            }
            let (engine, allocating) = (worker.clone(), &allocating);
            scope.spawn(move || {
                while allocating.load(Ordering::Relaxed) > 0 {
                    change_every_cell(&engine, CountChange::Adjust(1));
                    engine.reprocess(None, Timestamp::default());
                }
            });
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the threads finished: no deadlock");
    let audit = engine.audit();
    assert!(audit.violations.is_empty(), "{:#?}", audit.violations);
    assert_eq!(audit.reserved_units, audit.allocated_units);
    assert!(
        engine.reprocess(None, Timestamp::default()).examined > 0,
        "orders still wait: the index was exercised"
    );
}
