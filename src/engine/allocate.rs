//! Importing an order and deciding where it ships from.

use crate::error::{Error, Result};
use crate::ledger::{Locked, SkuRecord, Stock, StockCopy};
use crate::model::{
    Acknowledgement, Allocation, Channel, Considered, ExceptionLine, FcAssessment, FcId,
    LineShortfall, MarketplaceStatus, Merchant, OperationsDay, Order, OrderRequest, OrderStatus,
    RoutingStrategy, SkuKey, Timestamp, DECISION_FCS_MAX,
};
use crate::order_book::Inserted;
use crate::policy::{self, Plan, Rules, StockMatrix};
use smallvec::SmallVec;

use super::capacity::{SlotBook, Slots};
use super::lifecycle::unreserve_allocations;
use super::network::{Network, SharedNetwork};
use super::Engine;

/// What a decision reads besides stock: the network (to route by
/// distance) and the FCs' daily slots, live or a private copy for a
/// decision that changes nothing.
pub(super) struct Routing<'a> {
    network: &'a SharedNetwork,
    slots: SlotAccess<'a>,
}

enum SlotAccess<'a> {
    /// The live slots, counted on the operations day of the time given
    /// (worked out only when a decision consults them).
    Live(&'a SlotBook, Timestamp),
    Private(&'a mut Slots, OperationsDay),
}

impl Routing<'_> {
    /// The slots a decision about `order` consults, and the day it counts
    /// on: the live ones when it must consult them (see
    /// `SlotBook::lock_for`), locked; a private copy always.
    fn slots_for(&mut self, order: &Order) -> Option<(SlotsHeld<'_>, OperationsDay)> {
        match &mut self.slots {
            SlotAccess::Live(book, now) => {
                let slots = book.lock_for(order)?;
                Some((SlotsHeld::Locked(slots), OperationsDay::of(*now)))
            }
            SlotAccess::Private(slots, day) => Some((SlotsHeld::Private(slots), *day)),
        }
    }
}

/// The slots, held for one decision.
enum SlotsHeld<'r> {
    Locked(parking_lot::MutexGuard<'r, Slots>),
    Private(&'r mut Slots),
}

impl std::ops::Deref for SlotsHeld<'_> {
    type Target = Slots;

    fn deref(&self) -> &Slots {
        match self {
            SlotsHeld::Locked(slots) => slots,
            SlotsHeld::Private(slots) => slots,
        }
    }
}

impl std::ops::DerefMut for SlotsHeld<'_> {
    fn deref_mut(&mut self) -> &mut Slots {
        match self {
            SlotsHeld::Locked(slots) => slots,
            SlotsHeld::Private(slots) => slots,
        }
    }
}

/// What importing one order produced: the order, and its auto-split
/// children in tag order (none when it was not split).
#[derive(Clone, Debug)]
pub struct Imported {
    pub order: Order,
    pub children: Vec<Order>,
    /// When asked for (`assess`): per order decided by this call, the order
    /// first and then each child, the candidate FCs its decision weighed.
    /// Empty otherwise, and for an order answered from what was stored.
    pub considered: Vec<Considered>,
}

/// Why an order is being decided: a first import runs the marketplace and
/// hold rules; a release from hold or a reprocessing pass only re-checks
/// that its SKUs are known before allocating.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Occasion {
    Import,
    Again,
}

impl Engine {
    /// Import one order and allocate it (RULES §4): the order itself and, when
    /// the merchant auto-splits it, each child. Re-sending an identical order
    /// returns the stored states and reserves nothing more.
    pub fn allocate(&self, request: OrderRequest, now: Timestamp) -> Result<Imported> {
        self.allocate_assessed(request, now, false)
    }

    /// `allocate`, and with `assess` the candidate FCs of every decision
    /// (`Imported::considered`).
    pub fn allocate_assessed(
        &self,
        mut request: OrderRequest,
        now: Timestamp,
        assess: bool,
    ) -> Result<Imported> {
        let merchant = self.importing(&mut request)?;
        if let Some(split) = self.split_plan(&request, &merchant)? {
            return self.import_split(request, split, &merchant, now, assess);
        }
        let (order, considered) = self.import(Order::imported(request, now), &merchant, assess)?;
        if order.extras().children.is_empty() {
            Ok(Imported {
                order,
                children: Vec::new(),
                considered: if assess { vec![considered] } else { Vec::new() },
            })
        } else {
            // A retry of an order that was split when first imported.
            Ok(self.with_children(order))
        }
    }

