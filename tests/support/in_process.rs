//! A server in this process on 127.0.0.1:0 and a real gRPC client, for
//! integration tests of the API (`binary.rs` runs the real executable).
#![allow(dead_code)] // Each test binary uses a different part of this module.

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use allocation::engine::{Engine, EngineConfig};
use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::{self, OrderLine};
use allocation::server::{Lifecycle, ServerOptions};

pub type Client = AllocationServiceClient<Channel>;

/// A running server. Dropping it shuts the server down.
pub struct TestServer {
    pub client: Client,
    pub address: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn start() -> TestServer {
    start_with(ServerOptions::default()).await
}

pub async fn start_with(options: ServerOptions) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().unwrap();
    let (shutdown, stop) = oneshot::channel::<()>();
    let engine = Engine::new(EngineConfig {
        stripe_count: 16,
        ..EngineConfig::default()
    });
    let (lifecycle, health) = Lifecycle::new().await;
    lifecycle.open(None).await;
    tokio::spawn(allocation::server::run(
        listener,
        engine,
        lifecycle,
        health,
        options,
        async {
            let _ = stop.await;
        },
    ));
    let client = AllocationServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connect to the test server");
    TestServer {
        client,
        address,
        shutdown: Some(shutdown),
    }
}

pub fn time(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

pub fn order(merchant: &str, id: &str, lines: &[(&str, u32)]) -> proto::Order {
    proto::Order {
        merchant_id: merchant.into(),
        order_id: id.into(),
        purchase_time: time(1_700_000_000),
        lines: lines
            .iter()
            .map(|&(sku, quantity)| OrderLine {
                sku: sku.into(),
                quantity,
            })
            .collect(),
        ..Default::default()
    }
}

pub async fn set_stock(client: &mut Client, merchant: &str, sku: &str, fc: &str, on_hand: u64) {
    client
        .set_inventory(proto::SetInventoryRequest {
            merchant_id: merchant.into(),
            levels: vec![proto::InventoryLevel {
                sku: sku.into(),
                fc_id: fc.into(),
                on_hand,
            }],
            ..Default::default()
        })
        .await
        .expect("set inventory");
}

pub async fn allocate(client: &mut Client, order: proto::Order) -> proto::OrderState {
    let mut response = client
        .allocate(proto::AllocateRequest {
            order: Some(order),
            as_of: None,
            ..Default::default()
        })
        .await
        .expect("allocate")
        .into_inner();
    response.orders.remove(0)
}

/// A state as a later read answers it: the candidate FCs of a decision
/// come only with the answer of the call that decided.
pub fn as_stored(state: &proto::OrderState) -> proto::OrderState {
    let mut state = state.clone();
    if let Some(decision) = &mut state.decision {
        decision.fcs.clear();
    }
    state
}

pub async fn get_order(
    client: &mut Client,
    merchant: &str,
    order_id: &str,
) -> Result<proto::OrderState, tonic::Status> {
    client
        .get_order(proto::GetOrderRequest {
            merchant_id: merchant.into(),
            order_id: order_id.into(),
            as_of: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The fields named in an INVALID_ARGUMENT status's BadRequest details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}
