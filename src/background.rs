//! Background work owned by a guard: the periodic reprocessing pass. The
//! task stops when its guard is dropped, so shutting the server down (or
//! ending a test) stops it too.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::engine::Engine;

/// Runs `Engine::reprocess` every `interval` until dropped.
pub struct Reprocessor {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Reprocessor {
    /// The first pass runs one interval from now.
    pub fn spawn(engine: Engine, interval: Duration) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut ticker = tokio::time::interval_at(start, interval);
            // A pass that overruns its interval delays the next one rather
            // than triggering a burst of catch-up passes.
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {
                        let engine = engine.clone();
                        let started = std::time::Instant::now();
                        // The pass is CPU work on rayon: keep it off the async workers.
                        match tokio::task::spawn_blocking(move || engine.reprocess(None)).await {
                            Ok(counts) => tracing::info!(
                                examined = counts.examined,
                                allocated = counts.allocated,
                                partially_allocated = counts.partially_allocated,
                                still_in_exception = counts.still_in_exception,
                                seconds = started.elapsed().as_secs_f64(),
                                "reprocess pass"
                            ),
                            Err(error) => tracing::error!(%error, "reprocess pass failed"),
                        }
                    }
                }
            }
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Stop the timer and wait for a pass in progress to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Reprocessor {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CountChange, EngineConfig, InventoryChange};
    use crate::model::{
        Channel, MarketplaceStatus, OrderKey, OrderLine, OrderRequest, OrderStatus, Timestamp,
    };

    fn stock(engine: &Engine, units: u64) {
        let change = InventoryChange {
            sku: "a".into(),
            fc: "fc".into(),
            change: CountChange::Set(units),
        };
        engine.update_inventory(&"m".into(), &[change]).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_pass_runs_every_interval_and_stops_with_its_guard() {
        let engine = Engine::new(EngineConfig::default());
        stock(&engine, 0);
        let request = OrderRequest {
            merchant_id: "m".into(),
            order_id: "o".into(),
            purchase_time: Timestamp::default(),
            lines: vec![OrderLine {
                sku: "a".into(),
                quantity: 1,
            }],
            assigned_fc: None,
            partial_shipments: None,
            channel: Channel::Direct,
            marketplace_status: MarketplaceStatus::Ready,
            hold_reason: None,
        };
        let key: OrderKey = request.key();
        engine.allocate(request, Timestamp::default()).unwrap();
        stock(&engine, 1);

        let interval = Duration::from_secs(1800);
        let reprocessor = Reprocessor::spawn(engine.clone(), interval);
        tokio::time::sleep(interval - Duration::from_secs(1)).await;
        assert_eq!(
            engine.order(&key).unwrap().status,
            OrderStatus::Exception,
            "too early"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The pass runs on a blocking thread: give it real time to finish.
        for _ in 0..1000 {
            if engine.order(&key).unwrap().status == OrderStatus::Processing {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(engine.order(&key).unwrap().status, OrderStatus::Processing);
        reprocessor.stop().await;
    }
}
