//! The data directory: recovery at start-up, snapshots, and what is kept.
//!
//! Files: `snapshot-<LSN>.snap` and `journal-<first LSN>.log`. Start-up
//! loads the newest snapshot, replays every journal record from its LSN
//! on, cuts a torn tail off the last segment, checks the invariants, and
//! only then starts a new segment and attaches the journal to the engine.
//!
//! Retention: the newest two snapshots, and the journal from the older of
//! them on. So an operator can fall back to the previous snapshot
//! (`--fallback-to-previous-snapshot`) without losing a record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::journal::{self, FsyncPolicy, Journal, ReadError, SegmentEnd};
use super::snapshot;
use crate::engine::Engine;
use crate::telemetry::names;

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Load the previous snapshot when the newest one is corrupt.
    pub fallback_to_previous_snapshot: bool,
    /// Keep journal segments written within this long even once a
    /// snapshot makes them unneeded for recovery, so change-feed
    /// subscribers can resume from further back (RULES §13).
    pub journal_retention: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(
        "journal records {from}..{to} are missing ({after}segment {path} starts after them); \
         refusing to start with a gap",
        after = .previous.as_ref().map(|previous| format!("{} ends before them, ", previous.display())).unwrap_or_default()
    )]
    Gap {
        /// The segment read before the gap, if any.
        previous: Option<PathBuf>,
        path: PathBuf,
        from: u64,
        to: u64,
    },
    #[error(
        "journal segment {path} starts at LSN {first}, inside the previous segment \
         (which ends at {previous_end}); refusing to start"
    )]
    Overlap {
        path: PathBuf,
        first: u64,
        previous_end: u64,
    },
    #[error(
        "journal segment {path} is missing ({because}); refusing to start without its records"
    )]
    MissingSegment { path: PathBuf, because: String },
    #[error(
        "data dir {path} is in use by another process{}; \
         two servers on one data directory would corrupt it",
        .pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("recovered state breaks invariants; refusing to serve:\n{}", .0.join("\n"))]
    Invariants(Vec<String>),
}

/// What recovery found and did.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The snapshot loaded and its LSN.
    pub snapshot: Option<(PathBuf, u64)>,
    pub snapshot_entries: u64,
    /// Journal records applied on top of the snapshot.
    pub records_replayed: u64,
    /// A torn write at the end of the last segment: the segment and the
    /// offset from which its bytes were moved aside (`<segment>.torn-<offset>`).
    pub torn_tail: Option<(PathBuf, usize)>,
    /// The last segment, if it is still there and not sealed: the next
    /// segment's creation seals it.
    pub open_segment: Option<(u64, PathBuf)>,
    /// The LSN the next change gets.
    pub next_lsn: u64,
    /// Corrupt snapshots skipped because of the fallback flag.
    pub skipped_snapshots: Vec<String>,
}

/// What a snapshot produced.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub duration: Duration,
}

pub struct Store {
    dir: PathBuf,
    journal: Arc<Journal>,
    /// One snapshot at a time.
    snapshotting: Mutex<()>,
    /// The data directory's lock, held until `close`.
    lock: Mutex<Option<std::fs::File>>,
    journal_retention: Duration,
}

