#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use allocation::engine::{CountChange, Engine, EngineConfig, InventoryChange};
use allocation::model::*;
use allocation::storage::snapshot;
use rayon::prelude::*;
use std::time::Instant;

fn order(merchant: &MerchantId, id: &str, n: usize, skus: usize) -> OrderRequest {
    OrderRequest {
        merchant_id: merchant.clone(),
        order_id: id.into(),
        purchase_time: Timestamp::from_seconds(n as i64),
        lines: (0..3)
            .map(|i| OrderLine {
                sku: Sku::new(&format!("sku-{}", (n * 7 + i * 101) % skus)),
                quantity: 1,
            })
            .collect(),
        assigned_fc: None,
        partial_shipments: Some(true),
        channel: Channel::Direct,
        marketplace_status: MarketplaceStatus::Ready,
        hold_reason: None,
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap();
    let dir = std::path::PathBuf::from("/tmp/snapprof");
    if mode == "write" {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let engine = Engine::new(EngineConfig::default());
        let merchant = MerchantId::new("m");
        let skus = 1_000_000;
        let fcs: Vec<FcId> = (0..10).map(|i| FcId::new(&format!("fc-{i}"))).collect();
        (0..skus)
            .collect::<Vec<_>>()
            .par_chunks(1000)
            .for_each(|chunk| {
                let changes: Vec<InventoryChange> = chunk
                    .iter()
                    .flat_map(|&sku| {
                        let name = Sku::new(&format!("sku-{sku}"));
                        fcs.iter().map(move |fc| InventoryChange {
                            sku: name.clone(),
                            fc: fc.clone(),
                            change: CountChange::Set(1000),
                        })
                    })
                    .collect();
                engine.update_inventory(&merchant, &changes).unwrap();
            });
        (0..1_000_000usize).into_par_iter().for_each(|n| {
            engine
                .allocate(
                    order(&merchant, &format!("o{n}"), n, skus),
                    Timestamp::default(),
                )
                .unwrap();
        });
        for _ in 0..3 {
            let t = Instant::now();
            let w = snapshot::write(&engine, &dir, 1, || Ok(())).unwrap();
            println!("write {:?} {} bytes", t.elapsed(), w.bytes);
        }
    } else {
        let path = snapshot::snapshot_path(&dir, 1);
        for _ in 0..3 {
            let fresh = Engine::new(EngineConfig::default());
            let t = Instant::now();
            snapshot::read(&path, |e| fresh.restore(e)).unwrap();
            println!("load {:?}", t.elapsed());
            let t = Instant::now();
            drop(fresh);
            println!("drop {:?}", t.elapsed());
        }
    }
}
