//! Converting between protobuf messages and domain types. Incoming messages
//! are validated here, once, field by field; every violation is named by
//! its path in the request. Each message is destructured completely, so a
//! field added to the proto breaks the build here rather than being
//! silently ignored.

use std::collections::HashSet;
use std::fmt::Display;

use crate::engine::{CountChange, InventoryChange, InventoryView, PageCursor, SafetyLevel};
use crate::error::{Error, FieldViolation, Result};
use crate::ledger::SkuInfo;
use crate::model::limits::{
    BATCH_ORDERS_MAX, ID_BYTES_MAX, INVENTORY_ENTRIES_MAX, LINE_QUANTITY_MAX, LIST_ENTRIES_MAX,
    ORDER_LINES_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, TEXT_BYTES_MAX, UNITS_MAX,
};
use crate::model::{
    Acknowledgement, Allocation, Channel, Considered, ExceptionLine, ExceptionReason, FcId,
    FifoStrategy, FulfillmentCenter, GeoPoint, MarketplaceStatus, Merchant, MerchantId, Order,
    OrderExtras, OrderId, OrderKey, OrderLine, OrderRequest, OrderStatus, RoutingStrategy, Sku,
    Timestamp, LATITUDE_MAX, LONGITUDE_MAX,
};

use super::{decision, proto, shipping};

/// Collects every violation of a request, so the caller learns of all of
/// them at once.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Field paths are `Display` so that callers can pass `format_args!`: a
    /// path is only written out when something is wrong with its field.
    pub(super) fn add(&mut self, field: impl Display, description: impl Into<String>) {
        self.0
            .push(FieldViolation::new(field.to_string(), description));
    }

    /// Check an id: non-empty, at most `ID_BYTES_MAX` bytes, no control characters.
    pub fn id(&mut self, field: impl Display, value: &str) -> bool {
        let problem = if value.is_empty() {
            "must not be empty".to_string()
        } else if value.len() > ID_BYTES_MAX {
            format!("must be at most {ID_BYTES_MAX} bytes, got {}", value.len())
        } else if value.chars().any(char::is_control) {
            "must not contain control characters".to_string()
        } else {
            return true;
        };
        self.add(field, problem);
        false
    }

    /// Check an FC id as [`Violations::id`] does, and intern it (`None` when
    /// it is invalid or the process holds too many FC names).
    pub(super) fn fc(&mut self, field: impl Display + Copy, value: &str) -> Option<FcId> {
        if !self.id(field, value) {
            return None;
        }
        match FcId::intern(value) {
            Ok(fc) => Some(fc),
            Err(full) => {
                self.add(field, full.to_string());
                None
            }
        }
    }

    /// Check a location: finite degrees, latitude in −90..=90 and
    /// longitude in −180..=180, each violation named by its field.
    pub(super) fn point(
        &mut self,
        field: impl Display,
        point: proto::GeoPoint,
    ) -> Option<GeoPoint> {
        let proto::GeoPoint {
            latitude,
            longitude,
        } = point;
        for (name, value, limit) in [
            ("latitude", latitude, LATITUDE_MAX),
            ("longitude", longitude, LONGITUDE_MAX),
        ] {
            if !(value.is_finite() && (-limit..=limit).contains(&value)) {
                self.add(
                    format_args!("{field}.{name}"),
                    format!(
                        "must be a finite number of degrees in -{limit}..={limit}, got {value}"
                    ),
                );
            }
        }
        GeoPoint::new(latitude, longitude)
    }

    pub(super) fn text(&mut self, field: impl Display, value: &str) {
        if value.len() > TEXT_BYTES_MAX {
            self.add(
                field,
                format!(
                    "must be at most {TEXT_BYTES_MAX} bytes, got {}",
                    value.len()
                ),
            );
        }
    }

    fn count(&mut self, field: impl Display, len: usize, max: usize) {
        if len > max {
            self.add(field, format!("at most {max} entries, got {len}"));
        }
    }

    fn non_empty(&mut self, field: impl Display, len: usize) {
        if len == 0 {
            self.add(field, "must not be empty");
        }
    }

    pub(super) fn enumeration<E: TryFrom<i32>>(
        &mut self,
        field: impl Display,
        value: i32,
    ) -> Option<E> {
        let parsed = E::try_from(value).ok();
        if parsed.is_none() {
            self.add(field, format!("unknown enum value {value}"));
        }
        parsed
    }

    pub(super) fn timestamp(
        &mut self,
        field: impl Display,
        value: prost_types::Timestamp,
    ) -> Timestamp {
        // google.protobuf.Timestamp's own range: JSON clients (grpcurl)
        // cannot render a time outside it, so none is ever stored.
        const SECONDS: std::ops::RangeInclusive<i64> =
            TIMESTAMP_SECONDS_MIN..=TIMESTAMP_SECONDS_MAX;
        match u32::try_from(value.nanos) {
            Ok(nanos) if nanos < 1_000_000_000 && SECONDS.contains(&value.seconds) => Timestamp {
                seconds: value.seconds,
                nanos,
            },
            Ok(nanos) if nanos < 1_000_000_000 => {
                self.add(field, "must be within years 0001 to 9999 (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z)");
                Timestamp::default()
            }
            _ => {
                self.add(field, "nanos must be in 0..1e9");
                Timestamp::default()
            }
        }
    }

    /// `Ok(value)` if nothing was violated.
    pub fn finish<T>(self, value: T) -> Result<T> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// 0001-01-01T00:00:00Z, in seconds since the Unix epoch.
