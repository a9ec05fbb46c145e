//! Moving one order through its life: hold, release, cancel, pick.

use crate::error::{Error, Result};
use crate::ledger::Stock;
use crate::model::{
    Allocation, EventKind, MerchantId, Order, OrderEvent, OrderKey, OrderStatus, SkuKey, Timestamp,
};
use crate::order_book::OrderGuard;

use super::allocate::Occasion;
use super::Engine;

impl Engine {
    /// The order's lock, or `NotFound`.
    pub(super) fn lock_order(&self, key: &OrderKey) -> Result<OrderGuard> {
        match self.shared.orders.get(key) {
            Some(order) => Ok(order.lock_arc()),
            None => Err(not_found(key)),
        }
    }

    /// Put an order on hold, giving back everything it had reserved (the
    /// seed's way to free stock held by a partially allocated order).
    pub fn hold(&self, key: &OrderKey, reason: String) -> Result<Order> {
        let mut order = self.lock_order(key)?;
        if order.picked {
            return Err(Error::FailedPrecondition(format!(
                "order {} is picked; a picked order cannot be held",
                key.order
            )));
        }
        refuse_if_final(&order, "held")?;
        if order.status == OrderStatus::OnHold && order.hold_reason() == Some(reason.as_str()) {
            return Ok(order.clone());
        }
        self.unreserve_and(&mut order, |order| {
            order.status = OrderStatus::OnHold;
            order.set_hold_reason(Some(reason));
            order.exceptions.clear();
        });
        Ok(order.clone())
    }

    /// Take an order off hold and allocate it again, as if imported at
    /// `now` but keeping its purchase time.
    pub fn release(&self, key: &OrderKey, now: Timestamp) -> Result<Order> {
        let mut order = self.lock_order(key)?;
        if order.status != OrderStatus::OnHold {
            return Err(Error::FailedPrecondition(format!(
                "order {} is {:?}, not on hold",
                key.order, order.status
            )));
        }
        let merchant = self.merchant(&key.merchant);
        // Its own entry in the log: the decision that follows is another.
        self.append(&[], |events| {
            events.push(OrderEvent::new(EventKind::Released, &order))
        });
        self.decide(&mut order, &merchant, Occasion::Again, false, now);
        Ok(order.clone())
    }

    /// Cancel an order that has not shipped, giving back its reservations
    /// (picked units too: they go back to the shelf). Cancelling twice is a
    /// no-op.
    pub fn cancel(&self, key: &OrderKey) -> Result<Order> {
        let mut order = self.lock_order(key)?;
        if order.status == OrderStatus::Cancelled {
            return Ok(order.clone());
        }
        if !order.shipments().is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "order {} has shipped units; a shipped order is refunded, not cancelled",
                key.order
            )));
        }
        refuse_if_final(&order, "cancelled")?;
        self.unreserve_and(&mut order, |order| {
            order.status = OrderStatus::Cancelled;
            order.exceptions.clear();
            order.set_hold_reason(None);
        });
        Ok(order.clone())
    }

    /// Record that the warehouse picked an order: its reservations are frozen
    /// from now on (no FIFO pass or count may take them). Picking twice is a
    /// no-op.
    pub fn mark_picked(&self, key: &OrderKey) -> Result<Order> {
        let mut order = self.lock_order(key)?;
        if order.picked {
            return Ok(order.clone());
        }
        if !matches!(
            order.status,
            OrderStatus::Processing | OrderStatus::PartiallyAllocated
        ) {
            return Err(Error::FailedPrecondition(format!(
                "order {} is {:?}; only an allocated order can be picked",
                key.order, order.status
            )));
        }
        let keys = allocation_keys(&order);
        let mut locked = self.shared.ledger.lock(&keys);
        for (allocation, key) in order.allocations.iter().zip(&keys) {
            locked.entry(key).pick(&allocation.fc, allocation.quantity);
        }
        order.picked = true;
        order.version += 1;
        // Picking is warehouse-internal: journaled, not announced.
        self.record(&locked, &keys, &[&order], |_| {});
        drop(locked);
        Ok(order.clone())
    }

    /// Give back every unit the order holds, change it with `update`, and
    /// journal both, in one critical section. The caller holds the order's lock.
    fn unreserve_and(&self, order: &mut Order, update: impl FnOnce(&mut Order)) {
        let keys = allocation_keys(order);
        let mut locked = self.shared.ledger.lock(&keys);
        unreserve_locked(&mut locked, order);
        self.shared.slots.release(order);
        update(order);
        order.version += 1;
        self.log_change(&locked, &keys, &[order]);
    }
}

/// Give back every unit the order holds, with its stripes already locked.
pub(super) fn unreserve_locked(stock: &mut impl Stock, order: &mut Order) {
    unreserve_allocations(
        stock,
        &order.request.merchant_id,
        &order.allocations,
        order.picked,
    );
    order.allocations.clear();
    order.picked = false;
}

/// Give back `allocations` of a merchant's order (picked units too, when
/// `picked`), with their stripes already locked.
pub(super) fn unreserve_allocations(
    stock: &mut impl Stock,
    merchant: &MerchantId,
    allocations: &[Allocation],
    picked: bool,
) {
    for allocation in allocations {
        let key = SkuKey::new(merchant, &allocation.sku);
        stock
            .entry(&key)
            .unreserve(&allocation.fc, allocation.quantity, picked);
    }
}

/// The ledger keys of an order's allocations, in allocation order.
pub(super) fn allocation_keys(order: &Order) -> Vec<SkuKey> {
    order
        .allocations
        .iter()
        .map(|allocation| SkuKey::new(&order.request.merchant_id, &allocation.sku))
        .collect()
}

pub(super) fn refuse_if_final(order: &Order, verb: &str) -> Result<()> {
    if order.status.is_final() {
        return Err(Error::FailedPrecondition(format!(
            "order {} is {:?} and cannot be {verb}",
            order.request.order_id, order.status
        )));
    }
    Ok(())
}

pub(super) fn not_found(key: &OrderKey) -> Error {
    Error::NotFound(format!("order {} of merchant {}", key.order, key.merchant))
}
