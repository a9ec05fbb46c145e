//! The binary encoding of state on disk: journal records and snapshot
//! entries. Hand-written: numbers are LEB128 varints (most counts fit one
//! byte), strings are length-prefixed; every read is bounds-checked and
//! every enum byte validated, so a corrupt file gives a `CodecError`, never
//! a panic.
//!
//! What is stored are after-images: the whole new state of each merchant,
//! SKU record or order a change touched. Applying an after-image twice is
//! the same as applying it once, which is what lets a snapshot be taken
//! while allocation goes on (see `snapshot.rs`). A journal record may also
//! carry the change-feed events that announced its change, which the feed
//! replays to subscribers that resume (RULES §13); recovery only takes
//! their sequence numbers from them.

use crate::engine::{Effect, EffectRef};
use crate::ledger::{FcStock, SafetyStock, SkuInfo, SkuRecord};
use crate::model::{
    Acknowledgement, Allocation, CapacitySlot, Channel, EventKind, ExceptionLine, ExceptionReason,
    FcId, FifoStrategy, FulfillmentCenter, GeoPoint, LabelSource, MarketplaceStatus, Merchant,
    MerchantId, OperationsDay, Order, OrderEvent, OrderExtras, OrderId, OrderLine, OrderRequest,
    OrderStatus, RoutingStrategy, Shipment, Sku, SkuKey, Timestamp, TrackingEvent, TrackingStatus,
};

/// Longest string or list the decoder accepts: far above any limit the
/// service enforces, low enough that a corrupt length cannot make it
/// allocate gigabytes.
const DECODED_LENGTH_MAX: usize = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} at byte {offset}")]
pub struct CodecError {
    pub what: String,
    pub offset: usize,
}

const TAG_MERCHANT: u8 = 1;
const TAG_SKU: u8 = 2;
const TAG_ORDER: u8 = 3;
/// A record's events: first sequence (fixed 8 bytes, so the journal can
/// fill it in as it numbers the record), count, then each event. Always
/// the record's first entry, so the feed's reader stops right after it.
pub const TAG_EVENTS: u8 = 4;
const TAG_NEXT_EVENT_SEQUENCE: u8 = 5;
/// An FC of the network (RULES §12).
const TAG_FC: u8 = 6;
/// Layouts that add a field, written only when the field is set, so
/// state without it keeps the bytes it always had: a merchant with a
/// routing strategy, an order (and the request it keeps) with `ship_to`.
const TAG_MERCHANT_ROUTED: u8 = 7;
const TAG_ORDER_SHIPPED_TO: u8 = 8;
/// A SKU record with safety stock.
const TAG_SKU_GUARDED: u8 = 9;
/// An order holding daily FC slots: the `ship_to` layout, then its slots.
const TAG_ORDER_SLOTTED: u8 = 10;

/// Which layout an order's requests are in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RequestLayout {
    Plain,
    WithShipTo,
}

/// An enum stored as one byte. Its codes are listed once, in `codes!`,
/// which writes both directions from that list: encoding is an exhaustive
/// match (a new variant does not compile until it has a code) and a code
/// listed twice is an unreachable pattern.
trait Code: Sized + Copy {
    /// What the byte is, for errors: "unknown order status 9".
    const WHAT: &'static str;
    fn code(self) -> u8;
    fn from_code(code: u8) -> Option<Self>;
}

macro_rules! codes {
    ($($ty:ident $what:literal { $($variant:ident = $code:literal),+ $(,)? })+) => {$(
        impl Code for $ty {
            const WHAT: &'static str = $what;
            fn code(self) -> u8 {
                match self {
                    $($ty::$variant => $code),+
                }
            }
            fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }
    )+};
}

codes! {
    FifoStrategy "FIFO strategy" { None = 0, Full = 1, Partial = 2 }
    Channel "channel" { Direct = 0, Marketplace = 1 }
    MarketplaceStatus "marketplace status" { Ready = 0, Created = 1 }
    LabelSource "label source" { Service = 0, Prepaid = 1 }
    TrackingStatus "tracking status" {
        Received = 0, AtDepot = 1, PickedUp = 2, OutForDelivery = 3, Delivered = 4,
    }
    OrderStatus "order status" {
        Processing = 0, PartiallyAllocated = 1, Exception = 2, OnHold = 3, Shipped = 4,
        Completed = 5, Cancelled = 6, Rejected = 7,
    }
    ExceptionReason "exception reason" {
        InsufficientAtAssignedFc = 0, SplitNotAllowed = 1, InsufficientNetworkInventory = 2,
        PreemptedByFifo = 3, InventoryShortage = 4,
    }
    Acknowledgement "acknowledgement" {
        None = 0, Acknowledged = 1, CancelledUnknownSku = 2, CancelledNoInventory = 3,
        RejectedNoInventory = 4,
    }
    RoutingStrategy "routing strategy" { Ranked = 0, Closest = 1 }
    EventKind "event kind" {
        Allocated = 0, Exception = 1, Preempted = 2, Held = 3, Released = 4, Cancelled = 5,
        Shipped = 6, TrackingStatusChanged = 7, Completed = 8,
    }
}

