//! The tonic service: each handler converts its request (validating it),
//! calls the engine, and converts the answer. No rule lives here.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::Engine;
use crate::error::Error;
use crate::storage::Store;
use crate::telemetry::{metered, metered_stream, MeteredStream, Telemetry};

use super::feed::EventFeed;
use super::proto::allocation_service_server::AllocationService;
use super::proto::*;
use super::status::to_rpc_status;
use super::{convert, decision, shipping, stream};

pub struct Service {
    engine: Engine,
    /// The journal and snapshots, set once the data directory is
    /// recovered; never set for a server that keeps no data directory.
    store: Arc<OnceLock<Arc<Store>>>,
    /// The change feed `WatchEvents` subscribes to.
    feed: Arc<EventFeed>,
    /// Turns true when the server starts shutting down, ending allocation
    /// streams.
    closing: watch::Receiver<bool>,
}

impl Service {
    pub fn new(
        engine: Engine,
        store: Arc<OnceLock<Arc<Store>>>,
        feed: Arc<EventFeed>,
        closing: watch::Receiver<bool>,
    ) -> Self {
        Self {
            engine,
            store,
            feed,
            closing,
        }
    }

    /// A shipment as it reads at `as_of`, claim eligibility included.
    fn shipment(
        &self,
        order: &crate::model::Order,
        index: usize,
        as_of: crate::model::Timestamp,
    ) -> Shipment {
        let stalled_after = self.engine.stalled_after_business_days();
        shipping::shipment_to_proto(order, index, as_of, Some(stalled_after))
    }

