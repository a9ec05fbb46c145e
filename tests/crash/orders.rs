//! Rules an order read back after a crash must satisfy: on its own (its
//! allocations, exceptions and shipments add up to its lines), and against
//! the state the clients were last told (the same state, or one the
//! service could legally have moved it to since).

use std::collections::HashMap;

use allocation::grpc::proto::{OrderState, OrderStatus, Shipment, TrackingEvent};

fn status(state: &OrderState) -> OrderStatus {
    OrderStatus::try_from(state.status).unwrap_or(OrderStatus::Unspecified)
}

/// Units per SKU of a list of (SKU, quantity).
fn units<'a>(items: impl IntoIterator<Item = (&'a str, u32)>) -> HashMap<&'a str, u64> {
    let mut units = HashMap::new();
    for (sku, quantity) in items {
        *units.entry(sku).or_default() += u64::from(quantity);
    }
    units
}

/// What any order must satisfy whatever happened to it: every unit of
/// every line is allocated, shipped or in exception as its status says,
/// and no line has more units accounted than it ordered.
pub fn consistent(state: &OrderState) -> Result<(), String> {
    let lines = units(state.lines.iter().map(|l| (l.sku.as_str(), l.quantity)));
    let allocated = units(
        state
            .allocations
            .iter()
            .map(|a| (a.sku.as_str(), a.quantity)),
    );
    let excepted = units(
        state
            .exceptions
            .iter()
            .map(|e| (e.sku.as_str(), e.quantity)),
    );
    let shipped = units(
        state
            .shipments
            .iter()
            .flat_map(|s| &s.items)
            .map(|a| (a.sku.as_str(), a.quantity)),
    );
    for (what, per_sku) in [
        ("allocation", &allocated),
        ("exception", &excepted),
        ("shipment", &shipped),
    ] {
        if let Some(sku) = per_sku.keys().find(|sku| !lines.contains_key(*sku)) {
            return Err(format!("{what} of SKU {sku}, which is no line"));
        }
    }
    if state.allocations.iter().any(|a| a.quantity == 0)
        || state.exceptions.iter().any(|e| e.quantity == 0)
    {
        return Err("an allocation or exception of 0 units".into());
    }
    if excepted.len() != state.exceptions.len() {
        return Err("two exception lines of one SKU".into());
    }
    let get = |map: &HashMap<&str, u64>, sku: &str| map.get(sku).copied().unwrap_or(0);
    let status = status(state);
    let waiting = matches!(
        status,
        OrderStatus::Processing | OrderStatus::PartiallyAllocated | OrderStatus::Exception
    );
    for (&sku, &quantity) in &lines {
        let accounted = get(&allocated, sku) + get(&shipped, sku) + get(&excepted, sku);
        if accounted > quantity {
            return Err(format!(
                "SKU {sku}: {accounted} units accounted for a line of {quantity}"
            ));
        }
        if waiting && accounted != quantity {
            return Err(format!(
                "SKU {sku}: allocated {} + shipped {} + in exception {} for a line of {quantity}",
                get(&allocated, sku),
                get(&shipped, sku),
                get(&excepted, sku)
            ));
        }
        let done = matches!(status, OrderStatus::Shipped | OrderStatus::Completed);
        if done && get(&shipped, sku) != quantity {
            return Err(format!(
                "SKU {sku}: {status:?} with {} of {quantity} units shipped",
                get(&shipped, sku)
            ));
        }
    }
    let (has_allocations, has_exceptions) =
        (!state.allocations.is_empty(), !state.exceptions.is_empty());
    let shape_ok = match status {
        OrderStatus::Processing => !has_exceptions,
        OrderStatus::PartiallyAllocated => has_allocations && has_exceptions,
        OrderStatus::Exception => !has_allocations && has_exceptions,
        OrderStatus::OnHold => !has_allocations && !has_exceptions && !state.hold_reason.is_empty(),
        OrderStatus::Shipped | OrderStatus::Completed => !has_allocations && !has_exceptions,
        OrderStatus::Cancelled => !has_allocations && !has_exceptions && state.shipments.is_empty(),
        OrderStatus::Rejected | OrderStatus::Unspecified => false,
    };
    if !shape_ok {
        return Err(format!(
            "{status:?} with {} allocations and {} exception lines",
            state.allocations.len(),
            state.exceptions.len()
        ));
    }
    if state.picked && !has_allocations {
        return Err("picked with nothing allocated".into());
    }
    Ok(())
}

/// What the service decided about an order; `Completed` reads as
/// `Shipped` (the completion time may pass between two reads).
fn decision(state: &OrderState) -> impl PartialEq + std::fmt::Debug + '_ {
    let status = match status(state) {
        OrderStatus::Completed => OrderStatus::Shipped,
        status => status,
    };
    (
        status,
        &state.allocations,
        &state.exceptions,
        state.picked,
        &state.hold_reason,
    )
}

/// A shipment without what tracking scans change.
fn labelled(shipment: &Shipment) -> Shipment {
    Shipment {
        status: 0,
        events: Vec::new(),
        expired: false,
        claim: None,
        misdelivery_confirmed: false,
        ..shipment.clone()
    }
}

