//! A data directory under churn for the durability tests: an engine with
//! a store, seeded random operations of every kind, and the whole
//! observable state in a canonical order to compare recoveries with.
#![allow(dead_code)] // Each user needs a different part.

use std::path::{Path, PathBuf};

use allocation::engine::{
    CountChange, Engine, EngineConfig, InventoryChange, ShipRequest, TrackingScan,
};
use allocation::error::Error;
use allocation::ledger::SkuInfo;
use allocation::model::{
    FcId, FifoStrategy, FulfillmentCenter, LabelSource, Merchant, MerchantId, Order, OrderKey,
    OrderLine, OrderRequest, OrderStatus, Sku, Timestamp, TrackingEvent, TrackingStatus,
};
use allocation::storage::journal::SEGMENT_HEADER_BYTES;
use allocation::storage::{FsyncPolicy, OpenError, Store, StoreConfig};

use super::rng::Rng;

pub const MERCHANTS: [&str; 2] = ["m0", "m1"];
pub const SKUS: usize = 30;
pub const FCS: usize = 3;

pub fn data_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("allocation-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        dir: dir.to_path_buf(),
        fsync: FsyncPolicy::Off,
        fallback_to_previous_snapshot: false,
        journal_retention: std::time::Duration::ZERO,
    }
}

pub fn open(dir: &Path) -> Result<(Engine, Store), OpenError> {
    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (store, _) = Store::open(&config(dir), &engine)?;
    Ok((engine, store))
}

pub fn sku(i: usize) -> Sku {
    Sku::new(&format!("sku-{i}"))
}

/// Random operations of every kind.
pub fn churn(engine: &Engine, rng: &mut Rng, prefix: &str, steps: usize) {
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
                // An FC with a small daily capacity (or none): orders take,
                // keep and give back its slots.
                engine.upsert_fulfillment_center(FulfillmentCenter {
                    fc: FcId::new(&format!("fc-{}", rng.below(FCS))),
                    name: String::new(),
                    location: None,
                    daily_order_capacity: rng.below(3) as u32,
                });
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
                let _ = engine.update_inventory(&merchant, &[change], Timestamp::default());
            }
            4..=6 => {
                let first = rng.below(SKUS);
                let request = OrderRequest::new(
                    merchant,
                    format!("{prefix}-{step}").as_str().into(),
                    Timestamp::from_seconds(rng.below(1000) as i64),
                    (0..1 + rng.below(3))
                        .map(|i| OrderLine {
                            sku: sku((first + i) % SKUS),
                            quantity: 1 + rng.below(3) as u32,
                        })
                        .collect(),
                );
                // A new operations day every few dozen steps.
                engine.allocate(request, day_of(step)).unwrap();
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
                        1 => engine.release(&order, day_of(step)),
                        2 => engine.cancel(&order),
                        3 => engine.mark_picked(&order),
                        4 => ship_somewhere(engine, order, &format!("{prefix}-{step}")),
                        _ => scan_any(engine, &order, step),
                    };
                }
            }
            _ => {
                engine.reprocess(None, day_of(step));
                engine.complete_due(Timestamp::from_seconds(step as i64 * 60_000));
            }
        }
    }
}

/// The time of `step`: a day passes every 40 steps.
fn day_of(step: usize) -> Timestamp {
    Timestamp::from_seconds(step as i64 / 40 * 86_400)
}

/// Ship the order's first allocation, if it has one.
pub fn ship_somewhere(engine: &Engine, order: OrderKey, tracking: &str) -> Result<Order, Error> {
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
pub fn scan_any(engine: &Engine, order: &OrderKey, step: usize) -> Result<Order, Error> {
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
pub fn any_order(
    engine: &Engine,
    rng: &mut Rng,
    wanted: impl Fn(&Order) -> bool,
) -> Option<OrderKey> {
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
pub fn state(engine: &Engine) -> State {
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
    let network = format!(
        "{:?} {:?}",
        engine.fulfillment_centers(),
        engine.slots_taken()
    );
    (merchants, stock, orders, network)
}

/// Everything observable, as `state` returns it: merchants, stock, orders,
/// and the network with its daily slots taken.
pub type State = (Vec<Merchant>, Vec<String>, Vec<Order>, String);

/// Where each frame of a segment starts, and where the last one ends.
pub fn frame_offsets(segment: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < segment.len() {
        offsets.push(offset);
        let len = u32::from_le_bytes(segment[offset..offset + 4].try_into().unwrap());
        offset += 16 + if len == u32::MAX { 0 } else { len as usize };
    }
    offsets.push(offset);
    offsets
}
