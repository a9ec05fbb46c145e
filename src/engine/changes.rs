//! What the engine tells the journal. Every state change is described as
//! after-images (the whole new merchant, SKU record or order) and handed to
//! the `ChangeLog` inside the critical section that applied it, so the
//! log's order is the order in which changes became visible.

use crate::ledger::SkuRecord;
use crate::model::{Merchant, Order, OrderEvent, SkuKey};

/// One changed piece of state, owned (as read back from disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Merchant(Merchant),
    Sku(SkuKey, SkuRecord),
    Order(Box<Order>),
}

/// One changed piece of state, borrowed (as handed to the log).
#[derive(Clone, Copy, Debug)]
pub enum EffectRef<'a> {
    Merchant(&'a Merchant),
    Sku(&'a SkuKey, &'a SkuRecord),
    Order(&'a Order),
}

/// Where changes go. The implementation must be quick and must not block on
/// I/O: it runs while ledger stripes and orders are locked.
pub trait ChangeLog: Send + Sync {
    /// Record one change (all its effects, atomically).
    fn append(&self, effects: &[EffectRef<'_>]);
}

/// Where order events go (the `WatchEvents` change feed). Like the change
/// log it runs inside critical sections, so it must never block: a
/// subscriber that cannot keep up is dropped, not waited for.
pub trait EventSink: Send + Sync {
    /// Is anyone listening? Lets the engine skip building events.
    fn wants_events(&self) -> bool;
    fn publish(&self, event: OrderEvent);
}