    /// What `allocate` would answer for `request` now, with every decision's
    /// candidate FCs, changing nothing (RULES §11): each part of the order
    /// is decided on a private copy of its SKUs' stock, read under their
    /// stripes' locks. An order already stored under this id does not matter.
    pub fn dry_run(&self, mut request: OrderRequest, now: Timestamp) -> Result<Imported> {
        let merchant = self.importing(&mut request)?;
        let (parent, children) = match self.split_plan(&request, &merchant)? {
            Some(split) => super::split::split_orders(request, split, now),
            None => (Order::imported(request, now), Vec::new()),
        };
        let mut considered = Vec::with_capacity(1 + children.len());
        let day = OperationsDay::of(now);
        let mut slots = self.shared.slots.copy_of_day(day);
        let mut decide = |mut order: Order| {
            let mut routing = self.private_routing(&mut slots, day);
            considered.push(self.decide_privately(&mut order, &merchant, &mut routing));
            order
        };
        let order = decide(parent);
        let children = children.into_iter().map(&mut decide).collect();
        Ok(Imported {
            order,
            children,
            considered,
        })
    }

    /// The checks and settings every import starts with: a marketplace
    /// order must be past its fraud check; the merchant's settings.
    fn importing(&self, request: &mut OrderRequest) -> Result<std::sync::Arc<Merchant>> {
        if request.channel == Channel::Marketplace
            && request.marketplace_status == MarketplaceStatus::Created
        {
            return Err(Error::FailedPrecondition(format!(
                "marketplace order {} is still CREATED (fraud check pending); send it once it is READY",
                request.order_id
            )));
        }
        let merchant = self.merchant(&request.merchant_id);
        // Share the merchant's id instead of keeping the request's copy.
        request.merchant_id = merchant.merchant_id.clone();
        Ok(merchant)
    }

    /// Decide a new order as `import` would, on a private copy of its
    /// SKUs' stock read under their stripes' locks. Returns the candidate FCs.
    fn decide_privately(
        &self,
        order: &mut Order,
        merchant: &Merchant,
        routing: &mut Routing<'_>,
    ) -> Considered {
        let mut copy = self.shared.ledger.copy(&sku_keys(&order.request));
        decide_on_copy(&mut copy, order, merchant, routing, Occasion::Import)
    }

