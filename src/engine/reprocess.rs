//! The exception reprocessing pass (RULES §5): every order waiting for stock
//! (EXCEPTION or PARTIALLY_ALLOCATED, not picked) is decided again, oldest
//! purchase time first (ties: order id).
//!
//! The pass runs on rayon workers, yet its result equals one sequential pass
//! in age order. An order's decision reads only the stock of its own SKUs,
//! and only stock that can change during the pass matters: a "live" SKU has
//! units available at the start, or is held by an order of the pass (which
//! gives its units back when decided again). So each live SKU gets a queue
//! of the orders touching it, in age order, and an order is decided once it
//! heads every one of its queues, i.e. once every older order it could
//! depend on is done. That wavefront is exactly the sequential order where
//! it matters, and runs everything else in parallel. An order that cannot
//! take anything (not allowed to ship partially, holds nothing, needs a SKU
//! with no stock anywhere) reads only constants and waits for nobody.
//!
//! Orders of FIFO merchants are not decided here: their pass is a FIFO
//! release (`fifo.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::Result;
use crate::ledger::Stock;
use crate::model::{
    FifoStrategy, Merchant, MerchantId, Order, OrderId, OrderKey, OrderStatus, SkuKey, Timestamp,
};
use crate::order_book::SharedOrder;

use super::allocate::{decide_locked, sku_keys, Occasion, Routing};
use super::lifecycle::{not_found, unreserve_allocations};
use super::Engine;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Orders that wait for nobody are handed to rayon in chunks of this many,
/// so the scheduling overhead stays small next to the work.
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

impl std::ops::AddAssign for PassCounts {
    fn add_assign(&mut self, other: Self) {
        *self = *self + other;
    }
}

/// One waiting order, with what the pass needs to schedule and decide it.
/// It clones no id shared by many orders (the merchant's, its settings):
/// both workers bumping one reference count made the scan scale poorly.
struct Waiting<'m> {
    order: SharedOrder,
    purchase_time: Timestamp,
    order_id: OrderId,
    skus: Vec<SkuKey>,
    merchant: Settings<'m>,
    holds_stock: bool,
    may_ship_partially: bool,
}

impl Waiting<'_> {
    /// Oldest purchase time first; ties by order key (merchant, order id).
    fn age_order(&self, other: &Self) -> std::cmp::Ordering {
        self.purchase_time.cmp(&other.purchase_time).then_with(|| {
            (&self.merchant.merchant_id, &self.order_id)
                .cmp(&(&other.merchant.merchant_id, &other.order_id))
        })
    }
}

/// A waiting order's merchant settings: borrowed from the pass's table, or
/// the defaults of a merchant that was never upserted.
enum Settings<'m> {
    Stored(&'m Merchant),
    Defaults(Box<Merchant>),
}

impl std::ops::Deref for Settings<'_> {
    type Target = Merchant;

    fn deref(&self) -> &Merchant {
        match self {
            Settings::Stored(merchant) => merchant,
            Settings::Defaults(merchant) => merchant,
        }
    }
}

/// Decide a waiting order again over `stock` (its stripes locked, or a
/// private copy): it gives back what it holds and is allocated afresh.
/// Its version moves, and `true` is returned, only if the decision changed.
pub(super) fn redecide(
    stock: &mut impl Stock,
    order: &mut Order,
    merchant: &Merchant,
    routing: &mut Routing<'_>,
    keys: &[SkuKey],
) -> bool {
    // Taken, not cloned: the pass compares them after, and this is its
    // inner loop.
    let before_status = order.status;
    let before_allocations = std::mem::take(&mut order.allocations);
    let before_exceptions = std::mem::take(&mut order.exceptions);
    unreserve_allocations(
        stock,
        &order.request.merchant_id,
        &before_allocations,
        false,
    );
    decide_locked(
        stock,
        order,
        merchant,
        routing,
        keys,
        Occasion::Again,
        false,
    );
    let changed = order.status != before_status
        || order.allocations != before_allocations
        || order.exceptions != before_exceptions;
    if changed {
        order.version += 1;
    }
    changed
}

