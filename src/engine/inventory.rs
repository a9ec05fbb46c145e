//! The catalog and stock counts: registering SKUs, counts (`SetInventory`),
//! receipts and losses (`AdjustInventory`), and reading stock.
//!
//! A count below `reserved` is the physical truth and is accepted: the
//! newest unpicked orders holding units there give back their reservations
//! until the count fits, and go to exception with `INVENTORY_SHORTAGE`
//! (RULES §3). A count below picked units is refused.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::error::{Error, FieldViolation, Result};
use crate::ledger::{FcStock, Locked, SafetyStock, SkuInfo, SkuRecord};
use crate::model::{
    ExceptionLine, ExceptionReason, FcId, FifoStrategy, MerchantId, Order, OrderId, OrderStatus,
    Sku, SkuKey, Timestamp,
};
use crate::order_book::OrderGuard;

use super::lifecycle::{allocation_keys, unreserve_locked};
use super::{Engine, FifoOutcome};

/// How many times a count that must release reservations retries when new
/// reservations keep appearing between its scan and its locks.
const SHORTAGE_ATTEMPTS_MAX: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountChange {
    /// A cycle count: the absolute number of units on hand.
    Set(u64),
    /// A receipt (positive) or a loss (negative).
    Adjust(i64),
}

/// One change to one (SKU, FC) of a merchant. A request never names the
/// same (SKU, FC) twice (checked at the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryChange {
    pub sku: Sku,
    pub fc: FcId,
    pub change: CountChange,
}

/// The stock of one SKU at every FC that has a row for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryView {
    pub merchant: MerchantId,
    pub sku: Sku,
    pub fcs: Vec<FcStock>,
    pub safety: SafetyStock,
}

impl InventoryView {
    /// What allocation may take from `row` (RULES §12).
    pub fn available(&self, row: &FcStock) -> u32 {
        self.safety.available(row)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryOutcome {
    /// One view per distinct SKU of the request, in request order.
    pub views: Vec<InventoryView>,
    /// Orders a count sent to exception with `INVENTORY_SHORTAGE`.
    pub shortage_orders: Vec<OrderId>,
    /// For a FIFO merchant whose stock grew: the release that followed.
    pub fifo: Option<FifoOutcome>,
}

/// A change whose new on-hand count is known and checked.
struct Planned<'c> {
    key: SkuKey,
    change: &'c InventoryChange,
    on_hand: u32,
    /// More units than before: for a FIFO merchant, a release must follow.
    increased: bool,
}

/// One safety-stock level to set (RULES §12): at one FC, or (`fc: None`)
/// at every FC of the SKU without a level of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyLevel {
    pub sku: Sku,
    pub fc: Option<FcId>,
    pub units: u32,
}

impl Engine {
    /// Set safety-stock levels, all or nothing: every SKU must be known (in
    /// the catalog or with stock rows), and every FC named must be one of
    /// the network's or have a row for that SKU. For a FIFO merchant, a
    /// level lowered frees units, which go to the oldest orders at once,
    /// as a receipt's do; other merchants' waiting orders take them at the
    /// next pass.
    pub fn set_safety_stock(
        &self,
        merchant: &MerchantId,
        levels: &[SafetyLevel],
        now: Timestamp,
    ) -> Result<InventoryOutcome> {
        let keys: Vec<SkuKey> = levels
            .iter()
            .map(|level| SkuKey::new(merchant, &level.sku))
            .collect();
        let mut lowered = Vec::new();
        let views = {
            let mut locked = self.shared.ledger.lock(&keys);
            let mut violations = Vec::new();
            for (i, (key, level)) in keys.iter().zip(levels).enumerate() {
                let Some(record) = locked.get(key) else {
                    violations.push(FieldViolation::new(
                        format!("levels[{i}].sku"),
                        format!(
                            "SKU {} is unknown: register it or count its stock first",
                            level.sku
                        ),
                    ));
                    continue;
                };
                if let Some(fc) = level.fc {
                    let known = record.fc(&fc).is_some() || self.shared.network.read().knows(fc);
                    if !known {
                        violations.push(FieldViolation::new(
                            format!("levels[{i}].fc_id"),
                            format!(
                                "FC {fc} is not in the network and has no stock of {}",
                                level.sku
                            ),
                        ));
                    }
                }
            }
            if !violations.is_empty() {
                return Err(Error::InvalidArgument(violations));
            }
            for (key, level) in keys.iter().zip(levels) {
                let safety = &mut locked.entry(key).safety;
                let before = match level.fc {
                    Some(fc) => safety.units_at(fc),
                    None => safety.every_fc,
                };
                safety.set(level.fc, level.units);
                if level.units < before {
                    lowered.push(level.sku.clone());
                }
            }
            self.log_change(&locked, &keys, &[]);
            let mut seen = HashSet::with_capacity(keys.len());
            keys.iter()
                .filter(|key| seen.insert(key.sku()))
                .map(|key| view(key, locked.get(key).expect("checked above")))
                .collect::<Vec<_>>()
        };
        let outcome = InventoryOutcome {
            views,
            shortage_orders: Vec::new(),
            fifo: None,
        };
        lowered.sort_unstable();
        lowered.dedup();
        self.release_freed_stock(merchant, outcome, &lowered, now)
    }

