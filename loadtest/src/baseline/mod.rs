//! Baselines: the same workload against what a user would otherwise pick,
//! so the service's figures have something to be compared with.
//!
//! Each baseline does the simple thing a team would write: reserve the whole
//! order at the first FC (in FC order) that can fill every line, atomically,
//! or not at all. Closed loop only: `--concurrency` workers, each on its own
//! connection, each sending `--batch-size` orders per round trip where the
//! store allows it (Redis pipelines them; PostgreSQL runs one transaction
//! per order). No replenishment: run the service with
//! `--replenish-units-per-second 0` too when comparing.
//!
//! - `redis://host:port`: a Lua script (`EVALSHA`), atomic by Redis' design.
//! - `postgres://…`: one transaction per order, a conditional
//!   `UPDATE … WHERE on_hand - reserved >= qty` per FC tried.

mod postgres;
mod redis;
mod resp;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use allocation::grpc::proto::Order;
use hdrhistogram::Histogram;

use crate::drive::Report;
use crate::verify::Verification;
use crate::workload::{Rng, Workload};
use crate::{Args, Mode};

/// Is `target` one of the baselines rather than the service?
pub fn is_baseline(target: &str) -> bool {
    target.starts_with("redis://") || target.starts_with("postgres://")
}

/// A store the baseline runs against.
trait Backend: Send + Sized + 'static {
    /// Put `initial_stock` units of every SKU at every FC of every merchant.
    fn stock(
        &mut self,
        workload: &Workload,
        units: u64,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Reserve each order whole at the first FC that can fill it; per order,
    /// the units reserved (0 when it did not fit anywhere).
    fn allocate(
        &mut self,
        orders: &[Order],
        fcs: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<u64>>> + Send;
    /// (cells, over-reserved cells, reserved units) after the run.
    fn audit(
        &mut self,
        workload: &Workload,
    ) -> impl Future<Output = anyhow::Result<(u64, u64, u64)>> + Send;
}

pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let workload = Arc::new(Workload::new(args));
    if let Some(address) = args.target.strip_prefix("redis://") {
        let mut connections = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            connections.push(redis::Redis::connect(address).await?);
        }
        drive(args, workload, connections).await
    } else {
        let mut connections = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            connections.push(postgres::Postgres::connect(&args.target).await?);
        }
        drive(args, workload, connections).await
    }
}

async fn drive<B: Backend>(
    args: &Args,
    workload: Arc<Workload>,
    mut backends: Vec<B>,
) -> anyhow::Result<Report> {
    backends[0].stock(&workload, args.initial_stock).await?;
    let started = Instant::now();
    let deadline = started + args.duration();
    let budget = Arc::new(AtomicU64::new(args.requests_max));
    let mut workers = Vec::new();
    for (worker, mut backend) in backends.into_iter().enumerate() {
        let (args, workload, budget) = (
            Arc::new(args.clone()),
            Arc::clone(&workload),
            Arc::clone(&budget),
        );
        workers.push(tokio::spawn(async move {
            let mut latency =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
            let (mut requests, mut orders, mut units, mut errors) = (0u64, 0u64, 0u64, 0u64);
            let mut rng = Rng(args.seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut sequence = 0u64;
            while Instant::now() < deadline
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                let batch: Vec<Order> = (0..args.batch_size.max(1))
                    .map(|n| {
                        workload
                            .order(&mut rng, format!("{worker}-{sequence}-{n}"), 0)
                            .1
                    })
                    .collect();
                sequence += 1;
                let sent = Instant::now();
                match backend.allocate(&batch, workload.fcs).await {
                    Ok(reserved) => {
                        orders += reserved.len() as u64;
                        units += reserved.iter().sum::<u64>();
                    }
                    Err(error) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("baseline request failed: {error:#}");
                        }
                    }
                }
                requests += 1;
                let _ = latency.record((sent.elapsed().as_micros() as u64).clamp(1, 60_000_000));
            }
            (latency, requests, orders, units, errors, backend)
        }));
    }
    let mut report = Report {
        mode: Mode::Closed,
        view: args.view,
        seconds: 0.0,
        requests: 0,
        orders: 0,
        errors: BTreeMap::new(),
        missed: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        acknowledged_units: 0,
        uncertain_units: 0,
        verification: None,
        subscriber: None,
    };
    let mut last = None;
    for worker in workers {
        let (latency, requests, orders, units, errors, backend) = worker.await?;
        report.latency.add(&latency).expect("same bounds");
        report.requests += requests;
        report.orders += orders;
        report.acknowledged_units += units;
        if errors > 0 {
            *report.errors.entry("baseline".into()).or_default() += errors;
        }
        last = Some(backend);
    }
    report.seconds = started.elapsed().as_secs_f64();
    if let (Some(mut backend), false) = (last, args.skip_verify) {
        let (cells, over_reserved, reserved_units) = backend.audit(&workload).await?;
        report.verification = Some(Verification {
            cells,
            over_reserved,
            reserved_units,
            acknowledged_units: report.acknowledged_units,
            uncertain_units: 0,
            passed: over_reserved == 0 && reserved_units == report.acknowledged_units,
        });
    }
    Ok(report)
}

/// Units of an order.
fn units(order: &Order) -> u64 {
    order
        .lines
        .iter()
        .map(|line| u64::from(line.quantity))
        .sum()
}
