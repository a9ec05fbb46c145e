//! RULES §8 over real gRPC: every malformed request gets INVALID_ARGUMENT
//! naming the offending field, and changes nothing.

#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;
use tonic::Code;

/// Stock of SKU "a" at fc1 as (on_hand, reserved).
async fn stock(client: &mut Client) -> (u64, u64) {
    let view = client
        .get_inventory(GetInventoryRequest {
            merchant_id: "m".into(),
            sku: "a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    (view.fcs[0].on_hand, view.fcs[0].reserved)
}

async fn order_exists(client: &mut Client, id: &str) -> bool {
    match get_order(client, "m", id).await {
        Ok(_) => true,
        Err(status) if status.code() == Code::NotFound => false,
        Err(status) => panic!("{status:?}"),
    }
}

/// Allocate `order` and expect INVALID_ARGUMENT naming `field`, with no order stored
/// and no stock reserved.
async fn refused(client: &mut Client, order: Order, field: &str) {
    let id = order.order_id.clone();
    let before = stock(client).await;
    let status = client
        .allocate(AllocateRequest {
            order: Some(order),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "expected {field} among {fields:?}"
    );
    assert!(status.message().contains(field), "{}", status.message());
    assert_eq!(
        stock(client).await,
        before,
        "a refused order reserved stock"
    );
    if !id.is_empty() && id.len() <= 128 {
        assert!(
            !order_exists(client, &id).await,
            "a refused order was stored"
        );
    }
}

#[tokio::test]
async fn malformed_orders_are_refused_and_change_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 10).await;
    let good = || order("m", "o1", &[("a", 1)]);

    let mut o = good();
    o.merchant_id = String::new();
    refused(&mut client, o, "order.merchant_id").await;

    let mut o = good();
    o.order_id = String::new();
    refused(&mut client, o, "order.order_id").await;

    let mut o = good();
    o.order_id = "x".repeat(129);
    refused(&mut client, o, "order.order_id").await;

    let mut o = good();
    o.lines[0].quantity = 0;
    refused(&mut client, o, "order.lines[0].quantity").await;

    let mut o = good();
    o.lines[0].quantity = 1_000_001;
    refused(&mut client, o, "order.lines[0].quantity").await;

    let o = order("m", "o1", &[("a", 1), ("a", 2)]);
    refused(&mut client, o, "order.lines[1].sku").await;

    // Long orders look for repeats with a set instead of a linear search.
    let mut o = good();
    o.lines = (0..40)
        .map(|i| OrderLine {
            sku: format!("s{}", if i == 39 { 5 } else { i }),
            quantity: 1,
        })
        .collect();
    refused(&mut client, o, "order.lines[39].sku").await;

    let mut o = good();
    o.lines.clear();
    refused(&mut client, o, "order.lines").await;

    let mut o = good();
    o.lines = (0..1001)
        .map(|i| OrderLine {
            sku: format!("s{i}"),
            quantity: 1,
        })
        .collect();
    refused(&mut client, o, "order.lines").await;

    let mut o = good();
    o.channel = 7;
    refused(&mut client, o, "order.channel").await;

    let mut o = good();
    o.marketplace_status = -1;
    refused(&mut client, o, "order.marketplace_status").await;

    let mut o = good();
    o.purchase_time = None;
    refused(&mut client, o, "order.purchase_time").await;

    let mut o = good();
    o.purchase_time = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    refused(&mut client, o, "order.purchase_time").await;

    // Outside years 0001-9999, where JSON clients could not render it.
    for seconds in [i64::MAX, 253_402_300_800, -62_135_596_801, i64::MIN] {
        let mut o = good();
        o.purchase_time = Some(prost_types::Timestamp { seconds, nanos: 0 });
        refused(&mut client, o, "order.purchase_time").await;
    }
    let status = client
        .get_order(GetOrderRequest {
            merchant_id: "m".into(),
            order_id: "o".into(),
            as_of: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["as_of"]);

    let mut o = good();
    o.assigned_fc_id = Some(String::new());
    refused(&mut client, o, "order.assigned_fc_id").await;

    let missing = client
        .allocate(AllocateRequest {
            order: None,
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&missing), ["order"]);

    // Several problems are all reported at once.
    let mut o = good();
    o.merchant_id = String::new();
    o.lines[0].quantity = 0;
    let status = client
        .allocate(AllocateRequest {
            order: Some(o),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["order.merchant_id", "order.lines[0].quantity"]
    );
}

#[tokio::test]
async fn oversized_or_empty_batches_are_refused_whole() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 10).await;
    let orders: Vec<Order> = (0..10_001)
        .map(|i| order("m", &format!("o{i}"), &[("a", 1)]))
        .collect();
    let status = client
        .allocate_batch(AllocateBatchRequest {
            orders,
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["orders"]);
    assert_eq!(stock(&mut client).await, (10, 0));
    assert!(!order_exists(&mut client, "o0").await);

    let empty = client
        .allocate_batch(AllocateBatchRequest {
            orders: vec![],
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty), ["orders"]);
}

#[tokio::test]
async fn malformed_inventory_and_catalog_requests_change_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 10).await;

    let duplicate = client
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![
                InventoryLevel {
                    sku: "a".into(),
                    fc_id: "fc1".into(),
                    on_hand: 1,
                },
                InventoryLevel {
                    sku: "a".into(),
                    fc_id: "fc1".into(),
                    on_hand: 2,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&duplicate), ["levels[1]"]);

    let empty_fc = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: "a".into(),
                fc_id: String::new(),
                delta: 5,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty_fc), ["deltas[0].fc_id"]);

    let zero = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![InventoryDelta {
                sku: "a".into(),
                fc_id: "fc1".into(),
                delta: 0,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&zero), ["deltas[0].delta"]);

    let huge = client
        .set_inventory(SetInventoryRequest {
            merchant_id: "m".into(),
            levels: vec![InventoryLevel {
                sku: "a".into(),
                fc_id: "fc1".into(),
                on_hand: u64::MAX,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&huge), ["levels[0].on_hand"]);
    assert_eq!(stock(&mut client).await, (10, 0));

    let no_skus = client
        .register_skus(RegisterSkusRequest {
            merchant_id: "m".into(),
            skus: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_skus), ["skus"]);

    let bad_merchant = client
        .upsert_merchant(Merchant {
            merchant_id: "m".into(),
            fifo_strategy: 9,
            fc_priority: vec!["fc1".into(), "fc1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&bad_merchant),
        ["fifo_strategy", "fc_priority[1]"]
    );
    let merchant = client
        .get_merchant(GetMerchantRequest {
            merchant_id: "m".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        merchant.fc_priority.is_empty(),
        "a refused upsert changed settings"
    );
}

#[tokio::test]
async fn unknown_orders_and_invalid_transitions() {
    let server = start().await;
    let mut client = server.client.clone();
    let not_found = client
        .cancel_order(CancelOrderRequest {
            merchant_id: "m".into(),
            order_id: "ghost".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(not_found.code(), Code::NotFound);

    let empty_id = client
        .hold_order(HoldOrderRequest {
            merchant_id: "m".into(),
            order_id: String::new(),
            reason: String::new(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty_id), ["order_id"]);

    set_stock(&mut client, "m", "a", "fc1", 0).await;
    allocate(&mut client, order("m", "waiting", &[("a", 1)])).await;
    let pick = client
        .mark_picked(MarkPickedRequest {
            merchant_id: "m".into(),
            order_id: "waiting".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(pick.code(), Code::FailedPrecondition);

    let bad_status = client
        .list_orders(ListOrdersRequest {
            merchant_id: "m".into(),
            status: Some(0),
            page_size: 5000,
            page_token: String::new(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_status), ["status", "page_size"]);
}

/// Sends a request message's bytes as they are, whatever they encode.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

struct RawDecoder;

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = bytes::Buf::copy_to_bytes(buf, bytes::Buf::remaining(buf));
        Ok(Some(bytes.to_vec()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// A generic gRPC client to the server at `address`, ready to send.
async fn raw_client(
    address: std::net::SocketAddr,
) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc
}

async fn send_raw(address: std::net::SocketAddr, method: &str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = raw_client(address).await;
    let path = format!("/allocation.v1.AllocationService/{method}");
    match grpc
        .unary(tonic::Request::new(body), path.parse().unwrap(), RawCodec)
        .await
    {
        Ok(_) => panic!("{method} accepted undecodable bytes"),
        Err(status) => status,
    }
}

#[tokio::test]
async fn undecodable_requests_get_invalid_argument_and_change_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 5).await;
    let valid = prost::Message::encode_to_vec(&AllocateRequest {
        order: Some(order("m", "o", &[("a", 2)])),
        as_of: None,
        ..Default::default()
    });
    // Every cut of a real request that breaks its framing, and bytes that
    // are no protobuf at all (a field of wire type 7 does not exist).
    let mut bodies: Vec<Vec<u8>> = (1..valid.len())
        .map(|cut| valid[..cut].to_vec())
        .filter(|cut| {
            prost::Message::decode(&cut[..])
                .map(|_: AllocateRequest| ())
                .is_err()
        })
        .collect();
    assert!(bodies.len() > 10);
    bodies.push(vec![0x0F, 0xFF, 0xFF]);
    bodies.push(vec![0xFF; 12]);
    for method in [
        "Allocate",
        "AllocateBatch",
        "SetInventory",
        "ShipOrder",
        "GetOrder",
    ] {
        for body in &bodies {
            let status = send_raw(server.address, method, body.clone()).await;
            assert_eq!(status.code(), Code::InvalidArgument, "{method}: {status:?}");
        }
    }
    assert!(!order_exists(&mut client, "o").await);
    assert_eq!(stock(&mut client).await, (5, 0));
}

/// An allocation stream answers the orders before an undecodable message,
/// then ends with INVALID_ARGUMENT and decides nothing after it.
#[tokio::test]
async fn an_undecodable_stream_message_ends_the_stream_with_invalid_argument() {
    let server = start().await;
    let mut client = server.client.clone();
    set_stock(&mut client, "m", "a", "fc1", 5).await;
    let message = |id: &str| {
        prost::Message::encode_to_vec(&AllocateStreamRequest {
            order: Some(order("m", id, &[("a", 1)])),
            ..Default::default()
        })
    };
    let messages = vec![message("first"), vec![0xFF; 12], message("o")];
    let mut results = raw_client(server.address)
        .await
        .streaming(
            tonic::Request::new(tokio_stream::iter(messages)),
            "/allocation.v1.AllocationService/AllocateStream"
                .parse()
                .unwrap(),
            RawCodec,
        )
        .await
        .expect("the stream opens")
        .into_inner();
    let first: AllocateResult =
        prost::Message::decode(&results.message().await.unwrap().unwrap()[..]).unwrap();
    assert!(
        matches!(first.outcome, Some(allocate_result::Outcome::State(ref s)) if s.order_id == "first")
    );
    let ended = results.message().await.expect_err("the stream ends");
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");
    assert!(
        !order_exists(&mut client, "o").await,
        "nothing after it is decided"
    );
    assert_eq!(stock(&mut client).await, (5, 1));
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_resource_exhausted() {
    let server = start_with(allocation::server::ServerOptions {
        message_bytes_max: 1024,
        ..Default::default()
    })
    .await;
    let mut client = server.client.clone();
    let mut big = order("m", "big", &[]);
    big.lines = (0..100)
        .map(|i| OrderLine {
            sku: format!("sku-{i:040}"),
            quantity: 1,
        })
        .collect();
    let status = client
        .allocate(AllocateRequest {
            order: Some(big),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}