const TIMESTAMP_SECONDS_MIN: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z, in seconds since the Unix epoch.
const TIMESTAMP_SECONDS_MAX: i64 = 253_402_300_799;

/// `as_of`, or the wall clock when absent.
pub fn as_of(value: Option<prost_types::Timestamp>) -> Result<Timestamp> {
    let mut violations = Violations::default();
    let time = match value {
        Some(value) => violations.timestamp("as_of", value),
        None => Timestamp::now(),
    };
    violations.finish(time)
}

pub fn merchant_id(value: &str) -> Result<MerchantId> {
    let mut violations = Violations::default();
    violations.id("merchant_id", value);
    violations.finish(MerchantId::new(value))
}

pub fn order_key(merchant_id: &str, order_id: &str) -> Result<OrderKey> {
    let mut violations = Violations::default();
    violations.id("merchant_id", merchant_id);
    violations.id("order_id", order_id);
    violations.finish(OrderKey::new(
        &MerchantId::new(merchant_id),
        &OrderId::new(order_id),
    ))
}

pub fn sku_of(merchant_id: &str, sku: &str) -> Result<(MerchantId, Sku)> {
    let mut violations = Violations::default();
    violations.id("merchant_id", merchant_id);
    violations.id("sku", sku);
    violations.finish((MerchantId::new(merchant_id), Sku::new(sku)))
}

pub fn hold_reason(reason: &str) -> Result<String> {
    let mut violations = Violations::default();
    violations.text("reason", reason);
    let reason = if reason.is_empty() {
        "held by operator"
    } else {
        reason
    };
    violations.finish(reason.to_string())
}

/// Orders up to this many lines look for a repeated SKU without a hash set.
const LINEAR_SEARCH_LINES_MAX: usize = 16;

