//! Reading the whole state out (snapshots) and putting recovered state back
//! in (start-up). Nothing here is journaled: it is how the journal's
//! contents get in and out.

use std::sync::Arc;

use crate::ledger::SkuRecord;
use crate::model::{Merchant, SkuKey};
use crate::order_book::SharedOrder;

use super::{Effect, Engine};

impl Engine {
    /// Every upserted merchant's settings.
    pub fn merchants(&self) -> Vec<Merchant> {
        self.shared
            .merchants
            .iter()
            .map(|entry| Merchant::clone(entry.value()))
            .collect()
    }

    pub fn stripe_count(&self) -> usize {
        self.shared.ledger.stripe_count()
    }

    /// Visit one ledger stripe's records, with only that stripe locked.
    pub fn with_stripe<T>(
        &self,
        index: usize,
        visit: impl FnOnce(&mut dyn Iterator<Item = (&SkuKey, &SkuRecord)>) -> T,
    ) -> T {
        self.shared.ledger.with_stripe(index, visit)
    }

    /// Every order's handle (lock each to read it).
    pub fn order_handles(&self) -> Vec<SharedOrder> {
        self.shared.orders.orders_of(None)
    }

    /// How many orders the book holds.
    pub fn order_count(&self) -> usize {
        self.shared.orders.len()
    }

    /// The sequence the next order event gets.
    pub fn next_event_sequence(&self) -> u64 {
        *self.shared.next_event.lock()
    }

    /// Number the next events from `sequence` on (or later, if the
    /// engine is there already).
    fn continue_events_from(&self, sequence: u64) {
        let mut next = self.shared.next_event.lock();
        *next = (*next).max(sequence);
    }

    /// Install one recovered after-image as is.
    pub fn restore(&self, effect: Effect) {
        match effect {
            Effect::Merchant(merchant) => {
                self.shared
                    .merchants
                    .insert(merchant.merchant_id.clone(), Arc::new(merchant));
            }
            Effect::Fc(fc) => self.restore_fc(fc),
            Effect::Sku(key, record) => self.shared.ledger.restore(key, record),
            Effect::Order(order) => {
                for shipment in order.shipments() {
                    self.shared
                        .tracking
                        .insert(shipment.tracking_number.clone(), order.key());
                }
                self.schedule_completion(&order);
                let slots = order.extras().slots.clone();
                let replaced = self.shared.orders.restore(*order);
                let before = replaced.as_ref().map_or(&[][..], |old| &old.extras().slots);
                self.shared.slots.restore(before, &slots);
            }
            Effect::Events { first, events } => {
                self.continue_events_from(first.saturating_add(events.len() as u64));
            }
            Effect::NextEventSequence(next) => self.continue_events_from(next),
        }
    }
}