// ---------------------------------------------------------------- writing

#[derive(Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    fn code(&mut self, value: impl Code) {
        self.u8(value.code());
    }

    /// LEB128: seven bits per byte, low first, high bit set on all but the
    /// last. Counts and lengths are small, so most take one or two bytes.
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub fn len(&mut self, len: usize) {
        self.varint(len as u64);
    }

    fn quantity(&mut self, quantity: u32) {
        self.varint(u64::from(quantity));
    }

    pub fn str(&mut self, value: &str) {
        self.len(value.len());
        self.bytes.extend_from_slice(value.as_bytes());
    }

    fn option_str(&mut self, value: Option<&str>) {
        self.bool(value.is_some());
        if let Some(value) = value {
            self.str(value);
        }
    }

    fn strings<'s>(&mut self, values: impl ExactSizeIterator<Item = &'s str>) {
        self.len(values.len());
        for value in values {
            self.str(value);
        }
    }

    fn timestamp(&mut self, time: Timestamp) {
        // Zigzag, so instants before 1970 stay short too.
        self.varint(zigzag(time.seconds));
        self.varint(u64::from(time.nanos));
    }

    pub fn effect(&mut self, effect: EffectRef<'_>) {
        match effect {
            EffectRef::Merchant(merchant) if merchant.routing == RoutingStrategy::Ranked => {
                self.u8(TAG_MERCHANT);
                self.merchant(merchant);
            }
            EffectRef::Merchant(merchant) => {
                self.u8(TAG_MERCHANT_ROUTED);
                self.merchant(merchant);
                self.code(merchant.routing);
            }
            EffectRef::Fc(fc) => {
                self.u8(TAG_FC);
                self.fulfillment_center(fc);
            }
            EffectRef::Sku(key, record) if record.safety.is_empty() => {
                self.u8(TAG_SKU);
                self.sku_record(key, record);
            }
            EffectRef::Sku(key, record) => {
                self.u8(TAG_SKU_GUARDED);
                self.sku_record(key, record);
                self.quantity(record.safety.every_fc);
                self.len(record.safety.at.len());
                for &(fc, units) in &record.safety.at {
                    self.str(fc.as_str());
                    self.quantity(units);
                }
            }
            EffectRef::Order(order) if !order.extras().slots.is_empty() => {
                self.u8(TAG_ORDER_SLOTTED);
                self.order(order, RequestLayout::WithShipTo);
                let slots = &order.extras().slots;
                self.len(slots.len());
                for slot in slots {
                    self.str(slot.fc.as_str());
                    self.varint(zigzag(i64::from(slot.day.0)));
                }
            }
            EffectRef::Order(order) => {
                let shipped_to = order.request.ship_to.is_some()
                    || order
                        .extras()
                        .submitted
                        .as_ref()
                        .is_some_and(|s| s.ship_to.is_some());
                let layout = if shipped_to {
                    self.u8(TAG_ORDER_SHIPPED_TO);
                    RequestLayout::WithShipTo
                } else {
                    self.u8(TAG_ORDER);
                    RequestLayout::Plain
                };
                self.order(order, layout);
            }
            EffectRef::NextEventSequence(next) => {
                self.u8(TAG_NEXT_EVENT_SEQUENCE);
                self.varint(next);
            }
        }
    }

    /// A record's events, numbered from 0 until the journal writes the
    /// first sequence at `EVENTS_FIRST_SEQUENCE_AT`.
    pub fn events(&mut self, events: &[OrderEvent]) {
        self.u8(TAG_EVENTS);
        self.bytes.extend_from_slice(&0u64.to_le_bytes());
        self.len(events.len());
        for event in events {
            self.event(event);
        }
    }

    fn event(&mut self, event: &OrderEvent) {
        self.code(event.kind);
        self.str(event.merchant_id.as_str());
        self.str(event.order_id.as_str());
        self.code(event.status);
        self.option_str(event.tracking_number.as_deref());
        self.bool(event.tracking_status.is_some());
        if let Some(status) = event.tracking_status {
            self.code(status);
        }
        self.bool(event.time.is_some());
        if let Some(time) = event.time {
            self.timestamp(time);
        }
        self.varint(event.order_version);
    }

    pub fn merchant(&mut self, merchant: &Merchant) {
        self.str(merchant.merchant_id.as_str());
        self.bool(merchant.partial_shipments);
        self.code(merchant.fifo_strategy);
        self.strings(merchant.fc_priority.iter().map(|fc| fc.as_str()));
        self.bool(merchant.auto_acknowledge);
        self.bool(merchant.accept_regardless_of_inventory);
        self.strings(merchant.split_tags.iter().map(String::as_str));
    }

    fn fulfillment_center(&mut self, fc: &FulfillmentCenter) {
        self.str(fc.fc.as_str());
        self.str(&fc.name);
        self.option_point(fc.location);
        self.quantity(fc.daily_order_capacity);
    }

    /// Present flag, then latitude and longitude as IEEE-754 bits.
    fn option_point(&mut self, point: Option<GeoPoint>) {
        self.bool(point.is_some());
        if let Some(point) = point {
            self.bytes
                .extend_from_slice(&point.latitude().to_le_bytes());
            self.bytes
                .extend_from_slice(&point.longitude().to_le_bytes());
        }
    }

    pub fn sku_record(&mut self, key: &SkuKey, record: &SkuRecord) {
        self.str(key.merchant().as_str());
        self.str(key.sku().as_str());
        self.bool(record.info.registered);
        self.strings(record.info.tags.iter().map(String::as_str));
        self.bool(record.info.replenishable);
        self.len(record.fcs.len());
        for row in &record.fcs {
            self.str(row.fc.as_str());
            self.quantity(row.on_hand);
            self.quantity(row.reserved);
            self.quantity(row.picked);
        }
    }

    fn order(&mut self, order: &Order, layout: RequestLayout) {
        self.order_request(&order.request, layout);
        self.code(order.status);
        self.len(order.allocations.len());
        for allocation in &order.allocations {
            self.str(allocation.fc.as_str());
            self.str(allocation.sku.as_str());
            self.quantity(allocation.quantity);
        }
        self.len(order.exceptions.len());
        for line in &order.exceptions {
            self.str(line.sku.as_str());
            self.quantity(line.quantity);
            self.code(line.reason);
        }
        self.code(order.acknowledgement);
        self.bool(order.picked);
        // Field by field, so that a field added to `OrderExtras` is a
        // compile error here until it is encoded (the reader lists them too).
        let OrderExtras {
            hold_reason,
            shipments,
            completes_at,
            parent,
            children,
            submitted,
            slots: _, // after the order, in the slotted layout only
        } = order.extras();
        self.option_str(hold_reason.as_deref());
        self.len(shipments.len());
        for shipment in shipments {
            self.shipment(shipment);
        }
        self.bool(completes_at.is_some());
        if let Some(at) = completes_at {
            self.timestamp(*at);
        }
        self.option_str(parent.as_ref().map(OrderId::as_str));
        self.strings(children.iter().map(OrderId::as_str));
        self.bool(submitted.is_some());
        if let Some(submitted) = submitted {
            self.order_request(submitted, layout);
        }
        self.varint(order.version);
        self.timestamp(order.imported_at);
    }

    fn order_request(&mut self, request: &OrderRequest, layout: RequestLayout) {
        self.str(request.merchant_id.as_str());
        self.str(request.order_id.as_str());
        self.timestamp(request.purchase_time);
        self.len(request.lines.len());
        for line in &request.lines {
            self.str(line.sku.as_str());
            self.quantity(line.quantity);
        }
        self.option_str(request.assigned_fc.map(FcId::as_str));
        self.u8(match request.partial_shipments {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        self.code(request.channel);
        self.code(request.marketplace_status);
        self.option_str(request.hold_reason.as_deref());
        if layout == RequestLayout::WithShipTo {
            self.option_point(request.ship_to);
        }
    }

    fn shipment(&mut self, shipment: &Shipment) {
        self.str(&shipment.tracking_number);
        self.str(&shipment.carrier);
        self.code(shipment.label_source);
        self.str(shipment.fc.as_str());
        self.len(shipment.items.len());
        for item in &shipment.items {
            self.str(item.sku.as_str());
            self.quantity(item.quantity);
        }
        self.timestamp(shipment.labelled_at);
        self.len(shipment.events.len());
        for event in &shipment.events {
            self.code(event.status);
            self.timestamp(event.time);
            self.bool(event.misdelivery_confirmed);
        }
    }
}

/// A signed number as an unsigned one that stays small near zero.
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

// ---------------------------------------------------------------- reading

pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    /// Added to positions in errors, so they name the offset in the file.
    base_offset: usize,
    /// FC and merchant ids seen so far: a network has few of them, and
    /// sharing one `Arc` per id saves an allocation per stock row and order.
    fcs: Vec<FcId>,
    merchants: Vec<MerchantId>,
}

