//! Damage to a data directory, of every kind an operator or a failing disk
//! can cause: each either recovers exactly a state the service was in (a
//! torn tail at the end of the journal, whose bytes are moved aside), or
//! refuses to start naming the file (and the offset, for damage inside
//! one) and changes nothing. Never a panic, never a silent loss.
//!
//! `FILE_DAMAGE_CASES` sets how many seeded random damages the last test
//! tries (default 150; the long campaign is in CONTRIBUTING.md).

#[path = "support/churn.rs"]
mod churn;
#[path = "support/rng.rs"]
mod rng;
use churn::*;
use rng::Rng;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use allocation::engine::{Engine, EngineConfig};
use allocation::storage::journal::{self, SEGMENT_HEADER_BYTES};
use allocation::storage::snapshot;
use allocation::storage::{OpenError, Store};

/// A data directory written by three runs of churn with two snapshots,
/// and the state after every journal record.
struct Pristine {
    dir: PathBuf,
    /// The state when the next LSN was the key.
    states: HashMap<u64, State>,
    final_lsn: u64,
}

impl Pristine {
    fn build(name: &str) -> Self {
        let dir = data_dir(&format!("pristine-{name}"));
        let mut states = HashMap::new();
        let mut rng = Rng(0xD1A6);
        let mut step = 0;
        let mut final_lsn = 0;
        for run in 0..3 {
            let (engine, store) = open(&dir).unwrap();
            states.insert(store.journal().appended_next(), state(&engine));
            for phase in 0..2 {
                for _ in 0..60 {
                    churn(&engine, &mut rng, &format!("p{step}"), 1);
                    step += 1;
                    states.insert(store.journal().appended_next(), state(&engine));
                }
                if run < 2 && phase == 0 {
                    store.snapshot(&engine).unwrap();
                }
            }
            final_lsn = store.journal().appended_next();
            store.close();
        }
        fill_states_between_steps(&dir, &mut states);
        Self {
            dir,
            states,
            final_lsn,
        }
    }

    /// A fresh copy of the directory to damage.
    fn copy(&self, name: &str) -> PathBuf {
        let copy = data_dir(name);
        std::fs::create_dir_all(&copy).unwrap();
        for (file, bytes) in files(&self.dir) {
            std::fs::write(copy.join(file), bytes).unwrap();
        }
        copy
    }

    fn segments(&self) -> Vec<PathBuf> {
        named(&self.dir, "journal-", ".log")
    }

    fn snapshots(&self) -> Vec<PathBuf> {
        named(&self.dir, "snapshot-", ".snap")
    }
}

/// A step of churn may journal several changes (a reprocess pass, one per
/// order it decides): the states between them come from replaying the
/// journal record by record, checked against the live state at every step's
/// end.
fn fill_states_between_steps(dir: &Path, states: &mut HashMap<u64, State>) {
    // Retention dropped the journal before the older snapshot: start there.
    let engine = fresh_engine();
    let oldest = &named(dir, "snapshot-", ".snap")[0];
    let from = snapshot::read(oldest, |effect| engine.restore(effect))
        .unwrap()
        .lsn;
    assert!(
        states[&from] == state(&engine),
        "the snapshot holds the live state"
    );
    let mut checked = 0;
    for path in named(dir, "journal-", ".log") {
        let first: u64 = name(&path)[8..28].parse().unwrap();
        journal::read_segment(&path, first, false, |lsn, effects| {
            if lsn < from {
                return Ok(());
            }
            for effect in effects {
                engine.restore(effect);
            }
            let replayed = state(&engine);
            match states.get(&(lsn + 1)) {
                Some(live) => {
                    assert!(
                        *live == replayed,
                        "replay differs from the live state at {lsn}"
                    );
                    checked += 1;
                }
                None => {
                    states.insert(lsn + 1, replayed);
                }
            }
            Ok(())
        })
        .unwrap();
    }
    assert!(checked > 100, "replay was checked against the live states");
}

/// Every file in `dir` but the lock, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| !path.ends_with("LOCK"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

fn named(dir: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = files(dir)
        .into_keys()
        .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
        .map(|name| dir.join(name))
        .collect();
    found.sort();
    found
}

