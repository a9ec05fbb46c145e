//! Snapshots: the whole state in one file, `snapshot-<LSN>.snap`.
//!
//! A snapshot is taken without stopping allocation: the journal is rotated
//! first (its new segment starts at LSN S), then merchants, ledger stripes
//! and orders are copied one lock at a time while changes go on. The copy
//! is "fuzzy", but every change it may have missed or half-seen has an LSN
//! of at least S and is in the journal as after-images; replaying the
//! journal from S over the snapshot sets every such item to its final
//! state. So snapshot S + journal from S = the state, always.
//!
//! File: header `ALS1` + version (u32) + LSN S (u64); entries
//! `length (u32) | CRC32C (u32) | effect`; trailer `ALSE` + entry count
//! (u64) + CRC32C of everything before the trailer (u32). Written to a
//! temporary file, synced, renamed into place, directory synced.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::codec::{Reader, Writer};
use super::journal::{sync_dir, ReadError};
use crate::engine::{Effect, EffectRef, Engine};

pub const SNAPSHOT_MAGIC: &[u8; 4] = b"ALS1";
pub const SNAPSHOT_END_MAGIC: &[u8; 4] = b"ALSE";
/// 2: orders carry shipments, completion and auto-split links.
/// 3: numbers inside entries are varints.
/// 4: the first entry is the change feed's next event sequence.
pub const SNAPSHOT_VERSION: u32 = 4;
/// Still read: its data directories predate the numbered change feed.
const SNAPSHOT_VERSION_BEFORE_FEED: u32 = 3;
const HEADER_BYTES: usize = 16;
const TRAILER_BYTES: usize = 16;
const ENTRY_HEADER_BYTES: usize = 8;

pub fn snapshot_path(dir: &Path, lsn: u64) -> PathBuf {
    dir.join(format!("snapshot-{lsn:020}.snap"))
}

/// What `write` produced.
#[derive(Clone, Debug)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub entries: u64,
}

/// Counts a snapshot write, with a running checksum of every byte.
struct Output {
    file: BufWriter<File>,
    crc: u32,
    bytes: u64,
    entries: u64,
}

impl Output {
    fn raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.bytes += bytes.len() as u64;
        self.file.write_all(bytes)
    }

    /// Frame and write every effect encoded in `batch` (a sequence of
    /// length-delimited entries produced by `encode_entry`).
    fn entries(&mut self, batch: &[u8], count: u64) -> std::io::Result<()> {
        self.entries += count;
        self.raw(batch)
    }
}

/// Append one framed entry to `batch`, encoding in place.
fn encode_entry(batch: &mut Vec<u8>, effect: EffectRef<'_>) {
    let start = batch.len();
    batch.extend_from_slice(&[0; ENTRY_HEADER_BYTES]);
    let mut writer = Writer {
        bytes: std::mem::take(batch),
    };
    writer.effect(effect);
    *batch = writer.bytes;
    let payload = start + ENTRY_HEADER_BYTES;
    let len = (batch.len() - payload) as u32;
    let crc = crc32c::crc32c(&batch[payload..]);
    batch[start..start + 4].copy_from_slice(&len.to_le_bytes());
    batch[start + 4..payload].copy_from_slice(&crc.to_le_bytes());
}

/// Stripes and orders one rayon task encodes (or entries it decodes): big
/// enough to keep the overhead small.
const STRIPES_PER_TASK: usize = 8;
const ORDERS_PER_TASK: usize = 4_096;
const ENTRIES_PER_TASK: usize = 4_096;
/// Tasks encoded in parallel before their output is written: bounds the
/// memory a snapshot holds at once.
const TASKS_IN_FLIGHT: usize = 32;

/// One output buffer per task in flight, reused from one round of tasks to
/// the next. Fresh buffers for every round (240 MiB for a million SKUs and
/// orders) made the allocator hand memory back to the kernel and take it
/// again: each hand-back flushes the TLB of every CPU running the process,
/// and perf caught such flushes stalling an allocation, on whichever thread
/// paid for them, for 2–15 ms.
#[derive(Default)]
struct Buffers {
    slots: Vec<(Vec<u8>, u64)>,
}

