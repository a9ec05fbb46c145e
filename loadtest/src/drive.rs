//! Sending the load: closed loop (a fixed number of requests in flight,
//! each task sends its next request when the last one is answered) or open
//! loop (requests at a fixed rate; latency counts from the moment a request
//! was due, so a slow server cannot hide queueing by slowing the sender).
//! Replenishment runs beside either.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::{
    allocate_result, AllocateBatchRequest, AllocateRequest, AllocateResult, AllocateStreamRequest,
    CancelOrderRequest, GetOrderRequest, HoldOrderRequest, OrderState,
};
use hdrhistogram::Histogram;
use tonic::transport::Channel;
use tonic::Code;

use crate::verify::Verification;
use crate::workload::{Rng, Workload};
use crate::{Args, Mode, View};

/// Open loop: requests in flight beyond this are not sent (counted as
/// missed), so an overloaded server cannot make the harness grow without bound.
const OPEN_LOOP_IN_FLIGHT_MAX: usize = 20_000;

/// What a run measured.
pub struct Report {
    pub mode: Mode,
    pub view: View,
    pub seconds: f64,
    pub requests: u64,
    /// Orders acknowledged by Allocate / AllocateBatch.
    pub orders: u64,
    /// Errors by gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: requests not sent because too many were in flight.
    pub missed: u64,
    /// Request latency, microseconds.
    pub latency: Histogram<u64>,
    /// Units the acknowledged orders hold now (by their last acknowledged state).
    pub acknowledged_units: u64,
    /// Units of requests whose outcome is unknown (failed in transit).
    pub uncertain_units: u64,
    pub verification: Option<Verification>,
    /// The slow change-feed subscriber, if one ran.
    pub subscriber: Option<std::sync::Arc<crate::subscriber::Seen>>,
}

impl Report {
    fn new(mode: Mode, view: View) -> Self {
        Self {
            mode,
            view,
            seconds: 0.0,
            requests: 0,
            orders: 0,
            errors: BTreeMap::new(),
            missed: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            acknowledged_units: 0,
            uncertain_units: 0,
            verification: None,
            subscriber: None,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.orders += other.orders;
        for (code, count) in other.errors {
            *self.errors.entry(code).or_default() += count;
        }
        self.latency.add(&other.latency).expect("same bounds");
        self.acknowledged_units += other.held.values().sum::<u64>();
        self.uncertain_units += other.uncertain_units;
    }

    pub fn orders_per_second(&self) -> f64 {
        self.orders as f64 / self.seconds
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile(&self, quantile: f64) -> u64 {
        self.latency.value_at_quantile(quantile)
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "mode {:?}, view {:?}: {} requests, {} orders in {:.2} s = {:.0} requests/s, {:.0} orders/s\n",
            self.mode,
            self.view,
            self.requests,
            self.orders,
            self.seconds,
            self.requests_per_second(),
            self.orders_per_second()
        );
        out += &format!(
            "latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            self.percentile(0.999),
            self.latency.max()
        );
        if !self.errors.is_empty() || self.missed > 0 {
            out += &format!(
                "errors: {:?}  missed (open loop): {}\n",
                self.errors, self.missed
            );
        }
        if let Some(seen) = &self.subscriber {
            out += &format!(
                "slow subscriber: {} events, {} out of order, ended: {}\n",
                seen.events.load(std::sync::atomic::Ordering::Relaxed),
                seen.out_of_order.load(std::sync::atomic::Ordering::Relaxed),
                seen.ended.lock().unwrap().as_deref().unwrap_or("no")
            );
        }
        if let Some(verification) = &self.verification {
            out += &verification.line();
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": format!("{:?}", self.mode).to_lowercase(),
            "view": format!("{:?}", self.view).to_lowercase(),
            "seconds": self.seconds,
            "requests": self.requests,
            "orders": self.orders,
            "requests_per_second": self.requests_per_second(),
            "orders_per_second": self.orders_per_second(),
            "errors": self.errors,
            "missed": self.missed,
            "latency_us": {
                "p50": self.percentile(0.5),
                "p90": self.percentile(0.9),
                "p99": self.percentile(0.99),
                "p99_9": self.percentile(0.999),
                "max": self.latency.max(),
            },
            "verification": self.verification.as_ref().map(Verification::json),
            "slow_subscriber": self.subscriber.as_ref().map(|seen| serde_json::json!({
                "events": seen.events.load(std::sync::atomic::Ordering::Relaxed),
                "out_of_order": seen.out_of_order.load(std::sync::atomic::Ordering::Relaxed),
                "ended": *seen.ended.lock().unwrap(),
            })),
        })
    }
}

