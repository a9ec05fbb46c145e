//! Seeded randomized model test: random operation sequences are applied to
//! the engine and to a plain, obviously-correct model (maps, brute-force
//! search over FC subsets); after every step their answers and their stock
//! must agree. Safety stock is part of it: the model keeps it per cell and
//! allocates only what is above it. A failure names its seed and step; rerun one seed with
//! `MODEL_SEED=<seed> cargo test --test engine_model`.

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

use std::collections::BTreeMap;

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange, SafetyLevel};
use allocation::error::Error;
use allocation::model::{
    Allocation, ExceptionLine, ExceptionReason, FcId, Merchant, OrderKey, OrderLine, OrderRequest,
    OrderStatus, Sku, Timestamp,
};

const SKUS: [&str; 4] = ["s0", "s1", "s2", "s3"];
const FCS: [&str; 3] = ["fa", "fb", "fc"];
/// The merchant ranks fc above fa; fb is unlisted and comes last.
const PRIORITY: [&str; 2] = ["fc", "fa"];
const STEPS: usize = 400;
const SEEDS: u64 = 40;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Cell {
    on_hand: u64,
    reserved: u64,
    picked: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelOrder {
    request: OrderRequest,
    status: OrderStatus,
    allocations: Vec<Allocation>,
    exceptions: Vec<ExceptionLine>,
    picked: bool,
}

#[derive(Default)]
struct Model {
    cells: BTreeMap<(String, String), Cell>,
    orders: BTreeMap<String, ModelOrder>,
    /// Units allocation must leave, per (SKU, FC).
    safety: BTreeMap<(String, String), u64>,
}

/// FCs in the merchant's rank order.
fn ranked_fcs() -> Vec<&'static str> {
    let mut fcs: Vec<&str> = PRIORITY.to_vec();
    let mut rest: Vec<&str> = FCS
        .iter()
        .copied()
        .filter(|f| !PRIORITY.contains(f))
        .collect();
    rest.sort();
    fcs.extend(rest);
    fcs
}

impl Model {
    fn available(&self, sku: &str, fc: &str) -> u64 {
        let cell = (sku.to_string(), fc.to_string());
        let safety = self.safety.get(&cell).copied().unwrap_or(0);
        self.cells
            .get(&cell)
            .map_or(0, |c| (c.on_hand - c.reserved).saturating_sub(safety))
    }

    fn known(&self, sku: &str) -> bool {
        self.cells.keys().any(|(s, _)| s == sku)
    }