    /// Routing over the live network and slots, counting on `now`'s day.
    pub(super) fn routing(&self, now: Timestamp) -> Routing<'_> {
        Routing {
            network: &self.shared.network,
            slots: SlotAccess::Live(&self.shared.slots, now),
        }
    }

    /// Routing over the live network and a private copy of the slots.
    pub(super) fn private_routing<'a>(
        &'a self,
        slots: &'a mut Slots,
        day: OperationsDay,
    ) -> Routing<'a> {
        Routing {
            network: &self.shared.network,
            slots: SlotAccess::Private(slots, day),
        }
    }

    /// Insert a new order and decide it; or, if it exists, return it when it
    /// was imported from the same request (a retry). With `assess`, also the
    /// candidate FCs of the decision (none for a retry).
    pub(super) fn import(
        &self,
        order: Order,
        merchant: &Merchant,
        assess: bool,
    ) -> Result<(Order, Considered)> {
        match self.shared.orders.insert_locked(order) {
            Inserted::New(mut order) => {
                let mut considered = Considered::default();
                if order.request.lines.is_empty() {
                    // An auto-split parent whose every line went to children
                    // has nothing of its own to allocate.
                    order.status = OrderStatus::Processing;
                    order.version += 1;
                    self.log_order(&order);
                } else {
                    let now = order.imported_at;
                    considered = self.decide(&mut order, merchant, Occasion::Import, assess, now);
                }
                Ok((order.clone(), considered))
            }
            Inserted::Existing(existing, offered) => {
                let existing = existing.lock();
                let submitted = offered.submitted();
                if existing.submitted() == submitted {
                    Ok((existing.clone(), Considered::default()))
                } else {
                    Err(Error::AlreadyExists(format!(
                        "order {} of merchant {} exists with different contents",
                        submitted.order_id, submitted.merchant_id
                    )))
                }
            }
        }
    }

    /// Import many orders; each succeeds or fails on its own.
    pub fn allocate_batch(
        &self,
        requests: impl IntoIterator<Item = OrderRequest>,
        now: Timestamp,
    ) -> Vec<Result<Imported>> {
        requests
            .into_iter()
            .map(|request| self.allocate(request, now))
            .collect()
    }

    /// Decide an order that holds no reservations, at `now`: hold it,
    /// refuse it, or allocate it. Its ledger stripes are locked for the
    /// whole decision. With `assess`, returns the candidate FCs it weighed.
    pub(super) fn decide(
        &self,
        order: &mut Order,
        merchant: &Merchant,
        occasion: Occasion,
        assess: bool,
        now: Timestamp,
    ) -> Considered {
        let mut keys = sku_keys(&order.request);
        let mut locked = self.shared.ledger.lock(&keys);
        share_stored_skus(&locked, &mut keys, &mut order.request);
        let considered = decide_locked(
            &mut locked,
            order,
            merchant,
            &mut self.routing(now),
            &keys,
            occasion,
            assess,
        );
        order.version += 1;
        self.log_change(&locked, &keys, &[order]);
        considered
    }
}

/// Decide `order` on `copy`, which holds its SKUs' stock (with whatever the
/// order holds reserved in it): it gives back what it holds, as a
/// reprocessing pass would, and is decided afresh. Returns the candidate FCs.
pub(super) fn decide_on_copy(
    copy: &mut StockCopy,
    order: &mut Order,
    merchant: &Merchant,
    routing: &mut Routing<'_>,
    occasion: Occasion,
) -> Considered {
    let held = std::mem::take(&mut order.allocations);
    unreserve_allocations(copy, &order.request.merchant_id, &held, false);
    order.version += 1;
    if order.request.lines.is_empty() {
        // An auto-split parent whose every line went to children.
        order.status = OrderStatus::Processing;
        return Considered::default();
    }
    let keys = sku_keys(&order.request);
    decide_locked(copy, order, merchant, routing, &keys, occasion, true)
}

/// The ledger records of an order's lines, in line order (`None`: a SKU the
/// ledger does not know). Inline for orders of up to eight lines.
type LineRecords<'l> = SmallVec<[Option<&'l SkuRecord>; 8]>;

fn line_records<'l>(stock: &'l impl Stock, keys: &[SkuKey]) -> LineRecords<'l> {
    keys.iter().map(|key| stock.get(key)).collect()
}

/// The decision itself, with the stripes of every line's SKU locked (or
/// over a private copy of their stock). Each line's record is looked up
/// once, for every rule that reads it. With `assess`, returns the
/// candidate FCs the policy weighed (none when no policy ran: a hold, a
/// marketplace refusal).
pub(super) fn decide_locked(
    stock: &mut impl Stock,
    order: &mut Order,
    merchant: &Merchant,
    routing: &mut Routing<'_>,
    keys: &[SkuKey],
    occasion: Occasion,
    assess: bool,
) -> Considered {
    with_context(routing, merchant, order, |context, order| {
        decide_unsettled(stock, order, merchant, context, keys, occasion, assess)
    })
}

