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
//! Segment: header `ALJ1` + version (u32) + first LSN (u64), then records
//! `length (u32) | CRC32C over LSN and payload (u32) | LSN (u64) | payload`.
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

pub const SEGMENT_MAGIC: &[u8; 4] = b"ALJ1";
/// 2: orders carry shipments, completion and auto-split links.
/// 3: numbers inside records are varints.
pub const SEGMENT_VERSION: u32 = 3;
pub const SEGMENT_HEADER_BYTES: usize = 16;
pub const RECORD_HEADER_BYTES: usize = 16;
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
    fn append(&self, effects: &[EffectRef<'_>]) {
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
        for effect in effects {
            payload.effect(*effect);
        }
        let payload = payload.bytes;
        self.append_payload(&payload);
        if payload.capacity() <= PAYLOAD_KEPT_BYTES {
            PAYLOAD.set(payload);
        }
    }
}

/// The largest payload buffer a thread keeps for its next record (a FIFO
/// release can write one record of megabytes, once).
const PAYLOAD_KEPT_BYTES: usize = 64 << 10;

impl Journal {
    /// Frame one record (length, CRC32C, LSN, payload) into the pending buffer.
    fn append_payload(&self, payload: &[u8]) {
        let mut pending = self.shared.pending.lock();
        let buffered_before = pending.bytes.len();
        let lsn = pending.next_lsn;
        pending.next_lsn += 1;
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
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    header.extend_from_slice(SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&first_lsn.to_le_bytes());
    file.write_all(&header)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

/// Make a file's creation, rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_loop(shared: &Shared, mut file: File, first_lsn: u64) {
    let mut last_sync = Instant::now();
    let mut unsynced = false;
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
                file.sync_data()?;
                file = create_segment(&shared.dir, first)?;
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
                metrics::histogram!("journal_fsync_seconds")
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
                    metrics::histogram!("journal_batch_records")
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
    /// Bytes of whole, valid records (header included): where to cut.
    pub valid_bytes: usize,
    /// Bytes after the last whole record (a torn write), if any.
    pub torn_bytes: usize,
    /// The LSN after the last record read.
    pub next_lsn: u64,
}

/// Read one segment, calling `visit` for every record in order. In the
/// last segment an unreadable tail with no valid record after it is a torn
/// write (reported in `SegmentEnd`); anywhere else damage is corruption.
pub fn read_segment(
    path: &Path,
    is_last: bool,
    mut visit: impl FnMut(u64, Vec<Effect>) -> Result<(), ReadError>,
) -> Result<SegmentEnd, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let corrupt = |offset: usize, what: String| ReadError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let first_lsn = read_segment_header(&bytes).map_err(|what| corrupt(0, what))?;
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut next_lsn = first_lsn;
    while offset < bytes.len() {
        match parse_record(&bytes, offset, next_lsn) {
            Ok((effects, end)) => {
                visit(next_lsn, effects)?;
                next_lsn += 1;
                offset = end;
            }
            Err(what) => {
                if is_last && !any_valid_record_after(&bytes, offset + 1, next_lsn) {
                    return Ok(SegmentEnd {
                        valid_bytes: offset,
                        torn_bytes: bytes.len() - offset,
                        next_lsn,
                    });
                }
                return Err(corrupt(offset, what));
            }
        }
    }
    Ok(SegmentEnd {
        valid_bytes: offset,
        torn_bytes: 0,
        next_lsn,
    })
}

/// The first LSN a segment header announces.
pub fn read_segment_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < SEGMENT_HEADER_BYTES || &bytes[..4] != SEGMENT_MAGIC {
        return Err("not a journal segment (bad magic or short header)".into());
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != SEGMENT_VERSION {
        return Err(format!("unsupported journal version {version}"));
    }
    let mut lsn = [0; 8];
    lsn.copy_from_slice(&bytes[8..16]);
    Ok(u64::from_le_bytes(lsn))
}

/// One record at `offset` with LSN `expected_lsn`: its effects and where it ends.
fn parse_record(
    bytes: &[u8],
    offset: usize,
    expected_lsn: u64,
) -> Result<(Vec<Effect>, usize), String> {
    let header = bytes
        .get(offset..offset + RECORD_HEADER_BYTES)
        .ok_or("truncated record header")?;
    let mut reader = Reader::new(header, offset);
    let (len, crc, lsn) = (|| -> Result<_, CodecError> {
        Ok((reader.u32()? as usize, reader.u32()?, reader.u64()?))
    })()
    .map_err(|error| error.to_string())?;
    if len > RECORD_BYTES_MAX {
        return Err(format!("record length {len} is implausible"));
    }
    let start = offset + RECORD_HEADER_BYTES;
    let payload = bytes.get(start..start + len).ok_or("truncated record")?;
    if crc32c::crc32c_append(crc32c::crc32c(&lsn.to_le_bytes()), payload) != crc {
        return Err("record checksum mismatch".into());
    }
    if lsn != expected_lsn {
        return Err(format!("record has LSN {lsn}, expected {expected_lsn}"));
    }
    let mut reader = Reader::new(payload, start);
    let mut effects = Vec::new();
    while !reader.is_empty() {
        effects.push(reader.effect().map_err(|error| error.to_string())?);
    }
    Ok((effects, start + len))
}

/// Whether a valid record with an LSN at or after `lsn` starts anywhere at
/// or after `from` (then the damage before it is not a torn tail).
fn any_valid_record_after(bytes: &[u8], from: usize, lsn: u64) -> bool {
    (from..bytes.len().saturating_sub(RECORD_HEADER_BYTES - 1)).any(|offset| {
        let Some(header) = bytes.get(offset..offset + RECORD_HEADER_BYTES) else {
            return false;
        };
        let mut reader = Reader::new(header, offset);
        let (Ok(len), Ok(crc), Ok(found)) = (reader.u32(), reader.u32(), reader.u64()) else {
            return false;
        };
        let start = offset + RECORD_HEADER_BYTES;
        found >= lsn
            && (len as usize) <= RECORD_BYTES_MAX
            && bytes
                .get(start..start + len as usize)
                .is_some_and(|payload| {
                    crc32c::crc32c_append(crc32c::crc32c(&found.to_le_bytes()), payload) == crc
                })
    })
}
