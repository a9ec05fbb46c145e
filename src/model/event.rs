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
    /// Its place in the change feed: strictly increasing across the
    /// service and its restarts (RULES §13). Numbered as the change behind
    /// it is journaled; 0 until then.
    pub sequence: u64,
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
            sequence: 0,
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
        match kind {
            EventKind::Shipped if !order.shipments().is_empty() => {
                let last = order.shipments().len() - 1;
                Self::about_shipment(kind, order, last, order.shipments()[last].labelled_at)
            }
            EventKind::Completed => Self {
                time: order.extras().completes_at,
                ..Self::new(kind, order)
            },
            _ => Self::new(kind, order),
        }
    }

    /// An event about the shipment at `index` of `order` (shipped, or a
    /// tracking status change), as of `time`.
    pub fn about_shipment(kind: EventKind, order: &Order, index: usize, time: Timestamp) -> Self {
        let shipment = &order.shipments()[index];
        Self {
            tracking_number: Some(shipment.tracking_number.clone()),
            tracking_status: Some(shipment.status()),
            time: Some(time),
            ..Self::new(kind, order)
        }
    }
}
