//! Durability in process: snapshot round trips, journal replay, a snapshot
//! taken under concurrent load, and corruption handling (RULES §8, §9).

#[path = "support/churn.rs"]
mod churn;
#[path = "support/rng.rs"]
mod rng;
use churn::*;
use rng::Rng;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use allocation::engine::{Engine, EngineConfig};
use allocation::model::{Merchant, MerchantId, Order};
use allocation::storage::journal::SEGMENT_HEADER_BYTES;
use allocation::storage::{store, Store};

#[test]
fn journal_replay_alone_restores_the_state() {
    let dir = data_dir("replay");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(3), "a", 600);
    store.close();
    let expected = state(&engine);
    assert!(
        engine.slots_taken().len() > 1,
        "the churn takes daily FC slots on several days"
    );
    let (recovered, _) = open(&dir).unwrap();
    assert_eq!(state(&recovered), expected);
    assert!(recovered.audit().violations.is_empty());
    assert_shipments_findable(&recovered, &expected.2);
}

/// Recovery rebuilt the tracking-number index: every shipment is found.
fn assert_shipments_findable(engine: &Engine, orders: &[Order]) {
    let shipments: Vec<&str> = orders
        .iter()
        .flat_map(|order| order.shipments())
        .map(|shipment| shipment.tracking_number.as_str())
        .collect();
    assert!(!shipments.is_empty(), "the churn shipped something");
    for tracking_number in shipments {
        engine
            .shipment(tracking_number)
            .expect("indexed after recovery");
    }
}

#[test]
fn snapshot_then_journal_restores_the_state_and_old_files_are_dropped() {
    let dir = data_dir("snapshot");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(5);
    for round in 0..3 {
        churn(&engine, &mut rng, &format!("r{round}"), 300);
        let info = store.snapshot(&engine).unwrap();
        assert!(info.bytes > 0);
    }
    churn(&engine, &mut rng, "after", 300);
    store.close();
    let expected = state(&engine);

    let snapshots = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snap")
        })
        .count();
    assert_eq!(snapshots, 2, "the newest two snapshots are kept");

    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (_, recovery) = Store::open(&config(&dir), &engine).unwrap();
    assert!(recovery.snapshot.is_some());
    assert!(recovery.records_replayed > 0);
    assert_eq!(state(&engine), expected);
    assert_shipments_findable(&engine, &expected.2);
}

#[test]
fn a_snapshot_taken_under_concurrent_load_plus_the_journal_equals_the_final_state() {
    let dir = data_dir("load");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(9), "seed", 200);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for worker in 0..3u64 {
            let (engine, stop) = (&engine, &stop);
            scope.spawn(move || {
                let mut rng = Rng(100 + worker);
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    churn(engine, &mut rng, &format!("w{worker}-{round}"), 20);
                    round += 1;
                }
            });
        }
        for _ in 0..3 {
            store.snapshot(&engine).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    store.close();
    let expected = state(&engine);
    let (recovered, _) = open(&dir).unwrap();
    assert_eq!(state(&recovered), expected);
    assert!(recovered.audit().violations.is_empty());
}

fn newest(dir: &Path, suffix: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files.pop().unwrap()
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x5A;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_in_a_snapshot_is_reported_and_the_previous_one_can_be_used() {
    let dir = data_dir("corrupt-snapshot");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(11);
    churn(&engine, &mut rng, "a", 200);
    store.snapshot(&engine).unwrap();
    churn(&engine, &mut rng, "b", 200);
    store.snapshot(&engine).unwrap();
    store.close();
    let expected = state(&engine);

    let snapshot = newest(&dir, ".snap");
    let size = std::fs::metadata(&snapshot).unwrap().len() as usize;
    flip_byte(&snapshot, size / 2);
    let error = match open(&dir) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("a corrupt snapshot was loaded"),
    };
    assert!(error.contains(&*snapshot.to_string_lossy()), "{error}");
    assert!(error.contains("checksum"), "{error}");

    // The operator's way out: the previous snapshot plus the journal kept since it.
    let engine = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let mut fallback = config(&dir);
    fallback.fallback_to_previous_snapshot = true;
    let (_, recovery) = Store::open(&fallback, &engine).unwrap();
    assert_eq!(recovery.skipped_snapshots.len(), 1);
    assert_eq!(state(&engine), expected);
}

#[test]
fn a_corrupt_record_in_the_middle_of_the_journal_stops_start_up() {
    let dir = data_dir("corrupt-journal");
    let (engine, store) = open(&dir).unwrap();
    churn(&engine, &mut Rng(13), "a", 300);
    store.close();
    let segment = newest(&dir, ".log");
    let size = std::fs::metadata(&segment).unwrap().len() as usize;
    flip_byte(&segment, size / 2);
    let error = match open(&dir) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("a corrupt journal was replayed"),
    };
    assert!(error.contains(&*segment.to_string_lossy()), "{error}");
    assert!(error.contains("corrupt at byte"), "{error}");
    // Inspect says the same without touching anything.
    let engine = Engine::new(EngineConfig::default());
    assert!(store::recover(&dir, &engine, false, false).is_err());
}

#[test]
fn a_torn_journal_tail_is_cut_at_the_last_whole_record() {
    let dir = data_dir("torn");
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(17);
    churn(&engine, &mut rng, "a", 200);
    store.close();
    let expected = state(&engine);

    // One more change (one record) in a new run, then that record half
    // written, as when the power goes mid-write.
    {
        let (engine, store) = open(&dir).unwrap();
        engine.upsert_merchant(Merchant::with_defaults(MerchantId::new("lost")));
        store.close();
    }
    let segment = newest(&dir, ".log");
    let bytes = std::fs::read(&segment).unwrap();
    assert!(bytes.len() > 16 + 20, "the second run wrote a record");
    std::fs::write(&segment, &bytes[..bytes.len() - 7]).unwrap();

    let engine2 = Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    });
    let (store2, recovery) = Store::open(&config(&dir), &engine2).unwrap();
    let (path, offset) = recovery.torn_tail.expect("the torn tail is reported");
    assert_eq!(path, segment);
    assert_eq!(
        offset, SEGMENT_HEADER_BYTES,
        "cut right after the segment header"
    );
    assert_eq!(state(&engine2), expected);
    // The cut bytes are kept beside the segment, not destroyed.
    let aside = std::fs::read(format!("{}.torn-{offset}", segment.display())).unwrap();
    assert_eq!(aside, &bytes[offset..bytes.len() - 7]);
    store2.close();
}