/// One worker's counts, merged into the report at the end.
struct Tally {
    requests: u64,
    orders: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
    /// Units each acknowledged order holds, by its last acknowledged state.
    /// (foldhash: with std's SipHash this map was a fifth of the client's
    /// time under the batch load, time the server on the same cores lost.)
    held: HashMap<(String, String), u64, foldhash::fast::RandomState>,
    uncertain_units: u64,
    /// This worker's acknowledged orders, for reads, holds and cancels.
    own: Vec<(String, String)>,
}

impl Tally {
    fn new() -> Self {
        Self {
            requests: 0,
            orders: 0,
            errors: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            held: HashMap::default(),
            uncertain_units: 0,
            own: Vec::new(),
        }
    }

    fn acknowledged(&mut self, state: &OrderState) {
        let units = state
            .allocations
            .iter()
            .map(|a| u64::from(a.quantity))
            .sum();
        let key = (state.merchant_id.clone(), state.order_id.clone());
        if self.held.insert(key.clone(), units).is_none() {
            self.orders += 1;
            self.own.push(key);
        }
    }

    fn failed(&mut self, status: &tonic::Status, units_at_stake: u64) {
        *self
            .errors
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
        // These codes, answered by the server, mean the request changed
        // nothing; any other may have, and so may any status the client's
        // transport made up (a connection closed with ENHANCE_YOUR_CALM
        // reads RESOURCE_EXHAUSTED, whatever the server had done).
        let answered = std::error::Error::source(status).is_none();
        let refused = answered
            && matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::AlreadyExists
                    | Code::FailedPrecondition
                    | Code::ResourceExhausted
                    | Code::Unimplemented
            );
        if !refused {
            self.uncertain_units += units_at_stake;
        }
    }

    fn record(&mut self, since: Instant) {
        self.requests += 1;
        let micros = since.elapsed().as_micros().clamp(1, 60_000_000) as u64;
        let _ = self.latency.record(micros);
    }
}

/// What an allocation request came back with.
enum Answer {
    States(Vec<OrderState>),
    /// A batch answer: states, and the number of orders refused individually.
    Batch(Vec<OrderState>, Vec<i32>),
    Failed(tonic::Status, u64),
}

impl Tally {
    fn apply(&mut self, answer: Answer) {
        match answer {
            Answer::States(states) => states.iter().for_each(|state| self.acknowledged(state)),
            Answer::Batch(states, refused) => {
                states.iter().for_each(|state| self.acknowledged(state));
                for code in refused {
                    *self
                        .errors
                        .entry(format!("batch item code {code}"))
                        .or_default() += 1;
                }
            }
            Answer::Failed(status, units) => self.failed(&status, units),
        }
    }
}

/// Send one Allocate (or AllocateBatch, for a batch size above 1) of new orders.
async fn allocate_once(
    args: &Args,
    workload: &Workload,
    client: &mut AllocationServiceClient<Channel>,
    rng: &mut Rng,
    worker: usize,
    sequence: u64,
) -> Answer {
    let orders: Vec<_> = (0..args.batch_size.max(1))
        .map(|n| {
            let id = format!("{}-{worker}-{sequence}-{n}", workload.run_id);
            workload.order(rng, id, 1_700_000_000 + sequence as i64).1
        })
        .collect();
    let units: u64 = orders
        .iter()
        .flat_map(|o| &o.lines)
        .map(|l| u64::from(l.quantity))
        .sum();
    if orders.len() == 1 {
        let order = orders.into_iter().next();
        return match client
            .allocate(AllocateRequest {
                order,
                view: args.view.to_proto() as i32,
                ..Default::default()
            })
            .await
        {
            Ok(response) => Answer::States(response.into_inner().orders),
            Err(status) => Answer::Failed(status, units),
        };
    }
    match client
        .allocate_batch(AllocateBatchRequest {
            orders,
            view: args.view.to_proto() as i32,
            ..Default::default()
        })
        .await
    {
        Ok(response) => {
            let (mut states, mut refused) = (Vec::new(), Vec::new());
            for result in response.into_inner().results {
                match result.outcome {
                    Some(allocate_result::Outcome::State(state)) => states.push(state),
                    Some(allocate_result::Outcome::Error(status)) => refused.push(status.code),
                    None => {}
                }
            }
            Answer::Batch(states, refused)
        }
        Err(status) => Answer::Failed(status, units),
    }
}

/// Which operation to send next, by the configured mix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Allocate,
    Get,
    Hold,
    Cancel,
}

fn pick(args: &Args, rng: &mut Rng, tally: &Tally) -> Operation {
    if tally.own.is_empty() {
        return Operation::Allocate;
    }
    let roll = rng.below(100) as u32;
    if roll < args.get_percent {
        Operation::Get
    } else if roll < args.get_percent + args.hold_percent {
        Operation::Hold
    } else if roll < args.get_percent + args.hold_percent + args.cancel_percent {
        Operation::Cancel
    } else {
        Operation::Allocate
    }
}