/// Run a decision of `order` with what it reads besides stock, then bring
/// the order's slots in line with what it now holds.
fn with_context<R>(
    routing: &mut Routing<'_>,
    merchant: &Merchant,
    order: &mut Order,
    decide: impl FnOnce(Context<'_>, &mut Order) -> R,
) -> R {
    let shared_network = routing.network;
    let mut slots = routing.slots_for(order);
    let network = read_network(shared_network, slots.is_some(), merchant, order);
    let decided = decide(Context::new(network.as_deref(), slots.as_ref()), order);
    if let (Some((slots, day)), Some(network)) = (&mut slots, &network) {
        slots.settle(order, Some((*day, network)));
    }
    decided
}

/// `decide_locked` before the order's slots are brought in line with what
/// it now holds.
fn decide_unsettled(
    stock: &mut impl Stock,
    order: &mut Order,
    merchant: &Merchant,
    context: Context<'_>,
    keys: &[SkuKey],
    occasion: Occasion,
    assess: bool,
) -> Considered {
    debug_assert!(order.allocations.is_empty());
    order.exceptions.clear();
    order.set_hold_reason(None);

    let records = line_records(stock, keys);
    let unknown = records
        .iter()
        .position(Option::is_none)
        .map(|line| &keys[line]);
    if occasion == Occasion::Import && auto_acknowledged(&order.request, merchant) {
        order.acknowledgement = acknowledge(&order.request, merchant, &records, unknown);
        match order.acknowledgement {
            Acknowledgement::CancelledUnknownSku | Acknowledgement::CancelledNoInventory => {
                order.status = OrderStatus::Cancelled;
                return Considered::default();
            }
            Acknowledgement::RejectedNoInventory => {
                order.status = OrderStatus::Rejected;
                return Considered::default();
            }
            Acknowledgement::Acknowledged | Acknowledgement::None => {}
        }
    }
    if occasion == Occasion::Import {
        if let Some(reason) = &order.request.hold_reason {
            order.status = OrderStatus::OnHold;
            order.set_hold_reason(Some(reason.clone()));
            return Considered::default();
        }
    }
    if let Some(key) = unknown {
        order.status = OrderStatus::OnHold;
        order.set_hold_reason(Some(format!("unknown SKU {}", key.sku())));
        return Considered::default();
    }
    let partial = order
        .request
        .partial_shipments
        .unwrap_or(merchant.partial_shipments);
    let rules = Rules::ordinary(partial, order.request.assigned_fc.is_some());
    let (fcs, plan, considered) =
        plan_allocation(&records, merchant, context, order, rules, assess);
    // The records borrow the stripes, which reserving needs mutably.
    drop(records);
    apply_plan(stock, order, keys, &fcs, &plan);
    considered
}

/// An order's decision before it is taken again, to tell whether anything
/// changed (the version moves only then).
pub(super) struct DecisionSnapshot {
    pub units: u64,
    status: OrderStatus,
    allocations: Vec<Allocation>,
    exceptions: Vec<ExceptionLine>,
}

impl DecisionSnapshot {
    pub fn of(order: &Order) -> Self {
        Self {
            units: order.allocated_units(),
            status: order.status,
            allocations: order.allocations.clone(),
            exceptions: order.exceptions.clone(),
        }
    }

    /// Bump the order's version if its decision differs from this one.
    pub fn bump_version_if_changed(&self, order: &mut Order) {
        if self.status != order.status
            || self.allocations != order.allocations
            || self.exceptions != order.exceptions
        {
            order.version += 1;
        }
    }
}

/// The ledger keys of an order's lines, in line order: inline for up to
/// four lines, so the common order allocates nothing for them.
pub(super) type SkuKeys = SmallVec<[SkuKey; 4]>;

pub(super) fn sku_keys(request: &OrderRequest) -> SkuKeys {
    request
        .lines
        .iter()
        .map(|line| SkuKey::new(&request.merchant_id, &line.sku))
        .collect()
}

/// Point an order's lines (and `keys`, from which its allocations and
/// exceptions are made) at the SKU codes the ledger stores: a million
/// orders of one SKU then hold one copy of its code instead of a million,
/// and the copies decoded from the request are freed here.
fn share_stored_skus(locked: &Locked<'_>, keys: &mut [SkuKey], request: &mut OrderRequest) {
    for (key, line) in keys.iter_mut().zip(&mut request.lines) {
        if let Some(stored) = locked.stored_key(key) {
            line.sku = stored.sku().clone();
            *key = stored.clone();
        }
    }
}

fn auto_acknowledged(request: &OrderRequest, merchant: &Merchant) -> bool {
    request.channel == Channel::Marketplace && merchant.auto_acknowledge
}

/// The marketplace acknowledgement rules (RULES §7), in the order they apply.
fn acknowledge(
    request: &OrderRequest,
    merchant: &Merchant,
    records: &[Option<&SkuRecord>],
    unknown: Option<&SkuKey>,
) -> Acknowledgement {
    if unknown.is_some() {
        return Acknowledgement::CancelledUnknownSku;
    }
    if merchant.accept_regardless_of_inventory {
        return Acknowledgement::Acknowledged;
    }
    // Out of stock: nothing available anywhere, safety stock counted.
    let out_of_stock_for_good = records.iter().flatten().any(|record| {
        record.fcs.iter().all(|row| record.available(row) == 0) && !record.info.replenishable
    });
    match (out_of_stock_for_good, request.lines.len()) {
        (false, _) => Acknowledgement::Acknowledged,
        (true, 1) => Acknowledgement::CancelledNoInventory,
        (true, _) => Acknowledgement::RejectedNoInventory,
    }
}

/// Run the policy over the locked stock and apply its plan: reserve the
/// picked units, record the shortfalls, set the status. The order must hold
/// no reservations, and every key's stripe must be locked.
pub(super) fn allocate_locked(
    stock: &mut impl Stock,
    merchant: &Merchant,
    routing: &mut Routing<'_>,
    order: &mut Order,
    keys: &[SkuKey],
    rules: Rules,
) {
    with_context(routing, merchant, order, |context, order| {
        let records = line_records(stock, keys);
        let (fcs, plan, _) = plan_allocation(&records, merchant, context, order, rules, false);
        drop(records);
        apply_plan(stock, order, keys, &fcs, &plan);
    })
}

/// The network's read lock, taken once per decision and only when it is
/// read: to count daily slots (their limits) or to route by distance.
/// Ranked routing with no FC limited never touches it.
fn read_network<'n>(
    network: &'n SharedNetwork,
    counts_slots: bool,
    merchant: &Merchant,
    order: &Order,
) -> Option<parking_lot::RwLockReadGuard<'n, Network>> {
    (counts_slots || routes_by_distance(merchant, order)).then(|| network.read())
}