fn damage(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

fn fresh_engine() -> Engine {
    Engine::new(EngineConfig {
        stripe_count: 8,
        ..EngineConfig::default()
    })
}

/// What start-up made of a damaged directory.
enum Outcome {
    /// Recovered to the state at this LSN.
    Recovered(u64),
    Refused(String),
}

/// Open the damaged `dir` and check the outcome is honest: a recovery
/// reaches a state the service was in and keeps every byte it did not
/// replay beside the segment; a refusal changes no file.
fn recover(pristine: &Pristine, dir: &Path) -> Outcome {
    let before = files(dir);
    let engine = fresh_engine();
    match Store::open(&config(dir), &engine) {
        Ok((store, recovery)) => {
            store.close();
            let lsn = recovery.next_lsn;
            let expected = pristine
                .states
                .get(&lsn)
                .unwrap_or_else(|| panic!("recovered to LSN {lsn}, which no state had"));
            assert!(state(&engine) == *expected, "state at LSN {lsn} differs");
            assert!(engine.audit().violations.is_empty());
            assert_nothing_destroyed(dir, &before);
            Outcome::Recovered(lsn)
        }
        Err(error) => {
            assert_eq!(files(dir), before, "a refused start changed files: {error}");
            Outcome::Refused(error.to_string())
        }
    }
}

/// Every file there before start-up is still there whole, or split into
/// a kept prefix (which a seal may follow) and a `.torn-<offset>` file.
fn assert_nothing_destroyed(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
    let after = files(dir);
    for (name, bytes) in before {
        if name.ends_with(".tmp") {
            continue; // an unfinished snapshot is never valid
        }
        let torn = after.iter().find(|(other, _)| {
            other.starts_with(&format!("{name}.torn-")) && !before.contains_key(*other)
        });
        let kept = after.get(name).map(Vec::as_slice).unwrap_or_default();
        match torn {
            Some((_, tail)) => {
                let cut = bytes.len() - tail.len();
                assert_eq!(&bytes[cut..], tail.as_slice(), "{name}: the set-aside tail");
                assert!(
                    kept.len() >= cut && kept[..cut] == bytes[..cut],
                    "{name}: kept prefix"
                );
            }
            None => assert!(
                kept.len() >= bytes.len() && kept[..bytes.len()] == bytes[..],
                "{name} lost bytes"
            ),
        }
    }
}

fn refused(outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(error) => error,
        Outcome::Recovered(lsn) => panic!("recovered to LSN {lsn} instead of refusing"),
    }
}

fn recovered(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Recovered(lsn) => lsn,
        Outcome::Refused(error) => panic!("refused: {error}"),
    }
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_pristine_directory_recovers_whole_and_its_segments_are_sealed() {
    let pristine = Pristine::build("whole");
    let dir = pristine.copy("damage-none");
    assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);
    let segments = pristine.segments();
    assert!(segments.len() >= 4, "two rotations and two restarts");
    for segment in &segments[..segments.len() - 1] {
        let bytes = std::fs::read(segment).unwrap();
        let offsets = frame_offsets(&bytes);
        let last = offsets[offsets.len() - 2];
        let len = u32::from_le_bytes(bytes[last..last + 4].try_into().unwrap());
        assert_eq!(len, u32::MAX, "{} ends in a seal", segment.display());
    }
}

#[test]
fn a_raised_first_lsn_in_the_newest_header_refuses_start_up() {
    let pristine = Pristine::build("header");
    let dir = pristine.copy("damage-header");
    let newest = dir.join(name(pristine.segments().last().unwrap()));
    damage(&newest, |bytes| bytes[12] ^= 1 << 4);
    let error = refused(recover(&pristine, &dir));
    assert!(
        error.contains(&name(&newest)) && error.contains("byte 0"),
        "{error}"
    );
    assert!(error.contains("header checksum"), "{error}");

    // The same header rewritten with a valid checksum disagrees with the name.
    damage(&newest, |bytes| {
        bytes[12] ^= 1 << 4;
        bytes[8] ^= 1;
        let crc = crc32c::crc32c(&bytes[..16]);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    });
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains("file name"), "{error}");
}

#[test]
fn every_truncation_of_the_newest_segment_recovers_the_records_before_it() {
    let pristine = Pristine::build("truncate");
    let newest = pristine.segments().pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let offsets = frame_offsets(&bytes);
    let first: u64 = name(&newest)[8..28].parse().unwrap();
    assert!(offsets.len() > 20, "the newest segment holds records");
    for (index, window) in offsets.windows(2).enumerate() {
        let (start, end) = (window[0], window[1]);
        for cut in [start, start + 1, start + 15, (start + end) / 2, end - 1] {
            let dir = pristine.copy("damage-truncate");
            damage(&dir.join(name(&newest)), |bytes| bytes.truncate(cut));
            assert_eq!(
                recovered(recover(&pristine, &dir)),
                first + index as u64,
                "cut at byte {cut}"
            );
        }
    }
    // Inside the header: the previous segment's seal vouches for it.
    for cut in [0, 4, SEGMENT_HEADER_BYTES - 1] {
        let dir = pristine.copy("damage-truncate-header");
        damage(&dir.join(name(&newest)), |bytes| bytes.truncate(cut));
        let error = refused(recover(&pristine, &dir));
        assert!(error.contains(&name(&newest)), "{error}");
    }
}