/// Send one operation and account for its answer.
async fn operate(
    args: &Args,
    workload: &Workload,
    client: &mut AllocationServiceClient<Channel>,
    tally: &mut Tally,
    rng: &mut Rng,
    worker: usize,
    sequence: u64,
) {
    let due = Instant::now();
    match pick(args, rng, tally) {
        Operation::Allocate => {
            let answer = allocate_once(args, workload, client, rng, worker, sequence).await;
            tally.record(due);
            tally.apply(answer);
        }
        Operation::Get => {
            let (merchant_id, order_id) = tally.own[rng.below(tally.own.len())].clone();
            let result = client
                .get_order(GetOrderRequest {
                    merchant_id,
                    order_id,
                    as_of: None,
                })
                .await;
            tally.record(due);
            if let Err(status) = result {
                tally.failed(&status, 0);
            }
        }
        operation @ (Operation::Hold | Operation::Cancel) => {
            let hold = operation == Operation::Hold;
            let (merchant_id, order_id) = tally.own[rng.below(tally.own.len())].clone();
            let result = if hold {
                client
                    .hold_order(HoldOrderRequest {
                        merchant_id,
                        order_id,
                        reason: "load test".into(),
                        as_of: None,
                    })
                    .await
            } else {
                client
                    .cancel_order(CancelOrderRequest {
                        merchant_id,
                        order_id,
                        as_of: None,
                    })
                    .await
            };
            tally.record(due);
            match result {
                Ok(response) => tally.acknowledged(&response.into_inner()),
                Err(status) => tally.failed(&status, 0),
            }
        }
    }
}

