//! The inventory ledger: `on_hand`, `reserved` and `picked` units per
//! (merchant, SKU, FC), plus each SKU's catalog entry.
//!
//! The ledger is split into a power-of-two number of stripes, each behind its
//! own mutex; a SKU lives in the stripe its key hashes to, with all its FCs.
//! An operation that touches several SKUs locks all their stripes in
//! ascending stripe order (`Ledger::lock`), decides, applies, and unlocks:
//! that makes every order's reservation atomic across SKUs and FCs, and the
//! single global lock order makes it deadlock-free.
//!
//! Invariant, checked on every change: `picked <= reserved <= on_hand`.

use hashbrown::hash_table::{Entry, HashTable};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::model::{FcId, SkuKey};

/// Stock of one SKU at one FC: 16 bytes, so a SKU's rows for ten FCs fit
/// in three cache lines. Counts are 32-bit because an on-hand count is
/// capped at `limits::UNITS_MAX` (< 2^32) and `picked <= reserved <= on_hand`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FcStock {
    pub fc: FcId,
    /// Units physically there, including reserved and picked ones not yet shipped.
    pub on_hand: u32,
    /// Units promised to orders.
    pub reserved: u32,
    /// The part of `reserved` that belongs to picked orders: frozen until
    /// shipped or cancelled, and a count may never go below it.
    pub picked: u32,
}

impl FcStock {
    pub fn new(fc: FcId) -> Self {
        Self {
            fc,
            on_hand: 0,
            reserved: 0,
            picked: 0,
        }
    }

    /// Units not promised to any order. What allocation may take is less by
    /// the SKU's safety stock here: `SkuRecord::available`.
    pub fn unreserved(&self) -> u32 {
        self.on_hand - self.reserved
    }

    fn check(&self) {
        assert!(
            self.picked <= self.reserved && self.reserved <= self.on_hand,
            "ledger invariant broken at FC {}: picked {} reserved {} on_hand {}",
            self.fc,
            self.picked,
            self.reserved,
            self.on_hand
        );
    }
}

/// Catalog facts about a SKU that allocation rules read.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SkuInfo {
    /// Registered through `RegisterSkus` (a SKU is also known once it has stock rows).
    pub registered: bool,
    /// Auto-split tags.
    pub tags: Vec<String>,
    /// Marketplace rule: a replenishable SKU is acknowledged even without stock.
    pub replenishable: bool,
}

/// Units allocation must leave on the shelf at each FC (RULES §12): one
/// level for every FC of the SKU, and levels for single FCs that override it.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SafetyStock {
    pub every_fc: u32,
    /// Sorted by FC id.
    pub at: Vec<(FcId, u32)>,
}

impl SafetyStock {
    pub fn units_at(&self, fc: FcId) -> u32 {
        self.at
            .iter()
            .find(|(at, _)| *at == fc)
            .map_or(self.every_fc, |&(_, units)| units)
    }

    pub fn is_empty(&self) -> bool {
        self.every_fc == 0 && self.at.is_empty()
    }

    /// What allocation may take from `row`: its unreserved units less the
    /// level at its FC, never below 0.
    pub fn available(&self, row: &FcStock) -> u32 {
        row.unreserved().saturating_sub(self.units_at(row.fc))
    }

    /// Set the level of one FC (`Some`), or of every FC without a level of
    /// its own (`None`).
    pub fn set(&mut self, fc: Option<FcId>, units: u32) {
        let Some(fc) = fc else {
            self.every_fc = units;
            return;
        };
        match self.at.binary_search_by(|(at, _)| at.cmp(&fc)) {
            Ok(i) => self.at[i].1 = units,
            Err(i) => self.at.insert(i, (fc, units)),
        }
    }
}

/// Everything the ledger knows about one SKU.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SkuRecord {
    pub info: SkuInfo,
    /// One row per FC that ever had a count for this SKU, sorted by FC id.
    pub fcs: Vec<FcStock>,
    pub safety: SafetyStock,
}

impl SkuRecord {
    /// Found by comparing 4-byte ids, which beats a binary search by name
    /// over a SKU's few rows.
    pub fn fc(&self, fc: &FcId) -> Option<&FcStock> {
        self.fcs.iter().find(|row| row.fc == *fc)
    }