    /// For a FIFO merchant, give units freed at `skus` (a receipt, a lowered
    /// safety level) to the oldest orders before answering, so newer orders
    /// never jump ahead (RULES §5); the views then show the stock as the
    /// release left it.
    fn release_freed_stock(
        &self,
        merchant: &MerchantId,
        mut outcome: InventoryOutcome,
        skus: &[Sku],
        now: Timestamp,
    ) -> Result<InventoryOutcome> {
        let settings = self.merchant(merchant);
        if settings.fifo_strategy != FifoStrategy::None && !skus.is_empty() {
            let _pass = self.shared.pass_lock.lock();
            outcome.fifo = Some(self.fifo_release_locked(&settings, skus, now));
            for view in &mut outcome.views {
                *view = self.inventory(merchant, &view.sku)?;
            }
        }
        Ok(outcome)
    }

    /// Add or replace catalog entries. Returns (newly registered, updated).
    pub fn register_skus(&self, merchant: &MerchantId, skus: &[(Sku, SkuInfo)]) -> (u32, u32) {
        let keys: Vec<SkuKey> = skus
            .iter()
            .map(|(sku, _)| SkuKey::new(merchant, sku))
            .collect();
        let mut locked = self.shared.ledger.lock(&keys);
        let (mut registered, mut updated) = (0, 0);
        for (key, (_, info)) in keys.iter().zip(skus) {
            let record = locked.entry(key);
            if record.info.registered {
                updated += 1;
            } else {
                registered += 1;
            }
            record.info = SkuInfo {
                registered: true,
                ..info.clone()
            };
        }
        self.log_change(&locked, &keys, &[]);
        (registered, updated)
    }

    /// The stock of one SKU, or `NotFound` if the SKU is unknown.
    pub fn inventory(&self, merchant: &MerchantId, sku: &Sku) -> Result<InventoryView> {
        let key = SkuKey::new(merchant, sku);
        let locked = self.shared.ledger.lock([&key]);
        locked
            .get(&key)
            .map(|record| view(&key, record))
            .ok_or_else(|| Error::NotFound(format!("SKU {sku} of merchant {merchant}")))
    }

    /// Apply counts and adjustments, all or nothing. For a FIFO merchant,
    /// stock that grew (a receipt, or a count above the old one) is released
    /// to the oldest orders before this returns, so newer orders never jump
    /// ahead (RULES §5); that release decides at `now`.
    pub fn update_inventory(
        &self,
        merchant: &MerchantId,
        changes: &[InventoryChange],
        now: Timestamp,
    ) -> Result<InventoryOutcome> {
        let (outcome, grown) = self.apply_counts(merchant, changes)?;
        self.release_freed_stock(merchant, outcome, &grown, now)
    }

