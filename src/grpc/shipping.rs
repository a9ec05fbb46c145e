//! Converting shipping, tracking and change-feed messages (RULES §6 and
//! `WatchEvents`), validated field by field like the rest of `convert`.

use crate::engine::{ShipRequest, TrackingScan};
use crate::error::Result;
use crate::model::{
    ClaimEligibility, EventKind, LabelSource, MerchantId, Order, OrderEvent, OrderId, OrderKey,
    Timestamp, TrackingEvent, TrackingStatus,
};

use super::convert::{self, Violations};
use super::proto;

pub fn ship_request(request: proto::ShipOrderRequest) -> Result<ShipRequest> {
    let proto::ShipOrderRequest {
        merchant_id,
        order_id,
        fc_id,
        tracking_number,
        carrier,
        label_source,
        as_of,
    } = request;
    let at = convert::as_of(as_of)?;
    let mut v = Violations::default();
    v.id("merchant_id", &merchant_id);
    v.id("order_id", &order_id);
    let fc = v.fc("fc_id", &fc_id);
    v.id("tracking_number", &tracking_number);
    if carrier.is_empty() {
        v.add("carrier", "must not be empty");
    }
    v.text("carrier", &carrier);
    let label_source = match v.enumeration::<proto::LabelSource>("label_source", label_source) {
        Some(proto::LabelSource::Service) => LabelSource::Service,
        Some(proto::LabelSource::Prepaid) => LabelSource::Prepaid,
        Some(proto::LabelSource::Unspecified) => {
            v.add(
                "label_source",
                "must be LABEL_SOURCE_SERVICE or LABEL_SOURCE_PREPAID",
            );
            LabelSource::Prepaid
        }
        None => LabelSource::Prepaid,
    };
    // `fc` is `None` only after a violation, so `finish` has failed by then.
    let Some(fc) = v.finish(fc)? else {
        return Err(crate::error::Error::invalid("fc_id", "invalid"));
    };
    Ok(ShipRequest {
        order: OrderKey::new(&MerchantId::new(&merchant_id), &OrderId::new(&order_id)),
        fc,
        tracking_number,
        carrier,
        label_source,
        at,
    })
}

/// The scan, and the `as_of` to answer at.
pub fn tracking_scan(
    request: proto::RecordTrackingEventRequest,
) -> Result<(TrackingScan, Timestamp)> {
    let proto::RecordTrackingEventRequest {
        tracking_number,
        status,
        event_time,
        misdelivery_confirmed,
        as_of,
    } = request;
    let as_of = convert::as_of(as_of)?;
    let mut v = Violations::default();
    v.id("tracking_number", &tracking_number);
    let status = match v.enumeration::<proto::TrackingStatus>("status", status) {
        Some(proto::TrackingStatus::Unspecified) => {
            v.add("status", "must name a tracking status");
            None
        }
        Some(status) => tracking_status_from_proto(status),
        None => None,
    };
    // A scan without a time happened when it was reported.
    let time = match event_time {
        Some(time) => v.timestamp("event_time", time),
        None => as_of,
    };
    let scan = TrackingScan {
        tracking_number,
        event: TrackingEvent {
            status: status.unwrap_or(TrackingStatus::Received),
            time,
            misdelivery_confirmed,
        },
    };
    v.finish((scan, as_of))
}

/// `(tracking_number, as_of)` of a `GetShipment`.
pub fn shipment_query(request: proto::GetShipmentRequest) -> Result<(String, Timestamp)> {
    let proto::GetShipmentRequest {
        tracking_number,
        as_of,
    } = request;
    let as_of = convert::as_of(as_of)?;
    let mut v = Violations::default();
    v.id("tracking_number", &tracking_number);
    v.finish((tracking_number, as_of))
}