fn routes_by_distance(merchant: &Merchant, order: &Order) -> bool {
    merchant.routing == RoutingStrategy::Closest && order.request.ship_to.is_some()
}

/// What a decision reads besides stock: the network when it is read (see
/// `read_network`), and the daily slots with the operations day they are
/// counted on (`None`: no FC has a limit and the order holds no slot).
#[derive(Clone, Copy)]
struct Context<'s> {
    network: Option<&'s Network>,
    slots: Option<(&'s Slots, OperationsDay)>,
}

impl<'s> Context<'s> {
    fn new(
        network: Option<&'s Network>,
        slots: Option<&'s (SlotsHeld<'_>, OperationsDay)>,
    ) -> Self {
        Self {
            network,
            slots: slots.map(|(slots, day)| (&**slots, *day)),
        }
    }
}

/// The candidate FCs and the policy's plan over them; with `assess`, how
/// each candidate stood (read off the matrix the policy decided on).
fn plan_allocation(
    records: &[Option<&SkuRecord>],
    merchant: &Merchant,
    context: Context<'_>,
    order: &Order,
    rules: Rules,
    assess: bool,
) -> (CandidateFcs, Plan, Considered) {
    let fcs = candidate_fcs(records, merchant, &order.request);
    // Units that already shipped are not allocated again.
    let needs = order
        .request
        .lines
        .iter()
        .map(|line| order.outstanding(line));
    let mut matrix = StockMatrix::new(needs, fcs.len());
    for (line, record) in records.iter().enumerate() {
        let Some(record) = record else { continue };
        for row in &record.fcs {
            if let Some(index) = fcs.iter().position(|fc| *fc == row.fc) {
                matrix.set_available(line, index, record.available(row));
            }
        }
    }
    let mut strategy = RoutingStrategy::Ranked;
    if let (RoutingStrategy::Closest, Some(to), Some(network)) =
        (merchant.routing, order.request.ship_to, context.network)
    {
        matrix.set_places(to.unit_vector(), fcs.iter().map(|&fc| network.place(fc)));
        strategy = RoutingStrategy::Closest;
    }
    // A full FC is passed over as if it held nothing; the assessment still
    // shows the stock it holds.
    // Without slots to consult (no FC has a limit) nothing is full.
    let full: SmallVec<[usize; 4]> = match (context.slots, context.network) {
        (Some((slots, day)), Some(network)) => (0..fcs.len())
            .filter(|&index| slots.is_full_for(network, fcs[index], day, order))
            .collect(),
        _ => SmallVec::new(),
    };
    let seen = (assess && !full.is_empty()).then(|| matrix.clone());
    for &index in &full {
        matrix.set_unavailable(index);
    }
    let plan = policy::decide(&matrix, rules);
    let considered = if assess {
        let matrix = seen.as_ref().unwrap_or(&matrix);
        let fcs = policy::assess(matrix, &plan, DECISION_FCS_MAX)
            .into_iter()
            .map(|assessed| FcAssessment {
                fc: fcs[assessed.fc],
                chosen: assessed.chosen,
                rank: assessed.fc as u32 + 1,
                distance_km: matrix.distance_km(assessed.fc),
                can_fill_order: assessed.can_fill_order,
                at_capacity: full.contains(&assessed.fc),
                short: assessed
                    .short
                    .iter()
                    .map(|&(line, needed, available)| LineShortfall {
                        sku: order.request.lines[line].sku.clone(),
                        needed,
                        available,
                    })
                    .collect(),
            })
            .collect();
        Considered { strategy, fcs }
    } else {
        Considered::default()
    };
    (fcs, plan, considered)
}

