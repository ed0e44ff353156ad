//! Export and import of the log. `export` writes length-delimited `ExportEntry` messages (header,
//! records with their seq and CRC32C, trailer; proto/taskledger/export/v1/export.proto) or NDJSON
//! for people; `check` reads a file back and finds any damaged, missing or repeated record;
//! `import` loads a file into an EMPTY store directory, keeping every seq, and rebuilds the views.
//! Does not merge logs: importing into a store that holds anything is refused.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use prost::Message;

use crate::ecs_json::{to_vec, TimeStyle, WriteOptions};
use crate::proto::export::{export_entry::Kind, ExportEntry, Header, Record, Trailer};
use crate::proto::log::LogRecord;
use crate::store::codec::{frame_log_record, LOG_FORMAT_VERSION};
use crate::store::engine::{Engine, SledEngine, SledOptions, WriteBatch};
use crate::store::{keys, migrate, verify, Store, StoreError};

const MAGIC: &str = "taskledger-export";
const FORMAT_VERSION: u32 = 1;
/// The largest entry a file may hold; a larger length prefix means damage, not a big record.
const ENTRY_MAX: u64 = 16 * 1024 * 1024;
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

/// What a file holds (or what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
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
    store: &Store,
    out: impl Write,
    format: Format,
    from: u64,
    to: Option<u64>,
    progress: Progress,
) -> Result<ExportSummary, ExportError> {
    let head = store.head_seq();
    let first = from.max(1);
    let last = to.unwrap_or(head).min(head);
    let mut out = BufWriter::new(out);
    let total = last.saturating_sub(first - 1);
    if format == Format::Binary {
        let (first_seq, last_seq) = if last >= first { (first, last) } else { (0, 0) };
        let header = Header {
            magic: MAGIC.into(),
            format_version: FORMAT_VERSION,
            log_format_version: u32::from(LOG_FORMAT_VERSION),
            first_seq,
            last_seq,
            source_head: head,
        };
        write_entry(&mut out, Kind::Header(header))?;
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

fn write_entry(out: &mut impl Write, kind: Kind) -> std::io::Result<()> {
    out.write_all(&ExportEntry { kind: Some(kind) }.encode_length_delimited_to_vec())
}

/// Reads an export file entry by entry, checking everything `import` relies on.
struct EntryReader<R> {
    input: BufReader<R>,
    index: u64,
}

impl<R: Read> EntryReader<R> {
    fn damaged(&self, message: impl Into<String>) -> ExportError {
        ExportError::Damaged {
            at: format!("entry {}", self.index),
            message: message.into(),
        }
    }

    /// The next entry, or `None` at a clean end of file.
    fn next(&mut self) -> Result<Option<Kind>, ExportError> {
        let mut length: u64 = 0;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            if self.input.read(&mut byte)? == 0 {
                return if shift == 0 {
                    Ok(None)
                } else {
                    Err(self.damaged("the file ends inside a length prefix"))
                };
            }
            length |= u64::from(byte[0] & 0x7f) << shift;
            if byte[0] & 0x80 == 0 {
                break;
            }
        }
        if length > ENTRY_MAX {
            return Err(self.damaged(format!("a length prefix of {length} bytes; the file is damaged")));
        }
        let mut bytes = vec![0u8; length as usize];
        self.input
            .read_exact(&mut bytes)
            .map_err(|_| self.damaged("the file ends inside an entry"))?;
        let entry = ExportEntry::decode(bytes.as_slice()).map_err(|e| self.damaged(format!("undecodable: {e}")))?;
        self.index += 1;
        entry
            .kind
            .map(Some)
            .ok_or_else(|| self.damaged("an entry of an unknown kind"))
    }
}

/// Checks a whole export file, calling `each` with every intact record, in order. Refuses a
/// damaged record (CRC), a gap, a repeated seq, a missing header or trailer, or a trailer that
/// disagrees with the records, naming the entry and seq.
fn read_file(
    input: impl Read,
    progress: Progress,
    mut each: impl FnMut(u64, LogRecord) -> Result<(), ExportError>,
) -> Result<ExportSummary, ExportError> {
    let mut reader = EntryReader {
        input: BufReader::new(input),
        index: 0,
    };
    let header = match reader.next()? {
        Some(Kind::Header(h)) if h.magic == MAGIC => h,
        _ => return Err(reader.damaged("not a taskledger export: it does not start with a taskledger-export header")),
    };
    if header.format_version != FORMAT_VERSION || header.log_format_version != u32::from(LOG_FORMAT_VERSION) {
        return Err(reader.damaged(format!(
            "export format {} with log format {} is not one this taskledger reads (export {FORMAT_VERSION}, log {LOG_FORMAT_VERSION})",
            header.format_version, header.log_format_version
        )));
    }
    let total = header.last_seq.saturating_sub(header.first_seq.saturating_sub(1));
    let mut summary = ExportSummary::default();
    let mut expected = header.first_seq.max(1);
    loop {
        match reader.next()? {
            None => return Err(reader.damaged("the file ends without a trailer: it is truncated")),
            Some(Kind::Header(_)) => return Err(reader.damaged("a second header")),
            Some(Kind::Record(record)) => {
                let at = |message: String| ExportError::Damaged {
                    at: format!("entry {} (seq {})", reader.index, record.seq),
                    message,
                };
                if crc32c::crc32c(&record.log_record) != record.crc32c {
                    return Err(at("checksum mismatch: the record is damaged".into()));
                }
                if record.seq != expected {
                    let what = if record.seq < expected {
                        "a repeated or out-of-order seq"
                    } else {
                        "a gap"
                    };
                    return Err(at(format!("{what}: expected seq {expected}")));
                }
                let log = LogRecord::decode(record.log_record.as_slice())
                    .map_err(|e| at(format!("undecodable record: {e}")))?;
                if log.seq != record.seq || log.event.as_ref().and_then(|e| e.kind.as_ref()).is_none() {
                    return Err(at(
                        "the record inside does not match its seq or has no known event".into()
                    ));
                }
                if summary.count == 0 {
                    summary.first_seq = record.seq;
                }
                summary.count += 1;
                summary.last_seq = record.seq;
                expected += 1;
                each(record.seq, log)?;
                if summary.count % 65_536 == 0 {
                    progress(summary.count, total);
                }
            }
            Some(Kind::Trailer(trailer)) => {
                if trailer.count != summary.count || trailer.last_seq != summary.last_seq {
                    return Err(reader.damaged(format!(
                        "the trailer promises {} records up to seq {}, the file holds {} up to seq {}: records are missing",
                        trailer.count, trailer.last_seq, summary.count, summary.last_seq
                    )));
                }
                if header.last_seq != summary.last_seq || (summary.count > 0 && header.first_seq != summary.first_seq) {
                    return Err(reader.damaged("the header's seq range disagrees with the records"));
                }
                progress(summary.count, total);
                return Ok(summary);
            }
        }
    }
}

/// Checks an export file without importing it.
pub fn check(input: impl Read, progress: Progress) -> Result<ExportSummary, ExportError> {
    read_file(input, progress, |_, _| Ok(()))
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
    let summary = read_file(input, progress, |seq, record| {
        if first && seq != 1 {
            return Err(ExportError::Damaged {
                at: format!("seq {seq}"),
                message: "an import must start at seq 1 (export the whole log)".into(),
            });
        }
        first = false;
        batch.put(keys::log(seq), frame_log_record(&record));
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