/// Every merchant's settings, as they were when the pass began.
type SettingsTable = FastMap<MerchantId, Arc<Merchant>>;

impl Engine {
    /// Decide one waiting order again at `now`: give back what it holds and
    /// allocate it afresh, in one critical section. Orders not waiting for
    /// stock, and picked ones (their units are frozen), are left as they are.
    pub fn reprocess_order(&self, key: &OrderKey, now: Timestamp) -> Result<OrderStatus> {
        let shared = self.shared.orders.get(key).ok_or_else(|| not_found(key))?;
        let merchant = self.merchant(&key.merchant);
        let keys = sku_keys(&shared.lock().request);
        Ok(self.decide_again(&shared, &merchant, &keys, now))
    }

    /// The version moves only if the decision changed something.
    fn decide_again(
        &self,
        shared: &SharedOrder,
        merchant: &Merchant,
        keys: &[SkuKey],
        now: Timestamp,
    ) -> OrderStatus {
        let mut order = shared.lock();
        if !order.waits_for_stock() {
            return order.status;
        }
        let mut locked = self.shared.ledger.lock(keys);
        if redecide(
            &mut locked,
            &mut order,
            merchant,
            &mut self.routing(now),
            keys,
        ) {
            self.log_change(&locked, keys, &[&order]);
        }
        order.status
    }