type Decoded<T> = Result<T, CodecError>;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], base_offset: usize) -> Self {
        Self {
            bytes,
            position: 0,
            base_offset,
            fcs: Vec::new(),
            merchants: Vec::new(),
        }
    }

    /// Move to the next entry of the same buffer, keeping the id caches.
    pub fn reset(&mut self, bytes: &'a [u8], base_offset: usize) {
        self.bytes = bytes;
        self.position = 0;
        self.base_offset = base_offset;
    }

    fn fc(&mut self) -> Decoded<FcId> {
        let text = self.str()?;
        match interned(&mut self.fcs, text, FcId::intern) {
            Ok(fc) => Ok(fc),
            Err(full) => self.error(full.to_string()),
        }
    }

    fn merchant_id(&mut self) -> Decoded<MerchantId> {
        let text = self.str()?;
        interned(&mut self.merchants, text, |text| Ok(MerchantId::new(text)))
    }

    pub fn is_empty(&self) -> bool {
        self.position == self.bytes.len()
    }

    fn error<T>(&self, what: impl Into<String>) -> Decoded<T> {
        Err(CodecError {
            what: what.into(),
            offset: self.base_offset + self.position,
        })
    }

    fn take(&mut self, count: usize) -> Decoded<&'a [u8]> {
        match self.bytes.get(self.position..self.position + count) {
            Some(slice) => {
                self.position += count;
                Ok(slice)
            }
            None => self.error(format!("truncated: wanted {count} more bytes")),
        }
    }

    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.take(1)?[0])
    }

    fn code<T: Code>(&mut self) -> Decoded<T> {
        let code = self.u8()?;
        match T::from_code(code) {
            Some(value) => Ok(value),
            None => self.error(format!("unknown {} {code}", T::WHAT)),
        }
    }

    fn bool(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => self.error(format!("invalid boolean {other}")),
        }
    }

    pub fn u32(&mut self) -> Decoded<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    pub fn u64(&mut self) -> Decoded<u64> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn varint(&mut self) -> Decoded<u64> {
        // Most numbers are one byte: no loop for them.
        if let Some(&byte) = self.bytes.get(self.position) {
            if byte < 0x80 {
                self.position += 1;
                return Ok(u64::from(byte));
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return self.error("varint overflows 64 bits");
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.error("varint longer than 10 bytes")
    }

    fn quantity(&mut self) -> Decoded<u32> {
        match u32::try_from(self.varint()?) {
            Ok(quantity) => Ok(quantity),
            Err(_) => self.error("quantity does not fit 32 bits"),
        }
    }

    pub fn len(&mut self) -> Decoded<usize> {
        let len = self.varint()?;
        if len > DECODED_LENGTH_MAX as u64 {
            return self.error(format!("length {len} is implausible"));
        }
        Ok(len as usize)
    }

    pub fn str(&mut self) -> Decoded<&'a str> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text),
            Err(_) => self.error("string is not UTF-8"),
        }
    }

    fn option_str(&mut self) -> Decoded<Option<String>> {
        Ok(if self.bool()? {
            Some(self.str()?.to_string())
        } else {
            None
        })
    }

    fn strings(&mut self) -> Decoded<Vec<String>> {
        let len = self.len()?;
        (0..len).map(|_| Ok(self.str()?.to_string())).collect()
    }

    fn timestamp(&mut self) -> Decoded<Timestamp> {
        let seconds = unzigzag(self.varint()?);
        let nanos = self.varint()?;
        if nanos >= 1_000_000_000 {
            return self.error("timestamp nanos out of range");
        }
        Ok(Timestamp {
            seconds,
            nanos: nanos as u32,
        })
    }

    pub fn effect(&mut self) -> Decoded<Effect> {
        match self.u8()? {
            TAG_MERCHANT => Ok(Effect::Merchant(self.merchant()?)),
            TAG_MERCHANT_ROUTED => {
                let mut merchant = self.merchant()?;
                merchant.routing = self.code()?;
                Ok(Effect::Merchant(merchant))
            }
            TAG_FC => Ok(Effect::Fc(self.fulfillment_center()?)),
            TAG_SKU => {
                let (key, record) = self.sku_record()?;
                Ok(Effect::Sku(key, record))
            }
            TAG_SKU_GUARDED => {
                let (key, mut record) = self.sku_record()?;
                record.safety.every_fc = self.quantity()?;
                let count = self.len()?;
                for _ in 0..count {
                    let fc = self.fc()?;
                    let units = self.quantity()?;
                    if record.safety.at.last().is_some_and(|&(last, _)| last >= fc) {
                        return self
                            .error(format!("safety stock of {} is not sorted by FC", key.sku()));
                    }
                    record.safety.at.push((fc, units));
                }
                Ok(Effect::Sku(key, record))
            }
            TAG_ORDER => Ok(Effect::Order(Box::new(self.order(RequestLayout::Plain)?))),
            TAG_ORDER_SHIPPED_TO => Ok(Effect::Order(Box::new(
                self.order(RequestLayout::WithShipTo)?,
            ))),
            TAG_ORDER_SLOTTED => {
                let mut order = self.order(RequestLayout::WithShipTo)?;
                let count = self.len()?;
                let mut slots = Vec::with_capacity(count.min(16));
                for _ in 0..count {
                    let fc = self.fc()?;
                    let day = unzigzag(self.varint()?);
                    let Ok(day) = i32::try_from(day) else {
                        return self.error(format!("operations day {day} out of range"));
                    };
                    if slots.iter().any(|slot: &CapacitySlot| slot.fc == fc) {
                        return self.error(format!("two daily slots at FC {fc}"));
                    }
                    slots.push(CapacitySlot {
                        fc,
                        day: OperationsDay(day),
                    });
                }
                order.extras_mut().slots = slots;
                Ok(Effect::Order(Box::new(order)))
            }
            TAG_EVENTS => {
                let first = self.u64()?;
                let count = self.len()?;
                if count == 0 || first.checked_add(count as u64).is_none() {
                    return self.error(format!("{count} events from sequence {first}"));
                }
                let mut events = Vec::new();
                for sequence in first..first + count as u64 {
                    events.push(self.event(sequence)?);
                }
                Ok(Effect::Events { first, events })
            }
            TAG_NEXT_EVENT_SEQUENCE => match self.varint()? {
                0 => self.error("event sequence 0"),
                next => Ok(Effect::NextEventSequence(next)),
            },
            other => self.error(format!("unknown effect tag {other}")),
        }
    }

    pub fn merchant(&mut self) -> Decoded<Merchant> {
        Ok(Merchant {
            merchant_id: self.merchant_id()?,
            partial_shipments: self.bool()?,
            fifo_strategy: self.code()?,
            // Through `fc`: a full FC-id table is a decode error, not a panic.
            fc_priority: {
                let len = self.len()?;
                (0..len).map(|_| self.fc()).collect::<Decoded<_>>()?
            },
            auto_acknowledge: self.bool()?,
            accept_regardless_of_inventory: self.bool()?,
            split_tags: self.strings()?,
            routing: RoutingStrategy::Ranked,
        })
    }

    fn fulfillment_center(&mut self) -> Decoded<FulfillmentCenter> {
        Ok(FulfillmentCenter {
            fc: self.fc()?,
            name: self.str()?.to_string(),
            location: self.option_point()?,
            daily_order_capacity: self.quantity()?,
        })
    }

    fn option_point(&mut self) -> Decoded<Option<GeoPoint>> {
        if !self.bool()? {
            return Ok(None);
        }
        let latitude = f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        let longitude = f64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        match GeoPoint::new(latitude, longitude) {
            Some(point) => Ok(Some(point)),
            None => self.error(format!("invalid location {latitude}, {longitude}")),
        }
    }

    pub fn sku_record(&mut self) -> Decoded<(SkuKey, SkuRecord)> {
        let merchant = self.merchant_id()?;
        let sku = Sku::new(self.str()?);
        let info = SkuInfo {
            registered: self.bool()?,
            tags: self.strings()?,
            replenishable: self.bool()?,
        };
        let rows = self.len()?;
        let mut fcs = Vec::with_capacity(rows);
        for _ in 0..rows {
            let row = FcStock {
                fc: self.fc()?,
                on_hand: self.quantity()?,
                reserved: self.quantity()?,
                picked: self.quantity()?,
            };
            if !(row.picked <= row.reserved && row.reserved <= row.on_hand) {
                return self.error(format!(
                    "stock row of {sku} at {} breaks picked <= reserved <= on_hand",
                    row.fc
                ));
            }
            if fcs
                .last()
                .is_some_and(|previous: &FcStock| previous.fc >= row.fc)
            {
                return self.error(format!("stock rows of {sku} are not sorted by FC"));
            }
            fcs.push(row);
        }
        let record = SkuRecord {
            info,
            fcs,
            safety: SafetyStock::default(),
        };
        Ok((SkuKey::new(&merchant, &sku), record))
    }

    fn order_request(&mut self, layout: RequestLayout) -> Decoded<OrderRequest> {
        let merchant_id = self.merchant_id()?;
        let order_id = OrderId::new(self.str()?);
        let purchase_time = self.timestamp()?;
        let line_count = self.len()?;
        let lines = (0..line_count)
            .map(|_| {
                Ok(OrderLine {
                    sku: Sku::new(self.str()?),
                    quantity: self.quantity()?,
                })
            })
            .collect::<Decoded<Vec<_>>>()?;
        let assigned_fc = if self.bool()? { Some(self.fc()?) } else { None };
        let partial_shipments = match self.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            other => return self.error(format!("invalid partial-shipments flag {other}")),
        };
        let channel = self.code()?;
        let marketplace_status = self.code()?;
        let hold_reason = self.option_str()?;
        let ship_to = match layout {
            RequestLayout::Plain => None,
            RequestLayout::WithShipTo => self.option_point()?,
        };
        Ok(OrderRequest {
            merchant_id,
            order_id,
            purchase_time,
            lines,
            assigned_fc,
            partial_shipments,
            channel,
            marketplace_status,
            hold_reason,
            ship_to,
        })
    }

    fn event(&mut self, sequence: u64) -> Decoded<OrderEvent> {
        Ok(OrderEvent {
            kind: self.code()?,
            merchant_id: MerchantId::new(self.str()?),
            order_id: OrderId::new(self.str()?),
            status: self.code()?,
            tracking_number: self.option_str()?,
            tracking_status: if self.bool()? {
                Some(self.code()?)
            } else {
                None
            },
            time: if self.bool()? {
                Some(self.timestamp()?)
            } else {
                None
            },
            order_version: self.varint()?,
            sequence,
        })
    }

    fn order(&mut self, layout: RequestLayout) -> Decoded<Order> {
        let request = self.order_request(layout)?;
        let status = self.code()?;
        let allocation_count = self.len()?;
        let allocations = (0..allocation_count)
            .map(|_| {
                Ok(Allocation {
                    fc: self.fc()?,
                    sku: Sku::new(self.str()?),
                    quantity: self.quantity()?,
                })
            })
            .collect::<Decoded<Vec<_>>>()?;
        let exception_count = self.len()?;
        let mut exceptions = Vec::with_capacity(exception_count);
        for _ in 0..exception_count {
            let sku = Sku::new(self.str()?);
            let quantity = self.quantity()?;
            let reason = self.code()?;
            exceptions.push(ExceptionLine {
                sku,
                quantity,
                reason,
            });
        }
        let acknowledgement = self.code()?;
        let picked = self.bool()?;
        let hold_reason = self.option_str()?;
        let shipment_count = self.len()?;
        let shipments = (0..shipment_count)
            .map(|_| self.shipment())
            .collect::<Decoded<Vec<_>>>()?;
        let completes_at = if self.bool()? {
            Some(self.timestamp()?)
        } else {
            None
        };
        let parent = self.option_str()?.map(|id| OrderId::new(&id));
        let children = self.strings()?.iter().map(|id| OrderId::new(id)).collect();
        let submitted = if self.bool()? {
            Some(Box::new(self.order_request(layout)?))
        } else {
            None
        };
        let version = self.varint()?;
        let mut order = Order::imported(request, self.timestamp()?);
        order.status = status;
        order.allocations = allocations;
        order.exceptions = exceptions;
        order.acknowledgement = acknowledgement;
        order.picked = picked;
        order.version = version;
        order.set_extras(OrderExtras {
            hold_reason,
            shipments,
            completes_at,
            parent,
            children,
            submitted,
            slots: Vec::new(),
        });
        Ok(order)
    }

    fn shipment(&mut self) -> Decoded<Shipment> {
        let tracking_number = self.str()?.to_string();
        let carrier = self.str()?.to_string();
        let label_source = self.code()?;
        let fc = self.fc()?;
        let item_count = self.len()?;
        let mut items = Vec::with_capacity(item_count);
        for _ in 0..item_count {
            items.push(Allocation {
                fc,
                sku: Sku::new(self.str()?),
                quantity: self.quantity()?,
            });
        }
        let labelled_at = self.timestamp()?;
        let event_count = self.len()?;
        let mut events = Vec::with_capacity(event_count);
        for _ in 0..event_count {
            let status = self.code()?;
            events.push(TrackingEvent {
                status,
                time: self.timestamp()?,
                misdelivery_confirmed: self.bool()?,
            });
        }
        Ok(Shipment {
            tracking_number,
            carrier,
            label_source,
            fc,
            items,
            labelled_at,
            events,
        })
    }
}

