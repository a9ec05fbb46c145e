//! Closest-FC routing over real gRPC (RULES §12): the network's FCs, the
//! merchant's strategy, the order's destination.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use in_process::*;

const M: &str = "m";

fn point(latitude: f64, longitude: f64) -> Option<GeoPoint> {
    Some(GeoPoint {
        latitude,
        longitude,
    })
}

const CHICAGO: (f64, f64) = (41.88, -87.63);
const DALLAS: (f64, f64) = (32.78, -96.80);
const NEWARK: (f64, f64) = (40.74, -74.17);
const NEW_YORK: (f64, f64) = (40.71, -74.01);

async fn fc(client: &mut Client, id: &str, (latitude, longitude): (f64, f64)) {
    client
        .upsert_fulfillment_center(FulfillmentCenter {
            fc_id: id.into(),
            name: format!("{id} warehouse"),
            location: point(latitude, longitude),
            daily_order_capacity: 0,
            orders_today: 0,
        })
        .await
        .unwrap();
}

async fn closest_merchant(client: &mut Client, fc_priority: &[&str], partial: bool) {
    client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            fc_priority: fc_priority.iter().map(|fc| fc.to_string()).collect(),
            partial_shipments: partial,
            routing_strategy: RoutingStrategy::Closest as i32,
            ..Default::default()
        })
        .await
        .unwrap();
}

fn to(order: Order, (latitude, longitude): (f64, f64)) -> Order {
    Order {
        ship_to: point(latitude, longitude),
        ..order
    }
}

/// The FCs an answer allocated from, in allocation order.
fn shipped_from(state: &OrderState) -> Vec<String> {
    let mut fcs: Vec<String> = Vec::new();
    for allocation in &state.allocations {
        if !fcs.contains(&allocation.fc_id) {
            fcs.push(allocation.fc_id.clone());
        }
    }
    fcs
}

#[tokio::test]
async fn the_nearest_filling_fc_wins_over_rank_and_rank_breaks_distance_ties() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "dallas", DALLAS).await;
    fc(&mut client, "newark", NEWARK).await;
    fc(&mut client, "newark-2", NEWARK).await;
    closest_merchant(&mut client, &["dallas", "newark-2", "newark"], false).await;
    for fc in ["dallas", "newark", "newark-2"] {
        set_stock(&mut client, M, "a", fc, 10).await;
    }

    let state = allocate(&mut client, to(order(M, "o1", &[("a", 1)]), NEW_YORK)).await;
    // newark and newark-2 are equally near; newark-2 ranks before newark.
    assert_eq!(shipped_from(&state), ["newark-2"]);
    let decision = state.decision.unwrap();
    assert_eq!(decision.strategy(), RoutingStrategy::Closest);
    let distances: Vec<(String, bool, u32)> = decision
        .fcs
        .iter()
        .map(|fc| {
            (
                fc.fc_id.clone(),
                fc.chosen,
                fc.distance_km.unwrap().round() as u32,
            )
        })
        .collect();
    // New York–Newark ~14 km, New York–Dallas ~2,200 km.
    assert_eq!(distances[0], ("newark-2".into(), true, 14));
    assert!(distances
        .iter()
        .any(|(fc, _, km)| fc == "dallas" && (2_150..2_250).contains(km)));

    // Without a destination the merchant's ranking decides.
    let state = allocate(&mut client, order(M, "o2", &[("a", 1)])).await;
    assert_eq!(shipped_from(&state), ["dallas"]);
    assert_eq!(state.decision.unwrap().strategy(), RoutingStrategy::Ranked);

    // A ranked merchant ignores the destination.
    client
        .upsert_merchant(Merchant {
            merchant_id: "ranked".into(),
            fc_priority: vec!["dallas".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    set_stock(&mut client, "ranked", "a", "dallas", 5).await;
    set_stock(&mut client, "ranked", "a", "newark", 5).await;
    let state = allocate(
        &mut client,
        to(order("ranked", "o3", &[("a", 1)]), NEW_YORK),
    )
    .await;
    assert_eq!(shipped_from(&state), ["dallas"]);
}

#[tokio::test]
async fn fcs_without_a_location_come_after_located_ones() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "dallas", DALLAS).await;
    // "nowhere" was never upserted: it has no location, and ranks first.
    closest_merchant(&mut client, &["nowhere", "dallas"], false).await;
    set_stock(&mut client, M, "a", "nowhere", 10).await;
    set_stock(&mut client, M, "a", "dallas", 10).await;
    let state = allocate(&mut client, to(order(M, "o", &[("a", 1)]), NEW_YORK)).await;
    assert_eq!(shipped_from(&state), ["dallas"]);
    let decision = state.decision.unwrap();
    let nowhere = decision
        .fcs
        .iter()
        .find(|fc| fc.fc_id == "nowhere")
        .unwrap();
    assert_eq!(nowhere.distance_km, None);
}

