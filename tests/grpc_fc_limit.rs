//! FC names are interned for the life of the process, up to `FC_IDS_MAX`.
//! Past that, a request naming a new FC is refused with INVALID_ARGUMENT on
//! that field and changes nothing, while known FCs keep working. Its own test
//! binary: filling the process-wide table would disturb any test beside it.

#[path = "support/in_process.rs"]
mod in_process;

use allocation::grpc::proto::*;
use allocation::model::{FcId, FC_IDS_MAX};
use in_process::*;

async fn inventory(client: &mut Client) -> InventoryView {
    client
        .get_inventory(GetInventoryRequest {
            merchant_id: "m".into(),
            sku: "a".into(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_new_fc_beyond_the_interning_limit_is_refused_and_known_ones_still_work() {
    let mut server = start().await;
    let client = &mut server.client;
    set_stock(client, "m", "a", "fc1", 5).await;

    // Fill the table: every name up to the limit is accepted.
    let mut filled = 0;
    while FcId::intern(&format!("filler-{filled}")).is_ok() {
        filled += 1;
    }
    assert!(filled < FC_IDS_MAX, "fc1 and the fillers share the table");

    let refused = client
        .adjust_inventory(AdjustInventoryRequest {
            merchant_id: "m".into(),
            deltas: vec![
                InventoryDelta {
                    sku: "a".into(),
                    fc_id: "fc1".into(),
                    delta: 1,
                },
                InventoryDelta {
                    sku: "a".into(),
                    fc_id: "one-fc-too-many".into(),
                    delta: 1,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["deltas[1].fc_id"]);

    let before = inventory(client).await;
    assert_eq!(before.fcs.len(), 1, "the refused request added a row");
    assert_eq!(
        before.fcs[0].on_hand, 5,
        "the refused request changed a count"
    );

    set_stock(client, "m", "a", "fc1", 7).await;
    assert_eq!(inventory(client).await.fcs[0].on_hand, 7);
}
