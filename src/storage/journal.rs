//! The journal: every change, as a checksummed record, in log sequence
//! number (LSN) order, in segment files `journal-<first LSN>.log`.
//!
//! Appending only copies the encoded record into a memory buffer (it runs
//! inside the engine's critical sections). A writer thread, woken by the
//! first request that waits for its records (or after a second at most),
//! takes whatever has accumulated, writes it with one `write`, and, by
//! policy, syncs it with one `fdatasync`: concurrent requests share one
//! sync (group commit). Requests wait for their records to be durable
//! before they are answered.
//!
//! Segment: header `ALJ1` + version (u32) + first LSN (u64) + CRC32C of
//! those 16 bytes (u32), then records
//! `length (u32) | CRC32C over LSN and payload (u32) | LSN (u64) | payload`.
//! When the next segment has been created (rotation, or a restart), the
//! segment is sealed with a last frame `u32::MAX | CRC32C | next first LSN`:
//! a sealed segment promises that its successor exists, so a deleted newest
//! segment is noticed. Version 3 segments (a 16-byte header without the
//! checksum, never sealed) are still read.
//!
//! If a write or sync fails the journal stops for good: waiters get an
//! error and no later change is acknowledged (a failed fsync cannot be
//! retried safely, the kernel may have dropped the dirty pages).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::codec::{CodecError, Reader, Writer};
use crate::engine::{ChangeLog, Effect, EffectRef};
use crate::model::OrderEvent;

pub const SEGMENT_MAGIC: &[u8; 4] = b"ALJ1";
/// 2: orders carry shipments, completion and auto-split links.
/// 3: numbers inside records are varints.
/// 4: the header carries its own checksum; segments are sealed.
pub const SEGMENT_VERSION: u32 = 4;
/// The oldest version still read (its records are framed the same way).
const SEGMENT_VERSION_UNSEALED: u32 = 3;
pub const SEGMENT_HEADER_BYTES: usize = 20;
const SEGMENT_HEADER_BYTES_UNSEALED: usize = 16;
pub const RECORD_HEADER_BYTES: usize = 16;
/// The length field of a seal frame: no record is this long.
const SEAL_MARK: u32 = u32::MAX;
/// The append buffer's starting capacity.
const BUFFER_BYTES: usize = 1 << 20;
/// Largest record payload the reader accepts (a full FIFO release of a big
/// merchant fits; a corrupt length cannot make it allocate more).
pub const RECORD_BYTES_MAX: usize = 256 << 20;

/// When a written record counts as durable (like Redis' `appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After `fdatasync`: an acknowledged change survives a power loss.
    Always,
    /// After `write`; synced once a second: survives `kill -9`, may lose
    /// the last second on power loss.
    EverySecond,
    /// After `write`; the OS syncs when it likes: survives `kill -9` only.
    Off,
}

/// How far the journal is durable: every LSN below `next` is (by the
/// policy's meaning), every LSN below `synced` is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    next: u64,
    synced: u64,
    failed: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the journal failed to write or sync; the service no longer acknowledges changes")]
pub struct JournalFailed;

pub struct Journal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The next LSN to be appended (read without the lock by waiters).
    appended_next: AtomicU64,
    durable: watch::Sender<Durable>,
    policy: FsyncPolicy,
    dir: PathBuf,
}

struct Pending {
    bytes: Vec<u8>,
    next_lsn: u64,
    /// Set by `rotate`: the first LSN of the next segment, and the bytes
    /// that still belong to the current one.
    rotation: Option<(u64, Vec<u8>)>,
    /// Someone waits for everything appended so far to be fsynced.
    sync_requested: bool,
    stopping: bool,
}

