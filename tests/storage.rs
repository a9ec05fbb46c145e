//! Durability in process: snapshot round trips, journal replay, a snapshot
//! taken under concurrent load, and corruption handling (SPEC §8, §9).

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use allocation::engine::{
    CountChange, Engine, EngineConfig, InventoryChange, ShipRequest, TrackingScan,
};
use allocation::error::Error;
use allocation::ledger::SkuInfo;
use allocation::model::{
    Channel, FcId, FifoStrategy, LabelSource, MarketplaceStatus, Merchant, MerchantId, Order,
    OrderKey, OrderLine, OrderRequest, OrderStatus, Sku, Timestamp, TrackingEvent, TrackingStatus,
};
use allocation::storage::{store, FsyncPolicy, OpenError, Store, StoreConfig};

const MERCHANTS: [&str; 2] = ["m0", "m1"];
const SKUS: usize = 30;
const FCS: usize = 3;

fn data_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("allocation-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Off,
        fallback_to_previous_snapshot: false,
    }
}

fn open(dir: &Path) -> Result<(Engine, Store), OpenError> {
    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (store, _) = Store::open(&config(dir), &engine)?;
    Ok((engine, store))
}

fn sku(i: usize) -> Sku {
    Sku::new(&format!("sku-{i}"))
}

/// Random operations of every kind.
fn churn(engine: &Engine, rng: &mut Rng, prefix: &str, steps: usize) {
    for step in 0..steps {
        let merchant = MerchantId::new(MERCHANTS[rng.below(MERCHANTS.len())]);
        match rng.below(9) {
            0 => {
                let mut settings = Merchant::with_defaults(merchant);
                settings.partial_shipments = rng.below(2) == 0;
                settings.fifo_strategy = [FifoStrategy::None, FifoStrategy::Full][rng.below(2)];
                if rng.below(3) == 0 {
                    // SKUs are registered with this tag: their lines split off.
                    settings.split_tags = vec!["tag".into()];
                }
                engine.upsert_merchant(settings);
            }
            1 => {
                let info = SkuInfo {
                    registered: true,
                    tags: vec!["tag".into()],
                    replenishable: rng.below(2) == 0,
                };
                engine.register_skus(&merchant, &[(sku(rng.below(SKUS)), info)]);
            }
            2 | 3 => {
                let change = InventoryChange {
                    sku: sku(rng.below(SKUS)),
                    fc: FcId::new(&format!("fc-{}", rng.below(FCS))),
                    change: if rng.below(2) == 0 {
                        CountChange::Set(rng.below(6) as u64)
                    } else {
                        CountChange::Adjust(1 + rng.below(4) as i64)
                    },
                };
                let _ = engine.update_inventory(&merchant, &[change]);
            }
            4..=6 => {
                let first = rng.below(SKUS);
                let request = OrderRequest {
                    merchant_id: merchant,
                    order_id: format!("{prefix}-{step}").as_str().into(),
                    purchase_time: Timestamp::from_seconds(rng.below(1000) as i64),
                    lines: (0..1 + rng.below(3))
                        .map(|i| OrderLine {
                            sku: sku((first + i) % SKUS),
                            quantity: 1 + rng.below(3) as u32,
                        })
                        .collect(),
                    assigned_fc: None,
                    partial_shipments: None,
                    channel: Channel::Direct,
                    marketplace_status: MarketplaceStatus::Ready,
                    hold_reason: None,
                };
                engine.allocate(request, Timestamp::default()).unwrap();
            }
            7 => {
                let operation = rng.below(6);
                // Shipping and scanning pick among orders they can act on, so
                // every seed's churn ships and tracks something.
                let wanted = |order: &Order| match operation {
                    4 => !order.allocations.is_empty() && order.status != OrderStatus::OnHold,
                    5 => !order.shipments().is_empty(),
                    _ => true,
                };
                if let Some(order) = any_order(engine, rng, wanted) {
                    let _ = match operation {
                        0 => engine.hold(&order, "check".into()),
                        1 => engine.release(&order),
                        2 => engine.cancel(&order),
                        3 => engine.mark_picked(&order),
                        4 => ship_somewhere(engine, order, &format!("{prefix}-{step}")),
                        _ => scan_any(engine, &order, step),
                    };
                }
            }
            _ => {
                engine.reprocess(None);
                engine.complete_due(Timestamp::from_seconds(step as i64 * 60_000));
            }
        }
    }
}

