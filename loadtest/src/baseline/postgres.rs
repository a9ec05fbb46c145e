//! The PostgreSQL baseline: one row per (merchant, SKU, FC); one transaction
//! per order tries each FC in turn with a single conditional `UPDATE` over
//! all lines and keeps the first that reserved every line.

use allocation::grpc::proto::Order;
use tokio_postgres::{Client, NoTls, Statement};

use super::{units, Backend};
use crate::workload::Workload;

/// Attempts per order when PostgreSQL aborts it (deadlock, serialization).
const ATTEMPTS: usize = 5;

pub struct Postgres {
    client: Client,
    reserve: Statement,
}

impl Postgres {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("postgres connection: {error}");
            }
        });
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS stock (
                    merchant text NOT NULL, sku text NOT NULL, fc text NOT NULL,
                    on_hand bigint NOT NULL, reserved bigint NOT NULL,
                    PRIMARY KEY (merchant, sku, fc), CHECK (reserved <= on_hand))",
            )
            .await?;
        // Lines in SKU order, so concurrent orders lock rows in one order.
        let reserve = client
            .prepare(
                "UPDATE stock s SET reserved = s.reserved + l.quantity
                 FROM unnest($2::text[], $3::bigint[]) AS l(sku, quantity)
                 WHERE s.merchant = $1 AND s.fc = $4 AND s.sku = l.sku
                   AND s.on_hand - s.reserved >= l.quantity",
            )
            .await?;
        Ok(Self { client, reserve })
    }

    /// One order in one transaction: the units reserved, or 0.
    async fn reserve(&mut self, order: &Order, fcs: usize) -> Result<u64, tokio_postgres::Error> {
        let mut lines: Vec<(&str, i64)> = order
            .lines
            .iter()
            .map(|line| (line.sku.as_str(), i64::from(line.quantity)))
            .collect();
        lines.sort_unstable();
        let skus: Vec<&str> = lines.iter().map(|(sku, _)| *sku).collect();
        let quantities: Vec<i64> = lines.iter().map(|(_, q)| *q).collect();
        let mut transaction = self.client.transaction().await?;
        for fc in 0..fcs {
            let fc = crate::workload::fc_name(fc);
            let attempt = transaction.savepoint("fc").await?;
            let updated = attempt
                .execute(
                    &self.reserve,
                    &[&order.merchant_id, &skus, &quantities, &fc],
                )
                .await?;
            if updated as usize == lines.len() {
                attempt.commit().await?;
                transaction.commit().await?;
                return Ok(units(order));
            }
            attempt.rollback().await?;
        }
        transaction.commit().await?;
        Ok(0)
    }
}

impl Backend for Postgres {
    async fn stock(&mut self, workload: &Workload, units: u64) -> anyhow::Result<()> {
        for merchant in &workload.merchants {
            self.client
                .execute(
                    "INSERT INTO stock
                     SELECT $1, 'sku-' || s, 'fc-' || f, $2, 0
                     FROM generate_series(0, $3 - 1) s, generate_series(0, $4 - 1) f",
                    &[
                        merchant,
                        &(units as i64),
                        &(workload.skus as i32),
                        &(workload.fcs as i32),
                    ],
                )
                .await?;
        }
        Ok(())
    }

    async fn allocate(&mut self, orders: &[Order], fcs: usize) -> anyhow::Result<Vec<u64>> {
        let mut reserved = Vec::with_capacity(orders.len());
        for order in orders {
            let mut attempt = 0;
            loop {
                match self.reserve(order, fcs).await {
                    Ok(units) => break reserved.push(units),
                    Err(error) if attempt + 1 < ATTEMPTS && error.code().is_some() => attempt += 1,
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(reserved)
    }

    async fn audit(&mut self, workload: &Workload) -> anyhow::Result<(u64, u64, u64)> {
        let row = self
            .client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE reserved > on_hand), coalesce(sum(reserved), 0)::bigint
                 FROM stock WHERE merchant = ANY($1)",
                &[&workload.merchants],
            )
            .await?;
        let (cells, over, reserved): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        Ok((cells as u64, over as u64, reserved as u64))
    }
}