#[tokio::test]
async fn a_split_takes_the_fewest_fcs_then_the_least_total_distance() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "chicago", CHICAGO).await;
    fc(&mut client, "dallas", DALLAS).await;
    fc(&mut client, "newark", NEWARK).await;
    closest_merchant(&mut client, &["dallas", "chicago", "newark"], true).await;
    // a at Dallas or Newark, b only at Chicago: two FCs either way; Newark
    // is nearer New York than Dallas is.
    set_stock(&mut client, M, "a", "dallas", 2).await;
    set_stock(&mut client, M, "a", "newark", 2).await;
    set_stock(&mut client, M, "b", "chicago", 2).await;
    let state = allocate(
        &mut client,
        to(order(M, "o", &[("a", 2), ("b", 2)]), NEW_YORK),
    )
    .await;
    let mut used = shipped_from(&state);
    used.sort();
    assert_eq!(used, ["chicago", "newark"]);
    assert_eq!(state.decision.unwrap().rule(), DecisionRule::SplitFewestFcs);
}

#[tokio::test]
async fn the_network_is_listed_and_bad_locations_are_refused_changing_nothing() {
    let server = start().await;
    let mut client = server.client.clone();
    fc(&mut client, "dallas", DALLAS).await;
    let list = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            client
                .list_fulfillment_centers(ListFulfillmentCentersRequest::default())
                .await
                .unwrap()
                .into_inner()
                .fcs
        }
    };
    let before = list(&mut client).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].name, "dallas warehouse");

    for (location, field) in [
        (point(91.0, 0.0), "location.latitude"),
        (point(0.0, f64::NAN), "location.longitude"),
        (point(f64::INFINITY, 0.0), "location.latitude"),
    ] {
        let refused = client
            .upsert_fulfillment_center(FulfillmentCenter {
                fc_id: "dallas".into(),
                location,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&refused), [field]);
    }
    assert_eq!(list(&mut client).await, before, "nothing changed");

    let refused = client
        .allocate(AllocateRequest {
            order: Some(to(order(M, "o", &[("a", 1)]), (-90.5, 0.0))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["order.ship_to.latitude"]);
    let refused = client
        .upsert_merchant(Merchant {
            merchant_id: M.into(),
            routing_strategy: 9,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["routing_strategy"]);
}

#[tokio::test]
async fn the_network_and_destinations_survive_a_kill_and_route_the_next_pass() {
    let dir = std::env::temp_dir().join(format!("allocation-routing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = binary::Binary::start(&dir, &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();
    fc(&mut client, "dallas", DALLAS).await;
    closest_merchant(&mut client, &["dallas", "newark"], false).await;
    set_stock(&mut client, M, "a", "dallas", 0).await;
    let waiting = allocate(&mut client, to(order(M, "o", &[("a", 1)]), NEW_YORK)).await;
    assert_eq!(waiting.status(), OrderStatus::Exception);
    // Half of it in the snapshot, half in the journal after it.
    client.snapshot(SnapshotRequest {}).await.unwrap();
    fc(&mut client, "newark", NEWARK).await;
    drop(client);
    drop(server); // SIGKILL

    let server = binary::Binary::start(&dir, &[]).await;
    let mut client = Client::connect(server.url()).await.unwrap();
    let names: Vec<String> = client
        .list_fulfillment_centers(ListFulfillmentCentersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .fcs
        .into_iter()
        .map(|fc| fc.fc_id)
        .collect();
    assert_eq!(names, ["dallas", "newark"]);
    set_stock(&mut client, M, "a", "dallas", 5).await;
    set_stock(&mut client, M, "a", "newark", 5).await;
    client
        .reprocess(ReprocessRequest {
            merchant_id: M.into(),
            as_of: None,
        })
        .await
        .unwrap();
    let state = get_order(&mut client, M, "o").await.unwrap();
    assert_eq!(
        shipped_from(&state),
        ["newark"],
        "routed by the stored ship_to"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
