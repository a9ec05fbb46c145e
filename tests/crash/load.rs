//! One crash-test client: a seeded mix of every kind of change the service
//! takes, sent one at a time until the server dies under it.
//!
//! Each client owns some orders and some stock cells, and only it changes
//! them (the service's own passes aside), so what it was told about them
//! is a sequence: the last answered state, then at most one request that
//! was never answered. That is what lets the checks be exact.

use std::sync::{Arc, Mutex};

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::orders;
use super::rng::Rng;
use super::told::{Bounds, Cell, Op, PendingCount, Told};

pub const FCS: usize = 3;

/// How a request ended.
enum Answer {
    Acked,
    /// Answered with a refusal: it changed nothing.
    Refused,
    /// Never answered (the server died): it may or may not have happened.
    Lost,
}

/// Refusals this workload provokes on purpose (a transition its order's
/// state does not allow, a loss below zero, a count below picked units, a
/// count racing reservations). A refusal this workload cannot cause is a
/// defect; anything else means the server went away, which it only does
/// once it is killed.
fn answer(status: &Status, what: &str, killed: bool) -> Answer {
    match status.code() {
        Code::FailedPrecondition | Code::Aborted => Answer::Refused,
        Code::InvalidArgument | Code::NotFound | Code::AlreadyExists => {
            panic!("{what} refused for no reason this workload gives: {status}")
        }
        _ if killed => Answer::Lost,
        _ => panic!("{what} failed while the server was running: {status}"),
    }
}

pub struct Client {
    pub grpc: AllocationServiceClient<Channel>,
    pub rng: Rng,
    pub prefix: String,
    /// The orders this client changes.
    pub mine: Vec<String>,
    /// The stock cells this client counts and adjusts.
    pub cells: Vec<Cell>,
    pub skus: usize,
    pub told: Arc<Mutex<Told>>,
    /// Orders this client created this round, as sent, for retries.
    sent: Vec<Order>,
    serial: u64,
}

impl Client {
    pub fn new(
        grpc: AllocationServiceClient<Channel>,
        seed: u64,
        prefix: String,
        mine: Vec<String>,
        cells: Vec<Cell>,
        skus: usize,
        told: Arc<Mutex<Told>>,
    ) -> Self {
        Self {
            grpc,
            rng: Rng(seed),
            prefix,
            mine,
            cells,
            skus,
            told,
            sent: Vec::new(),
            serial: 0,
        }
    }

    /// Send changes until one is never answered.
    pub async fn run(mut self) {
        loop {
            let op = match self.rng.below(100) {
                0..=19 => Op::Allocate,
                20..=25 => Op::AllocateBatch,
                26..=28 => Op::Retry,
                29..=35 => Op::Hold,
                36..=42 => Op::Release,
                43..=47 => Op::Cancel,
                48..=55 => Op::Pick,
                56..=67 => Op::Ship,
                68..=74 => Op::Scan,
                75..=83 => Op::Receipt,
                84..=88 => Op::Loss,
                89..=95 => Op::Count,
                96 => Op::Snapshot,
                _ => Op::Reprocess,
            };
            match self.send(op).await {
                Answer::Acked => self.told.lock().unwrap().tally(op),
                Answer::Refused => {}
                Answer::Lost => return,
            }
        }
    }

    async fn send(&mut self, op: Op) -> Answer {
        match op {
            Op::Allocate => self.allocate().await,
            Op::AllocateBatch => self.allocate_batch().await,
            Op::Retry => self.retry().await,
            Op::Hold | Op::Release | Op::Cancel | Op::Pick => self.transition(op).await,
            Op::Ship => self.ship().await,
            Op::Scan => self.scan().await,
            Op::Receipt => {
                let delta = 1 + self.rng.below(5) as i64;
                self.adjust(delta).await
            }
            Op::Loss => {
                let delta = -1 - self.rng.below(2) as i64;
                self.adjust(delta).await
            }
            Op::Count => self.count().await,
            Op::Snapshot => match self.grpc.snapshot(SnapshotRequest {}).await {
                Ok(info) => {
                    assert!(info.into_inner().bytes > 0);
                    Answer::Acked
                }
                Err(status) => self.answer(&status, "Snapshot"),
            },
            Op::Reprocess => {
                let request = ReprocessRequest {
                    merchant_id: "m".into(),
                    as_of: None,
                };
                match self.grpc.reprocess(request).await {
                    Ok(_) => Answer::Acked,
                    Err(status) => self.answer(&status, "Reprocess"),
                }
            }
        }
    }