/// A state as a later read answers it: the candidate FCs of a decision
/// come only with the answer of the call that decided.
fn as_stored(state: &OrderState) -> OrderState {
    let mut state = state.clone();
    if let Some(decision) = &mut state.decision {
        decision.fcs.clear();
    }
    state
}

/// Is `now` the acknowledged state `acked`, or one the service could have
/// moved it to since? Without a lost request of its owner (`uncertain`),
/// only the service's own passes move an order: a count's shortage and
/// reprocessing move unpicked waiting orders among PROCESSING,
/// PARTIALLY_ALLOCATED and EXCEPTION, and nothing moves the others. The
/// owner's one lost request may have done one more transition.
pub fn successor(acked: &OrderState, now: &OrderState, uncertain: bool) -> Result<(), String> {
    if now.version < acked.version {
        return Err(format!(
            "version {} is older than the acknowledged {}",
            now.version, acked.version
        ));
    }
    if now.version == acked.version {
        return if as_stored(now) == as_stored(acked) {
            Ok(())
        } else {
            Err(format!(
                "same version, other state: acknowledged {acked:?}, now {now:?}"
            ))
        };
    }
    let identity = |s: &OrderState| {
        (
            s.merchant_id.clone(),
            s.lines.clone(),
            s.purchase_time,
            s.parent_order_id.clone(),
            s.child_order_ids.clone(),
            s.acknowledgement,
        )
    };
    if identity(now) != identity(acked) {
        return Err("its lines, purchase time or links changed".into());
    }
    // Only the owner ships, and it has at most one request unanswered.
    let most = acked.shipments.len() + usize::from(uncertain);
    if !(acked.shipments.len()..=most).contains(&now.shipments.len()) {
        return Err(format!(
            "{} shipments where {} were acknowledged",
            now.shipments.len(),
            acked.shipments.len()
        ));
    }
    for (before, after) in acked.shipments.iter().zip(&now.shipments) {
        if labelled(before) != labelled(after) {
            return Err(format!(
                "shipment {} changed: {before:?} became {after:?}",
                before.tracking_number
            ));
        }
    }
    let (was, is) = (status(acked), status(now));
    let frozen = matches!(
        was,
        OrderStatus::Cancelled
            | OrderStatus::Rejected
            | OrderStatus::Shipped
            | OrderStatus::Completed
    ) || (!uncertain && (acked.picked || was == OrderStatus::OnHold));
    if frozen {
        if decision(acked) != decision(now) {
            return Err(format!(
                "{was:?} (picked {}) cannot change, yet {:?} became {:?}",
                acked.picked,
                decision(acked),
                decision(now)
            ));
        }
        if was == OrderStatus::Completed && is != OrderStatus::Completed {
            return Err("COMPLETED went back to SHIPPED".into());
        }
        return Ok(());
    }
    if !uncertain {
        let waiting = |s: OrderStatus| {
            matches!(
                s,
                OrderStatus::Processing | OrderStatus::PartiallyAllocated | OrderStatus::Exception
            )
        };
        return if waiting(is) && !now.picked && now.hold_reason.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{was:?} became {is:?} (picked {}) with no request of its owner",
                now.picked
            ))
        };
    }
    // One lost request of the owner, then passes.
    if acked.picked && (is == OrderStatus::OnHold || (!now.picked && !now.allocations.is_empty())) {
        return Err(format!(
            "a picked order became {is:?}, picked {}",
            now.picked
        ));
    }
    if !acked.shipments.is_empty() && is == OrderStatus::Cancelled {
        return Err("an order with shipped units was cancelled".into());
    }
    Ok(())
}

/// Every acknowledged scan is in its shipment's history, and the history
/// holds nothing but the label's own event, scans sent, and what was
/// acknowledged before.
pub fn scans(
    now: &OrderState,
    acked: Option<&OrderState>,
    sent: &HashMap<String, Vec<TrackingEvent>>,
    answered: &HashMap<String, Vec<TrackingEvent>>,
) -> Result<(), String> {
    let none = Vec::new();
    for shipment in &now.shipments {
        let number = &shipment.tracking_number;
        if let Some(lost) = answered
            .get(number)
            .unwrap_or(&none)
            .iter()
            .find(|scan| !shipment.events.contains(scan))
        {
            return Err(format!("acknowledged scan {lost:?} of {number} is gone"));
        }
        let known_before = acked
            .and_then(|acked| {
                acked
                    .shipments
                    .iter()
                    .find(|s| s.tracking_number == *number)
            })
            .map_or(&none, |s| &s.events);
        let label_event = |event: &TrackingEvent| {
            event.event_time == shipment.labelled_at && !event.misdelivery_confirmed
        };
        if let Some(stray) = shipment.events.iter().find(|event| {
            !label_event(event)
                && !known_before.contains(event)
                && !sent.get(number).unwrap_or(&none).contains(event)
        }) {
            return Err(format!("{number} has a scan nobody sent: {stray:?}"));
        }
    }
    Ok(())
}
