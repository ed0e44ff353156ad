//! The storage engine boundary: an ordered key-value space with atomic batches and an explicit
//! durability barrier, and its sled implementation. Another engine (etcd, …) implements
//! `Engine` without touching the domain or the callers.
//! Does not know what keys mean (see `keys`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A storage fault from the engine: I/O, or data it cannot read back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl From<sled::Error> for EngineError {
    fn from(e: sled::Error) -> Self {
        EngineError(format!("sled: {e}"))
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError(format!("i/o: {e}"))
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

/// Inserts and removals applied together or not at all.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.push((key, None));
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Key-value pairs in key order.
pub type Entries<'a> = Box<dyn Iterator<Item = EngineResult<(Vec<u8>, Vec<u8>)>> + 'a>;

/// What the store needs from a storage engine.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>>;
    /// Entries with `start <= key < end`, ascending.
    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_>;
    /// Entries with `start <= key < end`, descending.
    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_>;
    /// Applies a batch atomically: after a crash either all of it is there or none.
    fn apply(&self, batch: WriteBatch) -> EngineResult<()>;
    /// Makes every applied batch durable. Returns only when the data is on stable storage.
    fn sync(&self) -> EngineResult<()>;
    /// Bytes the engine occupies on disk.
    fn size_on_disk(&self) -> EngineResult<u64>;
    /// Bytes the engine can still grow by, where it knows (the free space of its filesystem,
    /// a quota…). The writer refuses writes below a reserve rather than run out mid-batch.
    fn available_space(&self) -> EngineResult<Option<u64>> {
        Ok(None)
    }
}

/// Options for the sled engine.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: 32 * 1024 * 1024,
        }
    }
}

/// sled 0.34 with a real durability barrier.
pub struct SledEngine {
    db: sled::Db,
    tree: sled::Tree,
    data_file: File,
    dir: PathBuf,
    /// Set once a write or flush failed: sled can no longer be closed (see `Drop`).
    failed: AtomicBool,
    /// The files in `<dir>/blobs` known to be fsynced (see `sync_blobs`).
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl Drop for SledEngine {
    fn drop(&mut self) {
        if self.failed.load(Ordering::Acquire) {
            // sled 0.34 flushes when its last tree handle drops and, after an I/O error such as
            // ENOSPC, waits forever for a buffer that will never become stable. Everything we
            // acknowledged was fdatasynced before, so we leave sled's memory and threads to the
            // operating system rather than hang the process. Reopening in the same process is not
            // possible afterwards (the directory lock stays held); a new process is.
            // Forgetting a clone keeps sled's reference count above zero, so its drop never runs.
            tracing::warn!(dir = %self.dir.display(), "closing after a storage failure: sled is not flushed");
            std::mem::forget(self.tree.clone());
            std::mem::forget(self.db.clone());
        }
    }
}

impl SledEngine {
    /// Remembers a failed write so the engine is not flushed on drop.
    fn note<T>(&self, result: sled::Result<T>) -> EngineResult<T> {
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        Ok(result?)
    }

