//! Explaining a stored order, and simulating a settings change over a
//! merchant's waiting orders (RULES §11). Both decide on private copies:
//! the live orders and stock are read, never changed, and nothing is
//! journaled or announced.

use crate::error::Result;
use crate::ledger::{SkuRecord, Stock, StockCopy};
use crate::model::{Considered, FifoStrategy, Merchant, OperationsDay, Order, OrderKey, Timestamp};
use crate::order_book::OrderGuard;

use super::allocate::{decide_on_copy, sku_keys, Occasion};
use super::fifo::release_oldest_first;
use super::inventory::{view, InventoryView};
use super::lifecycle::not_found;
use super::reprocess::{redecide, PassCounts};
use super::Engine;

/// A stored order, what deciding it now would give, and the stock behind it.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub order: Order,
    /// The order as deciding it again now would leave it, and the FCs that
    /// decision weighed; `None` when it can no longer be decided (final, or
    /// picked: its units are frozen).
    pub now: Option<(Order, Considered)>,
    /// Per line, the SKU's row at every FC, read together with `now`.
    pub lines: Vec<InventoryView>,
}

/// What re-deciding a merchant's waiting orders under proposed settings
/// would do.
#[derive(Clone, Debug, Default)]
pub struct Simulation {
    pub counts: PassCounts,
    /// Orders that would hold units at more than one FC.
    pub split: u64,
    /// The first `orders_max` resulting orders, oldest first.
    pub orders: Vec<Order>,
}

impl Engine {
    /// The order, and what it would get if decided again at `now`: for an
    /// order in exception, why it is stuck. An order on hold is decided as
    /// if released.
    pub fn explain_order(&self, key: &OrderKey, now: Timestamp) -> Result<Explanation> {
        let shared = self.shared.orders.get(key).ok_or_else(|| not_found(key))?;
        let order = shared.lock();
        let merchant = self.merchant(&key.merchant);
        let keys = sku_keys(&order.request);
        // Copied while the order is locked, so the copy holds exactly its
        // reservations.
        let mut copy = self.shared.ledger.copy(&keys);
        let lines = keys
            .iter()
            .map(|key| view(key, copy.get(key).unwrap_or(&SkuRecord::default())))
            .collect();
        let now = (!order.status.is_final() && !order.picked).then(|| {
            let mut again = order.clone();
            let day = OperationsDay::of(now);
            let mut slots = self.shared.slots.copy_of_day(day);
            let mut routing = self.private_routing(&mut slots, day);
            let considered = decide_on_copy(
                &mut copy,
                &mut again,
                &merchant,
                &mut routing,
                Occasion::Again,
            );
            (again, considered)
        });
        Ok(Explanation {
            order: order.clone(),
            now,
            lines,
        })
    }

    /// Re-decide `proposed.merchant_id`'s waiting orders (EXCEPTION and
    /// PARTIALLY_ALLOCATED, unpicked) oldest first under `proposed`, as a
    /// reprocessing pass would, on private copies of them and of the stock
    /// they touch. Under a FIFO strategy the pass is a FIFO release over all
    /// the merchant's SKUs, so every order such a release moves is
    /// re-decided. Daily FC slots are counted on `now`'s operations day, on
    /// a private copy too. Changes nothing.
    ///
    /// The orders are locked (in key order, after the pass lock) only while
    /// they and their SKUs' stock are copied: so the copy holds exactly
    /// their reservations, and a pass cannot move them meanwhile.
    pub fn simulate_settings(
        &self,
        proposed: &Merchant,
        orders_max: usize,
        now: Timestamp,
    ) -> Simulation {
        let (mut orders, mut copy) = {
            let _pass = self.shared.pass_lock.lock();
            let guards = if proposed.fifo_strategy == FifoStrategy::None {
                self.lock_waiting(proposed)
            } else {
                self.lock_fifo_candidates(&proposed.merchant_id, &[])
            };
            let mut copy = StockCopy::default();
            for order in &guards {
                for key in sku_keys(&order.request) {
                    if !copy.has(&key) {
                        copy.copy_from(&self.shared.ledger.lock([&key]), &key);
                    }
                }
            }
            let orders: Vec<Order> = guards.iter().map(|order| Order::clone(order)).collect();
            (orders, copy)
        };
        // Oldest first, as a pass decides them (one merchant: ties by order id).
        orders.sort_by(|a, b| {
            (a.request.purchase_time, &a.request.order_id)
                .cmp(&(b.request.purchase_time, &b.request.order_id))
        });

        let mut simulation = Simulation::default();
        let day = OperationsDay::of(now);
        let mut slots = self.shared.slots.copy_of_day(day);
        let mut routing = self.private_routing(&mut slots, day);
        if proposed.fifo_strategy == FifoStrategy::None {
            for order in &mut orders {
                let keys = sku_keys(&order.request);
                redecide(&mut copy, order, proposed, &mut routing, &keys);
                simulation.counts.count(order.status);
            }
        } else {
            let mut borrowed: Vec<&mut Order> = orders.iter_mut().collect();
            simulation.counts =
                release_oldest_first(&mut copy, proposed, &mut routing, &mut borrowed).counts;
        }
        simulation.split = orders
            .iter()
            .filter(|order| order.holds_units_at_several_fcs())
            .count() as u64;
        orders.truncate(orders_max);
        simulation.orders = orders;
        simulation
    }

    /// Lock, in ascending key order, the merchant's unpicked orders waiting
    /// for stock. The caller holds the pass lock.
    fn lock_waiting(&self, merchant: &Merchant) -> Vec<OrderGuard> {
        self.shared
            .orders
            .lock_matching(&merchant.merchant_id, |order| order.waits_for_stock())
    }
}