impl Store {
    /// Recover `engine` (which must be empty) from `config.dir` and attach
    /// a journal to it.
    pub fn open(config: &StoreConfig, engine: &Engine) -> Result<(Self, Recovery), OpenError> {
        let dir = &config.dir;
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: dir.clone(),
            source,
        })?;
        let lock = lock(dir)?;
        remove_temporaries(dir)?;
        let recovery = recover(dir, engine, config.fallback_to_previous_snapshot, true)?;
        let io = |source| OpenError::Io {
            path: dir.clone(),
            source,
        };
        let journal = Journal::start(dir, recovery.next_lsn, config.fsync).map_err(io)?;
        if let Some((first, path)) = &recovery.open_segment {
            // Its successor now exists (a segment with no record is
            // recreated in place instead).
            if *first != recovery.next_lsn {
                journal::seal_segment(path, recovery.next_lsn).map_err(io)?;
            }
        }
        if engine.attach_change_log(journal.clone()).is_err() {
            unreachable!("a freshly recovered engine has no change log yet");
        }
        if let Some((path, _)) = &recovery.snapshot {
            if let Ok(file) = std::fs::metadata(path) {
                metrics::gauge!(names::SNAPSHOT_BYTES).set(file.len() as f64);
            }
        }
        let store = Self {
            dir: dir.clone(),
            journal,
            snapshotting: Mutex::new(()),
            lock: Mutex::new(Some(lock)),
            journal_retention: config.journal_retention,
        };
        Ok((store, recovery))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Write a snapshot now, then drop what retention no longer needs.
    /// Allocation goes on meanwhile (see `snapshot.rs`).
    pub fn snapshot(&self, engine: &Engine) -> std::io::Result<SnapshotInfo> {
        let _one_at_a_time = self.snapshotting.lock();
        let started = Instant::now();
        let lsn = self.journal.rotate();
        let written = snapshot::write(engine, &self.dir, lsn, || {
            // Every change the copy may have seen must be in the journal on
            // disk before the snapshot can be the one recovery picks.
            self.journal.sync_blocking().map_err(std::io::Error::other)
        })?;
        self.apply_retention()?;
        metrics::histogram!(names::SNAPSHOT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::gauge!(names::SNAPSHOT_BYTES).set(written.bytes as f64);
        Ok(SnapshotInfo {
            path: written.path,
            bytes: written.bytes,
            duration: started.elapsed(),
        })
    }

    /// Keep the newest two snapshots and the journal from the older one on,
    /// and any segment written within `journal_retention`.
    fn apply_retention(&self) -> std::io::Result<()> {
        let snapshots = list(&self.dir, "snapshot-", ".snap")?;
        if snapshots.len() < 2 {
            return Ok(());
        }
        let keep_from = snapshots[snapshots.len() - 2].0;
        for (_, path) in &snapshots[..snapshots.len() - 2] {
            std::fs::remove_file(path)?;
        }
        let segments = list(&self.dir, "journal-", ".log")?;
        for pair in segments.windows(2) {
            // Every record of a segment is below the next segment's first LSN.
            if pair[1].0 <= keep_from && !self.written_recently(&pair[0].1)? {
                std::fs::remove_file(&pair[0].1)?;
            }
        }
        journal::sync_dir(&self.dir)
    }

    fn written_recently(&self, path: &Path) -> std::io::Result<bool> {
        if self.journal_retention.is_zero() {
            return Ok(false);
        }
        let modified = std::fs::metadata(path)?.modified()?;
        Ok(modified.elapsed().unwrap_or_default() < self.journal_retention)
    }

    /// Stop the journal (pending records are written and synced) and let
    /// another process have the data directory.
    pub fn close(&self) {
        self.journal.close();
        self.lock.lock().take();
    }
}

/// Load the newest usable snapshot into `engine` and replay the journal.
/// With `repair`, a torn tail is cut off the last segment; without it the
/// files are only read (for `inspect`).
pub fn recover(
    dir: &Path,
    engine: &Engine,
    fallback: bool,
    repair: bool,
) -> Result<Recovery, OpenError> {
    let io = |source| OpenError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let snapshots = list(dir, "snapshot-", ".snap").map_err(io)?;
    let segments = list(dir, "journal-", ".log").map_err(io)?;
    let mut recovery = Recovery::default();

    for (position, (_, path)) in snapshots.iter().rev().enumerate() {
        match snapshot::read(path, |effect| engine.restore(effect)) {
            Ok(loaded) => {
                recovery.snapshot = Some((path.clone(), loaded.lsn));
                recovery.snapshot_entries = loaded.entries;
                recovery.next_lsn = loaded.lsn;
                break;
            }
            // The checksum is verified before anything is restored, so a
            // refused snapshot left the engine empty.
            Err(error) if fallback && position == 0 => {
                tracing::warn!(%error, "newest snapshot is corrupt; falling back to the previous one");
                recovery.skipped_snapshots.push(error.to_string());
            }
            Err(error) => return Err(error.into()),
        }
    }

    let start = recovery.next_lsn;
    // The segment read before, and how it ended.
    let mut previous: Option<(&PathBuf, SegmentEnd)> = None;
    for (index, (first, path)) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        match &previous {
            // Segments continue each other exactly, LSN for LSN.
            Some((previous, end)) if *first != end.next_lsn => {
                return Err(if *first > end.next_lsn {
                    OpenError::Gap {
                        previous: Some((*previous).clone()),
                        path: path.clone(),
                        from: end.next_lsn,
                        to: *first,
                    }
                } else {
                    OpenError::Overlap {
                        path: path.clone(),
                        first: *first,
                        previous_end: end.next_lsn,
                    }
                });
            }
            None if *first > start => {
                return Err(OpenError::Gap {
                    previous: None,
                    path: path.clone(),
                    from: start,
                    to: *first,
                })
            }
            _ => {}
        }
        let mut replayed = 0;
        let end = journal::read_segment(path, *first, is_last, |lsn, effects| {
            if lsn >= start {
                for effect in effects {
                    engine.restore(effect);
                }
                replayed += 1;
            }
            Ok(())
        })?;
        recovery.records_replayed += replayed;
        if end.torn {
            if end.valid_bytes == 0 {
                // An incomplete header. A seal or a snapshot is written only
                // after the header was on disk: then it is damage.
                let vouched = previous
                    .as_ref()
                    .is_some_and(|(_, end)| end.sealed_to == Some(*first))
                    || recovery
                        .snapshot
                        .as_ref()
                        .is_some_and(|(_, lsn)| lsn == first);
                if vouched {
                    return Err(OpenError::Read(ReadError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        what: "incomplete header in a segment a seal or snapshot vouches for"
                            .into(),
                    }));
                }
            }
            recovery.torn_tail = Some((path.clone(), end.valid_bytes));
        }
        // A segment torn from byte 0 goes aside whole: not one to seal.
        if end.valid_bytes > 0 {
            recovery.open_segment = end.sealed_to.is_none().then(|| (*first, path.clone()));
        }
        if let Some(missing) = end.sealed_to.filter(|_| is_last) {
            return Err(OpenError::MissingSegment {
                path: journal::segment_path(dir, missing),
                because: format!("{} is sealed to it", path.display()),
            });
        }
        previous = Some((path, end));
    }
    if let Some((snapshot, lsn)) = &recovery.snapshot {
        // Taking a snapshot at S starts segment S first.
        if !segments.iter().any(|(first, _)| first == lsn) {
            return Err(OpenError::MissingSegment {
                path: journal::segment_path(dir, *lsn),
                because: format!("the snapshot {} starts there", snapshot.display()),
            });
        }
    }
    // Segments continue each other, so the journal ends where the last does.
    if let Some((_, end)) = &previous {
        recovery.next_lsn = recovery.next_lsn.max(end.next_lsn);
    }

    let audit = engine.audit();
    if !audit.violations.is_empty() {
        return Err(OpenError::Invariants(audit.violations));
    }
    // Only now that nothing refuses: a refused start changes no file.
    if let (true, Some((path, offset))) = (repair, &recovery.torn_tail) {
        let aside = set_aside(path, *offset).map_err(io)?;
        tracing::warn!(
            path = %path.display(),
            offset,
            moved_to = %aside.display(),
            "journal ends in a torn write; its tail was moved aside"
        );
    }
    Ok(recovery)
}