    pub fn open(dir: &Path, options: &SledOptions) -> EngineResult<SledEngine> {
        std::fs::create_dir_all(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_capacity)
            .mode(sled::Mode::HighThroughput);
        // sled releases its directory lock when its last background thread lets go of the file,
        // a moment after the previous `Db` in this process was dropped: retry briefly.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Err(e) if e.to_string().contains("could not acquire lock") && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20)); // waiting for a lock, not a test
                }
                other => break other?,
            }
        };
        let tree = db.open_tree("taskledger")?;
        // sled 0.34 keeps its log in `<dir>/db`; we hold our own handle to fdatasync it.
        let data_file = File::open(dir.join("db"))?;
        let engine = SledEngine {
            db,
            tree,
            data_file,
            dir: dir.to_path_buf(),
            failed: AtomicBool::new(false),
            synced_blobs: Mutex::new(HashSet::new()),
        };
        // The store's files must be found after a power loss, and blob files left by a process
        // that did not sync them (binaries before this check) are made durable now.
        sync_directory(dir)?;
        engine.sync_blobs()?;
        Ok(engine)
    }

    /// fsyncs every file in `<dir>/blobs` not synced before, then the directory if any was new.
    /// sled 0.34 writes a page whose serialized form passes a quarter of a segment (128 KiB) to a
    /// blob file of its own, with no sync of any kind: `flush` and the data file's fdatasync do not
    /// cover it. Every blob a flushed page points to was written before that flush returned, so
    /// listing after the flush finds all of them; one a background rewrite creates later is
    /// synced by the next call. Listing an empty directory costs a few microseconds.
    fn sync_blobs(&self) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        let listing = match std::fs::read_dir(&blobs) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::with_capacity(synced.len());
        let mut new = false;
        for entry in listing {
            let name = entry?.file_name();
            if !synced.contains(&name) {
                match File::open(blobs.join(&name)) {
                    Ok(file) => file.sync_all()?,
                    // sled removed it (a rewritten page) after it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            sync_directory(&blobs)?;
        }
        *synced = present;
        Ok(())
    }

    /// How many blob files this engine has made durable and still sees (for tests).
    pub fn synced_blob_files(&self) -> usize {
        self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Opens and closes the closed sled store in `dir` once more. sled 0.34 writes its recovery
    /// snapshot only while it opens, after replaying the part of its log the snapshot does not
    /// cover: without this, the first open after a long session replays all that session wrote
    /// (2.9 s for a session that wrote 1,000,000 events). Writes nothing of ours.
    pub fn settle(dir: &Path) -> EngineResult<()> {
        let options = SledOptions {
            cache_capacity: 8 * 1024 * 1024,
        };
        drop(SledEngine::open(dir, &options)?);
        Ok(())
    }
}

/// fsyncs a directory, so the entries of the files created in it survive a power loss. A
/// filesystem that cannot fsync a directory (EINVAL, as some network and FUSE ones answer) has no
/// such step to take.
pub(crate) fn sync_directory(dir: &Path) -> std::io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            tracing::debug!(dir = %dir.display(), "this filesystem does not fsync directories");
            Ok(())
        }
        other => other,
    }
}

fn entries<'a>(iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a) -> Entries<'a> {
    Box::new(iter.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(EngineError::from)))
}

impl Engine for SledEngine {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        entries(self.tree.range(start.to_vec()..end.to_vec()))
    }

    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        entries(self.tree.range(start.to_vec()..end.to_vec()).rev())
    }

    fn apply(&self, batch: WriteBatch) -> EngineResult<()> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch.writes {
            match value {
                Some(value) => sled_batch.insert(key, value),
                None => sled_batch.remove(key),
            }
        }
        self.note(self.tree.apply_batch(sled_batch))
    }

    fn sync(&self) -> EngineResult<()> {
        // sled 0.34's flush() writes its buffers and ends in sync_file_range(2) on Linux, which
        // neither flushes the drive's cache nor persists file metadata (sled issue #1452): it is
        // not an fsync. Only the fdatasync below makes the batch durable, so nothing is
        // acknowledged before it returns. Its 500 ms background flush is no guarantee either.
        // Pages sled moved to blob files are synced first (`sync_blobs`).
        self.note(self.db.flush())?;
        if let Err(e) = self.sync_blobs().and_then(|()| self.data_file.sync_data()) {
            self.failed.store(true, Ordering::Release);
            return Err(e.into());
        }
        Ok(())
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        // sled's data file, config and snapshots, and the pages it wrote to `blobs/`.
        let mut total = 0;
        for dir in [self.dir.clone(), self.dir.join("blobs")] {
            let listing = match std::fs::read_dir(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                listing => listing?,
            };
            for entry in listing {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    total += entry.metadata()?.len();
                }
            }
        }
        Ok(total)
    }

    fn available_space(&self) -> EngineResult<Option<u64>> {
        Ok(Some(fs2::available_space(&self.dir)?))
    }
}
