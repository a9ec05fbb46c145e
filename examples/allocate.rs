//! A client of the allocation service, end to end: put stock at two
//! fulfillment centers, watch the change feed, allocate an order, read it
//! back. Against a server started with `cargo run --release -- serve`:
//!
//! ```sh
//! cargo run --example allocate                    # http://127.0.0.1:50051
//! cargo run --example allocate -- http://HOST:PORT
//! ```

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::{
    AllocateRequest, GetOrderRequest, InventoryLevel, Order, OrderLine, SetInventoryRequest,
    WatchEventsRequest,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let mut client = AllocationServiceClient::connect(address).await?;

    // Stock: 3 mugs at fc-east, 10 at fc-west.
    let levels = [("fc-east", 3), ("fc-west", 10)]
        .map(|(fc, on_hand)| InventoryLevel {
            sku: "mug".into(),
            fc_id: fc.into(),
            on_hand,
        })
        .to_vec();
    client
        .set_inventory(SetInventoryRequest {
            merchant_id: "acme".into(),
            levels,
            ..Default::default()
        })
        .await?;

    // Subscribe before allocating, so the order's event is seen.
    let mut events = client
        .watch_events(WatchEventsRequest {
            merchant_id: "acme".into(),
            ..Default::default()
        })
        .await?
        .into_inner();

    // An order id of its own each run: allocating an existing id is refused.
    let order_id = format!("example-{}", std::process::id());
    let order = Order {
        merchant_id: "acme".into(),
        order_id: order_id.clone(),
        purchase_time: Some(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        }),
        lines: vec![OrderLine {
            sku: "mug".into(),
            quantity: 5,
        }],
        ..Default::default()
    };
    let decided = client
        .allocate(AllocateRequest {
            order: Some(order),
            as_of: None,
            ..Default::default()
        })
        .await?
        .into_inner();
    for order in &decided.orders {
        println!("allocated {}: {:?}", order.order_id, order.status());
        for allocation in &order.allocations {
            println!(
                "  {} x {} from {}",
                allocation.quantity, allocation.sku, allocation.fc_id
            );
        }
    }

    let stored = client
        .get_order(GetOrderRequest {
            merchant_id: "acme".into(),
            order_id: order_id.clone(),
            as_of: None,
        })
        .await?
        .into_inner();
    println!(
        "read back {}: {:?}, version {}",
        stored.order_id,
        stored.status(),
        stored.version
    );

    if let Some(event) = events.message().await? {
        println!(
            "event: {:?} {} {:?}",
            event.kind(),
            event.order_id,
            event.status()
        );
    }
    Ok(())
}