    fn new_order(&mut self) -> Order {
        self.serial += 1;
        let first = self.rng.below(self.skus);
        Order {
            merchant_id: "m".into(),
            order_id: format!("{}-{}", self.prefix, self.serial),
            purchase_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + self.rng.below(100_000) as i64,
                nanos: 0,
            }),
            lines: (0..1 + self.rng.below(3))
                .map(|i| OrderLine {
                    sku: format!("s{}", (first + i) % self.skus),
                    quantity: 1 + self.rng.below(4) as u32,
                })
                .collect(),
            partial_shipments: Some(self.rng.below(2) == 0),
            ..Default::default()
        }
    }

    fn answer(&self, status: &Status, what: &str) -> Answer {
        let killed = self.told.lock().unwrap().killed;
        answer(status, what, killed)
    }

    /// An answered state: consistent on its own, and now what was told.
    fn acknowledge(&mut self, state: OrderState) {
        if let Err(why) = orders::consistent(&state) {
            panic!("order {} answered inconsistent: {why}", state.order_id);
        }
        self.told.lock().unwrap().acknowledge(state);
    }

    fn lost(&self, ids: impl IntoIterator<Item = String>) -> Answer {
        self.told.lock().unwrap().uncertain.extend(ids);
        Answer::Lost
    }

    async fn allocate(&mut self) -> Answer {
        let order = self.new_order();
        let id = order.order_id.clone();
        let request = AllocateRequest {
            order: Some(order.clone()),
            as_of: None,
            ..Default::default()
        };
        match self.grpc.allocate(request).await {
            Ok(response) => {
                let mut states = response.into_inner().orders;
                assert_eq!(states.len(), 1, "no auto-split in this workload");
                self.acknowledge(states.remove(0));
                self.sent.push(order);
                self.mine.push(id);
                Answer::Acked
            }
            Err(status) => match self.answer(&status, "Allocate") {
                Answer::Lost => self.lost([id]),
                other => other,
            },
        }
    }

    /// A few new orders, sometimes with a malformed one among them that
    /// must fail alone.
    async fn allocate_batch(&mut self) -> Answer {
        let mut batch: Vec<Order> = (0..2 + self.rng.below(3))
            .map(|_| self.new_order())
            .collect();
        let bad = (self.rng.below(3) == 0).then(|| self.rng.below(batch.len()));
        if let Some(index) = bad {
            batch[index].lines[0].quantity = 0;
        }
        let ids: Vec<String> = batch.iter().map(|o| o.order_id.clone()).collect();
        let request = AllocateBatchRequest {
            orders: batch.clone(),
            as_of: None,
            ..Default::default()
        };
        let results = match self.grpc.allocate_batch(request).await {
            Ok(response) => response.into_inner().results,
            Err(status) => {
                return match self.answer(&status, "AllocateBatch") {
                    Answer::Lost => self.lost(ids),
                    other => other,
                }
            }
        };
        assert_eq!(results.len(), batch.len(), "one result per order");
        for (index, (result, order)) in results.into_iter().zip(batch).enumerate() {
            match result.outcome {
                Some(allocate_result::Outcome::State(state)) => {
                    assert_ne!(bad, Some(index), "a line of 0 units was accepted");
                    self.acknowledge(state);
                    self.mine.push(order.order_id.clone());
                    self.sent.push(order);
                }
                Some(allocate_result::Outcome::Error(error)) => {
                    assert_eq!(bad, Some(index), "a good order failed: {error:?}");
                    assert_eq!(error.code, Code::InvalidArgument as i32);
                }
                None => panic!("a batch result with no outcome"),
            }
        }
        Answer::Acked
    }

    /// The same order sent again: the stored state, nothing reserved twice.
    async fn retry(&mut self) -> Answer {
        if self.sent.is_empty() {
            return Answer::Refused;
        }
        let order = self.sent[self.rng.below(self.sent.len())].clone();
        let id = order.order_id.clone();
        let request = AllocateRequest {
            order: Some(order),
            as_of: None,
            ..Default::default()
        };
        match self.grpc.allocate(request).await {
            Ok(response) => {
                let state = response.into_inner().orders.remove(0);
                self.acknowledge(state);
                Answer::Acked
            }
            Err(status) => match self.answer(&status, "a retried Allocate") {
                Answer::Lost => self.lost([id]),
                other => other,
            },
        }
    }

    /// One of my orders, preferring those in a state `wanted` accepts (a
    /// request the state refuses is sent now and then too).
    fn pick_order(&mut self, wanted: impl Fn(&OrderState) -> bool) -> Option<OrderState> {
        if self.mine.is_empty() {
            return None;
        }
        let told = self.told.lock().unwrap();
        let fitting: Vec<&OrderState> = self
            .mine
            .iter()
            .filter_map(|id| told.orders.get(id))
            .filter(|state| wanted(state))
            .collect();
        if fitting.is_empty() || self.rng.below(10) == 0 {
            let id = &self.mine[self.rng.below(self.mine.len())];
            return told.orders.get(id).cloned();
        }
        Some(fitting[self.rng.below(fitting.len())].clone())
    }

    async fn transition(&mut self, op: Op) -> Answer {
        use OrderStatus::*;
        let wanted = move |s: &OrderState| {
            let status = OrderStatus::try_from(s.status).unwrap_or(Unspecified);
            match op {
                Op::Hold => matches!(status, Processing | PartiallyAllocated | Exception),
                Op::Release => status == OnHold,
                Op::Cancel => matches!(status, Processing | Exception | OnHold),
                _ => matches!(status, Processing | PartiallyAllocated) && !s.picked,
            }
        };
        let Some(state) = self.pick_order(wanted) else {
            return Answer::Refused;
        };
        let (merchant_id, order_id) = ("m".to_string(), state.order_id.clone());
        let grpc = &mut self.grpc;
        let result = match op {
            Op::Hold => {
                let request = HoldOrderRequest {
                    merchant_id,
                    order_id,
                    reason: "address check".into(),
                    as_of: None,
                };
                grpc.hold_order(request).await
            }
            Op::Release => {
                let request = ReleaseOrderRequest {
                    merchant_id,
                    order_id,
                    as_of: None,
                };
                grpc.release_order(request).await
            }
            Op::Cancel => {
                let request = CancelOrderRequest {
                    merchant_id,
                    order_id,
                    as_of: None,
                };
                grpc.cancel_order(request).await
            }
            _ => {
                let request = MarkPickedRequest {
                    merchant_id,
                    order_id,
                    as_of: None,
                };
                grpc.mark_picked(request).await
            }
        };
        self.settle(result, &state.order_id, op).await
    }

    async fn settle(
        &mut self,
        result: Result<tonic::Response<OrderState>, Status>,
        id: &str,
        op: Op,
    ) -> Answer {
        match result {
            Ok(response) => {
                self.acknowledge(response.into_inner());
                Answer::Acked
            }
            Err(status) => match self.answer(&status, &format!("{op:?} of {id}")) {
                Answer::Lost => self.lost([id.to_string()]),
                other => other,
            },
        }
    }

    /// Ship what one of my orders holds at one FC.
    async fn ship(&mut self) -> Answer {
        let Some(state) = self.pick_order(|s| !s.allocations.is_empty()) else {
            return Answer::Refused;
        };
        let fc_id = match state
            .allocations
            .get(self.rng.below(state.allocations.len().max(1)))
        {
            Some(allocation) => allocation.fc_id.clone(),
            None => format!("fc{}", self.rng.below(FCS)),
        };
        self.serial += 1;
        let tracking_number = format!("{}-T{}", self.prefix, self.serial);
        {
            // However the order's allocation moved since it was told, it
            // cannot ship more of a SKU than its line.
            let mut told = self.told.lock().unwrap();
            for line in &state.lines {
                *told
                    .shipped_sent
                    .entry((line.sku.clone(), fc_id.clone()))
                    .or_default() += u64::from(line.quantity);
            }
        }
        let request = ShipOrderRequest {
            merchant_id: "m".into(),
            order_id: state.order_id.clone(),
            fc_id,
            tracking_number: tracking_number.clone(),
            carrier: "UPS".into(),
            label_source: LabelSource::Service as i32,
            as_of: None,
        };
        let result = self.grpc.ship_order(request).await;
        if let Ok(response) = &result {
            let shipment = response
                .get_ref()
                .shipments
                .iter()
                .find(|s| s.tracking_number == tracking_number)
                .expect("a shipped order shows its shipment");
            let mut told = self.told.lock().unwrap();
            for item in &shipment.items {
                *told
                    .shipped_acked
                    .entry((item.sku.clone(), item.fc_id.clone()))
                    .or_default() += u64::from(item.quantity);
            }
        }
        self.settle(result, &state.order_id, Op::Ship).await
    }

    /// A carrier scan of one of my shipments.
    async fn scan(&mut self) -> Answer {
        let Some(state) = self.pick_order(|s| !s.shipments.is_empty()) else {
            return Answer::Refused;
        };
        let Some(shipment) = state
            .shipments
            .get(self.rng.below(state.shipments.len().max(1)))
        else {
            return Answer::Refused;
        };
        let labelled = shipment.labelled_at.expect("a labelled shipment");
        let event = TrackingEvent {
            status: [
                TrackingStatus::PickedUp,
                TrackingStatus::OutForDelivery,
                TrackingStatus::Delivered,
            ][self.rng.below(3)] as i32,
            event_time: Some(prost_types::Timestamp {
                seconds: labelled.seconds + 60 * (1 + self.rng.below(3000) as i64),
                nanos: 0,
            }),
            misdelivery_confirmed: self.rng.below(10) == 0,
        };
        let number = shipment.tracking_number.clone();
        self.told
            .lock()
            .unwrap()
            .scans_sent
            .entry(number.clone())
            .or_default()
            .push(event);
        let request = RecordTrackingEventRequest {
            tracking_number: number.clone(),
            status: event.status,
            event_time: event.event_time,
            misdelivery_confirmed: event.misdelivery_confirmed,
            as_of: None,
        };
        match self.grpc.record_tracking_event(request).await {
            Ok(response) => {
                let shipment = response.into_inner();
                assert!(shipment.events.contains(&event), "the scan is recorded");
                let mut told = self.told.lock().unwrap();
                told.scans_acked.entry(number).or_default().push(event);
                Answer::Acked
            }
            Err(status) => self.answer(&status, &format!("a scan of {number}")),
        }
    }

    fn my_cell(&mut self) -> Cell {
        self.cells[self.rng.below(self.cells.len())].clone()
    }

    /// A receipt (delta > 0) or a loss (delta < 0) at one of my cells.
    async fn adjust(&mut self, delta: i64) -> Answer {
        let cell = self.my_cell();
        let request = AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: cell.0.clone(),
                fc_id: cell.1.clone(),
                delta,
            }],
            ..Default::default()
        };
        let outcome = match self.grpc.adjust_inventory(request).await {
            Ok(response) => {
                check_views(&response.into_inner());
                Answer::Acked
            }
            Err(status) => self.answer(&status, "AdjustInventory"),
        };
        let mut told = self.told.lock().unwrap();
        let bounds = told.cells.get_mut(&cell).expect("every cell has bounds");
        let applied = Bounds {
            low: bounds.low + delta,
            high: bounds.high + delta,
        };
        match outcome {
            Answer::Acked => *bounds = applied,
            Answer::Lost => bounds.widen(applied),
            Answer::Refused => {}
        }
        outcome
    }

    /// An absolute count at one of my cells; it may release reservations
    /// of anyone's unpicked orders there.
    async fn count(&mut self) -> Answer {
        let cell = self.my_cell();
        let units = self.rng.below(11) as u64;
        let shipped_before = {
            let told = self.told.lock().unwrap();
            told.shipped_acked.get(&cell).copied().unwrap_or(0)
        };
        let request = SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![InventoryLevel {
                sku: cell.0.clone(),
                fc_id: cell.1.clone(),
                on_hand: units,
            }],
            ..Default::default()
        };
        let outcome = match self.grpc.set_inventory(request).await {
            Ok(response) => {
                check_views(&response.into_inner());
                Answer::Acked
            }
            Err(status) => self.answer(&status, "SetInventory"),
        };
        let mut told = self.told.lock().unwrap();
        match outcome {
            Answer::Acked => {
                // Shipments acknowledged before the count left before it; a
                // shipment sent before its answer may have left before it.
                let shipped_sent = told.shipped_sent.get(&cell).copied().unwrap_or(0);
                let bounds = Bounds {
                    low: (units + shipped_before) as i64,
                    high: (units + shipped_sent) as i64,
                };
                told.cells.insert(cell, bounds);
            }
            Answer::Lost => {
                let pending = PendingCount {
                    units,
                    shipped_before,
                };
                told.pending_counts.insert(cell, pending);
            }
            Answer::Refused => {}
        }
        outcome
    }
}

/// No row an inventory change answers with is over-reserved.
fn check_views(response: &InventoryResponse) {
    for view in &response.views {
        for row in &view.fcs {
            assert!(
                row.picked <= row.reserved && row.reserved <= row.on_hand,
                "answered an over-reserved row of {}: {row:?}",
                view.sku
            );
        }
    }
}
