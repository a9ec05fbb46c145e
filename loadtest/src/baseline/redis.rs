//! The Redis baseline: one hash per (merchant, SKU) with fields `fc-N`
//! (on hand) and `r:fc-N` (reserved); a Lua script reserves a whole order at
//! the first FC that can fill it. Batches are pipelined.

use allocation::grpc::proto::Order;

use super::resp::{Connection, Reply};
use super::{units, Backend};
use crate::workload::{fc_name, sku_name, Workload};

/// KEYS: one stock hash per line. ARGV[1]: FC count; ARGV[2..]: quantities.
/// Returns the FC index used, or -1.
const RESERVE: &str = r"
local fcs = tonumber(ARGV[1])
for f = 0, fcs - 1 do
  local fc = 'fc-' .. f
  local fits = true
  for i, key in ipairs(KEYS) do
    local on_hand = tonumber(redis.call('HGET', key, fc) or '0')
    local reserved = tonumber(redis.call('HGET', key, 'r:' .. fc) or '0')
    if on_hand - reserved < tonumber(ARGV[i + 1]) then
      fits = false
      break
    end
  end
  if fits then
    for i, key in ipairs(KEYS) do
      redis.call('HINCRBY', key, 'r:' .. fc, ARGV[i + 1])
    end
    return f
  end
end
return -1
";

/// Commands per pipelined round trip while stocking and auditing.
const SETUP_PIPELINE: usize = 1_000;

pub struct Redis {
    connection: Connection,
    script: String,
}

fn key(merchant: &str, sku: &str) -> String {
    format!("{merchant}:{sku}")
}

impl Redis {
    pub async fn connect(address: &str) -> anyhow::Result<Self> {
        let mut connection = Connection::connect(address).await?;
        let script = match connection.call(&["SCRIPT", "LOAD", RESERVE]).await? {
            Reply::Bulk(Some(sha)) => String::from_utf8(sha)?,
            other => anyhow::bail!("SCRIPT LOAD answered {other:?}"),
        };
        Ok(Self { connection, script })
    }
}

impl Backend for Redis {
    async fn stock(&mut self, workload: &Workload, units: u64) -> anyhow::Result<()> {
        let mut queued = 0;
        for merchant in &workload.merchants {
            for sku in 0..workload.skus {
                let mut command = vec!["HSET".to_string(), key(merchant, &sku_name(sku))];
                for fc in 0..workload.fcs {
                    command.extend([fc_name(fc), units.to_string()]);
                    command.extend([format!("r:{}", fc_name(fc)), "0".into()]);
                }
                self.connection.queue(&command);
                queued += 1;
                if queued == SETUP_PIPELINE {
                    self.connection.flush(queued).await?;
                    queued = 0;
                }
            }
        }
        self.connection.flush(queued).await?;
        Ok(())
    }

    async fn allocate(&mut self, orders: &[Order], fcs: usize) -> anyhow::Result<Vec<u64>> {
        for order in orders {
            let mut command = vec![
                "EVALSHA".to_string(),
                self.script.clone(),
                order.lines.len().to_string(),
            ];
            command.extend(
                order
                    .lines
                    .iter()
                    .map(|line| key(&order.merchant_id, &line.sku)),
            );
            command.push(fcs.to_string());
            command.extend(order.lines.iter().map(|line| line.quantity.to_string()));
            self.connection.queue(&command);
        }
        let replies = self.connection.flush(orders.len()).await?;
        Ok(orders
            .iter()
            .zip(replies)
            .map(|(order, reply)| match reply {
                Reply::Integer(fc) if fc >= 0 => units(order),
                _ => 0,
            })
            .collect())
    }

    async fn audit(&mut self, workload: &Workload) -> anyhow::Result<(u64, u64, u64)> {
        let (mut cells, mut over, mut reserved) = (0, 0, 0);
        let keys: Vec<String> = workload
            .merchants
            .iter()
            .flat_map(|m| (0..workload.skus).map(move |sku| key(m, &sku_name(sku))))
            .collect();
        for chunk in keys.chunks(SETUP_PIPELINE) {
            for key in chunk {
                self.connection.queue(&["HGETALL", key.as_str()]);
            }
            for reply in self.connection.flush(chunk.len()).await? {
                let Reply::Array(fields) = reply else {
                    continue;
                };
                let value = |field: &str| -> u64 {
                    fields
                        .chunks(2)
                        .find(|pair| matches!(&pair[0], Reply::Bulk(Some(name)) if name == field.as_bytes()))
                        .and_then(|pair| match &pair[1] {
                            Reply::Bulk(Some(v)) => std::str::from_utf8(v).ok()?.parse().ok(),
                            _ => None,
                        })
                        .unwrap_or(0)
                };
                for fc in 0..workload.fcs {
                    let (on_hand, held) =
                        (value(&fc_name(fc)), value(&format!("r:{}", fc_name(fc))));
                    cells += 1;
                    reserved += held;
                    if held > on_hand {
                        over += 1;
                    }
                }
            }
        }
        Ok((cells, over, reserved))
    }
}
