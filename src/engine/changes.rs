//! What the engine tells the journal. Every state change is described as
//! after-images (the whole new merchant, SKU record or order), with the
//! change-feed events that announce it, and handed to the `ChangeLog`
//! inside the critical section that applied it, so the log's order is the
//! order in which changes became visible, and the feed's order too.

use crate::ledger::SkuRecord;
use crate::model::{FulfillmentCenter, Merchant, Order, OrderEvent, SkuKey};

/// One changed piece of state, owned (as read back from disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Merchant(Merchant),
    Fc(FulfillmentCenter),
    Sku(SkuKey, SkuRecord),
    Order(Box<Order>),
    /// The events a change announced, numbered from `first` on.
    Events {
        first: u64,
        events: Vec<OrderEvent>,
    },
    /// The next event sequence when a snapshot was taken.
    NextEventSequence(u64),
}

/// One changed piece of state, borrowed (as handed to the log).
#[derive(Clone, Copy, Debug)]
pub enum EffectRef<'a> {
    Merchant(&'a Merchant),
    Fc(&'a FulfillmentCenter),
    Sku(&'a SkuKey, &'a SkuRecord),
    Order(&'a Order),
    NextEventSequence(u64),
}

/// Where changes go. The implementation must be quick and must not block on
/// I/O: it runs while ledger stripes and orders are locked.
pub trait ChangeLog: Send + Sync {
    /// Record one change (all its effects and the events announcing it,
    /// atomically). Unless `events` is empty, calls `number` once with the
    /// change's log position, in log order (no other change's `number`
    /// runs meanwhile), to learn the first event's sequence.
    fn append(
        &self,
        effects: &[EffectRef<'_>],
        events: &[OrderEvent],
        number: &mut dyn FnMut(u64) -> u64,
    );
}

/// Where order events go (the `WatchEvents` change feed). Like the change
/// log it runs inside critical sections, so it must never block: a
/// subscriber that cannot keep up is left behind, not waited for.
pub trait EventSink: Send + Sync {
    /// Is anyone listening? Lets the engine skip copying events.
    fn wants_events(&self) -> bool;
    /// One numbered event, of the change at log position `lsn` (0 when
    /// the engine keeps no log). Called in sequence order.
    fn publish(&self, event: OrderEvent, lsn: u64);
}