/// One shipment of `order` as it reads at `as_of`; with `stalled_after`
/// business days, also whether a lost-parcel claim may be filed.
pub fn shipment_to_proto(
    order: &Order,
    index: usize,
    as_of: Timestamp,
    stalled_after: Option<u32>,
) -> proto::Shipment {
    let shipment = &order.shipments()[index];
    proto::Shipment {
        tracking_number: shipment.tracking_number.clone(),
        carrier: shipment.carrier.clone(),
        label_source: match shipment.label_source {
            LabelSource::Service => proto::LabelSource::Service,
            LabelSource::Prepaid => proto::LabelSource::Prepaid,
        } as i32,
        fc_id: shipment.fc.to_string(),
        merchant_id: order.request.merchant_id.to_string(),
        order_id: order.request.order_id.to_string(),
        items: shipment
            .items
            .iter()
            .map(convert::allocation_to_proto)
            .collect(),
        labelled_at: Some(convert::timestamp_to_proto(shipment.labelled_at)),
        status: tracking_status_to_proto(shipment.status()) as i32,
        events: shipment
            .events
            .iter()
            .map(|event| proto::TrackingEvent {
                status: tracking_status_to_proto(event.status) as i32,
                event_time: Some(convert::timestamp_to_proto(event.time)),
                misdelivery_confirmed: event.misdelivery_confirmed,
            })
            .collect(),
        expired: shipment.expired(as_of),
        claim: stalled_after.map(|days| claim_to_proto(shipment.claim(as_of, days))),
        misdelivery_confirmed: shipment.misdelivery_confirmed(),
    }
}

fn claim_to_proto(claim: ClaimEligibility) -> proto::ClaimEligibility {
    proto::ClaimEligibility {
        eligible: claim.eligible,
        rule: claim.rule.to_string(),
        explanation: claim.explanation,
    }
}

/// A change-feed event; `now` stamps events that carry no domain time.
pub fn event_to_proto(event: &OrderEvent, now: Timestamp) -> proto::OrderEvent {
    proto::OrderEvent {
        kind: match event.kind {
            EventKind::Allocated => proto::OrderEventKind::Allocated,
            EventKind::Exception => proto::OrderEventKind::Exception,
            EventKind::Preempted => proto::OrderEventKind::Preempted,
            EventKind::Held => proto::OrderEventKind::Held,
            EventKind::Released => proto::OrderEventKind::Released,
            EventKind::Cancelled => proto::OrderEventKind::Cancelled,
            EventKind::Shipped => proto::OrderEventKind::Shipped,
            EventKind::TrackingStatusChanged => proto::OrderEventKind::TrackingStatusChanged,
            EventKind::Completed => proto::OrderEventKind::Completed,
        } as i32,
        merchant_id: event.merchant_id.to_string(),
        order_id: event.order_id.to_string(),
        status: convert::order_status_to_proto(event.status) as i32,
        tracking_number: event.tracking_number.clone().unwrap_or_default(),
        tracking_status: event
            .tracking_status
            .map_or(proto::TrackingStatus::Unspecified, tracking_status_to_proto)
            as i32,
        time: Some(convert::timestamp_to_proto(event.time.unwrap_or(now))),
        order_version: event.order_version,
        sequence: event.sequence,
    }
}

fn tracking_status_from_proto(status: proto::TrackingStatus) -> Option<TrackingStatus> {
    match status {
        proto::TrackingStatus::Unspecified => None,
        proto::TrackingStatus::Received => Some(TrackingStatus::Received),
        proto::TrackingStatus::AtDepot => Some(TrackingStatus::AtDepot),
        proto::TrackingStatus::PickedUp => Some(TrackingStatus::PickedUp),
        proto::TrackingStatus::OutForDelivery => Some(TrackingStatus::OutForDelivery),
        proto::TrackingStatus::Delivered => Some(TrackingStatus::Delivered),
    }
}

fn tracking_status_to_proto(status: TrackingStatus) -> proto::TrackingStatus {
    match status {
        TrackingStatus::Received => proto::TrackingStatus::Received,
        TrackingStatus::AtDepot => proto::TrackingStatus::AtDepot,
        TrackingStatus::PickedUp => proto::TrackingStatus::PickedUp,
        TrackingStatus::OutForDelivery => proto::TrackingStatus::OutForDelivery,
        TrackingStatus::Delivered => proto::TrackingStatus::Delivered,
    }
}
