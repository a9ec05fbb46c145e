//! The FCs of the network (RULES §12): upserted, listed, journaled, and
//! read by closest routing.

use parking_lot::RwLock;

use crate::model::{FcId, FulfillmentCenter, OperationsDay, Timestamp};

use super::{EffectRef, Engine};

/// Every upserted FC, indexed by its id's dense number, with its location
/// as a unit vector (what routing compares).
#[derive(Debug, Default)]
pub struct Network {
    sites: Vec<Option<(FulfillmentCenter, Option<[f64; 3]>)>>,
}

impl Network {
    /// Where `fc` is, if it was upserted with a location.
    pub fn place(&self, fc: FcId) -> Option<[f64; 3]> {
        self.sites.get(fc.number())?.as_ref()?.1
    }

    /// `fc`'s daily order capacity; 0: no limit (or never upserted).
    pub fn limit(&self, fc: FcId) -> u32 {
        self.sites
            .get(fc.number())
            .and_then(Option::as_ref)
            .map_or(0, |(fc, _)| fc.daily_order_capacity)
    }

    /// Whether any FC has a daily capacity.
    fn any_limit(&self) -> bool {
        self.sites
            .iter()
            .flatten()
            .any(|(fc, _)| fc.daily_order_capacity > 0)
    }

    /// Whether `fc` was upserted.
    pub fn knows(&self, fc: FcId) -> bool {
        self.sites.get(fc.number()).is_some_and(Option::is_some)
    }

    fn insert(&mut self, fc: FulfillmentCenter) {
        let number = fc.fc.number();
        if self.sites.len() <= number {
            self.sites.resize_with(number + 1, || None);
        }
        let place = fc.location.map(|point| point.unit_vector());
        self.sites[number] = Some((fc, place));
    }
}

pub(super) type SharedNetwork = RwLock<Network>;

impl Engine {
    /// Create or replace an FC's record.
    pub fn upsert_fulfillment_center(&self, fc: FulfillmentCenter) -> FulfillmentCenter {
        // Journaled under the write lock, so the log orders upserts of one
        // FC as they took effect.
        let mut network = self.shared.network.write();
        network.insert(fc.clone());
        self.shared.slots.set_limited(network.any_limit());
        self.append(&[EffectRef::Fc(&fc)], |_| {});
        fc
    }

    /// Every upserted FC, by id.
    pub fn fulfillment_centers(&self) -> Vec<FulfillmentCenter> {
        let mut fcs: Vec<FulfillmentCenter> = self
            .shared
            .network
            .read()
            .sites
            .iter()
            .flatten()
            .map(|(fc, _)| fc.clone())
            .collect();
        fcs.sort_by_key(|fc| fc.fc);
        fcs
    }

    /// Install a recovered FC record.
    pub(super) fn restore_fc(&self, fc: FulfillmentCenter) {
        let mut network = self.shared.network.write();
        network.insert(fc);
        self.shared.slots.set_limited(network.any_limit());
    }

    /// The orders that took one of `fc`'s daily slots in `now`'s
    /// operations day.
    pub fn orders_today(&self, fc: FcId, now: Timestamp) -> u32 {
        self.shared.slots.taken(fc, OperationsDay::of(now))
    }

    /// Every (FC, operations day) whose daily slots orders hold, with how
    /// many: what recovery must rebuild from the orders it restores.
    pub fn slots_taken(&self) -> Vec<(FcId, OperationsDay, u32)> {
        self.shared.slots.all_taken()
    }
}
