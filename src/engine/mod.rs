//! The engine: the ledger, the order book and the merchant settings behind
//! one cloneable handle, and every operation the service offers on them.
//! Synchronous and pure of I/O: the gRPC edge calls it, tests and
//! benchmarks call it directly.
//!
//! Locking protocol (see `order_book` and `ledger`): an operation on one
//! order locks that order, then the ledger stripes of the SKUs it touches.
//! An operation on many orders (a count that releases reservations, the
//! reprocess and FIFO passes) first takes `pass_lock`, then the orders in
//! ascending key order, then the stripes.

mod allocate;
mod capacity;
mod changes;
mod components;
mod explain;
mod fifo;
mod inventory;
mod lifecycle;
mod network;
mod queries;
mod reprocess;
mod restore;
mod shipping;
mod split;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::ledger::{Ledger, Locked};
use crate::model::{
    Merchant, MerchantId, Order, OrderEvent, OrderKey, OrderStatus, SkuKey, Timestamp,
    STALLED_AFTER_BUSINESS_DAYS_DEFAULT,
};
use crate::order_book::OrderBook;

pub use allocate::Imported;
pub use changes::{ChangeLog, Effect, EffectRef, EventSink};
pub use explain::{Explanation, Simulation};
pub use fifo::FifoOutcome;
pub use inventory::{CountChange, InventoryChange, InventoryOutcome, InventoryView, SafetyLevel};
pub use network::Network;
pub use queries::{Audit, OrderPage, PageCursor};
pub use reprocess::PassCounts;
pub use shipping::{ShipRequest, TrackingScan};

/// Engine settings fixed at start-up.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Number of ledger lock stripes (rounded up to a power of two). More
    /// stripes mean fewer collisions between concurrent orders.
    pub stripe_count: usize,
    /// Business days without a carrier scan after which a parcel counts as
    /// stalled (lost-parcel claims need that).
    pub stalled_after_business_days: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            stripe_count: 1024,
            stalled_after_business_days: STALLED_AFTER_BUSINESS_DAYS_DEFAULT,
        }
    }
}

/// A cheap, cloneable handle on the whole in-memory state.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    ledger: Ledger,
    orders: OrderBook,
    merchants: DashMap<MerchantId, Arc<Merchant>, foldhash::fast::RandomState>,
    /// The FCs upserted as network objects (RULES §12).
    network: network::SharedNetwork,
    /// The FCs' daily order slots (RULES §12). Locked after any order and
    /// stripe, and before the network's read lock (which gives the limits):
    /// nothing holding the network's lock takes it.
    slots: capacity::SlotBook,
    /// Serializes the operations that lock many orders at once, so that two
    /// of them can never wait for each other's orders.
    pass_lock: Mutex<()>,
    /// Where every change is journaled. Unset keeps state in memory only
    /// (tests and benchmarks of the core); recovery replays into the engine
    /// first and attaches the journal after.
    change_log: OnceLock<Arc<dyn ChangeLog>>,
    /// Where order events go; unset publishes nothing.
    events: OnceLock<Arc<dyn EventSink>>,
    /// The sequence the next order event gets. Taken in log order, under
    /// the change log's `number` (or alone when there is no log).
    next_event: Mutex<u64>,
    /// Every tracking number ever used, and the order it shipped.
    tracking: DashMap<String, OrderKey, foldhash::fast::RandomState>,
    /// Shipped orders waiting to read `Completed`, by completion time.
    completions: Mutex<BTreeSet<(Timestamp, OrderKey)>>,
    config: EngineConfig,
}