    /// The RULES §4 table, by brute force.
    fn decide(&mut self, request: &OrderRequest, partial: bool) -> ModelOrder {
        let lines: Vec<(&str, u64)> = request
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), u64::from(l.quantity)))
            .collect();
        let mut order = ModelOrder {
            request: request.clone(),
            status: OrderStatus::Exception,
            allocations: vec![],
            exceptions: vec![],
            picked: false,
        };
        if let Some(line) = lines.iter().find(|(sku, _)| !self.known(sku)) {
            let _ = line;
            order.status = OrderStatus::OnHold;
            return order;
        }
        let whole = |reason| -> Vec<ExceptionLine> {
            lines
                .iter()
                .map(|&(sku, q)| ExceptionLine {
                    sku: sku.into(),
                    quantity: q as u32,
                    reason,
                })
                .collect()
        };
        // Candidate FCs: those with any available unit of any line (or the assigned one).
        let fcs: Vec<&str> = match &request.assigned_fc {
            Some(fc) => vec![fc.as_str()],
            None => ranked_fcs()
                .into_iter()
                .filter(|fc| lines.iter().any(|(sku, _)| self.available(sku, fc) > 0))
                .collect(),
        };
        let fills =
            |model: &Model, fc: &str| lines.iter().all(|&(sku, q)| model.available(sku, fc) >= q);
        if request.assigned_fc.is_some() {
            if fills(self, fcs[0]) {
                self.take(&mut order, &[fcs[0]], &lines);
            } else {
                order.exceptions = whole(ExceptionReason::InsufficientAtAssignedFc);
            }
            return self.finish(order);
        }
        if let Some(fc) = fcs.iter().find(|fc| fills(self, fc)) {
            self.take(&mut order, &[fc], &lines);
            return self.finish(order);
        }
        let totals: Vec<u64> = lines
            .iter()
            .map(|(sku, _)| fcs.iter().map(|fc| self.available(sku, fc)).sum())
            .collect();
        let network_fills = lines.iter().zip(&totals).all(|((_, q), t)| t >= q);
        if network_fills && !partial {
            order.exceptions = whole(ExceptionReason::SplitNotAllowed);
            return self.finish(order);
        }
        if !network_fills && (!partial || totals.iter().all(|&t| t == 0)) {
            order.exceptions = whole(ExceptionReason::InsufficientNetworkInventory);
            return self.finish(order);
        }
        let takes: Vec<(&str, u64)> = lines
            .iter()
            .zip(&totals)
            .map(|(&(sku, q), &t)| (sku, q.min(t)))
            .collect();
        // Every subset of candidate FCs, smallest first, then by rank.
        let mut subsets: Vec<Vec<usize>> = (1u32..(1 << fcs.len()))
            .map(|mask| (0..fcs.len()).filter(|i| mask & (1 << i) != 0).collect())
            .collect();
        subsets.sort_by(|a: &Vec<usize>, b| a.len().cmp(&b.len()).then(a.cmp(b)));
        let chosen = subsets
            .into_iter()
            .find(|set| {
                takes.iter().all(|&(sku, t)| {
                    set.iter()
                        .map(|&i| self.available(sku, fcs[i]))
                        .sum::<u64>()
                        >= t
                })
            })
            .expect("the whole network covers what it has");
        let chosen: Vec<&str> = chosen.iter().map(|&i| fcs[i]).collect();
        self.take(&mut order, &chosen, &takes);
        for ((sku, q), (_, t)) in lines.iter().zip(&takes) {
            if t < q {
                order.exceptions.push(ExceptionLine {
                    sku: (*sku).into(),
                    quantity: (q - t) as u32,
                    reason: ExceptionReason::InsufficientNetworkInventory,
                });
            }
        }
        self.finish(order)
    }

    /// Take each line's units from `fcs` in the given order.
    fn take(&mut self, order: &mut ModelOrder, fcs: &[&str], lines: &[(&str, u64)]) {
        for &(sku, want) in lines {
            let mut left = want;
            for fc in fcs {
                let q = left.min(self.available(sku, fc));
                if q > 0 {
                    self.cells
                        .get_mut(&(sku.into(), fc.to_string()))
                        .unwrap()
                        .reserved += q;
                    order.allocations.push(Allocation {
                        fc: FcId::new(fc),
                        sku: sku.into(),
                        quantity: q as u32,
                    });
                    left -= q;
                }
            }
        }
    }

    fn finish(&self, mut order: ModelOrder) -> ModelOrder {
        order.status = match (order.allocations.is_empty(), order.exceptions.is_empty()) {
            (_, true) => OrderStatus::Processing,
            (true, false) => OrderStatus::Exception,
            (false, false) => OrderStatus::PartiallyAllocated,
        };
        order
    }

    fn unreserve(&mut self, id: &str) {
        let order = self.orders.get_mut(id).unwrap();
        for a in order.allocations.drain(..) {
            let cell = self
                .cells
                .get_mut(&(a.sku.to_string(), a.fc.to_string()))
                .unwrap();
            cell.reserved -= u64::from(a.quantity);
            if order.picked {
                cell.picked -= u64::from(a.quantity);
            }
        }
        order.picked = false;
    }

    /// A count: refuse below picked; release newest unpicked holders until it fits.
    fn count(&mut self, sku: &str, fc: &str, on_hand: u64) -> Result<Vec<String>, ()> {
        let cell_key = (sku.to_string(), fc.to_string());
        let cell = self.cells.get(&cell_key).copied().unwrap_or_default();
        if on_hand < cell.picked {
            return Err(());
        }
        let mut holders: Vec<(Timestamp, String)> = self
            .orders
            .iter()
            .filter(|(_, o)| {
                !o.picked
                    && o.allocations
                        .iter()
                        .any(|a| a.sku.as_str() == sku && a.fc.as_str() == fc)
            })
            .map(|(id, o)| (o.request.purchase_time, id.clone()))
            .collect();
        holders.sort();
        let mut released = vec![];
        while self.cells.get(&cell_key).map_or(0, |c| c.reserved) > on_hand {
            let (_, id) = holders
                .pop()
                .expect("picked units fit, so unpicked holders suffice");
            self.unreserve(&id);
            let order = self.orders.get_mut(&id).unwrap();
            order.status = OrderStatus::Exception;
            order.exceptions = order
                .request
                .lines
                .iter()
                .map(|l| ExceptionLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    reason: ExceptionReason::InventoryShortage,
                })
                .collect();
            released.push(id);
        }
        self.cells.entry(cell_key).or_default().on_hand = on_hand;
        Ok(released)
    }
}

fn set(sku: &str, fc: &str, change: CountChange) -> InventoryChange {
    InventoryChange {
        sku: sku.into(),
        fc: FcId::new(fc),
        change,
    }
}