/// Validate one order. `prefix` names it in the request (`order`, `orders[3]`).
pub fn order_request(order: proto::Order, prefix: &dyn Display) -> Result<OrderRequest> {
    let proto::Order {
        merchant_id,
        order_id,
        purchase_time,
        lines,
        assigned_fc_id,
        partial_shipments,
        channel,
        marketplace_status,
        hold_reason,
        ship_to,
    } = order;
    let mut v = Violations::default();
    v.id(format_args!("{prefix}.merchant_id"), &merchant_id);
    v.id(format_args!("{prefix}.order_id"), &order_id);
    let purchase_time = match purchase_time {
        Some(time) => v.timestamp(format_args!("{prefix}.purchase_time"), time),
        None => {
            v.add(format_args!("{prefix}.purchase_time"), "is required");
            Timestamp::default()
        }
    };
    v.non_empty(format_args!("{prefix}.lines"), lines.len());
    v.count(format_args!("{prefix}.lines"), lines.len(), ORDER_LINES_MAX);
    let mut order_lines: Vec<OrderLine> = Vec::with_capacity(lines.len().min(ORDER_LINES_MAX));
    // Repeated SKUs: most orders are short, and for them a linear search
    // over the lines taken so far needs no set to be allocated. Longer
    // orders use a set, so one at the 1,000-line limit costs no quadratic time.
    let search_linearly = lines.len() <= LINEAR_SEARCH_LINES_MAX;
    let mut long_order_skus: HashSet<&str> = HashSet::new();
    for (i, proto::OrderLine { sku, quantity }) in lines.iter().enumerate().take(ORDER_LINES_MAX) {
        let quantity = *quantity;
        if v.id(format_args!("{prefix}.lines[{i}].sku"), sku)
            && if search_linearly {
                order_lines.iter().any(|line| line.sku.as_str() == sku)
            } else {
                !long_order_skus.insert(sku)
            }
        {
            v.add(
                format_args!("{prefix}.lines[{i}].sku"),
                format!("SKU {sku} appears on more than one line"),
            );
        }
        if quantity == 0 || quantity > LINE_QUANTITY_MAX {
            v.add(
                format_args!("{prefix}.lines[{i}].quantity"),
                format!("must be in 1..={LINE_QUANTITY_MAX}, got {quantity}"),
            );
        }
        order_lines.push(OrderLine {
            sku: Sku::new(sku),
            quantity,
        });
    }
    let assigned_fc = assigned_fc_id
        .as_deref()
        .and_then(|fc| v.fc(format_args!("{prefix}.assigned_fc_id"), fc));
    let channel = v.enumeration::<proto::Channel>(format_args!("{prefix}.channel"), channel);
    let marketplace_status = v.enumeration::<proto::MarketplaceStatus>(
        format_args!("{prefix}.marketplace_status"),
        marketplace_status,
    );
    v.text(format_args!("{prefix}.hold_reason"), &hold_reason);
    let ship_to = ship_to.and_then(|point| v.point(format_args!("{prefix}.ship_to"), point));
    v.finish(())?;
    Ok(OrderRequest {
        merchant_id: MerchantId::new(&merchant_id),
        order_id: OrderId::new(&order_id),
        purchase_time,
        lines: order_lines,
        assigned_fc,
        partial_shipments,
        channel: match channel {
            Some(proto::Channel::Marketplace) => Channel::Marketplace,
            _ => Channel::Direct,
        },
        marketplace_status: match marketplace_status {
            Some(proto::MarketplaceStatus::Created) => MarketplaceStatus::Created,
            _ => MarketplaceStatus::Ready,
        },
        hold_reason: (!hold_reason.is_empty()).then_some(hold_reason),
        ship_to,
    })
}

/// `UpsertFulfillmentCenter`: an FC of the network.
pub fn fulfillment_center(fc: proto::FulfillmentCenter) -> Result<FulfillmentCenter> {
    let proto::FulfillmentCenter {
        fc_id,
        name,
        location,
        daily_order_capacity,
        orders_today: _,
    } = fc;
    let mut v = Violations::default();
    let fc = v.fc("fc_id", &fc_id);
    v.text("name", &name);
    let location = location.and_then(|point| v.point("location", point));
    v.finish(())?;
    Ok(FulfillmentCenter {
        fc: fc.expect("a valid id"),
        name,
        location,
        daily_order_capacity,
    })
}

/// An FC as listed; `orders_today`: the slots taken in the listing's day.
pub fn fulfillment_center_to_proto(
    fc: &FulfillmentCenter,
    orders_today: u32,
) -> proto::FulfillmentCenter {
    proto::FulfillmentCenter {
        fc_id: fc.fc.to_string(),
        name: fc.name.clone(),
        location: fc.location.map(|point| proto::GeoPoint {
            latitude: point.latitude(),
            longitude: point.longitude(),
        }),
        daily_order_capacity: fc.daily_order_capacity,
        orders_today,
    }
}

/// Check the size of a batch before converting its orders one by one.
/// An allocation answer's view (RULES §15).
pub fn order_view(value: i32) -> Result<proto::OrderView> {
    let mut v = Violations::default();
    let view = v.enumeration("view", value);
    v.finish(view.unwrap_or_default())
}

