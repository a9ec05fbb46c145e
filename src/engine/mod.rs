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
mod components;
mod fifo;
mod inventory;
mod lifecycle;
mod queries;
mod reprocess;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::ledger::Ledger;
use crate::model::{Merchant, MerchantId};
use crate::order_book::OrderBook;

pub use fifo::FifoOutcome;
pub use inventory::{CountChange, InventoryChange, InventoryOutcome, InventoryView};
pub use queries::{Audit, OrderPage, PageCursor};
pub use reprocess::PassCounts;

/// Engine settings fixed at start-up.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Number of ledger lock stripes (rounded up to a power of two). More
    /// stripes mean fewer collisions between concurrent orders.
    pub stripe_count: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { stripe_count: 1024 }
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
    /// Serializes the operations that lock many orders at once, so that two
    /// of them can never wait for each other's orders.
    pass_lock: Mutex<()>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                ledger: Ledger::new(config.stripe_count),
                orders: OrderBook::default(),
                merchants: DashMap::default(),
                pass_lock: Mutex::new(()),
            }),
        }
    }

    /// Replace a merchant's settings.
    pub fn upsert_merchant(&self, merchant: Merchant) -> Merchant {
        self.shared
            .merchants
            .insert(merchant.merchant_id.clone(), Arc::new(merchant.clone()));
        merchant
    }

    /// A merchant's settings; the defaults for a merchant never upserted.
    pub fn merchant(&self, merchant_id: &MerchantId) -> Arc<Merchant> {
        match self.shared.merchants.get(merchant_id) {
            Some(merchant) => Arc::clone(merchant.value()),
            None => Arc::new(Merchant::with_defaults(merchant_id.clone())),
        }
    }
}
