//! Export and import of the log. `export` writes length-delimited `ExportEntry` messages (header,
//! records with their seq and CRC32C, trailer; proto/taskledger/export/v1/export.proto) or NDJSON
//! for people; `check` reads a file back and finds any damaged, missing or repeated record;
//! `import` loads a file into an EMPTY store directory, keeping every seq, and rebuilds the views.
//! Does not merge logs: importing into a store that holds anything is refused.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::ecs_json::{to_vec, TimeStyle, WriteOptions};
use crate::proto::export::{export_entry::Kind, Record, Trailer};
use crate::store::codec::frame_encoded;
use crate::store::engine::{Engine, SledEngine, SledOptions, WriteBatch};
pub use crate::store::export_file::ExportSummary;
use crate::store::export_file::{self, read_file, write_entry, FileError};
use crate::store::{keys, migrate, verify, LogSource, StoreError};

const IMPORT_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is damaged or incomplete; `at` names the entry (and seq when known).
    #[error("{at}: {message}")]
    Damaged { at: String, message: String },
    #[error("the store at {0} is not empty; import only into a new, empty data directory")]
    NotEmpty(String),
}

impl From<FileError> for ExportError {
    fn from(error: FileError) -> Self {
        match error {
            FileError::Io(e) => ExportError::Io(e),
            FileError::Damaged { at, message } => ExportError::Damaged { at, message },
        }
    }
}

/// The output format of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Length-delimited protobuf entries, for `import`.
    Binary,
    /// One JSON object per line (`seq`, `time`, `cause`, `event` in ECS JSON), for people.
    Ndjson,
}

/// How far a long job has got: (done, total).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Writes the durable log from `from` to `to` (inclusive; `None`: the head) to `out`.
pub fn export(
    store: &(impl LogSource + ?Sized),
    out: impl Write,
    format: Format,
    from: u64,
    to: Option<u64>,
    progress: Progress,
) -> Result<ExportSummary, ExportError> {
    let head = store.head_seq()?;
    let first = from.max(1);
    let last = to.unwrap_or(head).min(head);
    let mut out = BufWriter::new(out);
    let total = last.saturating_sub(first - 1);
    if format == Format::Binary {
        let (first_seq, last_seq) = if last >= first { (first, last) } else { (0, 0) };
        write_entry(&mut out, export_file::header(first_seq, last_seq, head))?;
    }
    let mut summary = ExportSummary::default();
    let mut next = first;
    while next <= last {
        let records = store.read_log(next, 1024)?;
        if records.is_empty() {
            break;
        }
        for record in records.into_iter().take_while(|r| r.seq <= last) {
            next = record.seq + 1;
            if summary.count == 0 {
                summary.first_seq = record.seq;
            }
            summary.count += 1;
            summary.last_seq = record.seq;
            match format {
                Format::Binary => {
                    let bytes = record.encode_to_vec();
                    let crc32c = crc32c::crc32c(&bytes);
                    write_entry(
                        &mut out,
                        Kind::Record(Record {
                            seq: record.seq,
                            crc32c,
                            log_record: bytes,
                        }),
                    )?;
                }
                Format::Ndjson => {
                    let line = to_vec(
                        &record,
                        &WriteOptions {
                            time_style: TimeStyle::Iso8601Millis,
                            emit_empty_lists: false,
                        },
                    );
                    out.write_all(&line)?;
                    out.write_all(b"\n")?;
                }
            }
            if summary.count % 65_536 == 0 {
                progress(summary.count, total);
            }
        }
    }
    if format == Format::Binary {
        write_entry(
            &mut out,
            Kind::Trailer(Trailer {
                count: summary.count,
                last_seq: summary.last_seq,
            }),
        )?;
    }
    out.flush()?;
    progress(summary.count, total);
    Ok(summary)
}

/// Writes `path` through a temporary file beside it, fsynced, renamed into place and its
/// directory fsynced, so a failed or interrupted write never leaves a file under the final name
/// and a written one survives a power cut. Refuses to overwrite.
pub fn write_new_file(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<ExportSummary, ExportError>,
) -> Result<ExportSummary, ExportError> {
    let exists = || {
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists; remove it or choose another --out", path.display()),
        )
    };
    if path.exists() {
        return Err(exists().into());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = File::create(&partial)?;
    let outcome = write(&mut file).and_then(|summary| {
        file.sync_all()?;
        Ok(summary)
    });
    drop(file);
    let outcome = outcome.and_then(|summary| {
        if path.exists() {
            return Err(exists().into());
        }
        std::fs::rename(&partial, path)?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
        Ok(summary)
    });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome
}

/// Checks an export file without importing it.
pub fn check(input: impl Read, progress: Progress) -> Result<ExportSummary, ExportError> {
    read_file(input, progress, |_| Ok::<(), ExportError>(()))
}

/// Imports an export file that starts at seq 1 into the empty store directory `dir`, keeping
/// every seq, and checks that every record applies. The directory must hold no store data.
pub fn import(dir: &Path, input: impl Read, progress: Progress) -> Result<ExportSummary, ExportError> {
    let engine: std::sync::Arc<dyn Engine> = std::sync::Arc::new(
        SledEngine::open(dir, &SledOptions::default()).map_err(|e| StoreError::storage("opening the target", e))?,
    );
    if engine.range(&[], &[0xff]).next().is_some() {
        return Err(ExportError::NotEmpty(dir.display().to_string()));
    }
    migrate::prepare(&*engine, dir)?;
    let mut batch = WriteBatch::default();
    let mut first = true;
    let summary = read_file(input, progress, |at| {
        let seq = at.seq;
        if first && seq != 1 {
            return Err(ExportError::Damaged {
                at: format!("seq {seq}"),
                message: "an import must start at seq 1 (export the whole log)".into(),
            });
        }
        first = false;
        batch.put(keys::log(seq), frame_encoded(at.crc32c, &at.bytes));
        if batch.len() >= IMPORT_BATCH {
            engine
                .apply(std::mem::take(&mut batch))
                .map_err(|e| StoreError::storage("importing", e))?;
        }
        Ok(())
    })?;
    // The head goes in only with the last records: a store cut short by a crash here has a log
    // without a head, which `open` refuses rather than serves.
    if summary.count > 0 {
        batch.put(keys::META_HEAD_SEQ.to_vec(), summary.last_seq.to_be_bytes().to_vec());
    }
    engine.apply(batch).map_err(|e| StoreError::storage("importing", e))?;
    engine
        .sync()
        .map_err(|e| StoreError::storage("making the import durable", e))?;
    // Every record must apply; the store folds the log into its views when it opens.
    let log = crate::store::KvLog::new(std::sync::Arc::clone(&engine), summary.last_seq, false);
    verify::fold(&log, &|done, total| progress(done, total))?;
    Ok(summary)
}
