//! The check after every restart, through the service's own read RPCs:
//! every acknowledged order is there in its acknowledged state or a legal
//! later one, no SKU at any FC is over-reserved, the ledger's reservations
//! are the orders' allocations, and units are conserved.

use std::collections::HashMap;

use allocation::grpc::proto::allocation_service_client::AllocationServiceClient;
use allocation::grpc::proto::*;
use tonic::transport::Channel;

use super::orders;
use super::told::{Bounds, Cell, Told};

/// What the service showed after a restart, to compare with `inspect`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub orders: u64,
    pub on_hand: u64,
    pub reserved: u64,
}

/// Every order of merchant `m`, oldest first, page by page.
async fn all_orders(client: &mut AllocationServiceClient<Channel>) -> Vec<OrderState> {
    let mut orders = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_orders(ListOrdersRequest {
                merchant_id: "m".into(),
                status: None,
                page_size: 1000,
                page_token,
                as_of: None,
            })
            .await
            .expect("list orders")
            .into_inner();
        orders.extend(page.orders);
        if page.next_page_token.is_empty() {
            return orders;
        }
        page_token = page.next_page_token;
    }
}

/// Check everything, then rebase `told` on what the service showed: it
/// passed, and from here on it is what later rounds build on.
pub async fn verify(
    client: &mut AllocationServiceClient<Channel>,
    told: &mut Told,
    skus: &[String],
    round: usize,
) -> Totals {
    let listed = all_orders(client).await;
    let by_id: HashMap<&str, &OrderState> =
        listed.iter().map(|o| (o.order_id.as_str(), o)).collect();
    assert_eq!(
        by_id.len(),
        listed.len(),
        "round {round}: an order listed twice"
    );

    for state in &listed {
        let id = &state.order_id;
        orders::consistent(state)
            .unwrap_or_else(|why| panic!("round {round}: order {id} is inconsistent: {why}"));
        let acked = told.orders.get(id);
        orders::scans(state, acked, &told.scans_sent, &told.scans_acked)
            .unwrap_or_else(|why| panic!("round {round}: order {id}: {why}"));
    }
    for (id, acked) in &told.orders {
        let Some(now) = by_id.get(id.as_str()) else {
            panic!("round {round}: acknowledged order {id} lost");
        };
        orders::successor(acked, now, told.uncertain.contains(id)).unwrap_or_else(|why| {
            panic!("round {round}: order {id} is not its acknowledged state or a later one: {why}")
        });
    }
    // The single-order read agrees with the listing (a sample of them).
    for state in listed.iter().step_by(listed.len() / 25 + 1) {
        let read = client
            .get_order(GetOrderRequest {
                merchant_id: "m".into(),
                order_id: state.order_id.clone(),
                as_of: None,
            })
            .await
            .expect("an order just listed")
            .into_inner();
        assert_eq!(
            read, *state,
            "round {round}: GetOrder and ListOrders disagree"
        );
    }

    let mut held: HashMap<Cell, (u64, u64)> = HashMap::new();
    let mut shipped: HashMap<Cell, u64> = HashMap::new();
    for state in &listed {
        for a in &state.allocations {
            let entry = held.entry((a.sku.clone(), a.fc_id.clone())).or_default();
            entry.0 += u64::from(a.quantity);
            if state.picked {
                entry.1 += u64::from(a.quantity);
            }
        }
        for item in state.shipments.iter().flat_map(|s| &s.items) {
            *shipped
                .entry((item.sku.clone(), item.fc_id.clone()))
                .or_default() += u64::from(item.quantity);
        }
    }

    let mut totals = Totals {
        orders: listed.len() as u64,
        ..Totals::default()
    };
    for sku in skus {
        let view = client
            .get_inventory(GetInventoryRequest {
                merchant_id: "m".into(),
                sku: sku.clone(),
            })
            .await
            .expect("every SKU has stock rows")
            .into_inner();
        for row in &view.fcs {
            let cell = (sku.clone(), row.fc_id.clone());
            assert!(
                row.picked <= row.reserved && row.reserved <= row.on_hand,
                "round {round}: {cell:?} over-reserved: {row:?}"
            );
            assert_eq!(row.available, row.on_hand - row.reserved, "{cell:?}");
            let (reserved, picked) = held.remove(&cell).unwrap_or_default();
            assert_eq!(
                (row.reserved, row.picked),
                (reserved, picked),
                "round {round}: {cell:?} ledger reserved/picked disagree with the orders' allocations"
            );
            let accounted = (row.on_hand + shipped.get(&cell).copied().unwrap_or(0)) as i64;
            let bounds = told.cells[&cell];
            assert!(
                bounds.low <= accounted && accounted <= bounds.high,
                "round {round}: {cell:?} on hand {} + shipped {} = {accounted} units, \
                 but acknowledged receipts, losses and counts give {bounds:?}",
                row.on_hand,
                accounted - row.on_hand as i64
            );
            told.cells.insert(cell, Bounds::exactly(accounted));
            totals.on_hand += row.on_hand;
            totals.reserved += row.reserved;
        }
    }
    assert!(
        held.is_empty(),
        "round {round}: orders hold units with no stock row: {held:?}"
    );

    told.orders = listed
        .into_iter()
        .map(|state| (state.order_id.clone(), state))
        .collect();
    told.uncertain.clear();
    totals
}