/// `SimulateSettings`: the proposed settings (validated as `UpsertMerchant`
/// validates them, violations named under `merchant.`) and how many
/// resulting orders to answer.
pub fn simulate_settings(
    request: proto::SimulateSettingsRequest,
) -> Result<(Merchant, Timestamp, usize)> {
    let proto::SimulateSettingsRequest {
        merchant,
        as_of,
        orders_max,
    } = request;
    let as_of = self::as_of(as_of)?;
    let Some(proposed) = merchant else {
        return Err(Error::invalid("merchant", "is required"));
    };
    let proposed = self::merchant(proposed).map_err(|error| match error {
        Error::InvalidArgument(violations) => Error::InvalidArgument(
            violations
                .into_iter()
                .map(|v| FieldViolation::new(format!("merchant.{}", v.field), v.description))
                .collect(),
        ),
        other => other,
    })?;
    let max = super::decision::SIMULATION_ORDERS_MAX;
    if orders_max > max {
        return Err(Error::invalid(
            "orders_max",
            format!("must be at most {max}, got {orders_max}"),
        ));
    }
    Ok((proposed, as_of, orders_max as usize))
}

pub fn batch_size(orders: usize) -> Result<()> {
    let mut v = Violations::default();
    v.non_empty("orders", orders);
    v.count("orders", orders, BATCH_ORDERS_MAX);
    v.finish(())
}

pub fn merchant(merchant: proto::Merchant) -> Result<Merchant> {
    let proto::Merchant {
        merchant_id,
        partial_shipments,
        fifo_strategy,
        fc_priority,
        auto_acknowledge,
        accept_regardless_of_inventory,
        split_tags,
        routing_strategy,
    } = merchant;
    let mut v = Violations::default();
    v.id("merchant_id", &merchant_id);
    let fifo = v.enumeration::<proto::FifoStrategy>("fifo_strategy", fifo_strategy);
    let routing = v.enumeration::<proto::RoutingStrategy>("routing_strategy", routing_strategy);
    v.count("fc_priority", fc_priority.len(), LIST_ENTRIES_MAX);
    let mut ranked_fcs = Vec::with_capacity(fc_priority.len().min(LIST_ENTRIES_MAX));
    for (i, name) in fc_priority.iter().enumerate().take(LIST_ENTRIES_MAX) {
        let field = format_args!("fc_priority[{i}]");
        match v.fc(field, name) {
            Some(fc) if ranked_fcs.contains(&fc) => v.add(field, format!("{name} is listed twice")),
            Some(fc) => ranked_fcs.push(fc),
            None => {}
        }
    }
    v.count("split_tags", split_tags.len(), LIST_ENTRIES_MAX);
    unique_ids(&mut v, "split_tags", &split_tags);
    v.finish(Merchant {
        merchant_id: MerchantId::new(&merchant_id),
        partial_shipments,
        fifo_strategy: match fifo {
            Some(proto::FifoStrategy::Full) => FifoStrategy::Full,
            Some(proto::FifoStrategy::Partial) => FifoStrategy::Partial,
            _ => FifoStrategy::None,
        },
        fc_priority: ranked_fcs,
        auto_acknowledge,
        accept_regardless_of_inventory,
        split_tags,
        routing: match routing {
            Some(proto::RoutingStrategy::Closest) => RoutingStrategy::Closest,
            _ => RoutingStrategy::Ranked,
        },
    })
}

fn unique_ids(v: &mut Violations, field: impl Display, ids: &[String]) {
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate().take(LIST_ENTRIES_MAX) {
        if v.id(format_args!("{field}[{i}]"), id) && !seen.insert(id) {
            v.add(
                format_args!("{field}[{i}]"),
                format!("{id} is listed twice"),
            );
        }
    }
}

pub fn register_skus(
    request: proto::RegisterSkusRequest,
) -> Result<(MerchantId, Vec<(Sku, SkuInfo)>)> {
    let proto::RegisterSkusRequest { merchant_id, skus } = request;
    let mut v = Violations::default();
    v.id("merchant_id", &merchant_id);
    v.non_empty("skus", skus.len());
    v.count("skus", skus.len(), INVENTORY_ENTRIES_MAX);
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(skus.len().min(INVENTORY_ENTRIES_MAX));
    for (
        i,
        proto::Sku {
            sku,
            tags,
            replenishable,
        },
    ) in skus.into_iter().enumerate().take(INVENTORY_ENTRIES_MAX)
    {
        if v.id(format_args!("skus[{i}].sku"), &sku) && !seen.insert(sku.clone()) {
            v.add(
                format_args!("skus[{i}].sku"),
                format!("SKU {sku} is listed twice"),
            );
        }
        v.count(format_args!("skus[{i}].tags"), tags.len(), LIST_ENTRIES_MAX);
        unique_ids(&mut v, format_args!("skus[{i}].tags"), &tags);
        entries.push((
            Sku::new(&sku),
            SkuInfo {
                registered: true,
                tags,
                replenishable,
            },
        ));
    }
    v.finish((MerchantId::new(&merchant_id), entries))
}

