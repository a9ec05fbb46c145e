//! What the crash test's clients were told, kept so that after a restart
//! the service can be held to it. A change the service answered must be
//! there; one it never answered may or may not be, and this records enough
//! to allow both.

use std::collections::{BTreeMap, HashMap, HashSet};

use allocation::grpc::proto::{OrderState, TrackingEvent};

/// (SKU, FC).
pub type Cell = (String, String);

/// The kinds of request the load sends, for the per-round tallies.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Op {
    Allocate,
    AllocateBatch,
    Retry,
    Hold,
    Release,
    Cancel,
    Pick,
    Ship,
    Scan,
    Receipt,
    Loss,
    Count,
    Snapshot,
    Reprocess,
}

impl Op {
    pub const ALL: [Op; 14] = [
        Op::Allocate,
        Op::AllocateBatch,
        Op::Retry,
        Op::Hold,
        Op::Release,
        Op::Cancel,
        Op::Pick,
        Op::Ship,
        Op::Scan,
        Op::Receipt,
        Op::Loss,
        Op::Count,
        Op::Snapshot,
        Op::Reprocess,
    ];
}

/// Bounds on one cell's accounted units: on hand plus every unit that ever
/// shipped from there. A shipment moves units from one term to the other,
/// so only receipts, losses and counts move the sum; that is what makes
/// "units are conserved" checkable while shipments race the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub low: i64,
    pub high: i64,
}

impl Bounds {
    pub fn exactly(units: i64) -> Self {
        Self {
            low: units,
            high: units,
        }
    }

    /// A change that may or may not have happened: either outcome fits.
    pub fn widen(&mut self, other: Bounds) {
        self.low = self.low.min(other.low);
        self.high = self.high.max(other.high);
    }
}

/// A count sent but never answered, resolved once the round is over.
#[derive(Clone, Copy, Debug)]
pub struct PendingCount {
    pub units: u64,
    /// Units acknowledged as shipped from the cell before the count was sent.
    pub shipped_before: u64,
}

#[derive(Default)]
pub struct Told {
    /// The newest acknowledged state of every order. After a restart this is
    /// rebased to what the service showed, once that passed the checks.
    pub orders: HashMap<String, OrderState>,
    /// Orders with a change sent and never answered: the owner's one lost
    /// change may be there on top of the acknowledged state.
    pub uncertain: HashSet<String>,
    /// Every scan sent, and every scan acknowledged, per tracking number.
    pub scans_sent: HashMap<String, Vec<TrackingEvent>>,
    pub scans_acked: HashMap<String, Vec<TrackingEvent>>,
    pub cells: HashMap<Cell, Bounds>,
    pub pending_counts: HashMap<Cell, PendingCount>,
    /// Units acknowledged as shipped from each cell (a lower bound of what left).
    pub shipped_acked: HashMap<Cell, u64>,
    /// Units every ShipOrder sent could at most have taken from each cell
    /// (an upper bound: the order's whole line quantity).
    pub shipped_sent: HashMap<Cell, u64>,
    /// Acknowledged requests of the current round, per kind.
    pub round: BTreeMap<Op, u64>,
    /// The same over the whole run.
    pub total: BTreeMap<Op, u64>,
    /// Set just before the server is killed: until then every request
    /// must be answered.
    pub killed: bool,
}

impl Told {
    pub fn tally(&mut self, op: Op) {
        *self.round.entry(op).or_default() += 1;
        *self.total.entry(op).or_default() += 1;
    }

    /// Record an answered state of an order; answers to one owner's
    /// sequential requests never go back in version.
    pub fn acknowledge(&mut self, state: OrderState) {
        if let Some(previous) = self.orders.get(&state.order_id) {
            assert!(
                state.version >= previous.version,
                "order {} answered version {} after {}",
                state.order_id,
                state.version,
                previous.version
            );
        }
        self.orders.insert(state.order_id.clone(), state);
    }

    /// Turn the round's unanswered counts into bounds, now that no more
    /// shipments can race them.
    pub fn resolve_pending_counts(&mut self) {
        for (cell, pending) in std::mem::take(&mut self.pending_counts) {
            let shipped_sent = self.shipped_sent.get(&cell).copied().unwrap_or(0);
            let applied = Bounds {
                low: (pending.units + pending.shipped_before) as i64,
                high: (pending.units + shipped_sent) as i64,
            };
            self.cells
                .get_mut(&cell)
                .expect("every cell has bounds")
                .widen(applied);
        }
    }
}
