//! The change feed: one event per visible change of an order, for connectors
//! that sync tracking and status back to the store an order came from.

use super::{ExceptionReason, MerchantId, Order, OrderId, OrderStatus, Timestamp, TrackingStatus};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    Allocated,
    Exception,
    Preempted,
    Held,
    Released,
    Cancelled,
    Shipped,
    TrackingStatusChanged,
    Completed,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OrderEvent {
    pub kind: EventKind,
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub status: OrderStatus,
    /// Shipping and tracking events: the shipment's tracking number.
    pub tracking_number: Option<String>,
    pub tracking_status: Option<TrackingStatus>,
    /// When it happened in the domain (label, scan, completion); `None` for
    /// changes the edge stamps with the wall clock as it publishes them.
    pub time: Option<Timestamp>,
    pub order_version: u64,
}

impl OrderEvent {
    /// An event about `order` as it is now.
    pub fn new(kind: EventKind, order: &Order) -> Self {
        Self {
            kind,
            merchant_id: order.request.merchant_id.clone(),
            order_id: order.request.order_id.clone(),
            status: order.status,
            tracking_number: None,
            tracking_status: None,
            time: None,
            order_version: order.version,
        }
    }

    /// The event that announces the state `order` is in after a decision,
    /// a hold, a cancel, a shipment or its completion.
    pub fn of_state(order: &Order) -> Self {
        let kind = match order.status {
            OrderStatus::Processing | OrderStatus::PartiallyAllocated => EventKind::Allocated,
            OrderStatus::Exception
                if order
                    .exceptions
                    .iter()
                    .any(|line| line.reason == ExceptionReason::PreemptedByFifo) =>
            {
                EventKind::Preempted
            }
            OrderStatus::Exception => EventKind::Exception,
            OrderStatus::OnHold => EventKind::Held,
            OrderStatus::Cancelled | OrderStatus::Rejected => EventKind::Cancelled,
            OrderStatus::Shipped => EventKind::Shipped,
            OrderStatus::Completed => EventKind::Completed,
        };
        let mut event = Self::new(kind, order);
        match kind {
            EventKind::Shipped => {
                if let Some(last) = order.shipments.last() {
                    event.tracking_number = Some(last.tracking_number.clone());
                    event.tracking_status = Some(last.status());
                    event.time = Some(last.labelled_at);
                }
            }
            EventKind::Completed => event.time = order.completes_at,
            _ => {}
        }
        event
    }
}
