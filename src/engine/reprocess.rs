//! The exception reprocessing pass (SPEC §5): every order waiting for stock
//! (EXCEPTION or PARTIALLY_ALLOCATED, not picked) is decided again, oldest
//! purchase time first (ties: order id).
//!
//! The pass runs on rayon workers, yet its result equals one sequential pass
//! in age order. Two orders can only affect each other through a SKU whose
//! stock can change during the pass: a "live" SKU, one with units available
//! at the start or held by an order of the pass (re-deciding an order first
//! gives its units back). Orders are grouped into connected components over
//! live SKUs; each component is decided sequentially in age order, and
//! components run in parallel. An order that cannot take anything (it is not
//! allowed to ship partially, holds nothing, and needs a SKU with no stock
//! anywhere) reads only constants, so it is a component of its own.
//!
//! Orders of FIFO merchants are not decided here: their pass is a FIFO
//! release (`fifo.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::model::{FifoStrategy, Merchant, MerchantId, OrderKey, OrderStatus, SkuKey, Timestamp};
use crate::order_book::SharedOrder;

use super::allocate::{decide_locked, sku_keys, DecisionSnapshot, Occasion};
use super::components::UnionFind;
use super::lifecycle::{allocation_keys, unreserve_locked};
use super::Engine;

/// Independent orders are handed to rayon in chunks of this many, so the
/// scheduling overhead stays small next to the work.
const INDEPENDENT_CHUNK: usize = 1_024;

/// What a pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub examined: u64,
    /// Now fully allocated.
    pub allocated: u64,
    pub partially_allocated: u64,
    /// Still (or now) without any allocation.
    pub still_in_exception: u64,
}

impl PassCounts {
    pub(super) fn count(&mut self, status: OrderStatus) {
        self.examined += 1;
        match status {
            OrderStatus::Processing => self.allocated += 1,
            OrderStatus::PartiallyAllocated => self.partially_allocated += 1,
            _ => self.still_in_exception += 1,
        }
    }
}

impl std::ops::Add for PassCounts {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            examined: self.examined + other.examined,
            allocated: self.allocated + other.allocated,
            partially_allocated: self.partially_allocated + other.partially_allocated,
            still_in_exception: self.still_in_exception + other.still_in_exception,
        }
    }
}

/// What the pass needs to know about one waiting order to schedule it.
struct Waiting {
    order: SharedOrder,
    age: (Timestamp, OrderKey),
    skus: Vec<SkuKey>,
    holds_stock: bool,
    may_ship_partially: bool,
}

impl Engine {
    /// Decide one waiting order again: give back what it holds and allocate
    /// it afresh, in one critical section. Orders not waiting for stock, and
    /// picked ones (their units are frozen), are left as they are. The
    /// version moves only if the decision changed something.
    pub fn reprocess_order(&self, key: &OrderKey) -> crate::error::Result<OrderStatus> {
        let mut order = self.lock_order(key)?;
        if !order.status.awaits_stock() || order.picked {
            return Ok(order.status);
        }
        let merchant = self.merchant(&key.merchant);
        let before = DecisionSnapshot::of(&order);
        let keys = sku_keys(&order.request);
        let mut locked = self.shared.ledger.lock(&keys);
        let held = allocation_keys(&order);
        unreserve_locked(&mut locked, &mut order, &held);
        decide_locked(&mut locked, &mut order, &merchant, &keys, Occasion::Again);
        drop(locked);
        before.bump_version_if_changed(&mut order);
        Ok(order.status)
    }

    /// One reprocessing pass over every merchant, or one. FIFO merchants get
    /// a FIFO release over all their SKUs instead.
    pub fn reprocess(&self, merchant: Option<&MerchantId>) -> PassCounts {
        let _pass = self.shared.pass_lock.lock();
        let mut counts = PassCounts::default();
        for fifo_merchant in self.fifo_merchants(merchant) {
            counts = counts + self.fifo_release_locked(&fifo_merchant, &[]).counts;
        }
        counts + self.exception_pass(merchant)
    }

    fn fifo_merchants(&self, only: Option<&MerchantId>) -> Vec<Arc<Merchant>> {
        self.shared
            .merchants
            .iter()
            .filter(|entry| entry.fifo_strategy != FifoStrategy::None)
            .filter(|entry| only.is_none_or(|m| entry.key() == m))
            .map(|entry| Arc::clone(entry.value()))
            .collect()
    }