impl Engine {
    /// An engine that keeps its state in memory until a change log is attached.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                ledger: Ledger::new(config.stripe_count),
                orders: OrderBook::default(),
                merchants: DashMap::default(),
                network: Default::default(),
                slots: Default::default(),
                pass_lock: Mutex::new(()),
                change_log: OnceLock::new(),
                events: OnceLock::new(),
                next_event: Mutex::new(1),
                tracking: DashMap::default(),
                completions: Mutex::new(BTreeSet::new()),
                config,
            }),
        }
    }

    /// From now on, hand every change to `log` before it becomes visible to
    /// anyone else. Attach before serving: changes made earlier are not in
    /// the log. A second log is refused (returned).
    pub fn attach_change_log(&self, log: Arc<dyn ChangeLog>) -> Result<(), Arc<dyn ChangeLog>> {
        self.shared.change_log.set(log)
    }

    /// From now on, publish order events to `sink`. A second sink is refused.
    pub fn attach_event_sink(&self, sink: Arc<dyn EventSink>) -> Result<(), Arc<dyn EventSink>> {
        self.shared.events.set(sink)
    }

    /// Replace a merchant's settings.
    pub fn upsert_merchant(&self, merchant: Merchant) -> Merchant {
        // The entry's lock orders concurrent upserts of one merchant in the log.
        let entry = self
            .shared
            .merchants
            .entry(merchant.merchant_id.clone())
            .insert(Arc::new(merchant.clone()));
        self.append(&[EffectRef::Merchant(&merchant)], |_| {});
        drop(entry);
        merchant
    }

    /// Journal a change (the records of `keys` as `locked` now holds them,
    /// and `orders`) and announce the state each order is now in. Called
    /// before the locks are released, so each order's events come out in
    /// the order its changes happened.
    fn log_change(&self, locked: &Locked<'_>, keys: &[SkuKey], orders: &[&Order]) {
        self.record(locked, keys, orders, |events| {
            events.extend(orders.iter().map(|order| OrderEvent::of_state(order)));
        });
    }

    /// Journal a change and announce it with the events `announce` adds
    /// (none for a change the feed does not show).
    fn record(
        &self,
        locked: &Locked<'_>,
        keys: &[SkuKey],
        orders: &[&Order],
        announce: impl FnOnce(&mut Vec<OrderEvent>),
    ) {
        let mut effects = Vec::with_capacity(keys.len() + orders.len());
        for key in keys {
            if let Some(record) = locked.get(key) {
                effects.push(EffectRef::Sku(key, record));
            }
        }
        effects.extend(orders.iter().map(|order| EffectRef::Order(order)));
        self.append(&effects, announce);
    }

    /// Hand one change to the log, with its events numbered in log order
    /// and published once numbered. Events are built only when the log
    /// keeps them (to replay the feed from) or someone listens.
    fn append(&self, effects: &[EffectRef<'_>], announce: impl FnOnce(&mut Vec<OrderEvent>)) {
        // Every change of an order comes here, under the order's lock.
        for effect in effects {
            if let EffectRef::Order(order) = effect {
                self.shared.orders.note(order);
            }
        }
        let log = self.shared.change_log.get();
        let listened = || self.shared.events.get().filter(|sink| sink.wants_events());
        let mut events = Vec::new();
        if log.is_some() || listened().is_some() {
            announce(&mut events);
        }
        let mut number = |lsn: u64| {
            let mut next = self.shared.next_event.lock();
            let first = *next;
            *next += events.len() as u64;
            // Asked again under the lock: a subscriber that joined since
            // expects every event numbered after it joined.
            if let Some(sink) = listened() {
                for (sequence, event) in (first..).zip(&events) {
                    sink.publish(
                        OrderEvent {
                            sequence,
                            ..event.clone()
                        },
                        lsn,
                    );
                }
            }
            first
        };
        match log {
            Some(log) => log.append(effects, &events, &mut number),
            None if !events.is_empty() => {
                number(0);
            }
            None => {}
        }
    }

    /// Journal a change of one order that touched no stock, announced by
    /// the events `announce` adds.
    fn record_order(&self, order: &Order, announce: impl FnOnce(&mut Vec<OrderEvent>)) {
        self.append(&[EffectRef::Order(order)], announce);
    }

    /// `log_change` for an order alone.
    fn log_order(&self, order: &Order) {
        self.record_order(order, |events| events.push(OrderEvent::of_state(order)));
    }

    /// Note that a shipped order completes at its `completes_at`.
    fn schedule_completion(&self, order: &Order) {
        if let (OrderStatus::Shipped, Some(at)) = (order.status, order.extras().completes_at) {
            self.shared.completions.lock().insert((at, order.key()));
        }
    }

    /// A merchant's settings; the defaults for a merchant never upserted.
    pub fn merchant(&self, merchant_id: &MerchantId) -> Arc<Merchant> {
        match self.shared.merchants.get(merchant_id) {
            Some(merchant) => Arc::clone(merchant.value()),
            None => Arc::new(Merchant::with_defaults(merchant_id.clone())),
        }
    }
}
