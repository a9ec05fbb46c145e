//! Seeded, bounded runs of the fuzz targets in `fuzz/` (the same entry
//! points, `allocation::fuzzing`): each target gets inputs made from real
//! files and real requests, mutated, plus random bytes. A target panics
//! when the code breaks a rule, so each test fails on the first bad input
//! and prints the seed that found it.
//!
//! `FUZZ_ITERATIONS` (default 2,000 per target) and `FUZZ_SEED` make the
//! run longer or different; CONTRIBUTING.md has the coverage-guided run.

#[path = "support/churn.rs"]
mod churn;
#[path = "support/rng.rs"]
mod rng;
use churn::*;
use rng::Rng;

use std::path::{Path, PathBuf};

use allocation::fuzzing;

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn seeded(target: &str) -> Rng {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5EED);
    println!("{target}: {} iterations from seed {seed}", iterations());
    Rng(seed)
}

/// A small real data directory: journal segments and a snapshot.
fn real_files(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let dir = data_dir(&format!("fuzz-{name}"));
    let (engine, store) = open(&dir).unwrap();
    let mut rng = Rng(42);
    churn(&engine, &mut rng, "a", 80);
    store.snapshot(&engine).unwrap();
    churn(&engine, &mut rng, "b", 40);
    store.close();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| !path.ends_with("LOCK"))
        .collect();
    files.sort();
    (dir, files)
}

/// One random change of `bytes`: a flipped bit, a cut, a zeroed or
/// random range, a spliced copy of a range, or several of them.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len();
        if len == 0 {
            bytes.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(len);
        let end = (at + 1 + rng.below(16)).min(len);
        match rng.below(6) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.truncate(at),
            2 => bytes[at..end].fill(0),
            3 => bytes[at..end]
                .iter_mut()
                .for_each(|b| *b = rng.next_u64() as u8),
            4 => {
                let copy = bytes[at..end].to_vec();
                let to = rng.below(len);
                bytes.splice(to..to, copy);
            }
            _ => bytes[at] = [0x00, 0x7F, 0x80, 0xFF][rng.below(4)],
        }
    }
}

/// The payload of every record of a segment (a frame is length, CRC and
/// LSN, then the payload; a seal has none).
fn payloads(segment: &[u8]) -> Vec<Vec<u8>> {
    frame_offsets(segment)
        .windows(2)
        .filter(|frame| segment[frame[0]..frame[0] + 4] != u32::MAX.to_le_bytes())
        .map(|frame| segment[frame[0] + 16..frame[1]].to_vec())
        .collect()
}

fn suffixed<'p>(files: &'p [PathBuf], suffix: &str) -> Vec<&'p PathBuf> {
    files
        .iter()
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect()
}

#[test]
fn journal_records_decode_or_fail_never_panic() {
    let (_, files) = real_files("records");
    let records: Vec<Vec<u8>> = suffixed(&files, ".log")
        .into_iter()
        .flat_map(|path| payloads(&std::fs::read(path).unwrap()))
        .collect();
    assert!(records.len() > 50);
    for record in &records {
        fuzzing::journal_payload(record); // the unmutated ones decode whole
    }
    let mut rng = seeded("journal records");
    for _ in 0..iterations() {
        let mut bytes = records[rng.below(records.len())].clone();
        mutate(&mut bytes, &mut rng);
        fuzzing::journal_payload(&bytes);
    }
}

#[test]
fn segments_and_snapshots_are_read_or_refused_never_panic() {
    let (_, files) = real_files("files");
    let segments = suffixed(&files, ".log");
    let snapshots = suffixed(&files, ".snap");
    assert!(!segments.is_empty() && !snapshots.is_empty());
    let mut rng = seeded("segments and snapshots");
    for _ in 0..iterations() {
        let mut bytes = std::fs::read(segments[rng.below(segments.len())]).unwrap();
        mutate(&mut bytes, &mut rng);
        fuzzing::segment(&bytes);

        let mut bytes = std::fs::read(snapshots[rng.below(snapshots.len())]).unwrap();
        mutate(&mut bytes, &mut rng);
        fuzzing::snapshot(&bytes);
        fuzzing::snapshot(&rechecksummed(bytes));
    }
}

/// A snapshot whose whole-file checksum is made right again, so a mutation
/// reaches the entry framing and decoding behind it.
fn rechecksummed(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 32 {
        let trailer = bytes.len() - 16;
        let crc = crc32c::crc32c(&bytes[..trailer]);
        bytes[trailer + 12..].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

#[test]
fn recovery_over_damaged_data_directories_never_panics() {
    let (_, files) = real_files("recovery");
    // The image format names files by one byte: the test keeps LSNs small.
    let real: Vec<(u8, u8, Vec<u8>)> = files
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let kind = u8::from(name.starts_with("snapshot-"));
            let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
            let number: u64 = digits[..20].parse().unwrap();
            (
                kind,
                u8::try_from(number).expect("a small LSN"),
                std::fs::read(path).unwrap(),
            )
        })
        .collect();
    let dir = data_dir("fuzz-recovery-image");
    let mut rng = seeded("recovery");
    for _ in 0..iterations() / 4 {
        let mut image = Vec::new();
        for (kind, number, bytes) in &real {
            if rng.below(8) == 0 {
                continue; // a deleted file
            }
            let mut bytes = bytes.clone();
            if rng.below(3) == 0 {
                mutate(&mut bytes, &mut rng);
            }
            bytes.truncate(u16::MAX as usize);
            image.extend_from_slice(&[*kind, *number]);
            image.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            image.extend_from_slice(&bytes);
        }
        fuzzing::recovery(&image, &dir);
    }
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[test]
fn every_rpc_answers_any_request_with_a_deliberate_status() {
    let methods = fuzzing::unary_methods();
    assert!(
        methods.len() >= 19,
        "every unary RPC is covered: {methods:?}"
    );
    let mut rng = seeded("requests");
    for _ in 0..iterations() {
        for (method, input_type) in methods {
            let mut entropy = || rng.next_u64();
            let mut body = fuzzing::random_message(input_type, &mut entropy);
            match rng.below(4) {
                0 => mutate(&mut body, &mut rng),
                1 => body = (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect(),
                _ => {}
            }
            fuzzing::grpc_request(method, &body);
        }
    }
}