    /// The row of `fc`, created empty if missing.
    pub fn fc_mut(&mut self, fc: &FcId) -> &mut FcStock {
        if let Some(i) = self.fcs.iter().position(|row| row.fc == *fc) {
            return &mut self.fcs[i];
        }
        // Rows are added rarely (once per SKU and FC) and read on every
        // allocation: grow by one rather than by doubling, so a SKU's rows
        // hold no spare capacity.
        let i = self.fcs.partition_point(|row| row.fc < *fc);
        self.fcs.reserve_exact(1);
        self.fcs.insert(i, FcStock::new(*fc));
        &mut self.fcs[i]
    }

    /// What allocation may take from `row` (one of this record's rows):
    /// its unreserved units less the safety stock there, never below 0.
    pub fn available(&self, row: &FcStock) -> u32 {
        self.safety.available(row)
    }

    pub fn available_at(&self, fc: &FcId) -> u32 {
        self.fc(fc).map_or(0, |row| self.available(row))
    }

    /// Promise `quantity` units at `fc` to an order. The caller has checked
    /// availability under the same lock; a failure here is a bug.
    pub fn reserve(&mut self, fc: &FcId, quantity: u32) {
        let row = self.fc_mut(fc);
        assert!(
            row.unreserved() >= quantity,
            "over-reservation of {quantity} at {fc}"
        );
        row.reserved += quantity;
    }

    /// Give back units an order had reserved (picked ones too, when `picked`).
    pub fn unreserve(&mut self, fc: &FcId, quantity: u32, picked: bool) {
        let row = self.fc_mut(fc);
        assert!(row.reserved >= quantity, "unreserving more than reserved");
        row.reserved -= quantity;
        if picked {
            assert!(row.picked >= quantity, "unpicking more than picked");
            row.picked -= quantity;
        }
        row.check();
    }

    /// Units an order had reserved leave the building: `on_hand` and
    /// `reserved` both drop (and `picked`, when the order was picked).
    pub fn ship(&mut self, fc: &FcId, quantity: u32, picked: bool) {
        self.unreserve(fc, quantity, picked);
        let row = self.fc_mut(fc);
        // Reserved units are part of on_hand, so this cannot underflow.
        row.on_hand -= quantity;
        row.check();
    }

    /// Freeze reserved units because their order was picked.
    pub fn pick(&mut self, fc: &FcId, quantity: u32) {
        let row = self.fc_mut(fc);
        row.picked += quantity;
        row.check();
    }

    pub fn totals(&self) -> (u64, u64) {
        self.fcs.iter().fold((0, 0), |(on_hand, reserved), row| {
            (
                on_hand + u64::from(row.on_hand),
                reserved + u64::from(row.reserved),
            )
        })
    }
}

/// One stripe's SKUs. A `HashTable` rather than a `HashMap` so that the
/// hash the key carries (`SkuKey::hash_value`), which chose the stripe, also
/// finds it in the table.
#[derive(Default)]
pub struct Stripe {
    skus: HashTable<(SkuKey, SkuRecord)>,
}

impl Stripe {
    fn get_key_value(&self, hash: u64, key: &SkuKey) -> Option<&(SkuKey, SkuRecord)> {
        self.skus.find(hash, |(k, _)| k == key)
    }

    fn get(&self, hash: u64, key: &SkuKey) -> Option<&SkuRecord> {
        self.get_key_value(hash, key).map(|(_, record)| record)
    }

    fn get_mut(&mut self, hash: u64, key: &SkuKey) -> Option<&mut SkuRecord> {
        self.skus
            .find_mut(hash, |(k, _)| k == key)
            .map(|(_, record)| record)
    }

    fn entry(&mut self, hash: u64, key: &SkuKey) -> Entry<'_, (SkuKey, SkuRecord)> {
        self.skus
            .entry(hash, |(k, _)| k == key, |(k, _)| k.hash_value())
    }
}

/// Stripes an order's lock set holds without a heap allocation: orders have
/// a handful of lines (bigger sets, like a FIFO release's, spill to the heap).
const INLINE_STRIPES: usize = 8;

/// The striped ledger. Cheap to share behind an `Arc`.
pub struct Ledger {
    stripes: Box<[Mutex<Stripe>]>,
}