/// A worker's own random sequence, derived from the run's seed.
fn worker_rng(seed: u64, worker: usize) -> Rng {
    Rng(seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Take one request from the shared budget; false when it is spent.
fn take(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

/// Run the load for `args.duration()` or `args.requests_max` requests,
/// whichever ends first.
pub async fn drive(
    args: Arc<Args>,
    workload: Arc<Workload>,
    clients: &[AllocationServiceClient<Channel>],
) -> anyhow::Result<Report> {
    let stop = Arc::new(AtomicBool::new(false));
    let replenisher = tokio::spawn(replenish(
        Arc::clone(&workload),
        clients[0].clone(),
        Arc::clone(&stop),
        args.seed,
    ));
    let started = Instant::now();
    let deadline = started + args.duration();
    let budget = Arc::new(AtomicU64::new(args.requests_max));
    let mut report = Report::new(args.mode, args.view);
    match args.mode {
        Mode::Closed => {
            let mut workers = Vec::new();
            for worker in 0..args.concurrency.max(1) {
                let (args, workload, budget) = (
                    Arc::clone(&args),
                    Arc::clone(&workload),
                    Arc::clone(&budget),
                );
                let mut client = clients[worker % clients.len()].clone();
                workers.push(tokio::spawn(async move {
                    let mut tally = Tally::new();
                    let mut rng = worker_rng(args.seed, worker);
                    let mut sequence = 0;
                    while Instant::now() < deadline && take(&budget) {
                        operate(
                            &args,
                            &workload,
                            &mut client,
                            &mut tally,
                            &mut rng,
                            worker,
                            sequence,
                        )
                        .await;
                        sequence += 1;
                    }
                    tally
                }));
            }
            for worker in workers {
                report.merge(worker.await?);
            }
        }
        Mode::Open => {
            // Requests are due at fixed intervals; each is its own task, and
            // answers come back to one collector. Only allocations are sent.
            let interval = Duration::from_secs_f64(1.0 / args.rate.max(1e-3));
            let in_flight = Arc::new(tokio::sync::Semaphore::new(OPEN_LOOP_IN_FLIGHT_MAX));
            let (answers, mut collected) = tokio::sync::mpsc::unbounded_channel::<(u64, Answer)>();
            let collector = tokio::spawn(async move {
                let mut tally = Tally::new();
                while let Some((micros, answer)) = collected.recv().await {
                    tally.requests += 1;
                    let _ = tally.latency.record(micros.clamp(1, 60_000_000));
                    tally.apply(answer);
                }
                tally
            });
            let mut rng = Rng(args.seed);
            let mut missed = 0;
            for sequence in 0.. {
                let due = started + interval.mul_f64(sequence as f64);
                if due >= deadline || !take(&budget) {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
                    missed += 1;
                    continue;
                };
                let mut request_rng = Rng(rng.next_u64());
                let (args, workload, answers) =
                    (Arc::clone(&args), Arc::clone(&workload), answers.clone());
                let mut client = clients[sequence as usize % clients.len()].clone();
                tokio::spawn(async move {
                    let answer =
                        allocate_once(&args, &workload, &mut client, &mut request_rng, 0, sequence)
                            .await;
                    // From when it was due, not from when it was sent.
                    let micros = due.elapsed().as_micros() as u64;
                    let _ = answers.send((micros, answer));
                    drop(permit);
                });
            }
            drop(answers);
            report.merge(collector.await?);
            report.missed = missed;
        }
        Mode::Stream => {
            let mut streams = Vec::new();
            let window = (args.concurrency / clients.len()).max(1);
            for (worker, client) in clients.iter().enumerate() {
                streams.push(tokio::spawn(stream(
                    Arc::clone(&args),
                    Arc::clone(&workload),
                    client.clone(),
                    worker,
                    window,
                    deadline,
                    Arc::clone(&budget),
                )));
            }
            for stream in streams {
                report.merge(stream.await??);
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    replenisher.await?;
    Ok(report)
}

/// One `AllocateStream`: new orders are sent while fewer than `window` are
/// unanswered; each order's latency runs from its send to its result.
/// Results come back in the order sent, so the send times queue beside them.
async fn stream(
    args: Arc<Args>,
    workload: Arc<Workload>,
    mut client: AllocationServiceClient<Channel>,
    worker: usize,
    window: usize,
    deadline: Instant,
    budget: Arc<AtomicU64>,
) -> anyhow::Result<Tally> {
    let unanswered = Arc::new(tokio::sync::Semaphore::new(window));
    let (requests, outbound) = tokio::sync::mpsc::channel(window);
    let (sent, mut sent_times) = tokio::sync::mpsc::unbounded_channel::<(Instant, u64)>();
    let sender = tokio::spawn({
        let unanswered = Arc::clone(&unanswered);
        async move {
            let mut rng = worker_rng(args.seed, worker);
            let mut sequence = 0u64;
            while Instant::now() < deadline && take(&budget) {
                let Ok(permit) = unanswered.acquire().await else {
                    return;
                };
                permit.forget(); // given back when the result arrives
                let id = format!("{}-s{worker}-{sequence}", workload.run_id);
                let order = workload
                    .order(&mut rng, id, 1_700_000_000 + sequence as i64)
                    .1;
                let units = order.lines.iter().map(|l| u64::from(l.quantity)).sum();
                let _ = sent.send((Instant::now(), units));
                let request = AllocateStreamRequest {
                    order: Some(order),
                    view: args.view.to_proto() as i32,
                    ..Default::default()
                };
                if requests.send(request).await.is_err() {
                    return;
                }
                sequence += 1;
            }
            // Dropping `requests` half-closes the stream.
        }
    });
    let mut tally = Tally::new();
    let opened = client
        .allocate_stream(tokio_stream::wrappers::ReceiverStream::new(outbound))
        .await;
    let mut results = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => {
            unanswered.close();
            sender.await?;
            tally.failed(&status, 0);
            return Ok(tally);
        }
    };
    loop {
        match results.message().await {
            Ok(Some(result)) => {
                let (since, _) = sent_times
                    .recv()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("a result for an order never sent"))?;
                tally.record(since);
                tally.apply(streamed(result));
                unanswered.add_permits(1);
            }
            Ok(None) => break,
            Err(status) => {
                // Orders sent and not answered may or may not have been applied.
                unanswered.close();
                sent_times.close();
                while let Some((_, units)) = sent_times.recv().await {
                    tally.failed(&status, units);
                }
                break;
            }
        }
    }
    sender.await?;
    Ok(tally)
}

/// One streamed result as a batch answer of one order.
fn streamed(result: AllocateResult) -> Answer {
    match result.outcome {
        Some(allocate_result::Outcome::State(state)) => Answer::Batch(vec![state], Vec::new()),
        Some(allocate_result::Outcome::Error(status)) => {
            Answer::Batch(Vec::new(), vec![status.code])
        }
        None => Answer::Batch(Vec::new(), Vec::new()),
    }
}

/// Receive `replenish_units_per_second` units per merchant, in ten ticks a
/// second, until `stop`.
async fn replenish(
    workload: Arc<Workload>,
    mut client: AllocationServiceClient<Channel>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let units = workload.replenish_units_per_second() / 10;
    if units == 0 {
        return;
    }
    let mut rng = Rng(seed ^ 0x5EED);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        for merchant in 0..workload.merchants.len() {
            let request = workload.replenishment(&mut rng, merchant, units);
            if let Err(status) = client.adjust_inventory(request).await {
                eprintln!("replenishment failed: {status}");
            }
        }
    }
}