/// One inventory entry of a set or adjust request, before its value is checked.
struct Entry {
    sku: String,
    fc_id: String,
    change: CountChange,
}

fn inventory_changes(
    merchant_id: &str,
    field: &str,
    entries: Vec<Entry>,
) -> Result<(MerchantId, Vec<InventoryChange>)> {
    let mut v = Violations::default();
    v.id("merchant_id", merchant_id);
    v.non_empty(field, entries.len());
    v.count(field, entries.len(), INVENTORY_ENTRIES_MAX);
    let mut seen = HashSet::new();
    let mut changes = Vec::with_capacity(entries.len().min(INVENTORY_ENTRIES_MAX));
    for (i, Entry { sku, fc_id, change }) in
        entries.into_iter().enumerate().take(INVENTORY_ENTRIES_MAX)
    {
        let sku_ok = v.id(format_args!("{field}[{i}].sku"), &sku);
        let fc = v.fc(format_args!("{field}[{i}].fc_id"), &fc_id);
        if sku_ok && fc.is_some() && !seen.insert((sku.clone(), fc_id.clone())) {
            v.add(
                format_args!("{field}[{i}]"),
                format!("SKU {sku} at {fc_id} is listed twice"),
            );
        }
        let (value_field, units) = match change {
            CountChange::Set(units) => ("on_hand", units),
            CountChange::Adjust(delta) => ("delta", delta.unsigned_abs()),
        };
        if units > UNITS_MAX {
            v.add(
                format_args!("{field}[{i}].{value_field}"),
                format!("magnitude must be at most {UNITS_MAX}"),
            );
        }
        if change == CountChange::Adjust(0) {
            v.add(format_args!("{field}[{i}].delta"), "must not be zero");
        }
        if let Some(fc) = fc {
            changes.push(InventoryChange {
                sku: Sku::new(&sku),
                fc,
                change,
            });
        }
    }
    v.finish((MerchantId::new(merchant_id), changes))
}

/// `SetSafetyStock`: levels per (SKU, FC), or per SKU for every FC.
pub fn set_safety_stock(
    request: proto::SetSafetyStockRequest,
) -> Result<(MerchantId, Vec<SafetyLevel>)> {
    let proto::SetSafetyStockRequest {
        merchant_id,
        levels,
        as_of: _,
    } = request;
    let mut v = Violations::default();
    v.id("merchant_id", &merchant_id);
    v.non_empty("levels", levels.len());
    v.count("levels", levels.len(), INVENTORY_ENTRIES_MAX);
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(levels.len().min(INVENTORY_ENTRIES_MAX));
    for (i, proto::SafetyStockLevel { sku, fc_id, units }) in
        levels.iter().enumerate().take(INVENTORY_ENTRIES_MAX)
    {
        let sku_ok = v.id(format_args!("levels[{i}].sku"), sku);
        let fc = match fc_id.as_str() {
            "" => Some(None),
            id => v.fc(format_args!("levels[{i}].fc_id"), id).map(Some),
        };
        if sku_ok && fc.is_some() && !seen.insert((sku, fc_id)) {
            v.add(
                format_args!("levels[{i}]"),
                format!("SKU {sku} at {fc_id:?} is listed twice"),
            );
        }
        let units = match u32::try_from(*units) {
            Ok(units) if u64::from(units) <= UNITS_MAX => units,
            _ => {
                v.add(
                    format_args!("levels[{i}].units"),
                    format!("must be in 0..={UNITS_MAX}, got {units}"),
                );
                0
            }
        };
        if let Some(fc) = fc {
            parsed.push(SafetyLevel {
                sku: Sku::new(sku),
                fc,
                units,
            });
        }
    }
    v.finish((MerchantId::new(&merchant_id), parsed))
}

