//! Heap allocations per order on the allocation path, stage by stage, as an
//! `AllocateBatch` of 3-line orders meets them below the transport: decode
//! the request, validate and convert each order, decide and store it, build
//! its lean answer, encode the response. A measurement program, not a
//! criterion statistic: the counts are exact, not timed.
//! Run: `cargo bench --bench per_order` (`PER_ORDER_BENCH_ORDERS=<n>`).

use std::sync::atomic::{AtomicU64, Ordering};

use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::grpc::convert;
use allocation::grpc::proto::{
    self, allocate_result, AllocateBatchRequest, AllocateBatchResponse, AllocateResult, OrderView,
};
use allocation::model::{FcId, Timestamp};
use prost::Message;

const SKUS: usize = 10_000;
const FCS: usize = 4;

/// Counts allocations (and reallocations), on every thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        mimalloc::MiMalloc.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `work`, and its result.
fn counted<T>(work: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let result = work();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, result)
}

fn stocked_engine() -> Engine {
    let engine = Engine::new(EngineConfig::default());
    let changes: Vec<InventoryChange> = (0..SKUS)
        .flat_map(|sku| {
            (0..FCS).map(move |fc| InventoryChange {
                sku: format!("sku-{sku}").as_str().into(),
                fc: FcId::new(&format!("fc-{fc}")),
                change: CountChange::Set(1_000_000),
            })
        })
        .collect();
    engine
        .update_inventory(&"m".into(), &changes, Timestamp::default())
        .unwrap();
    engine
}

/// The encoded request: `orders` new 3-line orders.
fn encoded_batch(orders: usize) -> Vec<u8> {
    AllocateBatchRequest {
        orders: (0..orders)
            .map(|n| proto::Order {
                merchant_id: "m".into(),
                order_id: format!("order-{n:08}"),
                purchase_time: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000 + n as i64,
                    nanos: 0,
                }),
                lines: (0..3)
                    .map(|i| proto::OrderLine {
                        sku: format!("sku-{}", (n * 7 + i * 13) % SKUS),
                        quantity: 1,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        view: OrderView::Decision as i32,
        ..Default::default()
    }
    .encode_to_vec()
}

fn main() {
    // `cargo test --benches` runs every bench once: a small batch then.
    let orders: usize = std::env::var("PER_ORDER_BENCH_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            10_000
        } else {
            100
        });
    let engine = stocked_engine();
    let bytes = encoded_batch(orders);
    let now = Timestamp::from_seconds(1_700_000_100);

    let (decode, request) = counted(|| AllocateBatchRequest::decode(&bytes[..]).unwrap());
    let (convert, requests) = counted(|| {
        request
            .orders
            .into_iter()
            .map(|order| convert::order_request(order, &"order").unwrap())
            .collect::<Vec<_>>()
    });
    let (decide, imported) = counted(|| {
        requests
            .into_iter()
            .map(|request| engine.allocate_assessed(request, now, false).unwrap())
            .collect::<Vec<_>>()
    });
    let (answer, results) = counted(|| {
        imported
            .iter()
            .map(|imported| AllocateResult {
                outcome: Some(allocate_result::Outcome::State(convert::decided_to_proto(
                    &imported.order,
                    imported.considered.first(),
                    now,
                    OrderView::Decision,
                ))),
                children: Vec::new(),
            })
            .collect::<Vec<_>>()
    });
    let response = AllocateBatchResponse { results };
    let (encode, encoded) = counted(|| response.encode_to_vec());
    assert_eq!(engine.order_count(), orders, "every order was stored");
    assert!(encoded.len() > orders, "every order was answered");

    let per_order = |count: u64| count as f64 / orders as f64;
    println!("heap allocations per 3-line order, batch of {orders} (lean view):");
    for (stage, count) in [
        ("decode the request", decode),
        ("validate and convert", convert),
        ("decide and store", decide),
        ("build the answer", answer),
        ("encode the response", encode),
    ] {
        println!("  {stage:22} {:6.2}", per_order(count));
    }
    println!(
        "  {:22} {:6.2}",
        "total",
        per_order(decode + convert + decide + answer + encode)
    );
}
