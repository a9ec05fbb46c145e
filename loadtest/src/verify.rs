//! After the run: no (SKU, FC) is over-reserved, and the units reserved
//! equal the units the acknowledged orders hold (within what requests of
//! unknown outcome could account for). Read over gRPC, like any client.

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::GetInventoryRequest;
use tonic::transport::Channel;

use crate::drive::Report;
use crate::workload::{sku_name, Workload};

/// Reads in flight at once while verifying.
const VERIFY_CONCURRENCY: usize = 32;

#[derive(Clone, Debug)]
pub struct Verification {
    pub cells: u64,
    pub over_reserved: u64,
    pub reserved_units: u64,
    pub acknowledged_units: u64,
    pub uncertain_units: u64,
    pub passed: bool,
}

impl Verification {
    pub fn line(&self) -> String {
        format!(
            "verify: {} (SKU, FC) cells, {} over-reserved; reserved {} vs acknowledged {} (+{} uncertain): {}\n",
            self.cells,
            self.over_reserved,
            self.reserved_units,
            self.acknowledged_units,
            self.uncertain_units,
            if self.passed { "PASS" } else { "FAIL" }
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "cells": self.cells,
            "over_reserved": self.over_reserved,
            "reserved_units": self.reserved_units,
            "acknowledged_units": self.acknowledged_units,
            "uncertain_units": self.uncertain_units,
            "passed": self.passed,
        })
    }
}

pub async fn verify(
    workload: &Workload,
    client: &AllocationServiceClient<Channel>,
    report: &Report,
) -> anyhow::Result<Verification> {
    let targets: Vec<(String, usize)> = workload
        .merchants
        .iter()
        .flat_map(|merchant| (0..workload.skus).map(move |sku| (merchant.clone(), sku)))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in targets.chunks(targets.len().div_ceil(VERIFY_CONCURRENCY).max(1)) {
        let (chunk, mut client) = (chunk.to_vec(), client.clone());
        tasks.spawn(async move {
            let (mut cells, mut over, mut reserved) = (0u64, 0u64, 0u64);
            for (merchant_id, sku) in chunk {
                let view = client
                    .get_inventory(GetInventoryRequest {
                        merchant_id,
                        sku: sku_name(sku),
                    })
                    .await?
                    .into_inner();
                for row in view.fcs {
                    cells += 1;
                    reserved += row.reserved;
                    if row.reserved > row.on_hand {
                        over += 1;
                    }
                }
            }
            anyhow::Ok((cells, over, reserved))
        });
    }
    let (mut cells, mut over_reserved, mut reserved_units) = (0, 0, 0);
    while let Some(result) = tasks.join_next().await {
        let (c, o, r) = result??;
        cells += c;
        over_reserved += o;
        reserved_units += r;
    }
    let acknowledged_units = report.acknowledged_units;
    let uncertain_units = report.uncertain_units;
    let passed = over_reserved == 0
        && reserved_units >= acknowledged_units
        && reserved_units <= acknowledged_units + uncertain_units;
    Ok(Verification {
        cells,
        over_reserved,
        reserved_units,
        acknowledged_units,
        uncertain_units,
        passed,
    })
}