pub fn set_inventory(
    request: proto::SetInventoryRequest,
) -> Result<(MerchantId, Vec<InventoryChange>)> {
    let proto::SetInventoryRequest {
        merchant_id,
        levels,
        as_of: _,
    } = request;
    let entries = levels
        .into_iter()
        .map(
            |proto::InventoryLevel {
                 sku,
                 fc_id,
                 on_hand,
             }| Entry {
                sku,
                fc_id,
                change: CountChange::Set(on_hand),
            },
        )
        .collect();
    inventory_changes(&merchant_id, "levels", entries)
}

pub fn adjust_inventory(
    request: proto::AdjustInventoryRequest,
) -> Result<(MerchantId, Vec<InventoryChange>)> {
    let proto::AdjustInventoryRequest {
        merchant_id,
        deltas,
        as_of: _,
    } = request;
    let entries = deltas
        .into_iter()
        .map(|proto::InventoryDelta { sku, fc_id, delta }| Entry {
            sku,
            fc_id,
            change: CountChange::Adjust(delta),
        })
        .collect();
    inventory_changes(&merchant_id, "deltas", entries)
}

/// `FifoRelease`: the merchant, the SKUs, and the time it decides at.
pub fn fifo_release(
    request: proto::FifoReleaseRequest,
) -> Result<(MerchantId, Vec<Sku>, Timestamp)> {
    let proto::FifoReleaseRequest {
        merchant_id,
        skus,
        as_of,
    } = request;
    let mut v = Violations::default();
    v.id("merchant_id", &merchant_id);
    v.count("skus", skus.len(), INVENTORY_ENTRIES_MAX);
    for (i, sku) in skus.iter().enumerate().take(INVENTORY_ENTRIES_MAX) {
        v.id(format_args!("skus[{i}]"), sku);
    }
    let now = match as_of {
        Some(as_of) => v.timestamp("as_of", as_of),
        None => Timestamp::now(),
    };
    let skus = skus.iter().map(|sku| Sku::new(sku)).collect();
    v.finish((MerchantId::new(&merchant_id), skus, now))
}

/// The `ListOrders` arguments: status filter, page size, where to start.
pub fn list_orders(
    status: Option<i32>,
    page_size: u32,
    page_token: &str,
) -> Result<(Option<OrderStatus>, usize, Option<PageCursor>)> {
    let mut v = Violations::default();
    let status = status.and_then(|value| {
        let status = order_status_from_proto(v.enumeration("status", value)?);
        if status.is_none() {
            v.add(
                "status",
                "ORDER_STATUS_UNSPECIFIED is not a status to filter by",
            );
        }
        status
    });
    let page_size = match page_size as usize {
        0 => PAGE_SIZE_DEFAULT,
        size if size > PAGE_SIZE_MAX => {
            v.add("page_size", format!("must be at most {PAGE_SIZE_MAX}"));
            size
        }
        size => size,
    };
    let cursor = if page_token.is_empty() {
        None
    } else {
        let cursor = decode_cursor(page_token);
        if cursor.is_none() {
            v.add("page_token", "is not a token this service issued");
        }
        cursor
    };
    v.finish((status, page_size, cursor))
}

/// Page tokens are `seconds.nanos.order_id`: opaque to clients, but plain
/// enough for an operator to read.
pub fn encode_cursor(cursor: &PageCursor) -> String {
    format!(
        "{}.{}.{}",
        cursor.purchase_time.seconds, cursor.purchase_time.nanos, cursor.order_id
    )
}

fn decode_cursor(token: &str) -> Option<PageCursor> {
    let mut parts = token.splitn(3, '.');
    let seconds = parts.next()?.parse().ok()?;
    let nanos: u32 = parts.next()?.parse().ok()?;
    let order_id = parts.next()?;
    if nanos >= 1_000_000_000 || order_id.is_empty() || order_id.len() > ID_BYTES_MAX {
        return None;
    }
    Some(PageCursor {
        purchase_time: Timestamp { seconds, nanos },
        order_id: OrderId::new(order_id),
    })
}

// ---------------------------------------------------------------- outgoing

pub fn duration_to_proto(duration: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: duration.subsec_nanos() as i32,
    }
}

pub fn timestamp_to_proto(time: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.seconds,
        nanos: time.nanos as i32,
    }
}