/// Reserve what the plan picks and record what it cannot fill.
fn apply_plan(
    stock: &mut impl Stock,
    order: &mut Order,
    keys: &[SkuKey],
    fcs: &[FcId],
    plan: &Plan,
) {
    order.allocations.clear();
    // Lines that shipped whole need nothing: the policy may pick or miss
    // zero units of them, which are not worth recording.
    for pick in plan.picks.iter().filter(|pick| pick.quantity > 0) {
        let fc = &fcs[pick.fc];
        let key = &keys[pick.line];
        match stock.get_mut(key) {
            Some(record) => record.reserve(fc, pick.quantity),
            None => unreachable!("the policy picked stock of a SKU with no record"),
        }
        order.allocations.push(Allocation {
            fc: *fc,
            sku: key.sku().clone(),
            quantity: pick.quantity,
        });
    }
    order.exceptions = plan
        .shortfalls
        .iter()
        .filter(|shortfall| shortfall.quantity > 0)
        .map(|shortfall| ExceptionLine {
            sku: keys[shortfall.line].sku().clone(),
            quantity: shortfall.quantity,
            reason: shortfall.reason,
        })
        .collect();
    order.status = match (order.allocations.is_empty(), order.exceptions.is_empty()) {
        (_, true) => OrderStatus::Processing,
        (true, false) => OrderStatus::Exception,
        (false, false) => OrderStatus::PartiallyAllocated,
    };
}

/// Candidate FCs, inline up to sixteen (FC ids are four bytes).
type CandidateFcs = SmallVec<[FcId; 16]>;

/// The FCs worth looking at, most preferred first: the assigned FC alone, or
/// every FC with available units of any line, ranked by the merchant's
/// priority list and then by FC id.
fn candidate_fcs(
    records: &[Option<&SkuRecord>],
    merchant: &Merchant,
    request: &OrderRequest,
) -> CandidateFcs {
    if let Some(assigned) = &request.assigned_fc {
        return SmallVec::from_slice(&[*assigned]);
    }
    let mut ranked: SmallVec<[(usize, &FcId); 16]> = SmallVec::new();
    for record in records.iter().flatten() {
        for row in record.fcs.iter().filter(|row| record.available(row) > 0) {
            if ranked.iter().all(|(_, fc)| **fc != row.fc) {
                ranked.push((merchant.fc_rank(&row.fc), &row.fc));
            }
        }
    }
    ranked.sort_unstable();
    ranked.into_iter().map(|(_, fc)| *fc).collect()
}
