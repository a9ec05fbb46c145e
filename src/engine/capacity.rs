//! Daily FC capacity (RULES §12): an FC with a `daily_order_capacity` of N
//! takes at most N orders per operations day.
//!
//! An order takes a slot at a limited FC when it first holds units there,
//! on the operations day of the decision's `as_of`, and keeps it (recorded
//! on the order, so snapshots and the journal carry it) while it holds
//! units there or has shipped from there. A cancel, a hold, a count or a
//! FIFO release that leaves it without units there gives the slot back.
//! The counts per (FC, day) are derived from the orders' slots, so recovery
//! rebuilds them from the orders it restores.
//!
//! A decision that may take a slot checks and takes it under one mutex, held
//! from reading the counts to recording the slot: two orders can never both
//! take an FC's last slot. Until some FC has a limit, and for orders holding
//! no slot, no decision touches that mutex. The limits are the network's,
//! read (under its read lock) while the mutex is held; nothing takes the
//! mutex while holding the network's lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::model::{CapacitySlot, FcId, OperationsDay, Order};

use super::network::Network;

/// The slots taken, per (FC, operations day). The limits are the
/// network's (`Network::limit`).
#[derive(Clone, Debug, Default)]
pub struct Slots {
    taken: HashMap<(FcId, OperationsDay), u32, foldhash::fast::RandomState>,
}

impl Slots {
    /// Slots of `fc` taken on `day`.
    pub fn taken(&self, fc: FcId, day: OperationsDay) -> u32 {
        self.taken.get(&(fc, day)).copied().unwrap_or(0)
    }

    /// Whether `order` may not take units at `fc` on `day`: the FC has a
    /// limit, the order holds no slot there yet, and the day's are gone.
    pub fn is_full_for(
        &self,
        network: &Network,
        fc: FcId,
        day: OperationsDay,
        order: &Order,
    ) -> bool {
        let limit = network.limit(fc);
        limit > 0 && !order.has_slot_at(fc) && self.taken(fc, day) >= limit
    }

    /// Bring the order's slots in line with what it holds: give back each
    /// slot at an FC it neither holds units at nor shipped from, and, given
    /// a day, take one that day at each FC of `network` with a limit that
    /// it newly holds units at (the decision checked that one was free,
    /// under this same lock).
    pub fn settle(&mut self, order: &mut Order, take: Option<(OperationsDay, &Network)>) {
        let (mut slots, freed): (Vec<CapacitySlot>, Vec<CapacitySlot>) = order
            .extras()
            .slots
            .iter()
            .partition(|slot| order.uses_fc(slot.fc));
        for slot in freed {
            self.give_back(slot);
        }
        if let Some((day, network)) = take {
            for allocation in &order.allocations {
                let fc = allocation.fc;
                if network.limit(fc) > 0 && slots.iter().all(|slot| slot.fc != fc) {
                    let slot = CapacitySlot { fc, day };
                    *self.taken.entry((fc, day)).or_default() += 1;
                    slots.push(slot);
                }
            }
        }
        if slots != order.extras().slots {
            order.extras_mut().slots = slots;
        }
    }

    fn give_back(&mut self, slot: CapacitySlot) {
        if let Some(count) = self.taken.get_mut(&(slot.fc, slot.day)) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.taken.remove(&(slot.fc, slot.day));
            }
        }
    }
}

/// The service's slots, behind their mutex.
#[derive(Debug, Default)]
pub struct SlotBook {
    /// Whether any FC has a limit: read by every decision, written only by
    /// an FC upsert, so it costs the allocation path no shared write.
    limited: AtomicBool,
    slots: Mutex<Slots>,
}

impl SlotBook {
    /// Set, by an FC upsert, whether any FC now has a limit.
    pub fn set_limited(&self, limited: bool) {
        self.limited.store(limited, Ordering::Release);
    }

    /// Whether any FC has a daily limit.
    pub fn limited(&self) -> bool {
        self.limited.load(Ordering::Acquire)
    }

    /// The slots, locked, when a decision about `order` must consult them:
    /// some FC has a limit, or the order holds a slot it may give back.
    pub fn lock_for(&self, order: &Order) -> Option<MutexGuard<'_, Slots>> {
        (self.limited() || !order.extras().slots.is_empty()).then(|| self.slots.lock())
    }

    /// Give back the slots of FCs `order` no longer uses (it just lost
    /// units: a cancel, a hold, a count).
    pub fn release(&self, order: &mut Order) {
        if !order.extras().slots.is_empty() {
            self.slots.lock().settle(order, None);
        }
    }

    /// A private copy of `day`'s counts, for a decision that changes
    /// nothing (a dry run, an explanation, a simulation).
    pub fn copy_of_day(&self, day: OperationsDay) -> Slots {
        let slots = self.slots.lock();
        Slots {
            taken: slots
                .taken
                .iter()
                .filter(|((_, on), _)| *on == day)
                .map(|(&key, &count)| (key, count))
                .collect(),
        }
    }

    /// Slots of `fc` taken on `day`.
    pub fn taken(&self, fc: FcId, day: OperationsDay) -> u32 {
        self.slots.lock().taken(fc, day)
    }

    /// Every (FC, day) with slots taken, and how many, by FC and day.
    pub fn all_taken(&self) -> Vec<(FcId, OperationsDay, u32)> {
        let mut taken: Vec<(FcId, OperationsDay, u32)> = self
            .slots
            .lock()
            .taken
            .iter()
            .map(|(&(fc, day), &count)| (fc, day, count))
            .collect();
        taken.sort_unstable();
        taken
    }

    /// Count a recovered order's slots (`after`) in place of those of the
    /// state it replaces (`before`).
    pub fn restore(&self, before: &[CapacitySlot], after: &[CapacitySlot]) {
        if before.is_empty() && after.is_empty() {
            return;
        }
        let mut slots = self.slots.lock();
        for &slot in before {
            slots.give_back(slot);
        }
        for slot in after {
            *slots.taken.entry((slot.fc, slot.day)).or_default() += 1;
        }
    }
}
