//! Periodic background work owned by a guard: the reprocessing pass and
//! snapshots. The task stops when its guard is stopped or dropped, so
//! shutting the server down (or ending a test) stops it too.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs a blocking job every `interval` until stopped or dropped.
pub struct Periodic {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Periodic {
    /// The first run is one interval from now. The job runs on the blocking
    /// pool (it is CPU or disk work), never on the async workers; a run that
    /// overruns its interval delays the next one rather than piling up.
    pub fn spawn(
        name: &'static str,
        interval: Duration,
        job: impl Fn() + Send + Sync + Clone + 'static,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + interval;
            let mut ticker = tokio::time::interval_at(start, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {
                        if let Err(error) = tokio::task::spawn_blocking(job.clone()).await {
                            tracing::error!(%error, job = name, "background job failed");
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

    /// Stop the timer and wait for a run in progress to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CountChange, Engine, EngineConfig, InventoryChange};
    use crate::model::{FcId, OrderKey, OrderLine, OrderRequest, OrderStatus, Timestamp};

    fn stock(engine: &Engine, units: u64) {
        let change = InventoryChange {
            sku: "a".into(),
            fc: FcId::new("fc"),
            change: CountChange::Set(units),
        };
        engine
            .update_inventory(&"m".into(), &[change], Timestamp::default())
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_reprocess_pass_runs_every_interval_and_stops_with_its_guard() {
        let engine = Engine::new(EngineConfig::default());
        stock(&engine, 0);
        let request = OrderRequest::new(
            "m".into(),
            "o".into(),
            Timestamp::default(),
            vec![OrderLine {
                sku: "a".into(),
                quantity: 1,
            }],
        );
        let key: OrderKey = request.key();
        engine.allocate(request, Timestamp::default()).unwrap();
        stock(&engine, 1);

        let interval = Duration::from_secs(1800);
        let pass_engine = engine.clone();
        let reprocessor = Periodic::spawn("reprocess", interval, move || {
            pass_engine.reprocess(None, Timestamp::default());
        });
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
