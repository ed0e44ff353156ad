//! The archived part of a log. `taskledger archive` moves the oldest records of a log whose
//! engine bounds its size (etcd's space quota) into an export file, and the engine records which
//! seqs went to which file (`Archived`). `WithArchives` wraps a log so that reads below the first
//! seq the engine still holds come from the archive files this server was given (`--archive`),
//! or fail naming the file that holds them. Seqs are never renumbered: given its files, an
//! archived log reads exactly as it did before.
//! Does not write archives (see `audit::archive`).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::frame_encoded;
use super::engine::{EngineError, EngineResult};
use super::export_file::{read_file, EntryReader, FileError};
use super::log::{AppendError, AppendLimit, Log, LogValue, LogValues};
use super::{StoreError, StoreResult};
use crate::proto::export::export_entry::Kind;

/// Every this-many records, an archive file's index notes where a record starts.
const INDEX_EVERY: u64 = 1024;

/// One stretch of the log moved to a file, as the engine records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archived {
    pub first: u64,
    pub last: u64,
    /// The CRC32C of record `last`: with `first` and `last`, what identifies the file.
    pub last_crc: u32,
    /// The file as `archive` named it.
    pub file: String,
    /// When it was archived, in seconds since the Unix epoch.
    pub archived_at: u64,
}

impl Archived {
    /// What a server without the file says when asked for these seqs.
    pub fn missing(&self) -> String {
        format!(
            "seqs {}..={} of this log were archived to {:?} at {} (taskledger archive); start the server (or this \
             command) with --archive naming that file to read them",
            self.first,
            self.last,
            self.file,
            crate::ecs_json::iso8601_millis(i64::try_from(self.archived_at).unwrap_or(i64::MAX), 0)
        )
    }

    fn describe(list: &[Archived]) -> String {
        if list.is_empty() {
            return "nothing".into();
        }
        list.iter()
            .map(|a| format!("{}..={} to {:?}", a.first, a.last, a.file))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An archive file, checked record by record when opened, with a sparse index into it.
pub struct ArchiveFile {
    path: PathBuf,
    pub first: u64,
    pub last: u64,
    pub last_crc: u32,
    /// (seq, offset) of every `INDEX_EVERY`-th record.
    index: Vec<(u64, u64)>,
}

impl ArchiveFile {
    /// Reads the whole file once, refusing it if anything in it is damaged, missing or repeated.
    pub fn open(path: &Path, progress: &(dyn Fn(u64, u64) + Sync)) -> StoreResult<ArchiveFile> {
        let file = File::open(path)
            .map_err(|e| StoreError::storage("opening an archive", format!("{}: {e}", path.display())))?;
        let mut index = Vec::new();
        let mut last_crc = 0;
        let summary = read_file(file, progress, |at| {
            if (at.seq - 1) % INDEX_EVERY == 0 || index.is_empty() {
                index.push((at.seq, at.offset));
            }
            last_crc = at.crc32c;
            Ok::<(), FileError>(())
        })
        .map_err(|e| StoreError::Corrupt(format!("archive {}: {e}", path.display())))?;
        if summary.count == 0 {
            return Err(StoreError::Corrupt(format!(
                "archive {} holds no records",
                path.display()
            )));
        }
        Ok(ArchiveFile {
            path: path.to_path_buf(),
            first: summary.first_seq,
            last: summary.last_seq,
            last_crc,
            index,
        })
    }

    fn is(&self, archived: &Archived) -> bool {
        self.first == archived.first && self.last == archived.last && self.last_crc == archived.last_crc
    }

    /// The records `from..=to` as log values of one record each.
    fn values(&self, from: u64, to: u64) -> LogValues<'static> {
        let start = self.index[self.index.partition_point(|(seq, _)| *seq <= from).saturating_sub(1)];
        let path = self.path.clone();
        let failed = move |e: String| EngineError(format!("reading archive {}: {e}", path.display()));
        let file = match File::open(&self.path).and_then(|mut f| f.seek(SeekFrom::Start(start.1)).map(|_| f)) {
            Ok(file) => file,
            Err(e) => return Box::new(std::iter::once(Err(failed(e.to_string())))),
        };
        let mut reader = Some(EntryReader::new(file, 0, start.1));
        Box::new(std::iter::from_fn(move || loop {
            let entry = reader.as_mut()?.next();
            match entry {
                Ok(Some((_, Kind::Record(record)))) if record.seq < from => continue,
                Ok(Some((_, Kind::Record(record)))) if record.seq <= to => {
                    return Some(Ok(LogValue {
                        first: record.seq,
                        bytes: frame_encoded(record.crc32c, &record.log_record),
                    }))
                }
                Ok(_) => {
                    reader = None;
                    return None;
                }
                Err(e) => {
                    reader = None;
                    return Some(Err(failed(e.to_string())));
                }
            }
        }))
    }
}

/// A log with archive files for the seqs its engine no longer holds.
pub struct WithArchives {
    inner: Arc<dyn Log>,
    files: Vec<ArchiveFile>,
    /// The engine's record of what was archived, as last read.
    archived: RwLock<Vec<Archived>>,
}

impl WithArchives {
    /// Wraps `inner` with the archive files at `paths`, each of which must be one that this
    /// log's engine recorded. A log that cannot be archived and has no files is left as it is.
    pub fn wrap(
        inner: Arc<dyn Log>,
        paths: &[PathBuf],
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> StoreResult<Arc<dyn Log>> {
        let archived = inner
            .archived()
            .map_err(|e| StoreError::storage("reading what was archived", e))?;
        if paths.is_empty() && archived.is_empty() && !inner.shared() {
            return Ok(inner);
        }
        let mut files = Vec::new();
        for path in paths {
            let file = ArchiveFile::open(path, progress)?;
            if !archived.iter().any(|a| file.is(a)) {
                return Err(StoreError::Corrupt(format!(
                    "{} holds seqs {}..={}, which is not an archive of this log (it archived {})",
                    path.display(),
                    file.first,
                    file.last,
                    Archived::describe(&archived)
                )));
            }
            tracing::info!(file = %path.display(), first = file.first, last = file.last, "archive file checked");
            files.push(file);
        }
        Ok(Arc::new(WithArchives {
            inner,
            files,
            archived: RwLock::new(archived),
        }))
    }

    /// The first seq the engine still holds, as last read.
    fn low(&self) -> u64 {
        self.archived
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map_or(1, |a| a.last + 1)
    }

    fn refresh(&self) -> EngineResult<Vec<Archived>> {
        let archived = self.inner.archived()?;
        *self.archived.write().unwrap_or_else(|p| p.into_inner()) = archived.clone();
        Ok(archived)
    }

    /// From the archive files (or an error naming the missing one), then from the engine.
    fn read_archived(&self, from: u64) -> LogValues<'_> {
        let archived = self.archived.read().unwrap_or_else(|p| p.into_inner()).clone();
        let low = archived.last().map_or(1, |a| a.last + 1);
        let mut parts: Vec<LogValues<'_>> = Vec::new();
        for entry in archived.iter().filter(|a| a.last >= from) {
            match self.files.iter().find(|f| f.is(entry)) {
                Some(file) => parts.push(file.values(from.max(entry.first), entry.last)),
                None => {
                    parts.push(Box::new(std::iter::once(Err(EngineError(entry.missing())))));
                    return Box::new(parts.into_iter().flatten());
                }
            }
        }
        parts.push(self.inner.read(low));
        Box::new(parts.into_iter().flatten())
    }
}

impl Log for WithArchives {
    fn head(&self) -> EngineResult<u64> {
        self.inner.head()
    }

