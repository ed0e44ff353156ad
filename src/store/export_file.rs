//! The export file format (proto/taskledger/export/v1/export.proto): length-delimited
//! `ExportEntry` messages — a header, the records with their seq and CRC32C, a trailer. Written
//! by `audit::export`; read back, with everything a reader relies on checked, by
//! `export --verify`, `import` and the archive reader (`archive`), which also needs each
//! record's offset in the file to read a stretch of it again later.
//! Does not open stores or decide what a file is for.

use std::io::{BufReader, Read, Write};

use prost::Message;

use crate::proto::export::{export_entry::Kind, ExportEntry, Header};
use crate::proto::log::LogRecord;
use crate::store::codec::LOG_FORMAT_VERSION;

const MAGIC: &str = "taskledger-export";
const FORMAT_VERSION: u32 = 1;
/// The largest entry a file may hold; a larger length prefix means damage, not a big record.
const ENTRY_MAX: u64 = 16 * 1024 * 1024;

/// Why a file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The file is damaged or incomplete; `at` names the entry (and seq when known).
    #[error("{at}: {message}")]
    Damaged { at: String, message: String },
}

/// What a file holds (or what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// One intact record of a file, as `read_file` hands it on.
pub struct RecordAt {
    pub seq: u64,
    /// Where the record's entry starts in the file.
    pub offset: u64,
    /// The CRC32C of the encoded `LogRecord` (the same one its log frame carries).
    pub crc32c: u32,
    /// The encoded `LogRecord`.
    pub bytes: Vec<u8>,
    pub record: LogRecord,
}

/// The header of a file holding `first_seq..=last_seq` (`0, 0`: none) of a log whose head was
/// `source_head`.
pub fn header(first_seq: u64, last_seq: u64, source_head: u64) -> Kind {
    Kind::Header(Header {
        magic: MAGIC.into(),
        format_version: FORMAT_VERSION,
        log_format_version: u32::from(LOG_FORMAT_VERSION),
        first_seq,
        last_seq,
        source_head,
    })
}

pub fn write_entry(out: &mut impl Write, kind: Kind) -> std::io::Result<()> {
    out.write_all(&ExportEntry { kind: Some(kind) }.encode_length_delimited_to_vec())
}

/// Reads a file entry by entry, counting entries and bytes.
pub(crate) struct EntryReader<R> {
    input: BufReader<R>,
    index: u64,
    offset: u64,
}

impl<R: Read> EntryReader<R> {
    /// Reads entries from `input`, which is positioned at entry `index`, `offset` bytes in.
    pub(crate) fn new(input: R, index: u64, offset: u64) -> EntryReader<R> {
        EntryReader {
            input: BufReader::new(input),
            index,
            offset,
        }
    }

    pub(crate) fn damaged(&self, message: impl Into<String>) -> FileError {
        FileError::Damaged {
            at: format!("entry {}", self.index),
            message: message.into(),
        }
    }

    /// The next entry and the offset it starts at, or `None` at a clean end of file.
    pub(crate) fn next(&mut self) -> Result<Option<(u64, Kind)>, FileError> {
        let start = self.offset;
        let mut length: u64 = 0;
        let mut prefix = 0;
        for shift in (0..64).step_by(7) {
            let mut byte = [0u8; 1];
            if self.input.read(&mut byte)? == 0 {
                return if shift == 0 {
                    Ok(None)
                } else {
                    Err(self.damaged("the file ends inside a length prefix"))
                };
            }
            prefix += 1;
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
        self.offset += prefix + length;
        entry
            .kind
            .map(|kind| Some((start, kind)))
            .ok_or_else(|| self.damaged("an entry of an unknown kind"))
    }
}

/// Checks a whole file, calling `each` with every intact record, in order. Refuses a damaged
/// record (CRC), a gap, a repeated seq, a missing header or trailer, or a trailer that disagrees
/// with the records, naming the entry and seq.
pub fn read_file<E: From<FileError>>(
    input: impl Read,
    progress: &(dyn Fn(u64, u64) + Sync),
    mut each: impl FnMut(RecordAt) -> Result<(), E>,
) -> Result<ExportSummary, E> {
    let mut reader = EntryReader::new(input, 0, 0);
    let header = match reader.next()? {
        Some((_, Kind::Header(h))) if h.magic == MAGIC => h,
        _ => {
            return Err(reader
                .damaged("not a taskledger export: it does not start with a taskledger-export header")
                .into())
        }
    };
    if header.format_version != FORMAT_VERSION || header.log_format_version != u32::from(LOG_FORMAT_VERSION) {
        return Err(reader
            .damaged(format!(
                "export format {} with log format {} is not one this taskledger reads (export {FORMAT_VERSION}, log {LOG_FORMAT_VERSION})",
                header.format_version, header.log_format_version
            ))
            .into());
    }
    let total = header.last_seq.saturating_sub(header.first_seq.saturating_sub(1));
    let mut summary = ExportSummary::default();
    let mut expected = header.first_seq.max(1);
    loop {
        match reader.next()? {
            None => {
                return Err(reader
                    .damaged("the file ends without a trailer: it is truncated")
                    .into())
            }
            Some((_, Kind::Header(_))) => return Err(reader.damaged("a second header").into()),
            Some((offset, Kind::Record(record))) => {
                let at = |message: String| FileError::Damaged {
                    at: format!("entry {} (seq {})", reader.index, record.seq),
                    message,
                };
                if crc32c::crc32c(&record.log_record) != record.crc32c {
                    return Err(at("checksum mismatch: the record is damaged".into()).into());
                }
                if record.seq != expected {
                    let what = if record.seq < expected {
                        "a repeated or out-of-order seq"
                    } else {
                        "a gap"
                    };
                    return Err(at(format!("{what}: expected seq {expected}")).into());
                }
                let log = LogRecord::decode(record.log_record.as_slice())
                    .map_err(|e| at(format!("undecodable record: {e}")))?;
                if log.seq != record.seq || log.event.as_ref().and_then(|e| e.kind.as_ref()).is_none() {
                    return Err(at("the record inside does not match its seq or has no known event".into()).into());
                }
                if summary.count == 0 {
                    summary.first_seq = record.seq;
                }
                summary.count += 1;
                summary.last_seq = record.seq;
                expected += 1;
                each(RecordAt {
                    seq: record.seq,
                    offset,
                    crc32c: record.crc32c,
                    bytes: record.log_record,
                    record: log,
                })?;
                if summary.count % 65_536 == 0 {
                    progress(summary.count, total);
                }
            }
            Some((_, Kind::Trailer(trailer))) => {
                if trailer.count != summary.count || trailer.last_seq != summary.last_seq {
                    return Err(reader
                        .damaged(format!(
                            "the trailer promises {} records up to seq {}, the file holds {} up to seq {}: records are missing",
                            trailer.count, trailer.last_seq, summary.count, summary.last_seq
                        ))
                        .into());
                }
                if header.last_seq != summary.last_seq || (summary.count > 0 && header.first_seq != summary.first_seq) {
                    return Err(reader
                        .damaged("the header's seq range disagrees with the records")
                        .into());
                }
                progress(summary.count, total);
                return Ok(summary);
            }
        }
    }
}
