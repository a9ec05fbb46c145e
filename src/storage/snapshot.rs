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

use super::codec::{Reader, Writer};
use super::journal::{sync_dir, ReadError};
use crate::engine::{Effect, EffectRef, Engine};

pub const SNAPSHOT_MAGIC: &[u8; 4] = b"ALS1";
pub const SNAPSHOT_END_MAGIC: &[u8; 4] = b"ALSE";
pub const SNAPSHOT_VERSION: u32 = 1;
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

/// Append one framed entry to `batch`.
fn encode_entry(batch: &mut Vec<u8>, effect: EffectRef<'_>) {
    let mut writer = Writer::default();
    writer.effect(effect);
    batch.extend_from_slice(&(writer.bytes.len() as u32).to_le_bytes());
    batch.extend_from_slice(&crc32c::crc32c(&writer.bytes).to_le_bytes());
    batch.extend_from_slice(&writer.bytes);
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
    let mut count = 0;
    for merchant in engine.merchants() {
        encode_entry(&mut batch, EffectRef::Merchant(&merchant));
        count += 1;
    }
    out.entries(&batch, count)?;
    for stripe in 0..engine.stripe_count() {
        batch.clear();
        let count = engine.with_stripe(stripe, |records| {
            let mut count = 0;
            for (key, record) in records {
                encode_entry(&mut batch, EffectRef::Sku(key, record));
                count += 1;
            }
            count
        });
        out.entries(&batch, count)?;
    }
    batch.clear();
    let mut count = 0;
    for order in engine.order_handles() {
        let order = order.lock();
        encode_entry(&mut batch, EffectRef::Order(&order));
        drop(order);
        count += 1;
        if batch.len() >= 1 << 20 {
            out.entries(&batch, count)?;
            batch.clear();
            count = 0;
        }
    }
    out.entries(&batch, count)?;

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
pub fn read(path: &Path, mut visit: impl FnMut(Effect)) -> Result<Loaded, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |offset: usize, what: &str| ReadError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.to_string(),
    };
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES || &bytes[..4] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a snapshot (bad magic or too short)"));
    }
    if u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) != SNAPSHOT_VERSION {
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

    let mut offset = HEADER_BYTES;
    let mut seen = 0;
    while offset < trailer_at {
        let (effect, end) =
            parse_entry(&bytes[..trailer_at], offset).map_err(|what| corrupt(offset, &what))?;
        visit(effect);
        seen += 1;
        offset = end;
    }
    if seen != entries {
        return Err(corrupt(
            trailer_at,
            "entry count does not match the trailer",
        ));
    }
    Ok(Loaded { lsn, entries })
}

fn parse_entry(bytes: &[u8], offset: usize) -> Result<(Effect, usize), String> {
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
    let mut reader = Reader::new(payload, start);
    let effect = reader.effect().map_err(|error| error.to_string())?;
    if !reader.is_empty() {
        return Err("trailing bytes in entry".into());
    }
    Ok((effect, start + len))
}

fn first_bad_entry(bytes: &[u8]) -> Option<usize> {
    let mut offset = HEADER_BYTES;
    while offset < bytes.len() {
        match parse_entry(bytes, offset) {
            Ok((_, end)) => offset = end,
            Err(_) => return Some(offset),
        }
    }
    None
}