impl Ledger {
    /// `stripe_count` is rounded up to a power of two (at least 1).
    pub fn new(stripe_count: usize) -> Self {
        let count = stripe_count.max(1).next_power_of_two();
        Self {
            stripes: (0..count).map(|_| Mutex::new(Stripe::default())).collect(),
        }
    }

    pub fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// Bits 32 and up of the hash: the table inside the stripe probes from
    /// the low bits and tags entries with the top 7, so keys that share a
    /// stripe still spread over its table.
    fn stripe_of_hash(&self, hash: u64) -> usize {
        ((hash >> 32) as usize) & (self.stripes.len() - 1)
    }

    pub fn stripe_of(&self, key: &SkuKey) -> usize {
        self.stripe_of_hash(key.hash_value())
    }

    /// Lock the stripes of every key, in ascending stripe order.
    /// A private copy of `keys`' records, read with all their stripes
    /// locked at once (a consistent view of them).
    pub fn copy(&self, keys: &[SkuKey]) -> StockCopy {
        let locked = self.lock(keys);
        let mut copy = StockCopy::default();
        for key in keys {
            copy.copy_from(&locked, key);
        }
        copy
    }

    pub fn lock<'a, 'k>(&'a self, keys: impl IntoIterator<Item = &'k SkuKey>) -> Locked<'a> {
        let mut indexes: SmallVec<[usize; INLINE_STRIPES]> =
            keys.into_iter().map(|key| self.stripe_of(key)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let guards = indexes
            .into_iter()
            .map(|index| (index, self.stripes[index].lock()))
            .collect();
        Locked {
            ledger: self,
            guards,
        }
    }

    /// Visit the records of one stripe, with only that stripe locked.
    pub fn with_stripe<T>(
        &self,
        index: usize,
        visit: impl FnOnce(&mut dyn Iterator<Item = (&SkuKey, &SkuRecord)>) -> T,
    ) -> T {
        let stripe = self.stripes[index].lock();
        visit(&mut stripe.skus.iter().map(|(key, record)| (key, record)))
    }

    /// Replace (or create) one SKU's record as a whole: recovery only.
    pub fn restore(&self, key: SkuKey, record: SkuRecord) {
        let hash = key.hash_value();
        let mut stripe = self.stripes[self.stripe_of_hash(hash)].lock();
        match stripe.entry(hash, &key) {
            Entry::Occupied(mut entry) => entry.get_mut().1 = record,
            Entry::Vacant(entry) => {
                entry.insert((key, record));
            }
        }
    }

    /// Visit every SKU record, one stripe at a time (each stripe is locked
    /// only while it is visited, so allocation goes on in the others).
    pub fn for_each(&self, mut visit: impl FnMut(&SkuKey, &SkuRecord)) {
        for stripe in self.stripes.iter() {
            let stripe = stripe.lock();
            for (key, record) in stripe.skus.iter() {
                visit(key, record);
            }
        }
    }
}

/// The stock a decision reads and changes: the ledger's locked stripes, or
/// a private copy of some SKUs' records (a dry run, a simulation), so that
/// the same decision code runs over either.
pub trait Stock {
    fn get(&self, key: &SkuKey) -> Option<&SkuRecord>;
    fn get_mut(&mut self, key: &SkuKey) -> Option<&mut SkuRecord>;
    /// The record of `key`, created empty (unknown, no stock) if missing.
    fn entry(&mut self, key: &SkuKey) -> &mut SkuRecord;
}

/// Copies of some SKUs' records, changed by nobody else.
#[derive(Clone, Debug, Default)]
pub struct StockCopy {
    /// `None`: copied while the ledger had no record of it (an unknown SKU).
    records: std::collections::HashMap<SkuKey, Option<SkuRecord>, foldhash::fast::RandomState>,
}

impl StockCopy {
    /// Whether `key` was copied already (present in the ledger or not).
    pub fn has(&self, key: &SkuKey) -> bool {
        self.records.contains_key(key)
    }

    /// Copy `key`'s record as `locked` holds it (its stripe locked), unless
    /// it was copied already.
    pub fn copy_from(&mut self, locked: &Locked<'_>, key: &SkuKey) {
        if !self.has(key) {
            self.records.insert(key.clone(), locked.get(key).cloned());
        }
    }
}

impl Stock for StockCopy {
    fn get(&self, key: &SkuKey) -> Option<&SkuRecord> {
        self.records.get(key)?.as_ref()
    }

