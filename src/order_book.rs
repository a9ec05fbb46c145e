//! The order book: every order, keyed by (merchant, order id).
//!
//! Each order sits behind its own mutex. Lock order, everywhere: order
//! mutexes first (a single one, or many in ascending key order while holding
//! the engine's pass lock), then ledger stripes. An operation on one order
//! therefore never waits for another order while holding a stripe.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use parking_lot::Mutex;

use crate::model::{MerchantId, Order, OrderKey};

pub type SharedOrder = Arc<Mutex<Order>>;

/// An order's lock held by value, so it can outlive the map lookup.
pub type OrderGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, Order>;

/// Shards of the order map. Many small shards keep each shard's table small,
/// so growing one (a rehash under its write lock) stalls an insert for
/// microseconds, not the tens of milliseconds a 100k-entry shard takes.
const SHARDS: usize = 1024;

pub struct OrderBook {
    orders: DashMap<OrderKey, SharedOrder, foldhash::fast::RandomState>,
    /// The keys of the orders waiting for stock (EXCEPTION or
    /// PARTIALLY_ALLOCATED, not picked), kept as they enter and leave those
    /// states (`note`), so a reprocessing pass starts from them instead of
    /// scanning every order. Its locks are leaves: nothing else is locked
    /// while one is held (an order's lock is held while it is taken).
    /// As many shards as the book, for the same reason.
    waiting: DashMap<OrderKey, (), foldhash::fast::RandomState>,
}

impl Default for OrderBook {
    fn default() -> Self {
        Self {
            orders: DashMap::with_hasher_and_shard_amount(
                foldhash::fast::RandomState::default(),
                SHARDS,
            ),
            waiting: DashMap::with_hasher_and_shard_amount(
                foldhash::fast::RandomState::default(),
                SHARDS,
            ),
        }
    }
}

/// What `OrderBook::insert_locked` found.
pub enum Inserted {
    /// The order is new; its lock is held by the caller until it is decided.
    New(OrderGuard),
    /// An order with this key already exists; the one offered is handed back.
    Existing(SharedOrder, Box<Order>),
}

impl OrderBook {
    pub fn get(&self, key: &OrderKey) -> Option<SharedOrder> {
        self.orders.get(key).map(|entry| Arc::clone(entry.value()))
    }

    /// Insert `order` unless its key exists, returning it already locked, so
    /// nobody can observe it before its first decision is applied.
    pub fn insert_locked(&self, order: Order) -> Inserted {
        match self.orders.entry(order.key()) {
            Entry::Occupied(existing) => {
                Inserted::Existing(Arc::clone(existing.get()), Box::new(order))
            }
            Entry::Vacant(vacant) => {
                let shared = Arc::new(Mutex::new(order));
                let guard = shared.lock_arc();
                vacant.insert(shared);
                Inserted::New(guard)
            }
        }
    }

    /// Put an order in the book as it is, replacing any older version
    /// (returned): recovery only.
    pub fn restore(&self, order: Order) -> Option<Order> {
        self.note(&order);
        match self.orders.entry(order.key()) {
            Entry::Occupied(existing) => {
                Some(std::mem::replace(&mut *existing.get().lock(), order))
            }
            Entry::Vacant(vacant) => {
                vacant.insert(Arc::new(Mutex::new(order)));
                None
            }
        }
    }

    /// Keep the waiting-order index up to date after `order` changed: called
    /// with the order's lock held, for every change, so an order's entry
    /// comes and goes in the order of its changes.
    pub fn note(&self, order: &Order) {
        if order.waits_for_stock() {
            self.waiting.insert(order.key(), ());
        } else {
            self.waiting.remove(&order.key());
        }
    }

    /// How many orders are in the waiting-order index.
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_indexed_waiting(&self, key: &OrderKey) -> bool {
        self.waiting.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Every order of one merchant (all merchants when `None`). A full scan:
    /// used by listing and by passes, never on the allocation path.
    pub fn orders_of(&self, merchant: Option<&MerchantId>) -> Vec<SharedOrder> {
        self.orders
            .iter()
            .filter(|entry| merchant.is_none_or(|m| &entry.key().merchant == m))
            .map(|entry| Arc::clone(entry.value()))
            .collect()
    }

    /// Lock, in ascending key order, the merchant's orders for which `keep`
    /// holds (see `lock_in_key_order`).
    pub fn lock_matching(
        &self,
        merchant: &MerchantId,
        keep: impl Fn(&Order) -> bool,
    ) -> Vec<OrderGuard> {
        let candidates = self
            .orders_of(Some(merchant))
            .into_iter()
            .filter_map(|shared| {
                let order = shared.lock();
                let key = keep(&order).then(|| order.key());
                drop(order);
                key.map(|key| (key, shared))
            })
            .collect();
        lock_in_key_order(candidates, keep)
    }

    /// Visit every order of the waiting-order index on the rayon pool,
    /// keeping what `keep` returns. The keys are copied out first, so no
    /// index lock is held while `keep` takes an order's lock.
    pub fn par_filter_map_waiting<T: Send>(
        &self,
        keep: impl Fn(&SharedOrder) -> Option<T> + Sync,
    ) -> Vec<T> {
        use rayon::prelude::*;
        let keys: Vec<OrderKey> = self
            .waiting
            .iter()
            .map(|entry| entry.key().clone())
            .collect();
        keys.par_iter()
            .filter_map(|key| keep(&self.get(key)?))
            .collect()
    }
}

/// Lock `candidates` in ascending key order, the order every operation on
/// many orders takes them in (so two such operations cannot deadlock), and
/// keep those for which `keep` still holds: an order may have changed
/// between the scan that found it and its lock.
pub fn lock_in_key_order(
    mut candidates: Vec<(OrderKey, SharedOrder)>,
    keep: impl Fn(&Order) -> bool,
) -> Vec<OrderGuard> {
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    candidates
        .into_iter()
        .map(|(_, shared)| shared.lock_arc())
        .filter(|order| keep(order))
        .collect()
}