pub fn merchant_to_proto(merchant: &Merchant) -> proto::Merchant {
    let Merchant {
        merchant_id,
        partial_shipments,
        fifo_strategy,
        fc_priority,
        auto_acknowledge,
        accept_regardless_of_inventory,
        split_tags,
        routing,
    } = merchant;
    proto::Merchant {
        merchant_id: merchant_id.to_string(),
        partial_shipments: *partial_shipments,
        fifo_strategy: match fifo_strategy {
            FifoStrategy::None => proto::FifoStrategy::None,
            FifoStrategy::Full => proto::FifoStrategy::Full,
            FifoStrategy::Partial => proto::FifoStrategy::Partial,
        } as i32,
        fc_priority: fc_priority.iter().map(ToString::to_string).collect(),
        auto_acknowledge: *auto_acknowledge,
        accept_regardless_of_inventory: *accept_regardless_of_inventory,
        split_tags: split_tags.clone(),
        routing_strategy: routing_to_proto(*routing) as i32,
    }
}

pub fn routing_to_proto(routing: RoutingStrategy) -> proto::RoutingStrategy {
    match routing {
        RoutingStrategy::Ranked => proto::RoutingStrategy::Ranked,
        RoutingStrategy::Closest => proto::RoutingStrategy::Closest,
    }
}

pub fn inventory_view_to_proto(view: &InventoryView) -> proto::InventoryView {
    proto::InventoryView {
        sku: view.sku.to_string(),
        merchant_id: view.merchant.to_string(),
        fcs: fc_stocks_to_proto(view),
    }
}

/// Each row of a SKU's stock, with the safety stock there and what
/// allocation may take.
pub fn fc_stocks_to_proto(view: &InventoryView) -> Vec<proto::FcStock> {
    view.fcs
        .iter()
        .map(|row| proto::FcStock {
            fc_id: row.fc.to_string(),
            on_hand: row.on_hand.into(),
            reserved: row.reserved.into(),
            available: view.available(row).into(),
            picked: row.picked.into(),
            safety_stock: view.safety.units_at(row.fc).into(),
        })
        .collect()
}

fn order_status_from_proto(status: proto::OrderStatus) -> Option<OrderStatus> {
    Some(match status {
        proto::OrderStatus::Unspecified => return None,
        proto::OrderStatus::Processing => OrderStatus::Processing,
        proto::OrderStatus::PartiallyAllocated => OrderStatus::PartiallyAllocated,
        proto::OrderStatus::Exception => OrderStatus::Exception,
        proto::OrderStatus::OnHold => OrderStatus::OnHold,
        proto::OrderStatus::Shipped => OrderStatus::Shipped,
        proto::OrderStatus::Completed => OrderStatus::Completed,
        proto::OrderStatus::Cancelled => OrderStatus::Cancelled,
        proto::OrderStatus::Rejected => OrderStatus::Rejected,
    })
}

pub fn order_status_to_proto(status: OrderStatus) -> proto::OrderStatus {
    match status {
        OrderStatus::Processing => proto::OrderStatus::Processing,
        OrderStatus::PartiallyAllocated => proto::OrderStatus::PartiallyAllocated,
        OrderStatus::Exception => proto::OrderStatus::Exception,
        OrderStatus::OnHold => proto::OrderStatus::OnHold,
        OrderStatus::Shipped => proto::OrderStatus::Shipped,
        OrderStatus::Completed => proto::OrderStatus::Completed,
        OrderStatus::Cancelled => proto::OrderStatus::Cancelled,
        OrderStatus::Rejected => proto::OrderStatus::Rejected,
    }
}

fn exception_reason_to_proto(reason: ExceptionReason) -> proto::ExceptionReason {
    match reason {
        ExceptionReason::InsufficientAtAssignedFc => {
            proto::ExceptionReason::InsufficientAtAssignedFc
        }
        ExceptionReason::SplitNotAllowed => proto::ExceptionReason::SplitNotAllowed,
        ExceptionReason::InsufficientNetworkInventory => {
            proto::ExceptionReason::InsufficientNetworkInventory
        }
        ExceptionReason::PreemptedByFifo => proto::ExceptionReason::PreemptedByFifo,
        ExceptionReason::InventoryShortage => proto::ExceptionReason::InventoryShortage,
    }
}