    /// Wait until every change made so far, this request's included, is
    /// durable: nothing is acknowledged before it is in the journal.
    async fn durable(&self) -> Result<(), Status> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let journal = store.journal();
        journal
            .wait_durable(journal.appended_next())
            .await
            .map_err(|error| Error::Unavailable(error.to_string()).into())
    }

    /// The shape every order transition shares: validate the order's key
    /// and `as_of`, change the order, wait until the change is durable,
    /// answer the order's state.
    async fn transition(
        &self,
        merchant_id: &str,
        order_id: &str,
        as_of: Option<prost_types::Timestamp>,
        change: impl FnOnce(&Engine, &crate::model::OrderKey) -> Result<crate::model::Order, Error>,
    ) -> Result<Response<OrderState>, Status> {
        let key = convert::order_key(merchant_id, order_id)?;
        let as_of = convert::as_of(as_of)?;
        let order = change(&self.engine, &key)?;
        self.durable().await?;
        Ok(Response::new(convert::order_to_proto(&order, as_of)))
    }

    /// Run work that may take long (a batch, a scan) on the blocking pool,
    /// so it never stalls the async workers. The work runs to completion
    /// even if the caller goes away, so a change is never half-applied.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Engine) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Status> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || work(engine)).await {
            Ok(result) => result.map_err(Status::from),
            Err(join) => Err(Error::Internal(format!("request task failed: {join}")).into()),
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<OrderEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AllocationService for Service {
    async fn upsert_merchant(
        &self,
        request: Request<Merchant>,
    ) -> Result<Response<Merchant>, Status> {
        metered("UpsertMerchant", async move {
            let merchant = convert::merchant(request.into_inner())?;
            let merchant = self.engine.upsert_merchant(merchant);
            self.durable().await?;
            Ok(Response::new(convert::merchant_to_proto(&merchant)))
        })
        .await
    }

    async fn get_merchant(
        &self,
        request: Request<GetMerchantRequest>,
    ) -> Result<Response<Merchant>, Status> {
        metered("GetMerchant", async move {
            let GetMerchantRequest { merchant_id } = request.into_inner();
            let merchant_id = convert::merchant_id(&merchant_id)?;
            let merchant = self.engine.merchant(&merchant_id);
            Ok(Response::new(convert::merchant_to_proto(&merchant)))
        })
        .await
    }

    async fn register_skus(
        &self,
        request: Request<RegisterSkusRequest>,
    ) -> Result<Response<RegisterSkusResponse>, Status> {
        metered("RegisterSkus", async move {
            let (merchant, skus) = convert::register_skus(request.into_inner())?;
            let (registered, updated) = self.engine.register_skus(&merchant, &skus);
            self.durable().await?;
            Ok(Response::new(RegisterSkusResponse {
                registered,
                updated,
            }))
        })
        .await
    }

    async fn set_inventory(
        &self,
        request: Request<SetInventoryRequest>,
    ) -> Result<Response<InventoryResponse>, Status> {
        metered("SetInventory", async move {
            let now = convert::as_of(request.get_ref().as_of)?;
            let (merchant, changes) = convert::set_inventory(request.into_inner())?;
            let outcome = self
                .blocking(move |engine| engine.update_inventory(&merchant, &changes, now))
                .await?;
            self.durable().await?;
            Ok(Response::new(inventory_response(outcome)))
        })
        .await
    }

    async fn adjust_inventory(
        &self,
        request: Request<AdjustInventoryRequest>,
    ) -> Result<Response<InventoryResponse>, Status> {
        metered("AdjustInventory", async move {
            let now = convert::as_of(request.get_ref().as_of)?;
            let (merchant, changes) = convert::adjust_inventory(request.into_inner())?;
            let outcome = self
                .blocking(move |engine| engine.update_inventory(&merchant, &changes, now))
                .await?;
            self.durable().await?;
            Ok(Response::new(inventory_response(outcome)))
        })
        .await
    }

    async fn set_safety_stock(
        &self,
        request: Request<SetSafetyStockRequest>,
    ) -> Result<Response<InventoryResponse>, Status> {
        metered("SetSafetyStock", async move {
            let now = convert::as_of(request.get_ref().as_of)?;
            let (merchant, levels) = convert::set_safety_stock(request.into_inner())?;
            let outcome = self
                .blocking(move |engine| engine.set_safety_stock(&merchant, &levels, now))
                .await?;
            self.durable().await?;
            Ok(Response::new(inventory_response(outcome)))
        })
        .await
    }

    async fn get_inventory(
        &self,
        request: Request<GetInventoryRequest>,
    ) -> Result<Response<InventoryView>, Status> {
        metered("GetInventory", async move {
            let GetInventoryRequest { merchant_id, sku } = request.into_inner();
            let (merchant, sku) = convert::sku_of(&merchant_id, &sku)?;
            let view = self.engine.inventory(&merchant, &sku)?;
            Ok(Response::new(convert::inventory_view_to_proto(&view)))
        })
        .await
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        metered("Allocate", async move {
            let AllocateRequest {
                order,
                as_of,
                dry_run,
                view,
            } = request.into_inner();
            let now = convert::as_of(as_of)?;
            let view = convert::order_view(view)?;
            let Some(order) = order else {
                return Err(Error::invalid("order", "is required").into());
            };
            let request = convert::order_request(order, &"order")?;
            let imported = allocate_one(&self.engine, request, now, dry_run, view)?;
            if !dry_run {
                self.durable().await?;
            }
            let mut orders = vec![answer(&imported, 0, now, view)];
            orders.extend((1..=imported.children.len()).map(|i| answer(&imported, i, now, view)));
            Ok(Response::new(AllocateResponse { orders }))
        })
        .await
    }

    async fn allocate_batch(
        &self,
        request: Request<AllocateBatchRequest>,
    ) -> Result<Response<AllocateBatchResponse>, Status> {
        metered("AllocateBatch", async move {
            let AllocateBatchRequest {
                orders,
                as_of,
                dry_run,
                view,
            } = request.into_inner();
            let now = convert::as_of(as_of)?;
            let view = convert::order_view(view)?;
            convert::batch_size(orders.len())?;
            let results = self
                .blocking(move |engine| {
                    let results = orders
                        .into_iter()
                        .enumerate()
                        .map(|(i, order)| {
                            allocate_result(
                                convert::order_request(order, &format_args!("orders[{i}]"))
                                    .and_then(|request| {
                                        allocate_one(&engine, request, now, dry_run, view)
                                    })
                                    .map(|imported| (imported, now, view)),
                            )
                        })
                        .collect();
                    Ok(results)
                })
                .await?;
            if !dry_run {
                self.durable().await?;
            }
            Ok(Response::new(AllocateBatchResponse { results }))
        })
        .await
    }

    type AllocateStreamStream = MeteredStream<stream::ResultStream>;

    async fn allocate_stream(
        &self,
        request: Request<Streaming<AllocateStreamRequest>>,
    ) -> Result<Response<Self::AllocateStreamStream>, Status> {
        metered_stream("AllocateStream", async move {
            let journal = self.store.get().map(|store| Arc::clone(store.journal()));
            Ok(Response::new(stream::open(
                self.engine.clone(),
                journal,
                self.closing.clone(),
                request.into_inner(),
            )))
        })
        .await
    }

    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("GetOrder", async move {
            let GetOrderRequest {
                merchant_id,
                order_id,
                as_of,
            } = request.into_inner();
            let key = convert::order_key(&merchant_id, &order_id)?;
            let as_of = convert::as_of(as_of)?;
            let order = self.engine.order(&key)?;
            Ok(Response::new(convert::order_to_proto(&order, as_of)))
        })
        .await
    }

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<ListOrdersResponse>, Status> {
        metered("ListOrders", async move {
            let ListOrdersRequest {
                merchant_id,
                status,
                page_size,
                page_token,
                as_of,
            } = request.into_inner();
            let merchant = convert::merchant_id(&merchant_id)?;
            let (status, page_size, after) = convert::list_orders(status, page_size, &page_token)?;
            let as_of = convert::as_of(as_of)?;
            let page = self
                .blocking(move |engine| {
                    let status = status.map(|status| (status, as_of));
                    Ok(engine.list_orders(&merchant, status, page_size, after.as_ref()))
                })
                .await?;
            Ok(Response::new(ListOrdersResponse {
                orders: page
                    .orders
                    .iter()
                    .map(|order| convert::order_to_proto(order, as_of))
                    .collect(),
                next_page_token: page
                    .next
                    .as_ref()
                    .map(convert::encode_cursor)
                    .unwrap_or_default(),
            }))
        })
        .await
    }

    async fn hold_order(
        &self,
        request: Request<HoldOrderRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("HoldOrder", async move {
            let HoldOrderRequest {
                merchant_id,
                order_id,
                reason,
                as_of,
            } = request.into_inner();
            let reason = convert::hold_reason(&reason)?;
            self.transition(&merchant_id, &order_id, as_of, |engine, key| {
                engine.hold(key, reason)
            })
            .await
        })
        .await
    }

    async fn release_order(
        &self,
        request: Request<ReleaseOrderRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("ReleaseOrder", async move {
            let ReleaseOrderRequest {
                merchant_id,
                order_id,
                as_of,
            } = request.into_inner();
            // The release decides at `as_of` (daily FC capacity counts it).
            let now = convert::as_of(as_of)?;
            self.transition(&merchant_id, &order_id, as_of, |engine, key| {
                engine.release(key, now)
            })
            .await
        })
        .await
    }

    async fn cancel_order(
        &self,
        request: Request<CancelOrderRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("CancelOrder", async move {
            let CancelOrderRequest {
                merchant_id,
                order_id,
                as_of,
            } = request.into_inner();
            self.transition(&merchant_id, &order_id, as_of, Engine::cancel)
                .await
        })
        .await
    }

    async fn mark_picked(
        &self,
        request: Request<MarkPickedRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("MarkPicked", async move {
            let MarkPickedRequest {
                merchant_id,
                order_id,
                as_of,
            } = request.into_inner();
            self.transition(&merchant_id, &order_id, as_of, Engine::mark_picked)
                .await
        })
        .await
    }

    async fn ship_order(
        &self,
        request: Request<ShipOrderRequest>,
    ) -> Result<Response<OrderState>, Status> {
        metered("ShipOrder", async move {
            let request = shipping::ship_request(request.into_inner())?;
            let as_of = request.at;
            let order = self.engine.ship(request)?;
            self.durable().await?;
            Ok(Response::new(convert::order_to_proto(&order, as_of)))
        })
        .await
    }

    async fn record_tracking_event(
        &self,
        request: Request<RecordTrackingEventRequest>,
    ) -> Result<Response<Shipment>, Status> {
        metered("RecordTrackingEvent", async move {
            let (scan, as_of) = shipping::tracking_scan(request.into_inner())?;
            let (order, index) = self.engine.record_tracking(scan)?;
            self.durable().await?;
            Ok(Response::new(self.shipment(&order, index, as_of)))
        })
        .await
    }

    async fn get_shipment(
        &self,
        request: Request<GetShipmentRequest>,
    ) -> Result<Response<Shipment>, Status> {
        metered("GetShipment", async move {
            let (tracking_number, as_of) = shipping::shipment_query(request.into_inner())?;
            let (order, index) = self.engine.shipment(&tracking_number)?;
            Ok(Response::new(self.shipment(&order, index, as_of)))
        })
        .await
    }

    async fn reprocess(
        &self,
        request: Request<ReprocessRequest>,
    ) -> Result<Response<ReprocessResponse>, Status> {
        metered("Reprocess", async move {
            let ReprocessRequest { merchant_id, as_of } = request.into_inner();
            let merchant = match merchant_id.as_str() {
                "" => None,
                id => Some(convert::merchant_id(id)?),
            };
            let now = convert::as_of(as_of)?;
            let started = std::time::Instant::now();
            let counts = self
                .blocking(move |engine| Ok(engine.reprocess(merchant.as_ref(), now)))
                .await?;
            crate::telemetry::pass("reprocess", counts, started.elapsed());
            self.durable().await?;
            Ok(Response::new(ReprocessResponse {
                examined: saturate(counts.examined),
                allocated: saturate(counts.allocated),
                partially_allocated: saturate(counts.partially_allocated),
                still_in_exception: saturate(counts.still_in_exception),
                duration: Some(convert::duration_to_proto(started.elapsed())),
            }))
        })
        .await
    }

    async fn fifo_release(
        &self,
        request: Request<FifoReleaseRequest>,
    ) -> Result<Response<FifoReleaseResponse>, Status> {
        metered("FifoRelease", async move {
            let (merchant, skus, now) = convert::fifo_release(request.into_inner())?;
            let started = std::time::Instant::now();
            let outcome = self
                .blocking(move |engine| engine.fifo_release(&merchant, &skus, now))
                .await?;
            crate::telemetry::pass("fifo", outcome.counts, started.elapsed());
            self.durable().await?;
            Ok(Response::new(FifoReleaseResponse {
                released_order_ids: ids(&outcome.released),
                preempted_order_ids: ids(&outcome.preempted),
            }))
        })
        .await
    }

    async fn upsert_fulfillment_center(
        &self,
        request: Request<FulfillmentCenter>,
    ) -> Result<Response<FulfillmentCenter>, Status> {
        metered("UpsertFulfillmentCenter", async move {
            let fc = convert::fulfillment_center(request.into_inner())?;
            let fc = self.engine.upsert_fulfillment_center(fc);
            let taken = self
                .engine
                .orders_today(fc.fc, crate::model::Timestamp::now());
            self.durable().await?;
            Ok(Response::new(convert::fulfillment_center_to_proto(
                &fc, taken,
            )))
        })
        .await
    }

    async fn list_fulfillment_centers(
        &self,
        request: Request<ListFulfillmentCentersRequest>,
    ) -> Result<Response<ListFulfillmentCentersResponse>, Status> {
        metered("ListFulfillmentCenters", async move {
            let ListFulfillmentCentersRequest { as_of } = request.into_inner();
            let as_of = convert::as_of(as_of)?;
            let fcs = self.engine.fulfillment_centers();
            Ok(Response::new(ListFulfillmentCentersResponse {
                fcs: fcs
                    .iter()
                    .map(|fc| {
                        let taken = self.engine.orders_today(fc.fc, as_of);
                        convert::fulfillment_center_to_proto(fc, taken)
                    })
                    .collect(),
            }))
        })
        .await
    }

    async fn explain_order(
        &self,
        request: Request<ExplainOrderRequest>,
    ) -> Result<Response<Explanation>, Status> {
        metered("ExplainOrder", async move {
            let ExplainOrderRequest {
                merchant_id,
                order_id,
                as_of,
            } = request.into_inner();
            let key = convert::order_key(&merchant_id, &order_id)?;
            let as_of = convert::as_of(as_of)?;
            let explanation = self.engine.explain_order(&key, as_of)?;
            Ok(Response::new(decision::explanation_to_proto(
                &explanation,
                as_of,
            )))
        })
        .await
    }

    async fn simulate_settings(
        &self,
        request: Request<SimulateSettingsRequest>,
    ) -> Result<Response<SimulationResult>, Status> {
        metered("SimulateSettings", async move {
            let (proposed, as_of, orders_max) = convert::simulate_settings(request.into_inner())?;
            let simulation = self
                .blocking(move |engine| Ok(engine.simulate_settings(&proposed, orders_max, as_of)))
                .await?;
            Ok(Response::new(decision::simulation_to_proto(
                &simulation,
                as_of,
            )))
        })
        .await
    }

    type WatchEventsStream = MeteredStream<EventStream>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        metered_stream("WatchEvents", async move {
            let WatchEventsRequest {
                merchant_id,
                after_sequence,
            } = request.into_inner();
            let merchant = match merchant_id.as_str() {
                "" => None,
                id => Some(convert::merchant_id(id)?),
            };
            let store = self.store.get().cloned();
            if let Some(after) = after_sequence {
                let check_store = store.clone();
                self.blocking(move |_| EventFeed::check_resumable(check_store.as_deref(), after))
                    .await?;
            }
            let stream: EventStream =
                Box::pin(self.feed.subscribe(merchant, after_sequence, store));
            Ok(Response::new(stream))
        })
        .await
    }

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        metered("Snapshot", async move {
            let Some(store) = self.store.get().cloned() else {
                return Err(Error::FailedPrecondition(
                    "this server keeps no data directory".into(),
                )
                .into());
            };
            let info = self
                .blocking(move |engine| {
                    store
                        .snapshot(&engine)
                        .map_err(|error| Error::Unavailable(format!("snapshot failed: {error}")))
                })
                .await?;
            Ok(Response::new(SnapshotResponse {
                path: info.path.display().to_string(),
                bytes: info.bytes,
                duration: Some(convert::duration_to_proto(info.duration)),
            }))
        })
        .await
    }
}

