//! Orders: what upstream sent (`OrderRequest`) and what became of it (`Order`).

use super::{FcId, MerchantId, OrderId, OrderKey, Shipment, Sku, Timestamp};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum Channel {
    #[default]
    Direct,
    Marketplace,
}

/// A marketplace order is `Created` until the marketplace's fraud check passes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum MarketplaceStatus {
    #[default]
    Ready,
    Created,
}

#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct OrderLine {
    pub sku: Sku,
    /// In `1..=LINE_QUANTITY_MAX`.
    pub quantity: u32,
}

/// An order as upstream sent it, validated. Kept unchanged for the order's
/// whole life: retries are compared against it, and re-allocation starts from it.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct OrderRequest {
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub purchase_time: Timestamp,
    /// Non-empty, no SKU twice.
    pub lines: Vec<OrderLine>,
    pub assigned_fc: Option<FcId>,
    /// Overrides the merchant's setting when present.
    pub partial_shipments: Option<bool>,
    pub channel: Channel,
    pub marketplace_status: MarketplaceStatus,
    pub hold_reason: Option<String>,
}

impl OrderRequest {
    pub fn key(&self) -> OrderKey {
        OrderKey::new(&self.merchant_id, &self.order_id)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OrderStatus {
    /// Fully allocated.
    Processing,
    /// Some units allocated, the rest in exception.
    PartiallyAllocated,
    /// Nothing allocated; waits for reprocessing.
    Exception,
    OnHold,
    Shipped,
    Completed,
    Cancelled,
    Rejected,
}

impl OrderStatus {
    /// Orders that the exception reprocessing pass looks at.
    pub fn awaits_stock(self) -> bool {
        matches!(self, Self::Exception | Self::PartiallyAllocated)
    }

    /// Orders that will never change again (except tracking of their shipments).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Shipped | Self::Completed | Self::Cancelled | Self::Rejected
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ExceptionReason {
    InsufficientAtAssignedFc,
    SplitNotAllowed,
    InsufficientNetworkInventory,
    PreemptedByFifo,
    /// A count (`SetInventory`) removed units this order had reserved.
    InventoryShortage,
}

/// What the service told the marketplace about this order (SPEC §7).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum Acknowledgement {
    #[default]
    None,
    Acknowledged,
    CancelledUnknownSku,
    CancelledNoInventory,
    RejectedNoInventory,
}

/// Units of one SKU reserved at one FC for an order.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Allocation {
    pub fc: FcId,
    pub sku: Sku,
    pub quantity: u32,
}

/// Units of one SKU that could not be allocated, and why.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct ExceptionLine {
    pub sku: Sku,
    pub quantity: u32,
    pub reason: ExceptionReason,
}

/// An order and everything decided about it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Order {
    pub request: OrderRequest,
    pub status: OrderStatus,
    /// Reservations this order holds in the ledger, one per (SKU, FC).
    pub allocations: Vec<Allocation>,
    pub exceptions: Vec<ExceptionLine>,
    pub acknowledgement: Acknowledgement,
    /// Picked orders' reservations are frozen: no pass may move them.
    pub picked: bool,
    /// Why the order is on hold (only while `status` is `OnHold`).
    pub hold_reason: Option<String>,
    /// What left the FCs, one shipment per tracking number.
    pub shipments: Vec<Shipment>,
    /// Set once every unit has shipped: 06:00 Central the day after the last
    /// label. From then on the order reads `Completed`.
    pub completes_at: Option<Timestamp>,
    /// Auto-split: the order this one was split from.
    pub parent: Option<OrderId>,
    /// Auto-split: the orders split from this one, in tag order.
    pub children: Vec<OrderId>,
    /// Auto-split parents only: the order as upstream sent it, all lines
    /// included (`request` keeps the parent's own lines). Retries compare
    /// against this.
    pub submitted: Option<Box<OrderRequest>>,
    /// Increases by one with every change, so clients can spot stale reads.
    pub version: u64,
    pub imported_at: Timestamp,
}

impl Order {
    /// A freshly imported order, before its first decision.
    pub fn imported(request: OrderRequest, now: Timestamp) -> Self {
        Self {
            request,
            status: OrderStatus::Exception,
            allocations: Vec::new(),
            exceptions: Vec::new(),
            acknowledgement: Acknowledgement::None,
            picked: false,
            hold_reason: None,
            shipments: Vec::new(),
            completes_at: None,
            parent: None,
            children: Vec::new(),
            submitted: None,
            version: 0,
            imported_at: now,
        }
    }

    pub fn key(&self) -> OrderKey {
        self.request.key()
    }

    /// Units reserved for this order.
    pub fn allocated_units(&self) -> u64 {
        self.allocations.iter().map(|a| u64::from(a.quantity)).sum()
    }

    /// The order as upstream sent it (before any auto-split).
    pub fn submitted(&self) -> &OrderRequest {
        self.submitted.as_deref().unwrap_or(&self.request)
    }

    /// Units of `sku` that have left in shipments.
    pub fn shipped_units(&self, sku: &Sku) -> u32 {
        self.shipments
            .iter()
            .flat_map(|shipment| &shipment.items)
            .filter(|item| item.sku == *sku)
            .map(|item| item.quantity)
            .sum()
    }

    /// Units of each line still to allocate or ship: the line's quantity
    /// less what already shipped.
    pub fn outstanding(&self, line: &OrderLine) -> u32 {
        line.quantity.saturating_sub(self.shipped_units(&line.sku))
    }

    /// The status as it reads at `as_of`: a shipped order reads `Completed`
    /// from its completion time on, whether or not the sweep recorded it yet.
    pub fn status_at(&self, as_of: Timestamp) -> OrderStatus {
        match self.completes_at {
            Some(at) if self.status == OrderStatus::Shipped && as_of >= at => {
                OrderStatus::Completed
            }
            _ => self.status,
        }
    }
}