fn run(seed: u64) {
    let engine = Engine::new(EngineConfig {
        stripe_count: 2,
        ..EngineConfig::default()
    });
    let merchant_partial = seed.is_multiple_of(2);
    let mut merchant = Merchant::with_defaults("m".into());
    merchant.partial_shipments = merchant_partial;
    merchant.fc_priority = PRIORITY.iter().map(|&fc| FcId::new(fc)).collect();
    engine.upsert_merchant(merchant);
    let mut model = Model::default();
    let mut rng = Rng(seed);
    let key = |id: &str| OrderKey::new(&"m".into(), &id.into());

    for step in 0..STEPS {
        let context = format!("seed {seed} step {step}");
        let existing: Vec<String> = model.orders.keys().cloned().collect();
        let pick_order = |rng: &mut Rng| existing.get(rng.below(existing.len().max(1))).cloned();
        match rng.below(11) {
            10 => {
                // A safety level at a cell the SKU has a row at.
                let cells: Vec<(String, String)> = model.cells.keys().cloned().collect();
                let Some((sku, fc)) = cells.get(rng.below(cells.len().max(1))).cloned() else {
                    continue;
                };
                let units = rng.below(4) as u32;
                let level = SafetyLevel {
                    sku: sku.as_str().into(),
                    fc: Some(FcId::new(&fc)),
                    units,
                };
                engine
                    .set_safety_stock(&"m".into(), &[level], Timestamp::default())
                    .unwrap_or_else(|error| panic!("{context}: safety stock: {error}"));
                model.safety.insert((sku, fc), u64::from(units));
            }
            0 | 1 => {
                let (sku, fc) = (SKUS[rng.below(SKUS.len())], FCS[rng.below(FCS.len())]);
                let units = rng.below(8) as u64;
                let got = engine.update_inventory(
                    &"m".into(),
                    &[set(sku, fc, CountChange::Set(units))],
                    Timestamp::default(),
                );
                let want = model.count(sku, fc, units);
                match (got, want) {
                    (Ok(outcome), Ok(released)) => {
                        let got: Vec<String> = outcome
                            .shortage_orders
                            .iter()
                            .map(|o| o.to_string())
                            .collect();
                        assert_eq!(got, released, "{context}: released orders");
                    }
                    (Err(Error::FailedPrecondition(_)), Err(())) => {}
                    (got, want) => panic!("{context}: count {got:?} vs model {want:?}"),
                }
            }
            2 => {
                let (sku, fc) = (SKUS[rng.below(SKUS.len())], FCS[rng.below(FCS.len())]);
                let delta = rng.below(6) as i64 - 2;
                let current = model
                    .cells
                    .get(&(sku.to_string(), fc.to_string()))
                    .copied()
                    .unwrap_or_default();
                let got = engine.update_inventory(
                    &"m".into(),
                    &[set(sku, fc, CountChange::Adjust(delta))],
                    Timestamp::default(),
                );
                let target = current.on_hand as i64 + delta;
                if target < 0 {
                    assert!(
                        matches!(got, Err(Error::FailedPrecondition(_))),
                        "{context}: {got:?}"
                    );
                } else {
                    let want = model.count(sku, fc, target as u64);
                    assert_eq!(
                        got.is_ok(),
                        want.is_ok(),
                        "{context}: adjust {got:?} vs {want:?}"
                    );
                }
            }
            3..=5 => {
                let id = format!("o{step}");
                let line_count = 1 + rng.below(3);
                let first = rng.below(SKUS.len() + 1);
                let lines: Vec<OrderLine> = (0..line_count)
                    .map(|i| OrderLine {
                        // Index SKUS.len() is a SKU nobody stocks: unknown.
                        sku: if (first + i) % (SKUS.len() + 1) == SKUS.len() {
                            Sku::new("unknown")
                        } else {
                            Sku::new(SKUS[(first + i) % (SKUS.len() + 1)])
                        },
                        quantity: 1 + rng.below(4) as u32,
                    })
                    .collect();
                let request = OrderRequest {
                    assigned_fc: (rng.below(5) == 0).then(|| FcId::new(FCS[rng.below(FCS.len())])),
                    partial_shipments: (rng.below(3) == 0).then(|| rng.below(2) == 0),
                    // Purchase times collide on purpose: ties break by id.
                    ..OrderRequest::new(
                        "m".into(),
                        id.as_str().into(),
                        Timestamp::from_seconds(rng.below(50) as i64),
                        lines,
                    )
                };
                let partial = request.partial_shipments.unwrap_or(merchant_partial);
                let got = engine
                    .allocate(request.clone(), Timestamp::default())
                    .unwrap()
                    .order;
                let want = model.decide(&request, partial);
                assert_eq!(got.status, want.status, "{context}: status of {id}");
                assert_eq!(
                    got.allocations, want.allocations,
                    "{context}: allocations of {id}"
                );
                assert_eq!(
                    got.exceptions, want.exceptions,
                    "{context}: exceptions of {id}"
                );
                model.orders.insert(id, want);
            }
            6 => {
                let Some(id) = pick_order(&mut rng) else {
                    continue;
                };
                let got = engine.hold(&key(&id), "hold".into());
                let order = &model.orders[&id];
                if order.picked || order.status == OrderStatus::Cancelled {
                    assert!(
                        matches!(got, Err(Error::FailedPrecondition(_))),
                        "{context}: hold {got:?}"
                    );
                } else {
                    assert_eq!(got.unwrap().status, OrderStatus::OnHold, "{context}");
                    model.unreserve(&id);
                    let order = model.orders.get_mut(&id).unwrap();
                    order.status = OrderStatus::OnHold;
                    order.exceptions.clear();
                }
            }
            7 => {
                let Some(id) = pick_order(&mut rng) else {
                    continue;
                };
                let got = engine.release(&key(&id), Timestamp::default());
                if model.orders[&id].status != OrderStatus::OnHold {
                    assert!(
                        matches!(got, Err(Error::FailedPrecondition(_))),
                        "{context}: release {got:?}"
                    );
                } else {
                    let request = model.orders[&id].request.clone();
                    let partial = request.partial_shipments.unwrap_or(merchant_partial);
                    let want = model.decide(&request, partial);
                    let got = got.unwrap();
                    assert_eq!(got.status, want.status, "{context}: release status");
                    assert_eq!(
                        got.allocations, want.allocations,
                        "{context}: release allocations"
                    );
                    model.orders.insert(id, want);
                }
            }
            8 => {
                let Some(id) = pick_order(&mut rng) else {
                    continue;
                };
                let got = engine.cancel(&key(&id)).unwrap();
                assert_eq!(got.status, OrderStatus::Cancelled, "{context}");
                model.unreserve(&id);
                let order = model.orders.get_mut(&id).unwrap();
                order.status = OrderStatus::Cancelled;
                order.exceptions.clear();
            }
            _ => {
                let Some(id) = pick_order(&mut rng) else {
                    continue;
                };
                let got = engine.mark_picked(&key(&id));
                let order = model.orders.get_mut(&id).unwrap();
                let pickable = matches!(
                    order.status,
                    OrderStatus::Processing | OrderStatus::PartiallyAllocated
                );
                if order.picked || pickable {
                    assert!(got.unwrap().picked, "{context}: pick");
                    if !order.picked {
                        order.picked = true;
                        for a in &order.allocations {
                            model
                                .cells
                                .get_mut(&(a.sku.to_string(), a.fc.to_string()))
                                .unwrap()
                                .picked += u64::from(a.quantity);
                        }
                    }
                } else {
                    assert!(
                        matches!(got, Err(Error::FailedPrecondition(_))),
                        "{context}: pick {got:?}"
                    );
                }
            }
        }

        // The stock must agree cell by cell, and every order's state too.
        for ((sku, fc), cell) in &model.cells {
            let view = engine.inventory(&"m".into(), &sku.as_str().into()).unwrap();
            let row = view.fcs.iter().find(|r| r.fc.as_str() == fc).unwrap();
            let got = Cell {
                on_hand: row.on_hand.into(),
                reserved: row.reserved.into(),
                picked: row.picked.into(),
            };
            assert_eq!(got, *cell, "{context}: stock of {sku} at {fc}");
            let safety = model.safety.get(&(sku.clone(), fc.clone())).copied();
            assert_eq!(
                u64::from(view.safety.units_at(row.fc)),
                safety.unwrap_or(0),
                "{context}: safety stock of {sku} at {fc}"
            );
        }
        for (id, want) in &model.orders {
            let got = engine.order(&key(id)).unwrap();
            assert_eq!(got.status, want.status, "{context}: status of {id}");
            assert_eq!(
                got.allocations, want.allocations,
                "{context}: allocations of {id}"
            );
        }
        let audit = engine.audit();
        assert!(
            audit.violations.is_empty(),
            "{context}: {:#?}",
            audit.violations
        );
    }
}

#[test]
fn engine_agrees_with_the_model() {
    let seeds: Vec<u64> = match std::env::var("MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("MODEL_SEED is a number")],
        Err(_) => (1..=SEEDS).collect(),
    };
    for seed in seeds {
        run(seed);
    }
}
