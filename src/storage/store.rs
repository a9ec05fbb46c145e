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

#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Load the previous snapshot when the newest one is corrupt.
    pub fallback_to_previous_snapshot: bool,
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
        "journal records {from}..{to} are missing (segment {path} starts after them); \
         refusing to start with a gap"
    )]
    Gap { path: PathBuf, from: u64, to: u64 },
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
    /// Bytes of a torn write cut off the last segment (and where).
    pub torn_tail: Option<(PathBuf, usize)>,
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
        remove_temporaries(dir)?;
        let recovery = recover(dir, engine, config.fallback_to_previous_snapshot, true)?;
        let journal = Journal::start(dir, recovery.next_lsn, config.fsync).map_err(|source| {
            OpenError::Io {
                path: dir.clone(),
                source,
            }
        })?;
        if engine.attach_change_log(journal.clone()).is_err() {
            unreachable!("a freshly recovered engine has no change log yet");
        }
        let store = Self {
            dir: dir.clone(),
            journal,
            snapshotting: Mutex::new(()),
        };
        Ok((store, recovery))
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
        metrics::histogram!("snapshot_seconds").record(started.elapsed().as_secs_f64());
        metrics::gauge!("snapshot_bytes").set(written.bytes as f64);
        Ok(SnapshotInfo {
            path: written.path,
            bytes: written.bytes,
            duration: started.elapsed(),
        })
    }

    /// Keep the newest two snapshots and the journal from the older one on.
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
            if pair[1].0 <= keep_from {
                std::fs::remove_file(&pair[0].1)?;
            }
        }
        journal::sync_dir(&self.dir)
    }

    /// Stop the journal (pending records are written and synced).
    pub fn close(&self) {
        self.journal.close();
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
    let mut next = start;
    for (index, (first, path)) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        if *first > next {
            return Err(OpenError::Gap {
                path: path.clone(),
                from: next,
                to: *first,
            });
        }
        let mut replayed = 0;
        let end: SegmentEnd = journal::read_segment(path, is_last, |lsn, effects| {
            if lsn >= start {
                for effect in effects {
                    engine.restore(effect);
                }
                replayed += 1;
            }
            Ok(())
        })?;
        recovery.records_replayed += replayed;
        next = next.max(end.next_lsn);
        if end.torn_bytes > 0 {
            tracing::warn!(
                path = %path.display(),
                offset = end.valid_bytes,
                bytes = end.torn_bytes,
                "journal ends in a torn write; cutting it at the last whole record"
            );
            recovery.torn_tail = Some((path.clone(), end.valid_bytes));
            if repair {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io)?;
                file.set_len(end.valid_bytes as u64).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
        }
    }
    recovery.next_lsn = next;

    let audit = engine.audit();
    if !audit.violations.is_empty() {
        return Err(OpenError::Invariants(audit.violations));
    }
    Ok(recovery)
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