    /// The parallel pass over non-FIFO merchants' waiting orders.
    fn exception_pass(&self, merchant: Option<&MerchantId>) -> PassCounts {
        let waiting = self.waiting_orders(merchant);
        let units = self.schedule(&waiting);
        units
            .par_iter()
            .map(|unit| {
                let mut counts = PassCounts::default();
                for &index in unit {
                    let key = &waiting[index].age.1;
                    if let Ok(status) = self.reprocess_order(key) {
                        counts.count(status);
                    }
                }
                counts
            })
            .reduce(PassCounts::default, |a, b| a + b)
    }

    /// Every unpicked order waiting for stock, of non-FIFO merchants.
    fn waiting_orders(&self, merchant: Option<&MerchantId>) -> Vec<Waiting> {
        let mut settings: HashMap<MerchantId, Arc<Merchant>> = HashMap::new();
        let mut waiting = Vec::new();
        for shared in self.shared.orders.orders_of(merchant) {
            let order = shared.lock();
            if !order.status.awaits_stock() || order.picked {
                continue;
            }
            let merchant_id = &order.request.merchant_id;
            let settings = settings
                .entry(merchant_id.clone())
                .or_insert_with(|| self.merchant(merchant_id));
            if settings.fifo_strategy != FifoStrategy::None {
                continue;
            }
            let may_ship_partially = order
                .request
                .partial_shipments
                .unwrap_or(settings.partial_shipments);
            let entry = Waiting {
                age: (order.request.purchase_time, order.key()),
                skus: sku_keys(&order.request),
                holds_stock: !order.allocations.is_empty(),
                may_ship_partially,
                order: Arc::clone(&shared),
            };
            drop(order);
            waiting.push(entry);
        }
        waiting
    }

    /// Split the waiting orders into units that can run in parallel, each
    /// unit's orders in age order.
    fn schedule(&self, waiting: &[Waiting]) -> Vec<Vec<usize>> {
        // Index the SKUs; a SKU is live if it has units available now or an
        // order of the pass holds some of it.
        let mut sku_index: HashMap<&SkuKey, usize> = HashMap::new();
        for entry in waiting {
            for key in &entry.skus {
                let next = sku_index.len();
                sku_index.entry(key).or_insert(next);
            }
        }
        let mut live = vec![false; sku_index.len()];
        for (key, &index) in &sku_index {
            let locked = self.shared.ledger.lock([*key]);
            live[index] = locked
                .get(key)
                .is_some_and(|record| record.fcs.iter().any(|row| row.available() > 0));
        }
        for entry in waiting.iter().filter(|entry| entry.holds_stock) {
            let order = entry.order.lock();
            for allocation in &order.allocations {
                let key = SkuKey::new(&order.request.merchant_id, &allocation.sku);
                if let Some(&index) = sku_index.get(&key) {
                    live[index] = true;
                }
            }
        }

        let mut components = UnionFind::new(sku_index.len());
        let mut independent = Vec::new();
        let mut first_live_sku = vec![usize::MAX; waiting.len()];
        for (i, entry) in waiting.iter().enumerate() {
            let skus: Vec<usize> = entry.skus.iter().map(|key| sku_index[key]).collect();
            let cannot_take_anything = !entry.may_ship_partially
                && !entry.holds_stock
                && skus.iter().any(|&sku| !live[sku]);
            let live_skus: Vec<usize> = skus.into_iter().filter(|&sku| live[sku]).collect();
            match live_skus.first() {
                Some(&first) if !cannot_take_anything => {
                    for &other in &live_skus[1..] {
                        components.union(first, other);
                    }
                    first_live_sku[i] = first;
                }
                _ => independent.push(i),
            }
        }

        let mut by_root: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, &sku) in first_live_sku.iter().enumerate() {
            if sku != usize::MAX {
                by_root.entry(components.find(sku)).or_default().push(i);
            }
        }
        let mut units: Vec<Vec<usize>> = by_root.into_values().collect();
        for unit in &mut units {
            unit.sort_unstable_by(|&a, &b| waiting[a].age.cmp(&waiting[b].age));
        }
        // Largest first, so one big component does not start last.
        units.sort_unstable_by_key(|unit| std::cmp::Reverse(unit.len()));
        units.extend(independent.chunks(INDEPENDENT_CHUNK).map(<[usize]>::to_vec));
        units
    }
}