    /// The counts themselves; also returns the SKUs whose stock grew.
    fn apply_counts(
        &self,
        merchant: &MerchantId,
        changes: &[InventoryChange],
    ) -> Result<(InventoryOutcome, Vec<Sku>)> {
        let keys: Vec<SkuKey> = changes
            .iter()
            .map(|change| SkuKey::new(merchant, &change.sku))
            .collect();
        // Fast path: no count goes below what is reserved.
        {
            let mut locked = self.shared.ledger.lock(&keys);
            let planned = plan(&locked, &keys, changes)?;
            if planned.iter().all(|p| p.on_hand >= reserved(&locked, p)) {
                let applied = apply(&mut locked, &keys, &planned, Vec::new());
                self.log_change(&locked, &keys, &[]);
                return Ok(applied);
            }
        }
        self.update_inventory_with_shortage(merchant, &keys, changes)
    }

    /// Slow path: some count releases reservations. Lock the orders holding
    /// units at the short cells (ascending keys, under the pass lock), then
    /// every stripe they and the changes touch, and release the newest
    /// orders first until every count fits.
    fn update_inventory_with_shortage(
        &self,
        merchant: &MerchantId,
        keys: &[SkuKey],
        changes: &[InventoryChange],
    ) -> Result<(InventoryOutcome, Vec<Sku>)> {
        let _pass = self.shared.pass_lock.lock();
        let cells: BTreeSet<(&Sku, &FcId)> = changes.iter().map(|c| (&c.sku, &c.fc)).collect();
        for _ in 0..SHORTAGE_ATTEMPTS_MAX {
            let mut holders = self.lock_holders(merchant, &cells);
            let mut all_keys = keys.to_vec();
            for holder in &holders {
                all_keys.extend(allocation_keys(holder));
            }
            let mut locked = self.shared.ledger.lock(&all_keys);
            let planned = plan(&locked, keys, changes)?;
            let Some(released) = choose_released(&locked, &planned, &holders) else {
                // A new order reserved at a short cell after the scan: rescan.
                continue;
            };
            let mut shortage_orders = Vec::with_capacity(released.len());
            for index in released {
                let order = &mut holders[index];
                unreserve_locked(&mut locked, order);
                self.shared.slots.release(order);
                order.status = OrderStatus::Exception;
                order.exceptions = shortage_lines(order);
                order.version += 1;
                shortage_orders.push(order.request.order_id.clone());
            }
            let applied = apply(&mut locked, keys, &planned, shortage_orders);
            all_keys.sort_unstable();
            all_keys.dedup();
            let orders: Vec<&Order> = holders.iter().map(|order| &**order).collect();
            self.log_change(&locked, &all_keys, &orders);
            return Ok(applied);
        }
        Err(Error::Contended(
            "inventory count kept racing new reservations; retry".to_string(),
        ))
    }

    /// Lock, in ascending key order, every unpicked order of the merchant
    /// holding units at one of `cells`.
    fn lock_holders(
        &self,
        merchant: &MerchantId,
        cells: &BTreeSet<(&Sku, &FcId)>,
    ) -> Vec<OrderGuard> {
        self.shared.orders.lock_matching(merchant, |order| {
            !order.picked
                && order
                    .allocations
                    .iter()
                    .any(|a| cells.contains(&(&a.sku, &a.fc)))
        })
    }
}

/// What an order released by a count waits for: every unit not shipped
/// yet (units that left in an earlier shipment are not short), all for
/// `INVENTORY_SHORTAGE` since the count took its reservations away.
fn shortage_lines(order: &Order) -> Vec<ExceptionLine> {
    order
        .request
        .lines
        .iter()
        .map(|line| (line, order.outstanding(line)))
        .filter(|&(_, outstanding)| outstanding > 0)
        .map(|(line, quantity)| ExceptionLine {
            sku: line.sku.clone(),
            quantity,
            reason: ExceptionReason::InventoryShortage,
        })
        .collect()
}