impl Buffers {
    /// Encode `items` on the rayon pool, `per_task` to a task, and write the
    /// entries to `out` in `items`' order. `encode_one` appends an item's
    /// entries to a buffer and returns how many it appended.
    fn encode<T: Sync>(
        &mut self,
        out: &mut Output,
        items: &[T],
        per_task: usize,
        encode_one: impl Fn(&T, &mut Vec<u8>) -> u64 + Sync,
    ) -> std::io::Result<()> {
        self.slots.resize_with(TASKS_IN_FLIGHT, Default::default);
        for round in items.chunks(per_task * TASKS_IN_FLIGHT) {
            let tasks = round.len().div_ceil(per_task);
            self.slots[..tasks]
                .par_iter_mut()
                .zip(round.par_chunks(per_task))
                .for_each(|((batch, count), chunk)| {
                    batch.clear();
                    *count = chunk.iter().map(|item| encode_one(item, batch)).sum();
                });
            for (batch, count) in &self.slots[..tasks] {
                out.entries(batch, *count)?;
            }
        }
        Ok(())
    }
}

/// Copy the engine's state into `snapshot-<lsn>.snap` in `dir`. Each stripe
/// and order is locked only while it is encoded into memory; file I/O
/// happens with no lock held. `before_publish` runs after the copy is on
/// disk and before it is renamed into place.
pub fn write(
    engine: &Engine,
    dir: &Path,
    lsn: u64,
    before_publish: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<Written> {
    let path = snapshot_path(dir, lsn);
    let temporary = path.with_extension("tmp");
    let mut out = Output {
        file: BufWriter::with_capacity(1 << 20, File::create(&temporary)?),
        crc: 0,
        bytes: 0,
        entries: 0,
    };
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header.extend_from_slice(&lsn.to_le_bytes());
    out.raw(&header)?;

    let mut batch = Vec::with_capacity(1 << 20);
    // Read after the rotation: at least every sequence the journal before
    // S numbered (recovery takes the larger of it and the journal's).
    encode_entry(
        &mut batch,
        EffectRef::NextEventSequence(engine.next_event_sequence()),
    );
    let mut count = 1;
    for merchant in engine.merchants() {
        encode_entry(&mut batch, EffectRef::Merchant(&merchant));
        count += 1;
    }
    for fc in engine.fulfillment_centers() {
        encode_entry(&mut batch, EffectRef::Fc(&fc));
        count += 1;
    }
    out.entries(&batch, count)?;
    // Stripes, then orders, encoded in parallel chunks and written in order.
    let mut buffers = Buffers::default();
    let stripes: Vec<usize> = (0..engine.stripe_count()).collect();
    buffers.encode(&mut out, &stripes, STRIPES_PER_TASK, |&stripe, batch| {
        engine.with_stripe(stripe, |records| {
            let mut count = 0;
            for (key, record) in records {
                encode_entry(batch, EffectRef::Sku(key, record));
                count += 1;
            }
            count
        })
    })?;
    let orders = engine.order_handles();
    buffers.encode(&mut out, &orders, ORDERS_PER_TASK, |order, batch| {
        encode_entry(batch, EffectRef::Order(&order.lock()));
        1
    })?;

    let mut trailer = Vec::with_capacity(TRAILER_BYTES);
    trailer.extend_from_slice(SNAPSHOT_END_MAGIC);
    trailer.extend_from_slice(&out.entries.to_le_bytes());
    trailer.extend_from_slice(&out.crc.to_le_bytes());
    out.file.write_all(&trailer)?;
    let bytes = out.bytes + TRAILER_BYTES as u64;
    let entries = out.entries;
    let file = out.file.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    drop(file);
    before_publish()?;
    std::fs::rename(&temporary, &path)?;
    sync_dir(dir)?;
    Ok(Written {
        path,
        bytes,
        entries,
    })
}

/// What a snapshot file holds, checked.
pub struct Loaded {
    pub lsn: u64,
    pub entries: u64,
}

/// Read and verify a snapshot, calling `visit` for each effect. Nothing is
/// visited unless the whole file's checksum is right.
pub fn read(path: &Path, visit: impl Fn(Effect) + Sync) -> Result<Loaded, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path, visit)
}