/// Ship the order's first allocation, if it has one.
fn ship_somewhere(engine: &Engine, order: OrderKey, tracking: &str) -> Result<Order, Error> {
    let fc = engine
        .order(&order)?
        .allocations
        .first()
        .map(|allocation| allocation.fc)
        .unwrap_or_else(|| FcId::new("fc-0"));
    engine.ship(ShipRequest {
        order,
        fc,
        tracking_number: tracking.into(),
        carrier: "carrier".into(),
        label_source: LabelSource::Service,
        at: Timestamp::from_seconds(1_000),
    })
}

/// Record a scan of the order's first shipment, if it has one.
fn scan_any(engine: &Engine, order: &OrderKey, step: usize) -> Result<Order, Error> {
    let tracking_number = match engine.order(order)?.shipments().first() {
        Some(shipment) => shipment.tracking_number.clone(),
        None => return Err(Error::NotFound("no shipment".into())),
    };
    let scan = TrackingScan {
        tracking_number,
        event: TrackingEvent {
            status: [TrackingStatus::PickedUp, TrackingStatus::Delivered][step % 2],
            time: Timestamp::from_seconds(step as i64),
            misdelivery_confirmed: step.is_multiple_of(3),
        },
    };
    engine.record_tracking(scan).map(|(order, _)| order)
}

/// A random order among those `wanted`.
fn any_order(engine: &Engine, rng: &mut Rng, wanted: impl Fn(&Order) -> bool) -> Option<OrderKey> {
    // Sorted, so the pick depends on the seed alone, not on map iteration
    // order (the maps' hashers are randomly seeded).
    let mut keys: Vec<OrderKey> = engine
        .order_handles()
        .iter()
        .map(|order| order.lock())
        .filter(|order| wanted(order))
        .map(|order| order.key())
        .collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    Some(keys.swap_remove(rng.below(keys.len())))
}

/// Everything observable, in a canonical order.
fn state(engine: &Engine) -> (Vec<Merchant>, Vec<String>, Vec<Order>) {
    let mut merchants = engine.merchants();
    merchants.sort_by(|a, b| a.merchant_id.cmp(&b.merchant_id));
    let mut stock = Vec::new();
    for stripe in 0..engine.stripe_count() {
        engine.with_stripe(stripe, |records| {
            for (key, record) in records {
                stock.push(format!("{key:?} {record:?}"));
            }
        });
    }
    stock.sort();
    let mut orders: Vec<Order> = engine
        .order_handles()
        .iter()
        .map(|o| o.lock().clone())
        .collect();
    orders.sort_by_key(Order::key);
    (merchants, stock, orders)
}

#[test]
fn journal_replay_alone_restores_the_state() {
    let dir = data_dir("replay");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(3), "a", 600);
    store.close();
    let expected = state(&engine);
    let (recovered, _) = open(&dir).unwrap();
    assert_eq!(state(&recovered), expected);
    assert_shipments_findable(&recovered, &expected.2);
}

/// Recovery rebuilt the tracking-number index: every shipment is found.
fn assert_shipments_findable(engine: &Engine, orders: &[Order]) {
    let shipments: Vec<&str> = orders
        .iter()
        .flat_map(|order| order.shipments())
        .map(|shipment| shipment.tracking_number.as_str())
        .collect();
    assert!(!shipments.is_empty(), "the churn shipped something");
    for tracking_number in shipments {
        engine
            .shipment(tracking_number)
            .expect("indexed after recovery");
    }
}

#[test]
fn snapshot_then_journal_restores_the_state_and_old_files_are_dropped() {
    let dir = data_dir("snapshot");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(5);
    for round in 0..3 {
        churn(&engine, &mut rng, &format!("r{round}"), 300);
        let info = store.snapshot(&engine).unwrap();
        assert!(info.bytes > 0);
    }
    churn(&engine, &mut rng, "after", 300);
    store.close();
    let expected = state(&engine);

    let snapshots = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snap")
        })
        .count();
    assert_eq!(snapshots, 2, "the newest two snapshots are kept");

    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (_, recovery) = Store::open(&config(&dir), &engine).unwrap();
    assert!(recovery.snapshot.is_some());
    assert!(recovery.records_replayed > 0);
    assert_eq!(state(&engine), expected);
    assert_shipments_findable(&engine, &expected.2);
}