/// The cached id equal to `text`, or a new one (cached while the cache is small).
fn interned<T: Clone + AsRef<str>, E>(
    cache: &mut Vec<T>,
    text: &str,
    new: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(id) = cache.iter().find(|id| id.as_ref() == text) {
        return Ok(id.clone());
    }
    let id = new(text)?;
    if cache.len() < 64 {
        cache.push(id.clone());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_order() -> Order {
        let request = OrderRequest {
            merchant_id: "m".into(),
            order_id: "o-1".into(),
            purchase_time: Timestamp {
                seconds: -5,
                nanos: 999_999_999,
            },
            lines: vec![
                OrderLine {
                    sku: "a".into(),
                    quantity: 3,
                },
                OrderLine {
                    sku: "β".into(),
                    quantity: 1_000_000,
                },
            ],
            assigned_fc: Some(FcId::new("fc")),
            partial_shipments: Some(false),
            channel: Channel::Marketplace,
            marketplace_status: MarketplaceStatus::Ready,
            hold_reason: Some("why".into()),
            ship_to: None,
        };
        let mut order = Order::imported(request, Timestamp::from_seconds(42));
        order.status = OrderStatus::PartiallyAllocated;
        order.allocations = vec![Allocation {
            fc: FcId::new("fc"),
            sku: "a".into(),
            quantity: 3,
        }];
        order.exceptions = vec![ExceptionLine {
            sku: "β".into(),
            quantity: 1_000_000,
            reason: ExceptionReason::PreemptedByFifo,
        }];
        order.acknowledgement = Acknowledgement::Acknowledged;
        order.picked = true;
        order.version = 7;
        order.set_extras(OrderExtras {
            hold_reason: None,
            shipments: vec![{
                let mut shipment = Shipment::labelled(
                    "1Z999".into(),
                    "UPS".into(),
                    LabelSource::Service,
                    FcId::new("fc-2"),
                    vec![Allocation {
                        fc: FcId::new("fc-2"),
                        sku: "a".into(),
                        quantity: 2,
                    }],
                    Timestamp::from_seconds(40),
                );
                shipment.record(TrackingEvent {
                    status: TrackingStatus::Delivered,
                    time: Timestamp::from_seconds(41),
                    misdelivery_confirmed: true,
                });
                shipment
            }],
            completes_at: Some(Timestamp::from_seconds(86_400)),
            parent: Some("o".into()),
            children: vec!["o-1/x".into(), "o-1/y".into()],
            submitted: None,
            slots: Vec::new(),
        });
        order
    }

    #[test]
    fn split_parents_round_trip_with_the_order_as_submitted() {
        let mut order = sample_order();
        let mut submitted = order.request.clone();
        submitted.lines.push(OrderLine {
            sku: "tagged".into(),
            quantity: 9,
        });
        order.extras_mut().submitted = Some(Box::new(submitted));
        let mut writer = Writer::default();
        writer.effect(EffectRef::Order(&order));
        let mut reader = Reader::new(&writer.bytes, 0);
        assert_eq!(reader.effect().unwrap(), Effect::Order(Box::new(order)));
        assert!(reader.is_empty());
    }

    /// The layouts written only when their field is set (RULES §12): a
    /// routed merchant, a SKU with safety stock, an order going somewhere
    /// (its request as submitted too), an FC of the network.
    #[test]
    fn routing_fields_round_trip_in_their_own_layouts() {
        let (mut merchant, key, mut record, mut order) = sample_effects();
        record.safety.set(None, 2);
        record.safety.set(Some(FcId::new("b")), 7);
        record.safety.set(Some(FcId::new("a")), 0);
        merchant.routing = RoutingStrategy::Closest;
        let point = GeoPoint::new(41.88, -87.63).unwrap();
        let mut submitted = order.request.clone();
        submitted.ship_to = Some(point);
        order.extras_mut().submitted = Some(Box::new(submitted));
        let fc = FulfillmentCenter {
            fc: FcId::new("fc-chicago"),
            name: "Chicago".into(),
            location: Some(point),
            daily_order_capacity: 250,
        };
        let unlocated = FulfillmentCenter {
            location: None,
            daily_order_capacity: 0,
            ..fc.clone()
        };
        let mut writer = Writer::default();
        writer.effect(EffectRef::Merchant(&merchant));
        writer.effect(EffectRef::Sku(&key, &record));
        writer.effect(EffectRef::Order(&order));
        writer.effect(EffectRef::Fc(&fc));
        writer.effect(EffectRef::Fc(&unlocated));
        assert_eq!(writer.bytes[0], TAG_MERCHANT_ROUTED);
        let mut reader = Reader::new(&writer.bytes, 0);
        assert_eq!(reader.effect().unwrap(), Effect::Merchant(merchant));
        assert_eq!(reader.effect().unwrap(), Effect::Sku(key, record));
        assert_eq!(reader.effect().unwrap(), Effect::Order(Box::new(order)));
        assert_eq!(reader.effect().unwrap(), Effect::Fc(fc));
        assert_eq!(reader.effect().unwrap(), Effect::Fc(unlocated));
        assert!(reader.is_empty());
    }

    /// An order holding daily FC slots, days before 1970 included; the
    /// same FC twice is refused.
    #[test]
    fn capacity_slots_round_trip_and_twice_at_one_fc_is_an_error() {
        let (_, _, _, mut order) = sample_effects();
        let slot = |fc: &str, day: i32| CapacitySlot {
            fc: FcId::new(fc),
            day: OperationsDay(day),
        };
        order.extras_mut().slots = vec![slot("fc-1", 20_424), slot("fc-2", -3)];
        let mut writer = Writer::default();
        writer.effect(EffectRef::Order(&order));
        assert_eq!(writer.bytes[0], TAG_ORDER_SLOTTED);
        let mut reader = Reader::new(&writer.bytes, 0);
        assert_eq!(
            reader.effect().unwrap(),
            Effect::Order(Box::new(order.clone()))
        );
        assert!(reader.is_empty());

        order.extras_mut().slots = vec![slot("fc-1", 1), slot("fc-1", 2)];
        let mut writer = Writer::default();
        writer.effect(EffectRef::Order(&order));
        let error = Reader::new(&writer.bytes, 0).effect().unwrap_err();
        assert!(error.what.contains("two daily slots"), "{error}");
    }

    #[test]
    fn an_invalid_location_on_disk_is_an_error() {
        let mut writer = Writer::default();
        writer.u8(TAG_FC);
        writer.str("fc");
        writer.str("");
        writer.bool(true);
        writer.bytes.extend_from_slice(&f64::NAN.to_le_bytes());
        writer.bytes.extend_from_slice(&0f64.to_le_bytes());
        writer.varint(0);
        let error = Reader::new(&writer.bytes, 0).effect().unwrap_err();
        assert!(error.what.contains("invalid location"), "{error}");
    }

    fn sample_effects() -> (Merchant, SkuKey, SkuRecord, Order) {
        let merchant = Merchant {
            fifo_strategy: FifoStrategy::Partial,
            fc_priority: vec![FcId::new("b"), FcId::new("a")],
            split_tags: vec!["cold".into()],
            ..Merchant::with_defaults("m".into())
        };
        let key = SkuKey::new(&"m".into(), &"a".into());
        let record = SkuRecord {
            info: SkuInfo {
                registered: true,
                tags: vec!["cold".into()],
                replenishable: true,
            },
            fcs: vec![
                FcStock {
                    fc: FcId::new("a"),
                    on_hand: 5,
                    reserved: 3,
                    picked: 1,
                },
                FcStock {
                    fc: FcId::new("b"),
                    on_hand: u32::MAX,
                    reserved: 0,
                    picked: 0,
                },
            ],
            ..Default::default()
        };
        (merchant, key, record, sample_order())
    }

    /// The encoding of one merchant, one SKU record and one order, written
    /// down: a change to the on-disk format fails here until the format's
    /// version number goes up (and this pin is renewed with it).
    #[test]
    fn the_encoding_is_pinned() {
        let (merchant, key, record, order) = sample_effects();
        let mut writer = Writer::default();
        writer.effect(EffectRef::Merchant(&merchant));
        writer.effect(EffectRef::Sku(&key, &record));
        writer.effect(EffectRef::Order(&order));
        let hex: String = writer
            .bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(hex, PINNED_EFFECTS, "the on-disk encoding changed");
    }

    const PINNED_EFFECTS: &str = concat!(
        "01016d0002020162016100000104636f6c6402016d0161010104636f6c640102",
        "01610503010162ffffffff0f000003016d036f2d3109ff93ebdc030201610302",
        "ceb2c0843d01026663010100010377687901010266630161030102ceb2c0843d",
        "030101000105315a39393903555053000466632d320101610250000201500000",
        "045200010180c60a0001016f02056f2d312f78056f2d312f7900075400"
    );

    #[test]
    fn effects_round_trip() {
        let (merchant, key, record, order) = sample_effects();
        let mut writer = Writer::default();
        writer.effect(EffectRef::Merchant(&merchant));
        writer.effect(EffectRef::Sku(&key, &record));
        writer.effect(EffectRef::Order(&order));
        let mut reader = Reader::new(&writer.bytes, 0);
        assert_eq!(reader.effect().unwrap(), Effect::Merchant(merchant));
        assert_eq!(reader.effect().unwrap(), Effect::Sku(key, record));
        assert_eq!(reader.effect().unwrap(), Effect::Order(Box::new(order)));
        assert!(reader.is_empty());
    }

    #[test]
    fn varints_round_trip_at_their_edges_and_reject_overlong_input() {
        let values = [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ];
        let mut writer = Writer::default();
        for value in values {
            writer.varint(value);
        }
        assert_eq!(writer.bytes.len(), 1 + 1 + 1 + 2 + 2 + 3 + 5 + 10);
        let mut reader = Reader::new(&writer.bytes, 0);
        for value in values {
            assert_eq!(reader.varint().unwrap(), value);
        }
        assert!(reader.is_empty());

        // An 11th byte, or a 10th byte carrying more than bit 63, is corrupt.
        assert!(Reader::new(&[0x80; 11], 0).varint().is_err());
        let mut too_big = vec![0xFF; 9];
        too_big.push(0x02);
        assert!(Reader::new(&too_big, 0).varint().is_err());
        // A quantity is 32 bits on the wire's promise too.
        let mut writer = Writer::default();
        writer.varint(u64::from(u32::MAX) + 1);
        assert!(Reader::new(&writer.bytes, 0).quantity().is_err());
    }

    #[test]
    fn timestamps_before_1970_round_trip() {
        for seconds in [i64::MIN, -1, 0, 1, i64::MAX] {
            let time = Timestamp {
                seconds,
                nanos: 999_999_999,
            };
            let mut writer = Writer::default();
            writer.timestamp(time);
            assert_eq!(Reader::new(&writer.bytes, 0).timestamp().unwrap(), time);
        }
    }

    #[test]
    fn every_truncation_and_many_corruptions_are_errors_not_panics() {
        let mut writer = Writer::default();
        writer.effect(EffectRef::Order(&sample_order()));
        let bytes = writer.bytes;
        for cut in 0..bytes.len() {
            assert!(
                Reader::new(&bytes[..cut], 0).effect().is_err(),
                "cut at {cut}"
            );
        }
        for position in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut corrupt = bytes.clone();
                corrupt[position] ^= flip;
                // Any outcome but a panic is acceptable: checksums catch the rest.
                let _ = Reader::new(&corrupt, 0).effect();
            }
        }
    }
}
