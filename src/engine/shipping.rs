//! Shipping and carrier tracking (RULES §6): consuming reservations under a
//! tracking number, recording scans, answering tracking and claim questions,
//! and completing shipped orders at 06:00 Central the next day.

use crate::error::{Error, Result};
use crate::model::calendar::completion_time;
use crate::model::{
    EventKind, FcId, LabelSource, Order, OrderEvent, OrderKey, OrderStatus, ScanOutcome, Shipment,
    SkuKey, Timestamp, TrackingEvent,
};

use super::lifecycle::refuse_if_final;
use super::Engine;

/// `ShipOrder`: the allocation of one order at one FC leaves under one label.
#[derive(Clone, Debug)]
pub struct ShipRequest {
    pub order: OrderKey,
    pub fc: FcId,
    pub tracking_number: String,
    pub carrier: String,
    pub label_source: LabelSource,
    /// When the label was made.
    pub at: Timestamp,
}

/// `RecordTrackingEvent`: one carrier scan of one tracking number.
#[derive(Clone, Debug)]
pub struct TrackingScan {
    pub tracking_number: String,
    pub event: TrackingEvent,
}

impl Engine {
    /// Ship everything the order has reserved at one FC. The reservations
    /// are consumed (`on_hand` and `reserved` both drop); once nothing is
    /// reserved or waiting any more, the order is `Shipped` and completes
    /// at 06:00 Central the next day. Repeating the same shipment returns
    /// the order unchanged.
    pub fn ship(&self, request: ShipRequest) -> Result<Order> {
        // Claim the tracking number first, so two shipments can never share one.
        match self.shared.tracking.entry(request.tracking_number.clone()) {
            dashmap::Entry::Occupied(used) => {
                let owner = used.get().clone();
                drop(used);
                return self.repeated_shipment(&request, &owner);
            }
            dashmap::Entry::Vacant(free) => {
                free.insert(request.order.clone());
            }
        }
        let shipped = self.ship_claimed(&request);
        if shipped.is_err() {
            self.shared.tracking.remove(&request.tracking_number);
        }
        shipped
    }