    /// One reprocessing pass over every merchant, or one, deciding at
    /// `now`. FIFO merchants get a FIFO release over all their SKUs instead.
    pub fn reprocess(&self, merchant: Option<&MerchantId>, now: Timestamp) -> PassCounts {
        let _pass = self.shared.pass_lock.lock();
        let mut counts = PassCounts::default();
        for fifo_merchant in self.fifo_merchants(merchant) {
            counts += self.fifo_release_locked(&fifo_merchant, &[], now).counts;
        }
        counts + self.exception_pass(merchant, now)
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
    fn exception_pass(&self, merchant: Option<&MerchantId>, now: Timestamp) -> PassCounts {
        let settings: SettingsTable = self
            .shared
            .merchants
            .iter()
            .map(|entry| (entry.key().clone(), Arc::clone(entry.value())))
            .collect();
        let waiting = self.waiting_orders(&settings, merchant);
        if self.shared.slots.limited() {
            // Which order gets an FC's last slot of the day depends on every
            // order that could go there, SKUs shared or not: one by one,
            // oldest first, is the order that answer must come from.
            let mut counts = PassCounts::default();
            for index in by_age(&waiting) {
                let entry = &waiting[index as usize];
                counts.count(self.decide_again(&entry.order, &entry.merchant, &entry.skus, now));
            }
            return counts;
        }
        let plan = self.wavefront(&waiting);
        // Each task adds its counts once: a counter both workers bumped per
        // order would be a cache line passed back and forth.
        let tally = Mutex::new(PassCounts::default());
        rayon::scope(|scope| {
            for chunk in plan.independent.chunks(INDEPENDENT_CHUNK) {
                let (waiting, tally) = (&waiting, &tally);
                scope.spawn(move |_| {
                    let mut counts = PassCounts::default();
                    for &index in chunk {
                        let entry = &waiting[index];
                        counts.count(self.decide_again(
                            &entry.order,
                            &entry.merchant,
                            &entry.skus,
                            now,
                        ));
                    }
                    *tally.lock() += counts;
                });
            }
            for &head in &plan.ready {
                let (waiting, plan, tally) = (&waiting, &plan, &tally);
                scope.spawn(move |scope| self.run_chain(scope, waiting, plan, tally, head, now));
            }
        });
        tally.into_inner()
    }

    /// Decide `index`, then every order it makes ready: one of them in this
    /// task (chains stay on one worker), the others as new tasks.
    fn run_chain<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        waiting: &'s [Waiting<'s>],
        plan: &'s Wavefront,
        tally: &'s Mutex<PassCounts>,
        mut index: usize,
        now: Timestamp,
    ) {
        let mut counts = PassCounts::default();
        loop {
            let entry = &waiting[index];
            counts.count(self.decide_again(&entry.order, &entry.merchant, &entry.skus, now));
            let mut next = None;
            for successor in plan.successors(index) {
                if plan.pending[successor].fetch_sub(1, Ordering::AcqRel) == 1 {
                    match next {
                        None => next = Some(successor),
                        Some(_) => scope.spawn(move |scope| {
                            self.run_chain(scope, waiting, plan, tally, successor, now)
                        }),
                    }
                }
            }
            match next {
                Some(successor) => index = successor,
                None => break,
            }
        }
        *tally.lock() += counts;
    }

    /// Every unpicked order waiting for stock, of non-FIFO merchants, found
    /// by a parallel scan of the order book.
    fn waiting_orders<'m>(
        &self,
        settings: &'m SettingsTable,
        merchant: Option<&MerchantId>,
    ) -> Vec<Waiting<'m>> {
        self.shared.orders.par_filter_map_waiting(|shared| {
            let order = shared.lock();
            let in_scope = merchant.is_none_or(|m| &order.request.merchant_id == m);
            if !in_scope || !order.waits_for_stock() {
                return None;
            }
            let merchant = match settings.get(&order.request.merchant_id) {
                Some(settings) if settings.fifo_strategy != FifoStrategy::None => return None,
                Some(settings) => Settings::Stored(settings),
                None => Settings::Defaults(Box::new(Merchant::with_defaults(
                    order.request.merchant_id.clone(),
                ))),
            };
            Some(Waiting {
                purchase_time: order.request.purchase_time,
                order_id: order.request.order_id.clone(),
                skus: sku_keys(&order.request).into_vec(),
                holds_stock: !order.allocations.is_empty(),
                may_ship_partially: order
                    .request
                    .partial_shipments
                    .unwrap_or(merchant.partial_shipments),
                merchant,
                order: Arc::clone(shared),
            })
        })
    }

    /// Build the per-SKU queues and each order's count of predecessors.
    fn wavefront(&self, waiting: &[Waiting]) -> Wavefront {
        let by_age = by_age(waiting);
        let skus = PassSkus::number(waiting);
        let live = self.live_skus(waiting, &skus);
        let mut queues: Vec<Vec<u32>> = vec![Vec::new(); skus.keys.len()];
        // Per line of every order (laid out as `skus.of_line`): its position
        // in its SKU's queue, or NOT_QUEUED.
        let mut positions = vec![NOT_QUEUED; skus.of_line.len()];
        let mut independent = Vec::new();
        for &index in &by_age {
            let entry = &waiting[index as usize];
            let lines = skus.lines(index as usize);
            let numbers = &skus.of_line[lines.clone()];
            let cannot_take_anything = !entry.may_ship_partially
                && !entry.holds_stock
                && !numbers.iter().all(|&sku| live[sku as usize]);
            if cannot_take_anything || !numbers.iter().any(|&sku| live[sku as usize]) {
                independent.push(index as usize);
                continue;
            }
            for (line, &sku) in lines.zip(numbers) {
                let queue = &mut queues[sku as usize];
                // A SKU on two lines of one order (or two SKUs whose hashes
                // collide) is queued once: an order must never wait for itself.
                if live[sku as usize] && queue.last() != Some(&index) {
                    positions[line] = queue.len() as u32;
                    queue.push(index);
                }
            }
        }
        let pending: Vec<AtomicU32> = (0..waiting.len())
            .map(|index| {
                let ahead = positions[skus.lines(index)]
                    .iter()
                    .filter(|&&position| position != NOT_QUEUED && position > 0)
                    .count();
                AtomicU32::new(ahead as u32)
            })
            .collect();
        let ready = (0..waiting.len())
            .filter(|&index| {
                let queued = positions[skus.lines(index)]
                    .iter()
                    .any(|&position| position != NOT_QUEUED);
                queued && pending[index].load(Ordering::Relaxed) == 0
            })
            .collect();
        Wavefront {
            skus,
            queues,
            positions,
            pending,
            ready,
            independent,
        }
    }

    /// Which numbered SKUs' stock can change during the pass: some unit
    /// available now, or held by a waiting order.
    fn live_skus(&self, waiting: &[Waiting], skus: &PassSkus) -> Vec<bool> {
        let mut held = vec![false; skus.keys.len()];
        for (index, entry) in waiting.iter().enumerate() {
            if entry.holds_stock {
                for &sku in &skus.of_line[skus.lines(index)] {
                    held[sku as usize] = true;
                }
            }
        }
        skus.keys
            .par_iter()
            .zip(held)
            .map(|(&(order, line), held)| {
                let key = &waiting[order as usize].skus[line as usize];
                held || self
                    .shared
                    .ledger
                    .lock([key])
                    .get(key)
                    .is_some_and(|record| record.fcs.iter().any(|row| record.available(row) > 0))
            })
            .collect()
    }
}