    fn get_mut(&mut self, key: &SkuKey) -> Option<&mut SkuRecord> {
        self.records.get_mut(key)?.as_mut()
    }

    fn entry(&mut self, key: &SkuKey) -> &mut SkuRecord {
        let copied = self.records.entry(key.clone()).or_default();
        copied.get_or_insert_with(SkuRecord::default)
    }
}

impl Stock for Locked<'_> {
    fn get(&self, key: &SkuKey) -> Option<&SkuRecord> {
        Locked::get(self, key)
    }

    fn get_mut(&mut self, key: &SkuKey) -> Option<&mut SkuRecord> {
        Locked::get_mut(self, key)
    }

    fn entry(&mut self, key: &SkuKey) -> &mut SkuRecord {
        Locked::entry(self, key)
    }
}

/// The stripes of a set of SKUs, locked. Dropping it unlocks them.
pub struct Locked<'a> {
    ledger: &'a Ledger,
    /// Sorted by stripe index.
    guards: SmallVec<[(usize, MutexGuard<'a, Stripe>); INLINE_STRIPES]>,
}

impl Locked<'_> {
    /// The position in `guards` of the stripe of a key with this hash.
    fn guard_of(&self, hash: u64, key: &SkuKey) -> usize {
        let index = self.ledger.stripe_of_hash(hash);
        match self.guards.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(position) => position,
            Err(_) => panic!("SKU {key:?} used without its stripe locked"),
        }
    }

    pub fn get(&self, key: &SkuKey) -> Option<&SkuRecord> {
        let hash = key.hash_value();
        self.guards[self.guard_of(hash, key)].1.get(hash, key)
    }

    /// The ledger's own copy of a key equal to `key`, if it has the SKU.
    pub fn stored_key(&self, key: &SkuKey) -> Option<&SkuKey> {
        let hash = key.hash_value();
        self.guards[self.guard_of(hash, key)]
            .1
            .get_key_value(hash, key)
            .map(|(stored, _)| stored)
    }

    pub fn get_mut(&mut self, key: &SkuKey) -> Option<&mut SkuRecord> {
        let hash = key.hash_value();
        let position = self.guard_of(hash, key);
        self.guards[position].1.get_mut(hash, key)
    }

    /// The record of `key`, created empty (unknown, no stock) if missing.
    pub fn entry(&mut self, key: &SkuKey) -> &mut SkuRecord {
        let hash = key.hash_value();
        let position = self.guard_of(hash, key);
        let entry = self.guards[position].1.entry(hash, key);
        &mut entry
            .or_insert_with(|| (key.clone(), SkuRecord::default()))
            .into_mut()
            .1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MerchantId, Sku};

    fn key(sku: &str) -> SkuKey {
        SkuKey::new(&MerchantId::new("m"), &Sku::new(sku))
    }

    #[test]
    fn stripe_count_is_a_power_of_two() {
        assert_eq!(Ledger::new(0).stripe_count(), 1);
        assert_eq!(Ledger::new(5).stripe_count(), 8);
        assert_eq!(Ledger::new(64).stripe_count(), 64);
    }

    #[test]
    fn locking_the_same_stripe_twice_is_deduplicated() {
        let ledger = Ledger::new(1);
        let (a, b) = (key("a"), key("b"));
        let mut locked = ledger.lock([&a, &b, &a]);
        locked.entry(&a).fc_mut(&FcId::new("fc")).on_hand = 3;
        locked.entry(&b).reserve(&FcId::new("fc"), 0);
        assert_eq!(locked.get(&a).unwrap().available_at(&FcId::new("fc")), 3);
    }

    #[test]
    fn fc_rows_stay_sorted_by_fc_id() {
        let mut record = SkuRecord::default();
        for fc in ["c", "a", "b"] {
            record.fc_mut(&FcId::new(fc)).on_hand = 1;
        }
        let ids: Vec<&str> = record.fcs.iter().map(|row| row.fc.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    #[should_panic(expected = "over-reservation")]
    fn reserving_more_than_available_is_a_bug() {
        let mut record = SkuRecord::default();
        record.fc_mut(&FcId::new("fc")).on_hand = 1;
        record.reserve(&FcId::new("fc"), 2);
    }
}