fn acknowledgement_to_proto(acknowledgement: Acknowledgement) -> proto::Acknowledgement {
    match acknowledgement {
        Acknowledgement::None => proto::Acknowledgement::None,
        Acknowledgement::Acknowledged => proto::Acknowledgement::Acknowledged,
        Acknowledgement::CancelledUnknownSku => proto::Acknowledgement::CancelledUnknownSku,
        Acknowledgement::CancelledNoInventory => proto::Acknowledgement::CancelledNoInventory,
        Acknowledgement::RejectedNoInventory => proto::Acknowledgement::RejectedNoInventory,
    }
}

/// An order's state as it reads at `as_of` (a shipped order may read
/// completed; its shipments' tracking may have expired), with the rule
/// behind it.
pub fn order_to_proto(order: &Order, as_of: Timestamp) -> proto::OrderState {
    let mut state = full_order_to_proto(order, as_of);
    state.decision = decision::decision_to_proto(order, None);
    state
}

/// The answer for an order just decided, in the view the caller asked for:
/// the full state with every candidate FC the decision weighed, or the
/// lean decision view (RULES §15).
pub fn decided_to_proto(
    order: &Order,
    considered: Option<&Considered>,
    as_of: Timestamp,
    view: proto::OrderView,
) -> proto::OrderState {
    match view {
        proto::OrderView::Full => {
            let mut state = full_order_to_proto(order, as_of);
            state.decision = decision::decision_to_proto(order, considered);
            state
        }
        proto::OrderView::Decision => proto::OrderState {
            merchant_id: order.request.merchant_id.to_string(),
            order_id: order.request.order_id.to_string(),
            status: order_status_to_proto(order.status_at(as_of)) as i32,
            allocations: order.allocations.iter().map(allocation_to_proto).collect(),
            exceptions: order
                .exceptions
                .iter()
                .map(exception_line_to_proto)
                .collect(),
            acknowledgement: acknowledgement_to_proto(order.acknowledgement) as i32,
            version: order.version,
            child_order_ids: order
                .extras()
                .children
                .iter()
                .map(ToString::to_string)
                .collect(),
            parent_order_id: order
                .extras()
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            decision: decision::rule_only(order),
            ..Default::default()
        },
    }
}

fn exception_line_to_proto(line: &ExceptionLine) -> proto::ExceptionLine {
    proto::ExceptionLine {
        sku: line.sku.to_string(),
        quantity: line.quantity,
        reason: exception_reason_to_proto(line.reason) as i32,
    }
}

fn full_order_to_proto(order: &Order, as_of: Timestamp) -> proto::OrderState {
    // Field by field, so that a field added to `OrderExtras` is a compile
    // error here until decided (`..` stands for `Order`'s private extras).
    let Order {
        request,
        status: _,
        allocations,
        exceptions,
        acknowledgement,
        picked,
        version,
        imported_at: _,
        ..
    } = order;
    let OrderExtras {
        hold_reason,
        shipments,
        completes_at: _,
        parent,
        children,
        submitted: _,
        slots: _,
    } = order.extras();
    proto::OrderState {
        merchant_id: request.merchant_id.to_string(),
        order_id: request.order_id.to_string(),
        status: order_status_to_proto(order.status_at(as_of)) as i32,
        allocations: allocations.iter().map(allocation_to_proto).collect(),
        exceptions: exceptions.iter().map(exception_line_to_proto).collect(),
        acknowledgement: acknowledgement_to_proto(*acknowledgement) as i32,
        parent_order_id: parent.as_ref().map(ToString::to_string).unwrap_or_default(),
        picked: *picked,
        shipments: (0..shipments.len())
            .map(|index| shipping::shipment_to_proto(order, index, as_of, None))
            .collect(),
        version: *version,
        purchase_time: Some(timestamp_to_proto(request.purchase_time)),
        hold_reason: hold_reason.clone().unwrap_or_default(),
        child_order_ids: children.iter().map(ToString::to_string).collect(),
        lines: request
            .lines
            .iter()
            .map(|line| proto::OrderLine {
                sku: line.sku.to_string(),
                quantity: line.quantity,
            })
            .collect(),
        decision: None,
    }
}

pub fn allocation_to_proto(allocation: &Allocation) -> proto::Allocation {
    proto::Allocation {
        fc_id: allocation.fc.to_string(),
        sku: allocation.sku.to_string(),
        quantity: allocation.quantity,
    }
}