/// The waiting orders' indexes, oldest first: sorts (purchase time, index)
/// pairs, which sit together in memory, and looks at order keys only to
/// break ties.
fn by_age(waiting: &[Waiting]) -> Vec<u32> {
    let mut by_age: Vec<(Timestamp, u32)> = waiting
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.purchase_time, index as u32))
        .collect();
    by_age.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| waiting[a.1 as usize].age_order(&waiting[b.1 as usize]))
    });
    by_age.into_iter().map(|(_, index)| index).collect()
}

const NOT_QUEUED: u32 = u32::MAX;

/// The SKUs of a pass, numbered densely in order of first appearance.
/// Two keys whose hashes collide get the same number: their queues merge,
/// which only adds waits that age order allows anyway, so the outcome is
/// unchanged (and 64-bit collisions are vanishingly rare).
struct PassSkus {
    /// The number of every order line, orders one after another.
    of_line: Vec<u32>,
    /// Where each order's lines start in `of_line` (one extra at the end).
    starts: Vec<usize>,
    /// Per number, the (order, line) where it was first seen: its key.
    keys: Vec<(u32, u32)>,
}

impl PassSkus {
    fn number(waiting: &[Waiting]) -> Self {
        let mut number_of: FastMap<u64, u32> = FastMap::default();
        let mut numbers = Self {
            of_line: Vec::new(),
            starts: Vec::with_capacity(waiting.len() + 1),
            keys: Vec::new(),
        };
        for (order, entry) in waiting.iter().enumerate() {
            numbers.starts.push(numbers.of_line.len());
            // Keys carry their hash, so the numbering compares integers.
            for (line, hash) in entry.skus.iter().map(SkuKey::hash_value).enumerate() {
                let next = numbers.keys.len() as u32;
                let number = *number_of.entry(hash).or_insert(next);
                if number == next {
                    numbers.keys.push((order as u32, line as u32));
                }
                numbers.of_line.push(number);
            }
        }
        numbers.starts.push(numbers.of_line.len());
        numbers
    }

    /// The positions of `order`'s lines in `of_line`.
    fn lines(&self, order: usize) -> std::ops::Range<usize> {
        self.starts[order]..self.starts[order + 1]
    }
}

/// The dependency structure of a pass.
struct Wavefront {
    skus: PassSkus,
    /// Per live SKU number, the orders touching it, oldest first.
    queues: Vec<Vec<u32>>,
    /// Per order line, its position in its SKU's queue (see `wavefront`).
    positions: Vec<u32>,
    /// Per order, how many of its queues still have an older order ahead.
    pending: Vec<AtomicU32>,
    /// Orders with nobody ahead in any of their queues.
    ready: Vec<usize>,
    /// Orders that wait for nobody and nobody waits for.
    independent: Vec<usize>,
}

impl Wavefront {
    /// The order right behind `index` in each of its queues.
    fn successors(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let lines = self.skus.lines(index);
        self.skus.of_line[lines.clone()]
            .iter()
            .zip(&self.positions[lines])
            .filter(|&(_, &position)| position != NOT_QUEUED)
            .filter_map(|(&sku, &position)| {
                self.queues[sku as usize]
                    .get(position as usize + 1)
                    .map(|&next| next as usize)
            })
    }
}
