//! Shipments and carrier tracking (RULES §6): what left an FC under one
//! tracking number, what the carrier has scanned since, and what follows from
//! it: its current status, whether tracking has expired, and whether a
//! lost-parcel claim may be filed.

use super::calendar;
use super::{Allocation, FcId, Timestamp};

/// Who made the shipping label. Only labels the service generated can be
/// claimed for by the service; prepaid ones are the carrier's business.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum LabelSource {
    Service,
    Prepaid,
}

/// Where a parcel is, in the order a parcel moves through them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum TrackingStatus {
    /// Visible to the service, pre transit.
    Received,
    /// Packed and labelled, waiting for the carrier (set by `ShipOrder`).
    AtDepot,
    /// Picked up by the carrier: in transit.
    PickedUp,
    OutForDelivery,
    /// The final scan.
    Delivered,
}

/// One carrier scan.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct TrackingEvent {
    pub status: TrackingStatus,
    pub time: Timestamp,
    pub misdelivery_confirmed: bool,
}

/// The units that left one FC under one tracking number.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Shipment {
    pub tracking_number: String,
    pub carrier: String,
    pub label_source: LabelSource,
    pub fc: FcId,
    /// The reservations this shipment consumed.
    pub items: Vec<Allocation>,
    /// When the label was made and the tracking number uploaded.
    pub labelled_at: Timestamp,
    /// Every distinct scan, oldest first; the first is the `AtDepot` of the label.
    pub events: Vec<TrackingEvent>,
}

/// Carrier tracking stays retrievable this long after the label.
pub const TRACKING_VALID_SECONDS: i64 = 120 * 86_400;

/// Default number of business days without a scan after which tracking is stalled.
pub const STALLED_AFTER_BUSINESS_DAYS_DEFAULT: u32 = 5;

/// What recording a scan changed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScanOutcome {
    /// The same scan was recorded before: nothing changed.
    Duplicate,
    /// Recorded; the shipment's status stayed (a late or repeated scan).
    Recorded,
    /// Recorded, and the shipment's status moved forward.
    Advanced,
}

/// Whether a lost-parcel claim may be filed, and the rule that decided.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ClaimEligibility {
    pub eligible: bool,
    /// A stable name for the deciding rule, for programs.
    pub rule: &'static str,
    /// The same for people.
    pub explanation: String,
}

impl Shipment {
    /// A shipment labelled at `labelled_at`: its first event is `AtDepot`.
    pub fn labelled(
        tracking_number: String,
        carrier: String,
        label_source: LabelSource,
        fc: FcId,
        items: Vec<Allocation>,
        labelled_at: Timestamp,
    ) -> Self {
        Self {
            tracking_number,
            carrier,
            label_source,
            fc,
            items,
            labelled_at,
            events: vec![TrackingEvent {
                status: TrackingStatus::AtDepot,
                time: labelled_at,
                misdelivery_confirmed: false,
            }],
        }
    }

    /// The furthest status any scan reached. Statuses never move backwards:
    /// a scan that arrives late (a `PickedUp` after the `Delivered`) is kept
    /// in the history but does not undo progress.
    pub fn status(&self) -> TrackingStatus {
        self.events
            .iter()
            .map(|event| event.status)
            .max()
            .unwrap_or(TrackingStatus::AtDepot)
    }

    /// Has the carrier confirmed a misdelivery in any scan?
    pub fn misdelivery_confirmed(&self) -> bool {
        self.events.iter().any(|event| event.misdelivery_confirmed)
    }

    /// The time of the newest scan (the label counts as the first).
    pub fn last_scan(&self) -> Timestamp {
        self.events
            .iter()
            .map(|event| event.time)
            .max()
            .unwrap_or(self.labelled_at)
    }

    /// Record a scan, keeping the history in time order. The identical scan
    /// twice (carriers resend) is recorded once.
    pub fn record(&mut self, event: TrackingEvent) -> ScanOutcome {
        if self.events.contains(&event) {
            return ScanOutcome::Duplicate;
        }
        let before = self.status();
        let at = self
            .events
            .partition_point(|known| known.time <= event.time);
        self.events.insert(at, event);
        if self.status() > before {
            ScanOutcome::Advanced
        } else {
            ScanOutcome::Recorded
        }
    }

    /// Carrier tracking is valid for 120 days after the label, then expires.
    pub fn expired(&self, as_of: Timestamp) -> bool {
        as_of.seconds - self.labelled_at.seconds > TRACKING_VALID_SECONDS
            || (as_of.seconds - self.labelled_at.seconds == TRACKING_VALID_SECONDS
                && as_of.nanos > self.labelled_at.nanos)
    }