/// Allocate one order, or with `dry_run` answer what it would get; the
/// full view asks for the candidate FCs of each decision.
pub(super) fn allocate_one(
    engine: &Engine,
    request: crate::model::OrderRequest,
    now: crate::model::Timestamp,
    dry_run: bool,
    view: OrderView,
) -> Result<crate::engine::Imported, Error> {
    if dry_run {
        return engine.dry_run(request, now);
    }
    let imported = engine.allocate_assessed(request, now, view == OrderView::Full)?;
    for order in std::iter::once(&imported.order).chain(&imported.children) {
        Telemetry::get().outcome(order.status);
    }
    Ok(imported)
}

/// One order's result in a batch or a stream: its state and its children's,
/// or why it was refused.
pub(super) fn allocate_result(
    decided: Result<(crate::engine::Imported, crate::model::Timestamp, OrderView), Error>,
) -> AllocateResult {
    match decided {
        Ok((imported, now, view)) => AllocateResult {
            outcome: Some(allocate_result::Outcome::State(answer(
                &imported, 0, now, view,
            ))),
            children: (1..=imported.children.len())
                .map(|i| answer(&imported, i, now, view))
                .collect(),
        },
        Err(error) => AllocateResult {
            outcome: Some(allocate_result::Outcome::Error(to_rpc_status(
                &error.into(),
            ))),
            children: Vec::new(),
        },
    }
}

/// The answer for order `index` of an import: 0 the order, then each child.
fn answer(
    imported: &crate::engine::Imported,
    index: usize,
    now: crate::model::Timestamp,
    view: OrderView,
) -> OrderState {
    let order = match index {
        0 => &imported.order,
        i => &imported.children[i - 1],
    };
    convert::decided_to_proto(order, imported.considered.get(index), now, view)
}

fn inventory_response(outcome: crate::engine::InventoryOutcome) -> InventoryResponse {
    let fifo = outcome.fifo.unwrap_or_default();
    InventoryResponse {
        views: outcome
            .views
            .iter()
            .map(convert::inventory_view_to_proto)
            .collect(),
        shortage_order_ids: ids(&outcome.shortage_orders),
        fifo_released_order_ids: ids(&fifo.released),
        fifo_preempted_order_ids: ids(&fifo.preempted),
    }
}

fn ids(ids: &[crate::model::OrderId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// Counts in responses are 32-bit; a pass over more than 4 billion orders
/// reports the maximum rather than wrapping.
fn saturate(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}