#[test]
fn a_truncated_or_deleted_older_segment_refuses_naming_the_gap() {
    let pristine = Pristine::build("older");
    let segments = pristine.segments();
    let older = &segments[segments.len() - 2];
    let dir = pristine.copy("damage-older");
    let size = std::fs::metadata(older).unwrap().len() as usize;
    damage(&dir.join(name(older)), |bytes| bytes.truncate(size - 40));
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains(&name(older)), "{error}");

    let dir = pristine.copy("damage-deleted-middle");
    std::fs::remove_file(dir.join(name(older))).unwrap();
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn a_deleted_newest_segment_is_noticed() {
    let pristine = Pristine::build("deleted");
    let newest = pristine.segments().pop().unwrap();
    let dir = pristine.copy("damage-deleted");
    std::fs::remove_file(dir.join(name(&newest))).unwrap();
    let error = refused(recover(&pristine, &dir));
    assert!(
        error.contains(&name(&newest)) && error.contains("missing"),
        "{error}"
    );
}

#[test]
fn a_flipped_byte_refuses_unless_it_is_in_the_last_record() {
    let pristine = Pristine::build("flip");
    let newest = pristine.segments().pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let offsets = frame_offsets(&bytes);
    let first: u64 = name(&newest)[8..28].parse().unwrap();
    let records = offsets.len() - 1;
    for (index, &start) in offsets[..records].iter().enumerate() {
        let end = offsets[index + 1];
        for at in [start, start + 5, (start + 17).min(end - 1)] {
            let dir = pristine.copy("damage-flip");
            damage(&dir.join(name(&newest)), |bytes| bytes[at] ^= 0x20);
            let outcome = recover(&pristine, &dir);
            if index + 1 == records {
                // Indistinguishable from a write cut short: set aside.
                assert_eq!(recovered(outcome), first + index as u64);
            } else {
                let error = refused(outcome);
                assert!(
                    error.contains(&name(&newest)) && error.contains(&format!("byte {start}")),
                    "flip at {at}: {error}"
                );
            }
        }
    }
    // In a sealed segment, even its last frame is damage.
    let older = &pristine.segments()[1];
    let size = std::fs::metadata(older).unwrap().len() as usize;
    for at in [size - 1, size - 20, size / 2] {
        let dir = pristine.copy("damage-flip-older");
        damage(&dir.join(name(older)), |bytes| bytes[at] ^= 0x01);
        let error = refused(recover(&pristine, &dir));
        assert!(error.contains(&name(older)), "{error}");
    }
}

#[test]
fn zeroed_ranges_and_appended_garbage() {
    let pristine = Pristine::build("zero");
    let newest = pristine.segments().pop().unwrap();
    let size = std::fs::metadata(&newest).unwrap().len() as usize;

    let dir = pristine.copy("damage-zero-middle");
    damage(&dir.join(name(&newest)), |bytes| {
        bytes[size / 3..size / 3 + 64].fill(0)
    });
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains(&name(&newest)), "{error}");

    // Zeros at the very end, as a file extended but never written.
    let dir = pristine.copy("damage-zero-tail");
    damage(&dir.join(name(&newest)), |bytes| {
        bytes.resize(size + 4096, 0)
    });
    assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);

    let dir = pristine.copy("damage-garbage");
    let mut rng = Rng(7);
    damage(&dir.join(name(&newest)), |bytes| {
        bytes.extend((0..300).map(|_| rng.next_u64() as u8))
    });
    assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);

    // After a seal nothing may follow.
    let older = &pristine.segments()[0];
    let dir = pristine.copy("damage-garbage-older");
    damage(&dir.join(name(older)), |bytes| {
        bytes.extend_from_slice(b"garbage")
    });
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains("after the segment's seal"), "{error}");
}

#[test]
fn a_deleted_newest_snapshot_falls_back_to_the_previous_one_and_its_journal() {
    let pristine = Pristine::build("snapshot");
    let snapshots = pristine.snapshots();
    assert_eq!(snapshots.len(), 2);
    let dir = pristine.copy("damage-snapshot");
    std::fs::remove_file(dir.join(name(&snapshots[1]))).unwrap();
    assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);
}