    /// The lost-parcel claim rules (RULES §6), in the order they apply.
    pub fn claim(&self, as_of: Timestamp, stalled_after_business_days: u32) -> ClaimEligibility {
        let decided = |eligible, rule, explanation: String| ClaimEligibility {
            eligible,
            rule,
            explanation,
        };
        if self.label_source != LabelSource::Service {
            return decided(
                false,
                "prepaid_label",
                "only service-generated labels can be claimed; contact the carrier for prepaid labels".into(),
            );
        }
        if self.misdelivery_confirmed() {
            return decided(
                true,
                "misdelivery_confirmed",
                "the carrier confirmed a misdelivery".into(),
            );
        }
        if self.status() == TrackingStatus::Delivered {
            return decided(
                false,
                "delivered",
                "the parcel has a final (delivered) scan and no misdelivery is confirmed".into(),
            );
        }
        let idle = calendar::business_days_between(self.last_scan(), as_of);
        if idle < stalled_after_business_days {
            return decided(
                false,
                "not_stalled",
                format!(
                    "last scan {idle} business day(s) ago; a claim needs {stalled_after_business_days} without a scan"
                ),
            );
        }
        decided(
            true,
            "stalled",
            format!("no scan for {idle} business day(s)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Friday 2026-11-20 17:00 Central (23:00 UTC).
    const FRIDAY_5PM: i64 = 1_795_215_600;
    const DAY: i64 = 86_400;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_seconds(seconds)
    }

    fn shipment(label_source: LabelSource) -> Shipment {
        Shipment::labelled(
            "1Z1".into(),
            "UPS".into(),
            label_source,
            FcId::new("fc"),
            Vec::new(),
            at(FRIDAY_5PM),
        )
    }

    fn scan(status: TrackingStatus, seconds: i64) -> TrackingEvent {
        TrackingEvent {
            status,
            time: at(seconds),
            misdelivery_confirmed: false,
        }
    }

    #[test]
    fn the_friday_constant_is_a_friday_evening_in_chicago() {
        let days = |later: i64| {
            crate::model::calendar::business_days_between(at(FRIDAY_5PM), at(FRIDAY_5PM + later))
        };
        assert_eq!(days(2 * DAY), 0, "Friday to Sunday");
        assert_eq!(days(3 * DAY), 1, "Friday to Monday");
    }

    #[test]
    fn prepaid_labels_are_never_claimable() {
        let stalled_for_weeks = at(FRIDAY_5PM + 30 * DAY);
        let claim = shipment(LabelSource::Prepaid).claim(stalled_for_weeks, 5);
        assert!(!claim.eligible);
        assert_eq!(claim.rule, "prepaid_label");
    }

    #[test]
    fn stalled_means_business_days_without_a_scan() {
        let mut parcel = shipment(LabelSource::Service);
        // Picked up Friday evening; the first carrier scan may only come Monday.
        parcel.record(scan(TrackingStatus::PickedUp, FRIDAY_5PM + 3600));
        let thursday = at(FRIDAY_5PM + 6 * DAY);
        let claim = parcel.claim(thursday, 5);
        assert_eq!((claim.eligible, claim.rule), (false, "not_stalled"));
        let next_friday = at(FRIDAY_5PM + 7 * DAY);
        let claim = parcel.claim(next_friday, 5);
        assert_eq!((claim.eligible, claim.rule), (true, "stalled"));
        // A scan restarts the count; the threshold is configurable.
        parcel.record(scan(TrackingStatus::OutForDelivery, FRIDAY_5PM + 6 * DAY));
        assert_eq!(parcel.claim(next_friday, 5).rule, "not_stalled");
        assert_eq!(parcel.claim(next_friday, 1).rule, "stalled");
    }

    #[test]
    fn delivered_parcels_are_not_claimable_unless_misdelivered() {
        let mut parcel = shipment(LabelSource::Service);
        parcel.record(scan(TrackingStatus::Delivered, FRIDAY_5PM + 4 * DAY));
        let much_later = at(FRIDAY_5PM + 60 * DAY);
        let claim = parcel.claim(much_later, 5);
        assert_eq!((claim.eligible, claim.rule), (false, "delivered"));

        parcel.record(TrackingEvent {
            misdelivery_confirmed: true,
            ..scan(TrackingStatus::Delivered, FRIDAY_5PM + 5 * DAY)
        });
        let claim = parcel.claim(much_later, 5);
        assert_eq!(
            (claim.eligible, claim.rule),
            (true, "misdelivery_confirmed")
        );
        assert!(parcel.misdelivery_confirmed());
    }

    #[test]
    fn tracking_expires_just_after_120_days() {
        let parcel = shipment(LabelSource::Service);
        let limit = FRIDAY_5PM + 120 * DAY;
        assert!(!parcel.expired(at(limit - 1)));
        assert!(!parcel.expired(at(limit)));
        assert!(parcel.expired(Timestamp {
            seconds: limit,
            nanos: 1
        }));
        assert!(parcel.expired(at(limit + 1)));
    }

    #[test]
    fn late_and_repeated_scans_never_move_the_status_backwards() {
        let mut parcel = shipment(LabelSource::Service);
        assert_eq!(parcel.status(), TrackingStatus::AtDepot);
        let delivered = scan(TrackingStatus::Delivered, FRIDAY_5PM + 5 * DAY);
        assert_eq!(parcel.record(delivered), ScanOutcome::Advanced);
        assert_eq!(parcel.record(delivered), ScanOutcome::Duplicate);
        // The pick-up scan arrives after the delivery: kept, in time order.
        let picked_up = scan(TrackingStatus::PickedUp, FRIDAY_5PM + 3 * DAY);
        assert_eq!(parcel.record(picked_up), ScanOutcome::Recorded);
        assert_eq!(parcel.status(), TrackingStatus::Delivered);
        let history: Vec<TrackingStatus> = parcel.events.iter().map(|e| e.status).collect();
        assert_eq!(
            history,
            [
                TrackingStatus::AtDepot,
                TrackingStatus::PickedUp,
                TrackingStatus::Delivered
            ]
        );
        assert_eq!(parcel.last_scan(), delivered.time);
    }
}