impl Journal {
    /// Start a new segment at `next_lsn` in `dir` and the writer thread.
    pub fn start(dir: &Path, next_lsn: u64, policy: FsyncPolicy) -> std::io::Result<Arc<Self>> {
        let file = create_segment(dir, next_lsn)?;
        let (durable, _) = watch::channel(Durable {
            next: next_lsn,
            synced: next_lsn,
            failed: false,
        });
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(BUFFER_BYTES),
                next_lsn,
                rotation: None,
                sync_requested: false,
                stopping: false,
            }),
            wake: Condvar::new(),
            appended_next: AtomicU64::new(next_lsn),
            durable,
            policy,
            dir: dir.to_path_buf(),
        });
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(&writer_shared, file, next_lsn))?;
        Ok(Arc::new(Self {
            shared,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The LSN the next appended record will get: everything appended so
    /// far is below it.
    pub fn appended_next(&self) -> u64 {
        self.shared.appended_next.load(Ordering::Acquire)
    }

    /// Wait until every record below `next` is durable.
    pub async fn wait_durable(&self, next: u64) -> Result<(), JournalFailed> {
        let mut durable = self.shared.durable.subscribe();
        let mut writer_woken = false;
        loop {
            let state = *durable.borrow_and_update();
            if state.failed {
                return Err(JournalFailed);
            }
            if state.next >= next {
                return Ok(());
            }
            if !writer_woken {
                // Appends do not wake the writer (see `append`). A writer
                // that is busy misses this, but then finds the bytes when
                // it comes back to the buffer.
                self.shared.wake.notify_one();
                writer_woken = true;
            }
            if durable.changed().await.is_err() {
                return Err(JournalFailed);
            }
        }
    }

    /// Write and fsync everything appended so far, whatever the policy,
    /// and wait for it (blocking: for snapshots, off the async runtime).
    pub fn sync_blocking(&self) -> Result<(), JournalFailed> {
        let target = {
            let mut pending = self.shared.pending.lock();
            pending.sync_requested = true;
            pending.next_lsn
        };
        self.shared.wake.notify_one();
        loop {
            let state = *self.shared.durable.borrow();
            if state.failed {
                return Err(JournalFailed);
            }
            if state.synced >= target {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn has_failed(&self) -> bool {
        self.shared.durable.borrow().failed
    }

    /// Completes once the journal has failed (never, for a healthy one).
    pub async fn failed(&self) {
        let mut durable = self.shared.durable.subscribe();
        if durable.wait_for(|state| state.failed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Start a new segment: records appended from now on go to
    /// `journal-<returned LSN>.log`. A snapshot taken after this call needs
    /// only the journal from the returned LSN on.
    pub fn rotate(&self) -> u64 {
        let mut pending = self.shared.pending.lock();
        if let Some((first, _)) = &pending.rotation {
            // A rotation the writer has not done yet: starting the new
            // snapshot from it is just as correct (replaying more is harmless).
            return *first;
        }
        let first = pending.next_lsn;
        let old = std::mem::take(&mut pending.bytes);
        pending.rotation = Some((first, old));
        drop(pending);
        self.shared.wake.notify_one();
        first
    }

    /// Write and sync what is pending, then stop the writer.
    pub fn close(&self) {
        self.shared.pending.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl ChangeLog for Journal {
    fn append(
        &self,
        effects: &[EffectRef<'_>],
        events: &[OrderEvent],
        number: &mut dyn FnMut(u64) -> u64,
    ) {
        thread_local! {
            /// Each thread encodes its records in one buffer it keeps: a
            /// fresh one per record was reallocated several times on the
            /// way to a record's size.
            static PAYLOAD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
        }
        let mut payload = Writer {
            bytes: PAYLOAD.take(),
        };
        payload.bytes.clear();
        if !events.is_empty() {
            payload.events(events);
        }
        for effect in effects {
            payload.effect(*effect);
        }
        let mut payload = payload.bytes;
        // The events' first sequence is known only in log order.
        let number = (!events.is_empty()).then_some(number);
        self.append_payload(&mut payload, number);
        if payload.capacity() <= PAYLOAD_KEPT_BYTES {
            PAYLOAD.set(payload);
        }
    }
}

/// The largest payload buffer a thread keeps for its next record (a FIFO
/// release can write one record of megabytes, once).
const PAYLOAD_KEPT_BYTES: usize = 64 << 10;

/// Where a payload that starts with events holds their first sequence
/// (after `codec::TAG_EVENTS`).
const EVENTS_FIRST_SEQUENCE: std::ops::Range<usize> = 1..9;

impl Journal {
    /// Frame one record (length, CRC32C, LSN, payload) into the pending
    /// buffer. A payload that starts with events gets their first sequence
    /// from `number`, called with the record's LSN.
    fn append_payload(&self, payload: &mut [u8], number: Option<&mut dyn FnMut(u64) -> u64>) {
        let mut pending = self.shared.pending.lock();
        let buffered_before = pending.bytes.len();
        let lsn = pending.next_lsn;
        pending.next_lsn += 1;
        if let Some(number) = number {
            payload[EVENTS_FIRST_SEQUENCE].copy_from_slice(&number(lsn).to_le_bytes());
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&lsn.to_le_bytes()), payload);
        pending
            .bytes
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        pending.bytes.extend_from_slice(&crc.to_le_bytes());
        pending.bytes.extend_from_slice(&lsn.to_le_bytes());
        pending.bytes.extend_from_slice(payload);
        let buffered_now = pending.bytes.len();
        self.shared.appended_next.store(lsn + 1, Ordering::Release);
        drop(pending);
        // The writer is woken by whoever waits for these bytes
        // (`wait_durable`), so a batch of a thousand orders wakes it once,
        // not once per record. Only a buffer grown past its usual size is
        // handed over without waiting for that.
        if buffered_before < BUFFER_BYTES && buffered_now >= BUFFER_BYTES {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

pub fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("journal-{first_lsn:020}.log"))
}

fn create_segment(dir: &Path, first_lsn: u64) -> std::io::Result<File> {
    let path = segment_path(dir, first_lsn);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    file.write_all(&segment_header(first_lsn))?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

fn segment_header(first_lsn: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    header.extend_from_slice(SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&first_lsn.to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(&header).to_le_bytes());
    header
}

/// The frame that seals a segment whose successor starts at `next_first`.
fn seal_frame(next_first: u64) -> [u8; RECORD_HEADER_BYTES] {
    let mut frame = [0; RECORD_HEADER_BYTES];
    frame[..4].copy_from_slice(&SEAL_MARK.to_le_bytes());
    frame[8..].copy_from_slice(&next_first.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// Seal the segment at `path`: its successor, starting at `next_first`,
/// exists on disk. Only for a segment no writer appends to any more.
pub fn seal_segment(path: &Path, next_first: u64) -> std::io::Result<()> {
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(&seal_frame(next_first))?;
    file.sync_data()
}

/// Make a file's creation, rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_loop(shared: &Shared, mut file: File, first_lsn: u64) {
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    // A rotation with nothing appended since the last one keeps this segment.
    let mut segment_first = first_lsn;
    let mut published = Durable {
        next: first_lsn,
        synced: first_lsn,
        failed: false,
    };
    // Two buffers take turns: appenders fill one while this thread writes
    // the other. A fresh megabyte allocated each round came as new pages the
    // kernel had to zero: about half of this thread's time under load (perf).
    let mut spare = Vec::with_capacity(BUFFER_BYTES);
    loop {
        let (bytes, rotation, next, sync_requested, stopping) = {
            let mut pending = shared.pending.lock();
            while pending.bytes.is_empty()
                && pending.rotation.is_none()
                && !pending.sync_requested
                && !pending.stopping
            {
                let timed_out = shared
                    .wake
                    .wait_for(&mut pending, Duration::from_secs(1))
                    .timed_out();
                if timed_out && unsynced {
                    break;
                }
            }
            let bytes = std::mem::replace(&mut pending.bytes, std::mem::take(&mut spare));
            let sync_requested = std::mem::take(&mut pending.sync_requested);
            (
                bytes,
                pending.rotation.take(),
                pending.next_lsn,
                sync_requested,
                pending.stopping,
            )
        };
        let mut synced = false;
        let result = (|| -> std::io::Result<()> {
            if let Some((first, old)) = rotation {
                file.write_all(&old)?;
                if first != segment_first {
                    // The new segment first: a crash between the two leaves
                    // an unsealed segment, which is legal, while a seal
                    // always names a segment that was complete on disk.
                    file.sync_data()?;
                    let next = create_segment(&shared.dir, first)?;
                    file.write_all(&seal_frame(first))?;
                    file.sync_data()?;
                    file = next;
                    segment_first = first;
                }
            }
            file.write_all(&bytes)?;
            let sync_now = sync_requested
                || stopping
                || match shared.policy {
                    FsyncPolicy::Always => true,
                    // Also when woken only because a second passed with unsynced data.
                    FsyncPolicy::EverySecond => last_sync.elapsed() >= Duration::from_secs(1),
                    FsyncPolicy::Off => false,
                };
            if sync_now {
                let started = Instant::now();
                file.sync_data()?;
                metrics::histogram!(crate::telemetry::names::JOURNAL_FSYNC_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                last_sync = Instant::now();
                unsynced = false;
                synced = true;
            } else {
                unsynced = shared.policy == FsyncPolicy::EverySecond;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                if next > published.next {
                    metrics::histogram!(crate::telemetry::names::JOURNAL_BATCH_RECORDS)
                        .record((next - published.next) as f64);
                }
                let state = Durable {
                    next,
                    synced: if synced { next } else { published.synced },
                    failed: false,
                };
                if state != published {
                    published = state;
                    shared.durable.send_replace(state);
                }
            }
            Err(error) => {
                tracing::error!(%error, "journal write or sync failed; no further change will be acknowledged");
                published.failed = true;
                shared.durable.send_replace(published);
                return;
            }
        }
        if stopping {
            return;
        }
        spare = bytes;
        spare.clear();
        // A burst may have grown it far; do not keep all of that for ever.
        spare.shrink_to(16 * BUFFER_BYTES);
    }
}

// ---------------------------------------------------------------- reading

/// Why a segment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is corrupt at byte {offset}: {what}")]
    Corrupt {
        path: PathBuf,
        offset: usize,
        what: String,
    },
}

/// How a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub struct SegmentEnd {
    /// Bytes of the header and whole, valid records: where to cut.
    pub valid_bytes: usize,
    /// The segment ends in a torn write from `valid_bytes` on; from byte 0
    /// when the header itself is incomplete.
    pub torn: bool,
    /// The LSN after the last record read.
    pub next_lsn: u64,
    /// The first LSN of the segment the seal says follows, if sealed.
    pub sealed_to: Option<u64>,
}

/// One frame read at an offset.
pub(super) enum Frame<'b> {
    Record {
        lsn: u64,
        payload: &'b [u8],
        end: usize,
    },
    Seal {
        next_first: u64,
        end: usize,
    },
}

/// Read the segment `journal-<first_lsn>.log` at `path`, calling `visit`
/// for every record in order.
///
/// Only the end of the last segment may be torn: a frame that does not
/// check out with no valid frame anywhere after it (a write cut short), or
/// a header shorter than a header (a crash, or a full disk, between
/// creating the file and writing it). Anything else is corruption: a
/// damaged header, a header that disagrees with the file name, a bad frame
/// with a valid one after it, a record out of LSN order, bytes after a seal.
pub fn read_segment(
    path: &Path,
    first_lsn: u64,
    is_last: bool,
    visit: impl FnMut(u64, Vec<Effect>) -> Result<(), ReadError>,
) -> Result<SegmentEnd, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_segment(&bytes, path, first_lsn, is_last, visit)
}

/// `read_segment` of a segment's bytes (`path` names it in errors).
pub fn parse_segment(
    bytes: &[u8],
    path: &Path,
    first_lsn: u64,
    is_last: bool,
    mut visit: impl FnMut(u64, Vec<Effect>) -> Result<(), ReadError>,
) -> Result<SegmentEnd, ReadError> {
    let corrupt = |offset: usize, what: String| ReadError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let header_bytes = match read_segment_header(bytes) {
        Ok((announced, header_bytes)) if announced == first_lsn => header_bytes,
        Ok((announced, _)) => {
            return Err(corrupt(
                8,
                format!("the header says first LSN {announced}, the file name {first_lsn}"),
            ))
        }
        Err(HeaderError::Incomplete) if is_last => {
            return Ok(SegmentEnd {
                valid_bytes: 0,
                torn: true,
                next_lsn: first_lsn,
                sealed_to: None,
            })
        }
        Err(error) => return Err(corrupt(0, error.to_string())),
    };
    let mut offset = header_bytes;
    let mut next_lsn = first_lsn;
    while offset < bytes.len() {
        match read_frame(bytes, offset) {
            Ok(Frame::Record { lsn, payload, end }) => {
                if lsn != next_lsn {
                    return Err(corrupt(
                        offset,
                        format!("record has LSN {lsn}, expected {next_lsn}"),
                    ));
                }
                let mut reader = Reader::new(payload, offset + RECORD_HEADER_BYTES);
                let mut effects = Vec::new();
                while !reader.is_empty() {
                    // A checksummed record that does not decode was written
                    // so: not a torn write.
                    effects.push(
                        reader
                            .effect()
                            .map_err(|error| corrupt(offset, error.to_string()))?,
                    );
                }
                visit(lsn, effects)?;
                next_lsn += 1;
                offset = end;
            }
            Ok(Frame::Seal { next_first, end }) => {
                if next_first != next_lsn {
                    return Err(corrupt(
                        offset,
                        format!("sealed to LSN {next_first} after records up to {next_lsn}"),
                    ));
                }
                if end != bytes.len() {
                    return Err(corrupt(end, "bytes after the segment's seal".into()));
                }
                return Ok(SegmentEnd {
                    valid_bytes: end,
                    torn: false,
                    next_lsn,
                    sealed_to: Some(next_first),
                });
            }
            Err(what) => {
                if is_last && !any_valid_frame_after(bytes, offset + 1) {
                    return Ok(SegmentEnd {
                        valid_bytes: offset,
                        torn: true,
                        next_lsn,
                        sealed_to: None,
                    });
                }
                return Err(corrupt(offset, what));
            }
        }
    }
    Ok(SegmentEnd {
        valid_bytes: offset,
        torn: false,
        next_lsn,
        sealed_to: None,
    })
}

/// Why a segment header could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("incomplete segment header")]
    Incomplete,
    #[error("not a journal segment (bad magic)")]
    BadMagic,
    #[error("unsupported journal version {0}")]
    Version(u32),
    #[error("segment header checksum mismatch")]
    Checksum,
}

/// The first LSN a segment header announces, and the header's length.
pub fn read_segment_header(bytes: &[u8]) -> Result<(u64, usize), HeaderError> {
    let magic = &bytes[..bytes.len().min(SEGMENT_MAGIC.len())];
    if magic != &SEGMENT_MAGIC[..magic.len()] {
        return Err(HeaderError::BadMagic);
    }
    let field = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(version) = field(4) else {
        return Err(HeaderError::Incomplete);
    };
    let header_bytes = match version {
        SEGMENT_VERSION => SEGMENT_HEADER_BYTES,
        SEGMENT_VERSION_UNSEALED => SEGMENT_HEADER_BYTES_UNSEALED,
        other => return Err(HeaderError::Version(other)),
    };
    if bytes.len() < header_bytes {
        return Err(HeaderError::Incomplete);
    }
    if version == SEGMENT_VERSION
        && field(16) != Some(crc32c::crc32c(&bytes[..SEGMENT_HEADER_BYTES_UNSEALED]))
    {
        return Err(HeaderError::Checksum);
    }
    let mut lsn = [0; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    Ok((u64::from_le_bytes(lsn), header_bytes))
}

/// The frame at `offset`, if its checksum is right.
pub(super) fn read_frame(bytes: &[u8], offset: usize) -> Result<Frame<'_>, String> {
    let header = bytes
        .get(offset..offset + RECORD_HEADER_BYTES)
        .ok_or("truncated record header")?;
    let mut reader = Reader::new(header, offset);
    let (len, crc, lsn) =
        (|| -> Result<_, CodecError> { Ok((reader.u32()?, reader.u32()?, reader.u64()?)) })()
            .map_err(|error| error.to_string())?;
    let end = offset + RECORD_HEADER_BYTES;
    if len == SEAL_MARK {
        if seal_frame(lsn)[4..8] != crc.to_le_bytes() {
            return Err("seal checksum mismatch".into());
        }
        return Ok(Frame::Seal {
            next_first: lsn,
            end,
        });
    }
    let len = len as usize;
    if len > RECORD_BYTES_MAX {
        return Err(format!("record length {len} is implausible"));
    }
    let payload = bytes.get(end..end + len).ok_or("truncated record")?;
    if crc32c::crc32c_append(crc32c::crc32c(&lsn.to_le_bytes()), payload) != crc {
        return Err("record checksum mismatch".into());
    }
    Ok(Frame::Record {
        lsn,
        payload,
        end: end + len,
    })
}

/// Whether a valid frame (of any LSN) starts anywhere at or after `from`:
/// then the damage before it is not a torn tail.
fn any_valid_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len()).any(|offset| read_frame(bytes, offset).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The segment header and the seal frame, written down: a change to
    /// either fails here until `SEGMENT_VERSION` goes up with it.
    #[test]
    fn the_framing_is_pinned() {
        assert_eq!(hex(&segment_header(7)), PINNED_HEADER);
        assert_eq!(hex(&seal_frame(9)), PINNED_SEAL);
        assert_eq!(
            read_segment_header(&segment_header(7)),
            Ok((7, SEGMENT_HEADER_BYTES))
        );
    }

    const PINNED_HEADER: &str = "414c4a31040000000700000000000000b01e5192";
    const PINNED_SEAL: &str = "ffffffff0286f8f40900000000000000";
}
