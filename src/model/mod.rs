//! Domain types: what the core reasons about. Built only from validated input
//! (see `grpc::convert`), so nothing here re-checks lengths or ranges.

pub mod calendar;
mod decision;
mod event;
mod fc_id;
mod ids;
mod merchant;
mod network;
mod order;
mod shipment;
mod time;

pub use calendar::OperationsDay;
pub use decision::{
    summary, Considered, DecisionRule, FcAssessment, LineShortfall, DECISION_FCS_MAX,
};
pub use event::{EventKind, OrderEvent};
pub use fc_id::{FcId, TooManyFcs, FC_IDS_MAX};
pub use ids::{MerchantId, OrderId, OrderKey, Sku, SkuKey};
pub use merchant::{FifoStrategy, Merchant};
pub use network::{
    distance_between, FulfillmentCenter, GeoPoint, RoutingStrategy, EARTH_RADIUS_KM, LATITUDE_MAX,
    LONGITUDE_MAX,
};
pub use order::{
    Acknowledgement, Allocation, CapacitySlot, Channel, ExceptionLine, ExceptionReason,
    MarketplaceStatus, Order, OrderExtras, OrderLine, OrderRequest, OrderStatus,
};
pub use shipment::{
    ClaimEligibility, LabelSource, ScanOutcome, Shipment, TrackingEvent, TrackingStatus,
    STALLED_AFTER_BUSINESS_DAYS_DEFAULT,
};
pub use time::Timestamp;

/// Limits on what one request may carry. Each one bounds memory or work per
/// request; they are part of the public contract (RULES §8) and documented in
/// the README.
pub mod limits {
    /// Longest id (merchant, order, SKU, FC, tag, tracking number), in bytes.
    pub const ID_BYTES_MAX: usize = 128;
    /// Largest quantity on one order line.
    pub const LINE_QUANTITY_MAX: u32 = 1_000_000;
    /// Most lines on one order.
    pub const ORDER_LINES_MAX: usize = 1_000;
    /// Most orders in one `AllocateBatch`.
    pub const BATCH_ORDERS_MAX: usize = 10_000;
    /// Most entries (SKUs, levels, deltas) in one catalog or inventory request.
    pub const INVENTORY_ENTRIES_MAX: usize = 10_000;
    /// Largest on-hand count and largest absolute adjustment. Below 2^32,
    /// so a ledger count is 32 bits (`ledger::FcStock`).
    pub const UNITS_MAX: u64 = 4_000_000_000;
    // What the 32-bit ledger counts rely on, checked by the compiler.
    const _: () = assert!(UNITS_MAX <= u32::MAX as u64);
    /// Most tags on one SKU, FCs in one priority list, split tags of one merchant.
    pub const LIST_ENTRIES_MAX: usize = 1_000;
    /// Longest free-text field (hold reason, carrier), in bytes.
    pub const TEXT_BYTES_MAX: usize = 1_024;
    /// Largest `ListOrders` page, and the page size when none is given.
    pub const PAGE_SIZE_MAX: usize = 1_000;
    pub const PAGE_SIZE_DEFAULT: usize = 100;
}