/// Work out every change's new on-hand count, refusing impossible ones.
fn plan<'c>(
    locked: &Locked<'_>,
    keys: &[SkuKey],
    changes: &'c [InventoryChange],
) -> Result<Vec<Planned<'c>>> {
    keys.iter()
        .zip(changes)
        .map(|(key, change)| {
            let row = locked.get(key).and_then(|record| record.fc(&change.fc));
            let (current, picked) = row.map_or((0, 0), |row| (row.on_hand, row.picked));
            let on_hand = match change.change {
                CountChange::Set(units) => units,
                CountChange::Adjust(delta) => {
                    let adjusted = i128::from(current) + i128::from(delta);
                    u64::try_from(adjusted).map_err(|_| {
                        Error::FailedPrecondition(format!(
                            "adjusting SKU {} at {} by {delta} would leave {adjusted} units",
                            change.sku, change.fc
                        ))
                    })?
                }
            };
            let on_hand = match u32::try_from(on_hand) {
                Ok(units) if on_hand <= crate::model::limits::UNITS_MAX => units,
                _ => {
                    return Err(Error::FailedPrecondition(format!(
                        "SKU {} at {} would hold {on_hand} units, above the limit of {}",
                        change.sku,
                        change.fc,
                        crate::model::limits::UNITS_MAX
                    )))
                }
            };
            if on_hand < picked {
                return Err(Error::FailedPrecondition(format!(
                    "SKU {} at {}: count {on_hand} is below the {picked} units already picked",
                    change.sku, change.fc
                )));
            }
            Ok(Planned {
                key: key.clone(),
                change,
                on_hand,
                increased: on_hand > current,
            })
        })
        .collect()
}

fn reserved(locked: &Locked<'_>, planned: &Planned<'_>) -> u32 {
    locked
        .get(&planned.key)
        .and_then(|record| record.fc(&planned.change.fc))
        .map_or(0, |row| row.reserved)
}

/// Which holders (indexes into `holders`) to release, newest purchase first,
/// so that every planned count covers what stays reserved. `None` when even
/// releasing all of them is not enough (someone reserved after the scan).
fn choose_released(
    locked: &Locked<'_>,
    planned: &[Planned<'_>],
    holders: &[OrderGuard],
) -> Option<Vec<usize>> {
    let mut still_reserved: HashMap<(&Sku, &FcId), u32> = planned
        .iter()
        .map(|p| ((&p.change.sku, &p.change.fc), reserved(locked, p)))
        .collect();
    let mut newest_first: Vec<usize> = (0..holders.len()).collect();
    newest_first.sort_by(|&a, &b| {
        let key = |i: usize| {
            (
                holders[i].request.purchase_time,
                &holders[i].request.order_id,
            )
        };
        key(b).cmp(&key(a))
    });
    let mut released = Vec::new();
    for p in planned {
        let cell = (&p.change.sku, &p.change.fc);
        for &index in &newest_first {
            if still_reserved[&cell] <= p.on_hand {
                break;
            }
            let holds_here = holders[index]
                .allocations
                .iter()
                .any(|a| (&a.sku, &a.fc) == cell);
            if !holds_here || released.contains(&index) {
                continue;
            }
            released.push(index);
            for a in &holders[index].allocations {
                if let Some(units) = still_reserved.get_mut(&(&a.sku, &a.fc)) {
                    *units -= a.quantity;
                }
            }
        }
        if still_reserved[&cell] > p.on_hand {
            return None;
        }
    }
    Some(released)
}

fn apply(
    locked: &mut Locked<'_>,
    keys: &[SkuKey],
    planned: &[Planned<'_>],
    shortage_orders: Vec<OrderId>,
) -> (InventoryOutcome, Vec<Sku>) {
    for p in planned {
        let row = locked.entry(&p.key).fc_mut(&p.change.fc);
        row.on_hand = p.on_hand;
        assert!(row.reserved <= row.on_hand, "count applied below reserved");
    }
    let mut seen = HashSet::with_capacity(keys.len());
    let views: Vec<InventoryView> = keys
        .iter()
        .filter(|key| seen.insert(key.sku()))
        .map(|key| view(key, locked.get(key).unwrap_or(&SkuRecord::default())))
        .collect();
    let mut grown: Vec<Sku> = planned
        .iter()
        .filter(|p| p.increased)
        .map(|p| p.change.sku.clone())
        .collect();
    grown.sort_unstable();
    grown.dedup();
    let outcome = InventoryOutcome {
        views,
        shortage_orders,
        fifo: None,
    };
    (outcome, grown)
}

pub(super) fn view(key: &SkuKey, record: &SkuRecord) -> InventoryView {
    InventoryView {
        merchant: key.merchant().clone(),
        sku: key.sku().clone(),
        fcs: record.fcs.clone(),
        safety: record.safety.clone(),
    }
}