    fn ship_claimed(&self, request: &ShipRequest) -> Result<Order> {
        let mut order = self.lock_order(&request.order)?;
        if order.status == OrderStatus::OnHold {
            return Err(Error::FailedPrecondition(format!(
                "order {} is on hold; release it before shipping",
                request.order.order
            )));
        }
        refuse_if_final(&order, "shipped")?;
        let (leaving, staying): (Vec<_>, Vec<_>) = order
            .allocations
            .drain(..)
            .partition(|allocation| allocation.fc == request.fc);
        order.allocations = staying;
        if leaving.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "order {} has no units allocated at FC {}",
                request.order.order, request.fc
            )));
        }

        let keys: Vec<SkuKey> = leaving
            .iter()
            .map(|item| SkuKey::new(&request.order.merchant, &item.sku))
            .collect();
        let mut locked = self.shared.ledger.lock(&keys);
        for (item, key) in leaving.iter().zip(&keys) {
            locked
                .entry(key)
                .ship(&item.fc, item.quantity, order.picked);
        }
        order.extras_mut().shipments.push(Shipment::labelled(
            request.tracking_number.clone(),
            request.carrier.clone(),
            request.label_source,
            request.fc,
            leaving,
            request.at,
        ));
        if order.allocations.is_empty() {
            order.picked = false;
            if order.exceptions.is_empty() {
                order.status = OrderStatus::Shipped;
                order.extras_mut().completes_at = Some(completion_time(request.at));
            } else {
                // What is left waits for stock, as any unallocated order.
                order.status = OrderStatus::Exception;
            }
        }
        order.version += 1;
        self.record(&locked, &keys, &[&order], |events| {
            let index = order.shipments().len() - 1;
            events.push(OrderEvent::about_shipment(
                EventKind::Shipped,
                &order,
                index,
                request.at,
            ))
        });
        drop(locked);
        self.schedule_completion(&order);
        Ok(order.clone())
    }

    /// A tracking number already in use: the same shipment sent again is
    /// answered with the order; anything else is refused.
    fn repeated_shipment(&self, request: &ShipRequest, owner: &OrderKey) -> Result<Order> {
        let order = self.order(owner)?;
        let same = *owner == request.order
            && order.shipments().iter().any(|shipment| {
                shipment.tracking_number == request.tracking_number
                    && shipment.fc == request.fc
                    && shipment.carrier == request.carrier
                    && shipment.label_source == request.label_source
            });
        if same {
            Ok(order)
        } else {
            Err(Error::AlreadyExists(format!(
                "tracking number {} is already used by order {} of merchant {}",
                request.tracking_number, owner.order, owner.merchant
            )))
        }
    }

    /// Record a carrier scan. Scans may arrive late or twice: the history
    /// is kept in scan-time order, an identical scan is recorded once, and
    /// the status is the furthest any scan reached.
    pub fn record_tracking(&self, scan: TrackingScan) -> Result<(Order, usize)> {
        let key = self.tracking_owner(&scan.tracking_number)?;
        let mut order = self.lock_order(&key)?;
        let index = shipment_index(&order, &scan.tracking_number)?;
        let outcome = order.extras_mut().shipments[index].record(scan.event);
        if outcome != ScanOutcome::Duplicate {
            order.version += 1;
            self.record_order(&order, |events| {
                if outcome == ScanOutcome::Advanced {
                    let kind = EventKind::TrackingStatusChanged;
                    events.push(OrderEvent::about_shipment(
                        kind,
                        &order,
                        index,
                        scan.event.time,
                    ));
                }
            });
        }
        Ok((order.clone(), index))
    }

    /// The order that shipped under `tracking_number`, and the shipment's index in it.
    pub fn shipment(&self, tracking_number: &str) -> Result<(Order, usize)> {
        let key = self.tracking_owner(tracking_number)?;
        let order = self.order(&key)?;
        let index = shipment_index(&order, tracking_number)?;
        Ok((order, index))
    }

    /// Business days without a scan after which a parcel is stalled.
    pub fn stalled_after_business_days(&self) -> u32 {
        self.shared.config.stalled_after_business_days
    }

    /// Record `Completed` for every shipped order whose completion time is
    /// at or before `now`. Reads are already right before this runs (see
    /// `Order::status_at`); this makes it durable and announces it.
    /// Returns how many orders completed.
    pub fn complete_due(&self, now: Timestamp) -> usize {
        let due: Vec<(Timestamp, OrderKey)> = {
            let mut pending = self.shared.completions.lock();
            let mut due = Vec::new();
            while pending.first().is_some_and(|(at, _)| *at <= now) {
                due.extend(pending.pop_first());
            }
            due
        };
        let mut completed = 0;
        for (_, key) in due {
            let Ok(mut order) = self.lock_order(&key) else {
                continue;
            };
            if order.status == OrderStatus::Shipped {
                order.status = OrderStatus::Completed;
                order.version += 1;
                self.log_order(&order);
                completed += 1;
            }
        }
        completed
    }

    fn tracking_owner(&self, tracking_number: &str) -> Result<OrderKey> {
        match self.shared.tracking.get(tracking_number) {
            Some(owner) => Ok(owner.clone()),
            None => Err(Error::NotFound(format!(
                "tracking number {tracking_number}"
            ))),
        }
    }
}

fn shipment_index(order: &Order, tracking_number: &str) -> Result<usize> {
    order
        .shipments()
        .iter()
        .position(|shipment| shipment.tracking_number == tracking_number)
        // The index names it, but the shipment is not recorded yet: a
        // `ShipOrder` of it is still in progress.
        .ok_or_else(|| Error::NotFound(format!("tracking number {tracking_number}")))
}
