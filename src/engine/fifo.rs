//! FIFO release (SPEC §5): give the stock of some SKUs to a merchant's
//! oldest orders first.
//!
//! Every unpicked order of the merchant that is allocated or waiting, and
//! touches one of the SKUs, gives back its reservations; then the orders are
//! decided again oldest first (purchase time, then order id), all inside one
//! critical section over their orders and stripes, so no other order can
//! slip in between. `FULL`: an order takes stock only if it can be filled
//! whole (its assigned FC and partial-shipment split rules still apply).
//! `PARTIAL`: oldest orders take whatever is there. An order left with fewer
//! units than it had before is preempted: its short lines say
//! `PREEMPTED_BY_FIFO`.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::model::{
    ExceptionReason, FifoStrategy, Merchant, MerchantId, Order, OrderId, OrderStatus, Sku, SkuKey,
};
use crate::order_book::OrderGuard;
use crate::policy::Rules;

use super::allocate::{allocate_locked, sku_keys, DecisionSnapshot};
use super::lifecycle::{allocation_keys, unreserve_locked};
use super::reprocess::PassCounts;
use super::Engine;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FifoOutcome {
    /// Orders that hold more units than before the release.
    pub released: Vec<OrderId>,
    /// Orders that hold fewer units than before the release.
    pub preempted: Vec<OrderId>,
    pub counts: PassCounts,
}

impl Engine {
    /// Run a FIFO release for `skus` (all of the merchant's SKUs when empty).
    /// Refused for a merchant without a FIFO strategy.
    pub fn fifo_release(&self, merchant: &MerchantId, skus: &[Sku]) -> Result<FifoOutcome> {
        let settings = self.merchant(merchant);
        if settings.fifo_strategy == FifoStrategy::None {
            return Err(Error::FailedPrecondition(format!(
                "merchant {merchant} has no FIFO strategy; set fifo_strategy with UpsertMerchant"
            )));
        }
        let _pass = self.shared.pass_lock.lock();
        Ok(self.fifo_release_locked(&settings, skus))
    }

    /// The release itself; the caller holds the pass lock.
    pub(super) fn fifo_release_locked(&self, merchant: &Merchant, skus: &[Sku]) -> FifoOutcome {
        let wanted: HashSet<&Sku> = skus.iter().collect();
        let mut orders = self.lock_fifo_candidates(&merchant.merchant_id, &wanted);
        let keys: Vec<SkuKey> = orders
            .iter()
            .flat_map(|order| sku_keys(&order.request))
            .collect();
        let mut locked = self.shared.ledger.lock(&keys);

        let mut before = Vec::with_capacity(orders.len());
        for order in orders.iter_mut() {
            before.push(DecisionSnapshot::of(order));
            let order_keys = allocation_keys(order);
            unreserve_locked(&mut locked, order, &order_keys);
        }

        let mut by_age: Vec<usize> = (0..orders.len()).collect();
        by_age.sort_by(|&a, &b| {
            let age = |i: usize| (orders[i].request.purchase_time, &orders[i].request.order_id);
            age(a).cmp(&age(b))
        });
        let mut outcome = FifoOutcome::default();
        for index in by_age {
            let order = &mut orders[index];
            let keys = sku_keys(&order.request);
            let rules = fifo_rules(merchant, order);
            allocate_locked(&mut locked, merchant, order, &keys, rules);
            let previous = &before[index];
            let units = order.allocated_units();
            if units < previous.units {
                for line in &mut order.exceptions {
                    line.reason = ExceptionReason::PreemptedByFifo;
                }
                outcome.preempted.push(order.request.order_id.clone());
            } else if units > previous.units {
                outcome.released.push(order.request.order_id.clone());
            }
            previous.bump_version_if_changed(order);
            outcome.counts.count(order.status);
        }
        outcome
    }

    /// Lock, in ascending key order, every order a FIFO release may move:
    /// unpicked, allocated or waiting, touching one of `wanted` (any SKU
    /// when empty).
    fn lock_fifo_candidates(
        &self,
        merchant: &MerchantId,
        wanted: &HashSet<&Sku>,
    ) -> Vec<OrderGuard> {
        let movable = |order: &Order| {
            !order.picked
                && matches!(
                    order.status,
                    OrderStatus::Processing
                        | OrderStatus::PartiallyAllocated
                        | OrderStatus::Exception
                )
                && (wanted.is_empty()
                    || order
                        .request
                        .lines
                        .iter()
                        .any(|line| wanted.contains(&line.sku)))
        };
        let mut candidates: Vec<_> = self
            .shared
            .orders
            .orders_of(Some(merchant))
            .into_iter()
            .filter_map(|shared| {
                let order = shared.lock();
                let key = movable(&order).then(|| order.key());
                drop(order);
                key.map(|key| (key, shared))
            })
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        candidates
            .into_iter()
            .map(|(_, shared)| shared.lock_arc())
            // It may have changed between the scan and the lock.
            .filter(|order| movable(order))
            .collect()
    }
}

fn fifo_rules(merchant: &Merchant, order: &Order) -> Rules {
    let assigned_fc = order.request.assigned_fc.is_some();
    match merchant.fifo_strategy {
        FifoStrategy::Partial => Rules {
            assigned_fc,
            split: true,
            short: true,
        },
        FifoStrategy::Full | FifoStrategy::None => Rules {
            assigned_fc,
            split: order
                .request
                .partial_shipments
                .unwrap_or(merchant.partial_shipments),
            short: false,
        },
    }
}
