//! Reading orders, and auditing the invariants that tie orders to the ledger.

use std::collections::HashMap;

use crate::error::Result;
use crate::model::{
    FcId, MerchantId, OperationsDay, Order, OrderId, OrderKey, OrderStatus, SkuKey, Timestamp,
};

use super::lifecycle::not_found;
use super::Engine;

/// Where a page of `ListOrders` ends: the next page starts after this order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageCursor {
    pub purchase_time: Timestamp,
    pub order_id: OrderId,
}

#[derive(Clone, Debug)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// `None` on the last page.
    pub next: Option<PageCursor>,
}

/// Totals that must agree if no invariant is broken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    pub on_hand_units: u64,
    pub reserved_units: u64,
    /// The sum of every order's allocations.
    pub allocated_units: u64,
    /// Units that left in shipments (no longer in `on_hand`).
    pub shipped_units: u64,
    /// Human-readable descriptions of every broken invariant.
    pub violations: Vec<String>,
}

impl Engine {
    pub fn order(&self, key: &OrderKey) -> Result<Order> {
        match self.shared.orders.get(key) {
            Some(order) => Ok(order.lock().clone()),
            None => Err(not_found(key)),
        }
    }

    /// One page of a merchant's orders, oldest purchase time first (ties:
    /// order id), optionally only those in one status as they read at a
    /// time (`Order::status_at`, as every read answers them, so a shipped
    /// order lists as completed from its completion time whether or not
    /// the sweep recorded it).
    ///
    /// This scans the merchant's orders (O(orders) per page): listing is an
    /// operator's tool, and keeping a sorted index would cost every
    /// allocation a lock.
    pub fn list_orders(
        &self,
        merchant: &MerchantId,
        status: Option<(OrderStatus, Timestamp)>,
        page_size: usize,
        after: Option<&PageCursor>,
    ) -> OrderPage {
        let page_size = page_size.max(1);
        let mut matching: Vec<(PageCursor, Order)> = Vec::new();
        for shared in self.shared.orders.orders_of(Some(merchant)) {
            let order = shared.lock();
            if status.is_some_and(|(wanted, as_of)| order.status_at(as_of) != wanted) {
                continue;
            }
            let cursor = PageCursor {
                purchase_time: order.request.purchase_time,
                order_id: order.request.order_id.clone(),
            };
            if after.is_some_and(|after| &cursor <= after) {
                continue;
            }
            matching.push((cursor, order.clone()));
        }
        // Only the first page_size + 1 need sorting: one more tells whether
        // another page follows.
        if matching.len() > page_size + 1 {
            matching.select_nth_unstable_by(page_size, |a, b| a.0.cmp(&b.0));
            matching.truncate(page_size + 1);
        }
        matching.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let next = (matching.len() > page_size).then(|| {
            matching.truncate(page_size);
            matching[page_size - 1].0.clone()
        });
        OrderPage {
            orders: matching.into_iter().map(|(_, order)| order).collect(),
            next,
        }
    }

    /// Check every invariant: per (SKU, FC) `picked <= reserved <= on_hand`,
    /// and the ledger's reserved and picked units equal the sums of the
    /// orders' allocations. Meaningful when no request is in flight
    /// (tests, start-up after recovery, the load test's final check).
    pub fn audit(&self) -> Audit {
        let mut audit = Audit::default();
        let mut from_orders: HashMap<(SkuKey, FcId), (u64, u64)> = HashMap::new();
        let mut slots_held: HashMap<(FcId, OperationsDay), u32> = HashMap::new();
        let mut waiting = 0;
        for shared in self.shared.orders.orders_of(None) {
            let order = shared.lock();
            if order.waits_for_stock() {
                waiting += 1;
                if !self.shared.orders.is_indexed_waiting(&order.key()) {
                    audit.violations.push(format!(
                        "order {} waits for stock but is not in the waiting index",
                        order.request.order_id
                    ));
                }
            }
            for slot in &order.extras().slots {
                *slots_held.entry((slot.fc, slot.day)).or_default() += 1;
                if !order.uses_fc(slot.fc) {
                    audit.violations.push(format!(
                        "order {} holds a daily slot at {} with no units there",
                        order.request.order_id, slot.fc
                    ));
                }
            }
            audit.shipped_units += order
                .shipments()
                .iter()
                .flat_map(|shipment| &shipment.items)
                .map(|item| u64::from(item.quantity))
                .sum::<u64>();
            for allocation in &order.allocations {
                let units = u64::from(allocation.quantity);
                let cell = (
                    SkuKey::new(&order.request.merchant_id, &allocation.sku),
                    allocation.fc,
                );
                let totals = from_orders.entry(cell).or_default();
                totals.0 += units;
                if order.picked {
                    totals.1 += units;
                }
                audit.allocated_units += units;
            }
        }
        self.shared.ledger.for_each(|key, record| {
            for row in &record.fcs {
                audit.on_hand_units += u64::from(row.on_hand);
                audit.reserved_units += u64::from(row.reserved);
                if !(row.picked <= row.reserved && row.reserved <= row.on_hand) {
                    audit.violations.push(format!(
                        "{key:?} at {}: picked {} reserved {} on_hand {}",
                        row.fc, row.picked, row.reserved, row.on_hand
                    ));
                }
                let expected = from_orders
                    .remove(&(key.clone(), row.fc))
                    .unwrap_or_default();
                if expected != (u64::from(row.reserved), u64::from(row.picked)) {
                    audit.violations.push(format!(
                        "{key:?} at {}: ledger reserved/picked {}/{} but orders hold {}/{}",
                        row.fc, row.reserved, row.picked, expected.0, expected.1
                    ));
                }
            }
        });
        for ((key, fc), units) in from_orders {
            audit.violations.push(format!(
                "{key:?} at {fc}: orders hold {units:?} with no ledger row"
            ));
        }
        for (fc, day, taken) in self.slots_taken() {
            let held = slots_held.remove(&(fc, day)).unwrap_or(0);
            if held != taken {
                audit.violations.push(format!(
                    "{fc} on day {}: {taken} slots counted but orders hold {held}",
                    day.date()
                ));
            }
        }
        let indexed = self.shared.orders.waiting_count();
        if indexed != waiting {
            audit.violations.push(format!(
                "{indexed} orders in the waiting index, {waiting} waiting for stock"
            ));
        }
        for ((fc, day), held) in slots_held {
            audit.violations.push(format!(
                "{fc} on day {}: orders hold {held} slots, none counted",
                day.date()
            ));
        }
        audit
    }
}