#[test]
fn an_empty_newest_segment_is_set_aside_only_when_nothing_vouches_for_it() {
    let pristine = Pristine::build("empty");
    let newest = pristine.segments().pop().unwrap();

    // A crash or a full disk between creating a segment and writing its
    // header: the next run's segment, empty or half a header.
    for header_bytes in [0, 9] {
        let dir = pristine.copy("damage-empty-next");
        let next = dir.join(format!("journal-{:020}.log", pristine.final_lsn));
        let header = [
            &b"ALJ1"[..],
            &4u32.to_le_bytes(),
            &pristine.final_lsn.to_le_bytes(),
        ]
        .concat();
        std::fs::write(&next, &header[..header_bytes]).unwrap();
        assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);
        let listing: Vec<String> = files(&dir).into_keys().collect();
        assert!(
            dir.join(format!("{}.torn-0", name(&next))).exists(),
            "{listing:?}"
        );
        // And the directory starts again after that.
        assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);
    }

    // Emptied by damage: its predecessor's seal says it was written.
    let dir = pristine.copy("damage-emptied");
    std::fs::write(dir.join(name(&newest)), b"").unwrap();
    let error = refused(recover(&pristine, &dir));
    assert!(error.contains(&name(&newest)), "{error}");
}

#[test]
fn segments_of_the_previous_format_are_still_read() {
    let pristine = Pristine::build("legacy");
    let dir = pristine.copy("damage-legacy");
    for segment in named(&dir, "journal-", ".log") {
        damage(&segment, |bytes| {
            let offsets = frame_offsets(bytes);
            let mut end = *offsets.last().unwrap();
            if let [.., last, _] = offsets[..] {
                if bytes[last..last + 4] == u32::MAX.to_le_bytes() {
                    end = last; // version 3 has no seal
                }
            }
            let mut legacy = bytes[..16].to_vec();
            legacy[4..8].copy_from_slice(&3u32.to_le_bytes());
            legacy.extend_from_slice(&bytes[SEGMENT_HEADER_BYTES..end]);
            *bytes = legacy;
        });
    }
    assert_eq!(recovered(recover(&pristine, &dir)), pristine.final_lsn);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused_naming_the_holder() {
    let pristine = Pristine::build("lock");
    let dir = pristine.copy("damage-lock");
    let (_engine, store) = open(&dir).unwrap();
    match open(&dir) {
        Err(OpenError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        Err(error) => panic!("unexpected error: {error}"),
        Ok(_) => panic!("two stores opened one data directory"),
    }
    store.close();
    open(&dir).expect("the lock is released on close");
}

/// Seeded random damage of random files: every outcome is honest (see
/// `recover`), whichever it is.
#[test]
fn seeded_random_damage_is_recovered_or_refused_never_lost() {
    let cases: usize = std::env::var("FILE_DAMAGE_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("FILE_DAMAGE_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0xF11E);
    println!("file damage: {cases} cases from seed {seed}");
    let pristine = Pristine::build("random");
    let names: Vec<String> = files(&pristine.dir).into_keys().collect();
    let mut rng = Rng(seed);
    let (mut recoveries, mut refusals) = (0, 0);
    for case in 0..cases {
        let dir = pristine.copy("damage-random");
        let path = dir.join(&names[rng.below(names.len())]);
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let at = rng.below(size.max(1));
        let kind = rng.below(5);
        match kind {
            0 => damage(&path, |bytes| bytes[at] ^= 1 << rng.below(8)),
            1 => damage(&path, |bytes| bytes.truncate(at)),
            2 => damage(&path, |bytes| {
                let end = (at + 1 + rng.below(200)).min(size);
                bytes[at..end].fill(0)
            }),
            3 => damage(&path, |bytes| {
                bytes.extend((0..1 + rng.below(100)).map(|_| rng.next_u64() as u8))
            }),
            _ => std::fs::remove_file(&path).unwrap(),
        }
        match recover(&pristine, &dir) {
            Outcome::Recovered(_) => recoveries += 1,
            Outcome::Refused(error) => {
                assert!(
                    error.contains("journal-") || error.contains("snapshot-"),
                    "case {case} (kind {kind} on {}): the refusal names no file: {error}",
                    path.display()
                );
                refusals += 1;
            }
        }
    }
    println!("file damage: {recoveries} recovered, {refusals} refused");
    assert!(
        recoveries > 0 && refusals > 0,
        "both outcomes were exercised"
    );
}