/// `read` of a snapshot's bytes (`path` names it in errors).
pub fn parse(
    bytes: &[u8],
    path: &Path,
    visit: impl Fn(Effect) + Sync,
) -> Result<Loaded, ReadError> {
    let corrupt = |offset: usize, what: &str| ReadError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.to_string(),
    };
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES || &bytes[..4] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a snapshot (bad magic or too short)"));
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_BEFORE_FEED {
        return Err(corrupt(4, "unsupported snapshot version"));
    }
    let trailer_at = bytes.len() - TRAILER_BYTES;
    let trailer = &bytes[trailer_at..];
    if &trailer[..4] != SNAPSHOT_END_MAGIC {
        return Err(corrupt(
            trailer_at,
            "missing end marker (truncated snapshot)",
        ));
    }
    let mut reader = Reader::new(&trailer[4..], trailer_at + 4);
    let (Ok(entries), Ok(crc)) = (reader.u64(), reader.u32()) else {
        return Err(corrupt(trailer_at, "unreadable trailer"));
    };
    if crc32c::crc32c(&bytes[..trailer_at]) != crc {
        // Point at the first entry whose own checksum fails, if any.
        let offset = first_bad_entry(&bytes[..trailer_at]).unwrap_or(trailer_at);
        return Err(corrupt(offset, "checksum mismatch"));
    }
    let mut lsn = [0; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    let lsn = u64::from_le_bytes(lsn);

    // Find every entry's start (a cheap walk over the length fields), then
    // decode and install them in parallel: entries are independent.
    let mut starts = Vec::new();
    let mut offset = HEADER_BYTES;
    while offset < trailer_at {
        starts.push(offset);
        let Some(header) = bytes.get(offset..offset + 4) else {
            return Err(corrupt(offset, "truncated entry header"));
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        offset += ENTRY_HEADER_BYTES + len;
    }
    if offset != trailer_at {
        return Err(corrupt(trailer_at, "last entry runs into the trailer"));
    }
    if starts.len() as u64 != entries {
        return Err(corrupt(
            trailer_at,
            "entry count does not match the trailer",
        ));
    }
    let body = &bytes[..trailer_at];
    starts.par_chunks(ENTRIES_PER_TASK).try_for_each(|chunk| {
        let mut reader = Reader::new(&[], 0);
        for &start in chunk {
            let effect =
                parse_entry(body, start, &mut reader).map_err(|what| corrupt(start, &what))?;
            visit(effect);
        }
        Ok(())
    })?;
    Ok(Loaded { lsn, entries })
}

/// Decode the entry at `offset` with `reader` (reused for its id caches).
fn parse_entry<'b>(
    bytes: &'b [u8],
    offset: usize,
    reader: &mut Reader<'b>,
) -> Result<Effect, String> {
    let header = bytes
        .get(offset..offset + ENTRY_HEADER_BYTES)
        .ok_or("truncated entry header")?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let start = offset + ENTRY_HEADER_BYTES;
    let payload = bytes.get(start..start + len).ok_or("truncated entry")?;
    if crc32c::crc32c(payload) != crc {
        return Err("entry checksum mismatch".into());
    }
    reader.reset(payload, start);
    let effect = reader.effect().map_err(|error| error.to_string())?;
    if !reader.is_empty() {
        return Err("trailing bytes in entry".into());
    }
    Ok(effect)
}

fn first_bad_entry(bytes: &[u8]) -> Option<usize> {
    let mut offset = HEADER_BYTES;
    let mut reader = Reader::new(&[], 0);
    while offset < bytes.len() {
        if parse_entry(bytes, offset, &mut reader).is_err() {
            return Some(offset);
        }
        let len = bytes.get(offset..offset + 4)?;
        offset +=
            ENTRY_HEADER_BYTES + u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    }
    None
}