#[test]
fn a_snapshot_taken_under_concurrent_load_plus_the_journal_equals_the_final_state() {
    let dir = data_dir("load");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(9), "seed", 200);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for worker in 0..3u64 {
            let (engine, stop) = (&engine, &stop);
            scope.spawn(move || {
                let mut rng = Rng(100 + worker);
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    churn(engine, &mut rng, &format!("w{worker}-{round}"), 20);
                    round += 1;
                }
            });
        }
        for _ in 0..3 {
            store.snapshot(&engine).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    store.close();
    let expected = state(&engine);
    let (recovered, _) = open(&dir).unwrap();
    assert_eq!(state(&recovered), expected);
    assert!(recovered.audit().violations.is_empty());
}

fn newest(dir: &Path, suffix: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files.pop().unwrap()
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x5A;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_in_a_snapshot_is_reported_and_the_previous_one_can_be_used() {
    let dir = data_dir("corrupt-snapshot");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(11);
    churn(&engine, &mut rng, "a", 200);
    store.snapshot(&engine).unwrap();
    churn(&engine, &mut rng, "b", 200);
    store.snapshot(&engine).unwrap();
    store.close();
    let expected = state(&engine);

    let snapshot = newest(&dir, ".snap");
    let size = std::fs::metadata(&snapshot).unwrap().len() as usize;
    flip_byte(&snapshot, size / 2);
    let error = match open(&dir) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("a corrupt snapshot was loaded"),
    };
    assert!(error.contains(&*snapshot.to_string_lossy()), "{error}");
    assert!(error.contains("checksum"), "{error}");

    // The operator's way out: the previous snapshot plus the journal kept since it.
    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let mut fallback = config(&dir);
    fallback.fallback_to_previous_snapshot = true;
    let (_, recovery) = Store::open(&fallback, &engine).unwrap();
    assert_eq!(recovery.skipped_snapshots.len(), 1);
    assert_eq!(state(&engine), expected);
}

#[test]
fn a_corrupt_record_in_the_middle_of_the_journal_stops_start_up() {
    let dir = data_dir("corrupt-journal");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(13), "a", 300);
    store.close();
    let segment = newest(&dir, ".log");
    let size = std::fs::metadata(&segment).unwrap().len() as usize;
    flip_byte(&segment, size / 2);
    let error = match open(&dir) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("a corrupt journal was replayed"),
    };
    assert!(error.contains(&*segment.to_string_lossy()), "{error}");
    assert!(error.contains("corrupt at byte"), "{error}");
    // Inspect says the same without touching anything.
    let engine = Engine::new(EngineConfig::default());
    assert!(store::recover(&dir, &engine, false, false).is_err());
}

#[test]
fn a_torn_journal_tail_is_cut_at_the_last_whole_record() {
    let dir = data_dir("torn");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(17);
    churn(&engine, &mut rng, "a", 200);
    store.close();
    let expected = state(&engine);

    // One more change (one record) in a new run, then that record half
    // written, as when the power goes mid-write.
    {
        let (engine, store) = open(&dir).unwrap();
        engine.upsert_merchant(Merchant::with_defaults(MerchantId::new("lost")));
        store.close();
    }
    let segment = newest(&dir, ".log");
    let bytes = std::fs::read(&segment).unwrap();
    assert!(bytes.len() > 16 + 20, "the second run wrote a record");
    std::fs::write(&segment, &bytes[..bytes.len() - 7]).unwrap();

    let engine2 = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (store2, recovery) = Store::open(&config(&dir), &engine2).unwrap();
    let (path, offset) = recovery.torn_tail.expect("the torn tail is reported");
    assert_eq!(path, segment);
    assert_eq!(offset, 16, "cut right after the segment header");
    assert_eq!(state(&engine2), expected);
    store2.close();
}