    fn append(&self, expected_head: u64, last: u64, values: Vec<LogValue>) -> Result<(), AppendError> {
        self.inner.append(expected_head, last, values)
    }

    fn append_limit(&self) -> Option<AppendLimit> {
        self.inner.append_limit()
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    fn read(&self, from: u64) -> LogValues<'_> {
        let from = from.max(1);
        if from < self.low() {
            return self.read_archived(from);
        }
        let mut values = self.inner.read(from).peekable();
        // The engine's values start after `from`: archived since this server last looked.
        if matches!(values.peek(), Some(Ok(value)) if value.first > from) && self.refresh().is_ok() && from < self.low()
        {
            return self.read_archived(from);
        }
        Box::new(values)
    }

    fn wait_beyond(&self, seen: u64, timeout: Duration) -> EngineResult<u64> {
        self.inner.wait_beyond(seen, timeout)
    }

    fn derived_get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.inner.derived_get(key)
    }

    fn derived_range(&self, prefix: &[u8]) -> EngineResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.derived_range(prefix)
    }

    fn derived_apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> EngineResult<()> {
        self.inner.derived_apply(writes)
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        self.inner.size_on_disk()
    }

    fn available_space(&self) -> EngineResult<Option<u64>> {
        self.inner.available_space()
    }

    fn current_head(&self) -> EngineResult<u64> {
        self.inner.current_head()
    }

    fn probe(&self) -> EngineResult<()> {
        self.inner.probe()
    }

    fn archivable(&self) -> bool {
        self.inner.archivable()
    }

    fn archived(&self) -> EngineResult<Vec<Archived>> {
        self.refresh()
    }

    fn remove_archived(&self, archived: &Archived) -> EngineResult<()> {
        let outcome = self.inner.remove_archived(archived);
        self.refresh()?;
        outcome
    }
}
