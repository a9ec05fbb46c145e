//! FIFO release (RULES §5): give the stock of some SKUs to a merchant's
//! oldest orders first.
//!
//! Every unpicked order of the merchant that is allocated or waiting, and
//! touches one of the SKUs (or shares a SKU with such an order, and so on),
//! gives back its reservations; then the orders are
//! decided again oldest first (purchase time, then order id), all inside one
//! critical section over their orders and stripes, so no other order can
//! slip in between. `FULL`: an order takes stock only if it can be filled
//! whole (its assigned FC and partial-shipment split rules still apply).
//! `PARTIAL`: oldest orders take whatever is there. An order left with fewer
//! units than it had before is preempted: its short lines say
//! `PREEMPTED_BY_FIFO`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ledger::{Locked, Stock};
use crate::model::{
    ExceptionReason, FcId, FifoStrategy, Merchant, MerchantId, Order, OrderId, OrderKey,
    OrderStatus, Sku, SkuKey, Timestamp,
};
use crate::order_book::{lock_in_key_order, OrderGuard, SharedOrder};
use crate::policy::Rules;

use super::allocate::{allocate_locked, sku_keys, DecisionSnapshot, Routing};
use super::components::UnionFind;
use super::lifecycle::unreserve_locked;
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
    /// Run a FIFO release for `skus` (all of the merchant's SKUs when empty),
    /// deciding at `now`. Refused for a merchant without a FIFO strategy.
    pub fn fifo_release(
        &self,
        merchant: &MerchantId,
        skus: &[Sku],
        now: Timestamp,
    ) -> Result<FifoOutcome> {
        let settings = self.merchant(merchant);
        if settings.fifo_strategy == FifoStrategy::None {
            return Err(Error::FailedPrecondition(format!(
                "merchant {merchant} has no FIFO strategy; set fifo_strategy with UpsertMerchant"
            )));
        }
        let _pass = self.shared.pass_lock.lock();
        Ok(self.fifo_release_locked(&settings, skus, now))
    }

    /// The release itself; the caller holds the pass lock.
    pub(super) fn fifo_release_locked(
        &self,
        merchant: &Merchant,
        skus: &[Sku],
        now: Timestamp,
    ) -> FifoOutcome {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut orders = self.lock_fifo_candidates(&merchant.merchant_id, skus);
            let mut keys: Vec<SkuKey> = orders
                .iter()
                .flat_map(|order| sku_keys(&order.request))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let mut locked = self.shared.ledger.lock(&keys);
            // An order imported after the scan may hold some of this stock:
            // rescan so that it, too, waits its turn. Under a storm of
            // imports, settle for the orders we have after a few tries: the
            // invariants hold either way, only strict age order may slip.
            if attempt < NEWCOMER_ATTEMPTS_MAX
                && !holds_every_unpicked_reservation(&locked, &keys, &orders)
            {
                continue;
            }
            let mut routing = self.routing(now);
            let outcome = release_oldest_first(&mut locked, merchant, &mut routing, &mut orders);
            let moved: Vec<&Order> = orders.iter().map(|order| &**order).collect();
            self.log_change(&locked, &keys, &moved);
            return outcome;
        }
    }

    /// Lock, in ascending key order, every order a FIFO release may move:
    /// unpicked, allocated or waiting, and sharing SKUs with `skus` (all the
    /// merchant's SKUs when empty), directly or through other such orders.
    /// The closure matters: stock of one SKU only helps an old order if the
    /// other SKUs it needs can move too.
    pub(super) fn lock_fifo_candidates(
        &self,
        merchant: &MerchantId,
        skus: &[Sku],
    ) -> Vec<OrderGuard> {
        let movable = |order: &Order| {
            !order.picked
                && matches!(
                    order.status,
                    OrderStatus::Processing
                        | OrderStatus::PartiallyAllocated
                        | OrderStatus::Exception
                )
        };
        let mut scanned: Vec<(OrderKey, Vec<Sku>, SharedOrder)> = Vec::new();
        for shared in self.shared.orders.orders_of(Some(merchant)) {
            let order = shared.lock();
            if movable(&order) {
                let skus = order
                    .request
                    .lines
                    .iter()
                    .map(|line| line.sku.clone())
                    .collect();
                scanned.push((order.key(), skus, Arc::clone(&shared)));
            }
        }
        let wanted = sharing_skus(&scanned, skus);
        let candidates = scanned
            .into_iter()
            .filter(|(_, order_skus, _)| order_skus.iter().any(|sku| wanted.contains(sku)))
            .map(|(key, _, shared)| (key, shared))
            .collect();
        lock_in_key_order(candidates, movable)
    }
}

/// How many times a release rescans when new orders keep reserving the
/// stock it is about to hand out.
const NEWCOMER_ATTEMPTS_MAX: usize = 16;

/// Every SKU connected to `skus` through the scanned orders (every SKU of
/// theirs when `skus` is empty).
fn sharing_skus(scanned: &[(OrderKey, Vec<Sku>, SharedOrder)], skus: &[Sku]) -> HashSet<Sku> {
    let mut index: HashMap<&Sku, usize> = HashMap::new();
    for sku in scanned.iter().flat_map(|(_, skus, _)| skus).chain(skus) {
        let next = index.len();
        index.entry(sku).or_insert(next);
    }
    let mut sets = UnionFind::new(index.len());
    for (_, order_skus, _) in scanned {
        for pair in order_skus.windows(2) {
            sets.union(index[&pair[0]], index[&pair[1]]);
        }
    }
    let roots: HashSet<usize> = skus.iter().map(|sku| sets.find(index[sku])).collect();
    index
        .into_iter()
        .filter(|(_, i)| skus.is_empty() || roots.contains(&sets.find(*i)))
        .map(|(sku, _)| sku.clone())
        .collect()
}

/// Whether the locked orders hold every unpicked unit reserved at their
/// SKUs, i.e. no order outside the release holds any of that stock.
fn holds_every_unpicked_reservation(
    locked: &Locked<'_>,
    keys: &[SkuKey],
    orders: &[OrderGuard],
) -> bool {
    let mut held: HashMap<(&Sku, &FcId), u32> = HashMap::new();
    for order in orders {
        for allocation in &order.allocations {
            *held.entry((&allocation.sku, &allocation.fc)).or_default() += allocation.quantity;
        }
    }
    keys.iter().all(|key| {
        locked.get(key).is_none_or(|record| {
            record.fcs.iter().all(|row| {
                row.reserved - row.picked == held.get(&(key.sku(), &row.fc)).copied().unwrap_or(0)
            })
        })
    })
}

/// Free every locked order's reservations, then decide them again oldest
/// first with the merchant's FIFO rules; over the locked stripes, or over a
/// private copy of their stock (a simulation).
pub(super) fn release_oldest_first<O: std::ops::DerefMut<Target = Order>>(
    stock: &mut impl Stock,
    merchant: &Merchant,
    routing: &mut Routing<'_>,
    orders: &mut [O],
) -> FifoOutcome {
    let mut before = Vec::with_capacity(orders.len());
    for order in orders.iter_mut() {
        before.push(DecisionSnapshot::of(order));
        unreserve_locked(stock, order);
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
        allocate_locked(stock, merchant, routing, order, &keys, rules);
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