/// Move the bytes of `path` from `offset` on into `<path>.torn-<offset>`
/// (the whole file, renamed, for offset 0), then cut them off: nothing that
/// may hold acknowledged records is destroyed, and an operator can look.
fn set_aside(path: &Path, offset: usize) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut aside = PathBuf::from(format!("{}.torn-{offset}", path.display()));
    for again in 1.. {
        if !aside.exists() {
            break;
        }
        aside = PathBuf::from(format!("{}.torn-{offset}.{again}", path.display()));
    }
    if offset == 0 {
        std::fs::rename(path, &aside)?;
        journal::sync_dir(dir)?;
    } else {
        // Whole or not at all: a full disk must not leave half a copy.
        let bytes = std::fs::read(path)?;
        let temporary = PathBuf::from(format!("{}.tmp", aside.display()));
        let written = (|| {
            let mut copy = std::fs::File::create(&temporary)?;
            std::io::Write::write_all(&mut copy, &bytes[offset..])?;
            copy.sync_all()?;
            std::fs::rename(&temporary, &aside)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
        journal::sync_dir(dir)?;
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(offset as u64)?;
        file.sync_all()?;
    }
    Ok(aside)
}

/// The journal segments in `dir`, by first LSN.
pub(super) fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    list(dir, "journal-", ".log")
}

/// Files `<prefix><number><suffix>` in `dir`, sorted by number.
fn list(dir: &Path, prefix: &str, suffix: &str) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            continue;
        };
        if let Ok(number) = number.parse() {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The lock file that keeps a second process off a data directory.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

/// Take the data directory's exclusive lock (`flock` on `LOCK`, released
/// by the kernel when the process dies, however it dies) and write this
/// process's id into it for the next one to name.
fn lock(dir: &Path) -> Result<std::fs::File, OpenError> {
    let path = lock_path(dir);
    let io = |source| OpenError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(OpenError::Locked {
                path: dir.to_path_buf(),
                pid: lock_holder(dir),
            })
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
    }
    file.set_len(0).map_err(io)?;
    std::io::Write::write_all(&mut file, format!("{}\n", std::process::id()).as_bytes())
        .map_err(io)?;
    Ok(file)
}

/// Whether another process holds the data directory's lock, and its id if
/// it wrote one (for `inspect`, which reads without the lock).
pub fn locked_by(dir: &Path) -> Option<Option<u32>> {
    let file = std::fs::File::open(lock_path(dir)).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(lock_holder(dir)),
    }
}

fn lock_holder(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(lock_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A snapshot interrupted by a crash leaves a `.tmp` file: never valid.
fn remove_temporaries(dir: &Path) -> Result<(), OpenError> {
    let io = |source| OpenError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|extension| extension == "tmp") {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}
