//! What the load test sends: orders of 1–5 lines over Zipf-popular SKUs,
//! the initial stock, and replenishment. Merchant ids carry a run id, so
//! runs against the same server never touch each other's stock.

use std::collections::HashMap;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::{
    AdjustInventoryRequest, InventoryDelta, InventoryLevel, Order, OrderLine, SetInventoryRequest,
};
use tonic::transport::Channel;

#[path = "../../tests/support/rng.rs"]
mod rng;
pub use rng::Rng;

use crate::zipf::Zipf;
use crate::Args;

/// Inventory entries per SetInventory / AdjustInventory request (the
/// service's limit is 10,000).
const ENTRIES_PER_REQUEST: usize = 10_000;

pub struct Workload {
    pub merchants: Vec<String>,
    pub skus: usize,
    pub fcs: usize,
    zipf: Zipf,
    initial_stock: u64,
    replenish_units_per_second: u64,
    /// Distinguishes this run's order ids.
    pub run_id: String,
}

pub fn sku_name(index: usize) -> String {
    format!("sku-{index}")
}

pub fn fc_name(index: usize) -> String {
    format!("fc-{index}")
}

impl Workload {
    pub fn new(args: &Args) -> Self {
        let run_id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|since| since.as_nanos())
                .unwrap_or_default()
                ^ u128::from(args.seed)
        );
        Self {
            merchants: (0..args.merchants.max(1))
                .map(|m| format!("lt-{run_id}-m{m}"))
                .collect(),
            skus: args.skus.max(5),
            fcs: args.fcs.max(1),
            zipf: Zipf::new(args.skus.max(5), args.zipf_exponent),
            initial_stock: args.initial_stock,
            replenish_units_per_second: args.replenish_units_per_second,
            run_id,
        }
    }

    /// Put the initial stock of every SKU at every FC.
    pub async fn stock(&self, client: &AllocationServiceClient<Channel>) -> anyhow::Result<()> {
        let mut client = client.clone();
        for merchant in &self.merchants {
            let cells: Vec<(usize, usize)> = (0..self.skus)
                .flat_map(|sku| (0..self.fcs).map(move |fc| (sku, fc)))
                .collect();
            for chunk in cells.chunks(ENTRIES_PER_REQUEST) {
                let levels = chunk
                    .iter()
                    .map(|&(sku, fc)| InventoryLevel {
                        sku: sku_name(sku),
                        fc_id: fc_name(fc),
                        on_hand: self.initial_stock,
                    })
                    .collect();
                client
                    .set_inventory(SetInventoryRequest {
                        merchant_id: merchant.clone(),
                        levels,
                        ..Default::default()
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// A new order of a random merchant: 1–5 distinct Zipf-popular SKUs,
    /// 1–3 units each.
    pub fn order(&self, rng: &mut Rng, order_id: String, purchase_seconds: i64) -> (usize, Order) {
        let merchant = rng.below(self.merchants.len());
        let line_count = 1 + rng.below(5);
        let mut skus: Vec<usize> = Vec::with_capacity(line_count);
        while skus.len() < line_count {
            let sku = self.zipf.sample(rng.unit());
            if !skus.contains(&sku) {
                skus.push(sku);
            }
        }
        let order = Order {
            merchant_id: self.merchants[merchant].clone(),
            order_id,
            purchase_time: Some(prost_types::Timestamp {
                seconds: purchase_seconds,
                nanos: 0,
            }),
            lines: skus
                .into_iter()
                .map(|sku| OrderLine {
                    sku: sku_name(sku),
                    quantity: 1 + rng.below(3) as u32,
                })
                .collect(),
            partial_shipments: Some(rng.below(2) == 0),
            ..Default::default()
        };
        (merchant, order)
    }

    /// One tick's receipts for one merchant: `units` spread over popular
    /// SKUs at random FCs, one delta per (SKU, FC).
    pub fn replenishment(
        &self,
        rng: &mut Rng,
        merchant: usize,
        units: u64,
    ) -> AdjustInventoryRequest {
        let mut deltas: HashMap<(usize, usize), i64> = HashMap::new();
        for _ in 0..units {
            let cell = (self.zipf.sample(rng.unit()), rng.below(self.fcs));
            *deltas.entry(cell).or_default() += 1;
        }
        AdjustInventoryRequest {
            merchant_id: self.merchants[merchant].clone(),
            deltas: deltas
                .into_iter()
                .take(ENTRIES_PER_REQUEST)
                .map(|((sku, fc), delta)| InventoryDelta {
                    sku: sku_name(sku),
                    fc_id: fc_name(fc),
                    delta,
                })
                .collect(),
            as_of: None,
        }
    }

    pub fn replenish_units_per_second(&self) -> u64 {
        self.replenish_units_per_second
    }
}
