//! Encoding of what the store writes: log records framed with a format version and a CRC32C
//! (the long-lived format, see proto/taskledger/log/v1/log.proto), the log values that hold one
//! frame or a chunk of consecutive frames, compressed whole when that makes them smaller, and
//! view records (prost, derived data that can always be rebuilt).
//! Does not decide key layout (see `keys`).

use std::borrow::Cow;

use prost::Message;

use super::compress;
use crate::proto::log::LogRecord;

/// The log record format this binary writes and reads.
pub const LOG_FORMAT_VERSION: u8 = 1;
const FRAME_HEADER: usize = 5;

/// A log record that cannot be read: damaged bytes, a bad checksum or an unknown format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log record {seq}: {problem}")]
pub struct CorruptRecord {
    pub seq: u64,
    pub problem: String,
}

/// `[format version][CRC32C of payload, little endian][payload]`.
pub fn frame_log_record(record: &LogRecord) -> Vec<u8> {
    let payload_len = record.encoded_len();
    let mut out = Vec::with_capacity(FRAME_HEADER + payload_len);
    out.push(LOG_FORMAT_VERSION);
    out.extend_from_slice(&[0; 4]);
    record.encode(&mut out).expect("a Vec grows as needed");
    let crc = crc32c::crc32c(&out[FRAME_HEADER..]);
    out[1..FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The frame of an already encoded record whose CRC32C is `crc` (as an export file holds it).
pub fn frame_encoded(crc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.push(LOG_FORMAT_VERSION);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a frame stored under `seq`, after checking its version and CRC.
pub fn frame_payload(seq: u64, bytes: &[u8]) -> Result<&[u8], CorruptRecord> {
    let corrupt = |problem: String| CorruptRecord { seq, problem };
    if bytes.len() < FRAME_HEADER {
        return Err(corrupt(format!(
            "only {} bytes, shorter than a frame header",
            bytes.len()
        )));
    }
    if bytes[0] != LOG_FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {} is not the {LOG_FORMAT_VERSION} this binary reads (written by a newer taskledger?)",
            bytes[0]
        )));
    }
    let stored = u32::from_le_bytes(bytes[1..FRAME_HEADER].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&bytes[FRAME_HEADER..]);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x})"
        )));
    }
    Ok(&bytes[FRAME_HEADER..])
}

/// Reads a framed record stored under `seq`, checking its version, CRC and seq.
pub fn unframe_log_record(seq: u64, bytes: &[u8]) -> Result<LogRecord, CorruptRecord> {
    let corrupt = |problem: String| CorruptRecord { seq, problem };
    let payload = frame_payload(seq, bytes)?;
    let record = LogRecord::decode(payload).map_err(|e| corrupt(format!("undecodable: {e}")))?;
    if record.seq != seq {
        return Err(corrupt(format!("holds seq {} instead", record.seq)));
    }
    if record.event.as_ref().and_then(|e| e.kind.as_ref()).is_none() {
        return Err(corrupt("holds an event of a kind this binary does not know".into()));
    }
    Ok(record)
}

/// The CRC32C a frame stores in its header, if it is long enough to have one.
pub fn frame_crc(frame: &[u8]) -> Option<u32> {
    frame
        .get(1..FRAME_HEADER)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// First byte of a log value holding a chunk of consecutive frames:
/// `[LOG_CHUNK]` then, per record, `[frame length, u32 little endian][frame]`. A value starting
/// with `LOG_FORMAT_VERSION` is one frame. Readers before schema version 3 refuse a chunk as an
/// unknown format version rather than misread it.
pub const LOG_CHUNK: u8 = 0x80;
/// First byte of a log value compressed whole (`compress::compress`, zstd without a dictionary):
/// what follows decompresses to a value of either kind above. The writer compresses every value
/// of at least `PACK_FROM` bytes that comes out smaller (schema version 5).
pub const LOG_PACKED: u8 = 0x81;
const PACK_FROM: usize = 256;
/// The writer closes a chunk once it holds this many bytes (before compression). sled 0.34 moves
/// any *page* (a leaf of up to 17 values, rewritten whole when consolidated) whose serialized
/// form passes a quarter of its 512 KiB segment into a blob file of its own, one file per page
/// write. Chunks of 16 KiB of records compress to 2–3 KiB (records of one group repeat their
/// cluster, task definition and much else), which keeps a leaf of them far below that, so an
/// ordinary log writes no blob files (`SledEngine::sync` makes any it does write durable, but
/// each costs a file creation and, on a miss, an open and a read).
pub const LOG_CHUNK_BYTES: usize = 16 * 1024;

/// Builds the log value for consecutive records of one group commit, framing each in place.
pub struct LogChunk {
    bytes: Vec<u8>,
    records: usize,
}

impl Default for LogChunk {
    fn default() -> Self {
        let mut bytes = Vec::with_capacity(4096);
        bytes.push(LOG_CHUNK);
        LogChunk { bytes, records: 0 }
    }
}

impl LogChunk {
    pub fn push(&mut self, record: &LogRecord) {
        let payload_len = record.encoded_len();
        let at = self.bytes.len();
        self.bytes.reserve(4 + FRAME_HEADER + payload_len);
        self.bytes
            .extend_from_slice(&((FRAME_HEADER + payload_len) as u32).to_le_bytes());
        self.bytes.push(LOG_FORMAT_VERSION);
        self.bytes.extend_from_slice(&[0; 4]);
        record.encode(&mut self.bytes).expect("a Vec grows as needed");
        let crc = crc32c::crc32c(&self.bytes[at + 4 + FRAME_HEADER..]);
        self.bytes[at + 5..at + 4 + FRAME_HEADER].copy_from_slice(&crc.to_le_bytes());
        self.records += 1;
    }

    /// Adds a frame as it was read (repair keeps the intact start of a damaged chunk).
    pub fn push_frame(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(frame);
        self.records += 1;
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The value to store; a single record is stored as its bare frame. Compressed (`pack`).
    pub fn finish(mut self) -> Vec<u8> {
        if self.records == 1 {
            self.bytes.drain(..5);
        }
        pack(self.bytes)
    }
}

/// A log value as stored: compressed behind `LOG_PACKED` when that is smaller.
pub fn pack(value: Vec<u8>) -> Vec<u8> {
    if value.len() < PACK_FROM {
        return value;
    }
    let mut packed = compress::compress(&value);
    if packed.len() + 1 >= value.len() {
        return value;
    }
    // Within the room zstd's bound left: no second buffer.
    packed.insert(0, LOG_PACKED);
    packed
}

/// The frames of one stored log value (see `log_frames`); owns the value decompressed.
pub struct Frames<'a> {
    first: u64,
    plain: Result<Cow<'a, [u8]>, CorruptRecord>,
}

impl Frames<'_> {
    /// Each frame with its seq (`first`, `first + 1`, …), in order; where the value is damaged,
    /// the frames before the damage and then the problem.
    pub fn list(&self) -> Vec<Result<(u64, &[u8]), CorruptRecord>> {
        match &self.plain {
            Ok(plain) => frames_of(self.first, plain),
            Err(problem) => vec![Err(problem.clone())],
        }
    }
}

/// The frames of a log value stored under `first` (`Frames::list`), decompressed if it was
/// compressed. Checks the layout only; each frame is checked by `unframe_log_record`.
pub fn log_frames(first: u64, value: &[u8]) -> Frames<'_> {
    Frames {
        first,
        plain: unpack(first, value),
    }
}

/// A log value stored under `first` as it was before `pack`: one frame or a chunk.
pub fn unpack(first: u64, value: &[u8]) -> Result<Cow<'_, [u8]>, CorruptRecord> {
    match value.split_first() {
        Some((&LOG_PACKED, compressed)) => {
            compress::decompress(compressed)
                .map(Cow::Owned)
                .map_err(|problem| CorruptRecord {
                    seq: first,
                    problem: format!("the compressed log value stored under seq {first} is damaged: {problem}"),
                })
        }
        _ => Ok(Cow::Borrowed(value)),
    }
}

fn frames_of(first: u64, value: &[u8]) -> Vec<Result<(u64, &[u8]), CorruptRecord>> {
    if value.first() != Some(&LOG_CHUNK) {
        return vec![Ok((first, value))];
    }
    let mut frames = Vec::new();
    let mut rest = &value[1..];
    loop {
        let seq = first.saturating_add(frames.len() as u64);
        let damaged = |problem: &str| {
            Err(CorruptRecord {
                seq,
                problem: format!("the chunk stored under seq {first} {problem}"),
            })
        };
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            if rest.is_empty() && !frames.is_empty() {
                return frames;
            }
            frames.push(damaged(if rest.is_empty() {
                "is empty"
            } else {
                "ends inside a frame length"
            }));
            return frames;
        };
        let length = u32::from_le_bytes(*length) as usize;
        if length > tail.len() {
            frames.push(damaged("ends inside a frame"));
            return frames;
        }
        frames.push(Ok((seq, &tail[..length])));
        rest = &tail[length..];
    }
}

/// Encodes a view record.
pub fn encode_view<M: Message>(record: &M) -> Vec<u8> {
    record.encode_to_vec()
}

/// Decodes a view record; a failure means the views are damaged (rebuild them).
pub fn decode_view<M: Message + Default>(key: &[u8], bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("view record {} is undecodable: {e}", super::keys::describe(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::log::{event::Kind, ClusterDeleted, Event};

    fn record(seq: u64) -> LogRecord {
        LogRecord {
            seq,
            time: None,
            cause: None,
            event: Some(Event {
                kind: Some(Kind::ClusterDeleted(ClusterDeleted {
                    cluster_arn: "arn".into(),
                })),
            }),
        }
    }

    #[test]
    fn framed_records_round_trip() {
        let bytes = frame_log_record(&record(7));
        assert_eq!(unframe_log_record(7, &bytes).unwrap(), record(7));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let bytes = frame_log_record(&record(7));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(
                unframe_log_record(7, &damaged).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_chunk_holds_consecutive_records_and_one_record_is_a_bare_frame() {
        let mut one = LogChunk::default();
        one.push(&record(7));
        assert_eq!(one.finish(), frame_log_record(&record(7)));
        let mut chunk = LogChunk::default();
        chunk.push(&record(7));
        chunk.push(&record(8));
        chunk.push(&record(9));
        let value = chunk.finish();
        let frames = log_frames(7, &value);
        let frames = frames.list();
        assert_eq!(frames.len(), 3);
        for frame in frames {
            let (seq, frame) = frame.unwrap();
            assert_eq!(unframe_log_record(seq, frame).unwrap(), record(seq));
        }
        assert_eq!(log_frames(7, &frame_log_record(&record(7))).list().len(), 1);
    }

    #[test]
    fn a_damaged_chunk_is_refused_or_its_frames_are() {
        let mut chunk = LogChunk::default();
        (7..10).for_each(|seq| chunk.push(&record(seq)));
        let value = chunk.finish();
        let cut = log_frames(7, &value[..value.len() - 1]);
        let cut = cut.list();
        assert_eq!(cut.len(), 3, "two intact frames, then the problem");
        assert!(cut[..2].iter().all(Result::is_ok));
        let problem = cut[2].clone().unwrap_err();
        assert_eq!(problem.seq, 9);
        assert!(problem.problem.contains("ends inside a frame"), "{problem}");
        assert!(log_frames(7, &value[..3]).list()[0].is_err());
        assert!(log_frames(7, &[LOG_CHUNK]).list()[0]
            .clone()
            .unwrap_err()
            .problem
            .contains("empty"));
        for i in 1..value.len() {
            let mut damaged = value.clone();
            damaged[i] ^= 0x40;
            let frames = log_frames(7, &damaged);
            let frames = frames.list();
            let intact = frames.len() == 3
                && frames.iter().all(|f| {
                    f.clone()
                        .is_ok_and(|(seq, frame)| unframe_log_record(seq, frame).is_ok())
                });
            assert!(!intact, "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_large_value_is_stored_compressed_and_reads_back_frame_for_frame() {
        let mut chunk = LogChunk::default();
        (7..40).for_each(|seq| chunk.push(&record(seq)));
        let plain = chunk.bytes();
        let value = chunk.finish();
        assert_eq!(value[0], LOG_PACKED);
        assert!(value.len() * 2 < plain, "{} bytes stored for {plain}", value.len());
        let frames = log_frames(7, &value);
        let frames = frames.list();
        assert_eq!(frames.len(), 33);
        for frame in frames {
            let (seq, frame) = frame.unwrap();
            assert_eq!(unframe_log_record(seq, frame).unwrap(), record(seq));
        }
        // Damage anywhere is refused: by zstd, by the chunk's layout or by a frame's CRC.
        for i in 1..value.len() {
            let mut damaged = value.clone();
            damaged[i] ^= 0x40;
            let frames = log_frames(7, &damaged);
            let intact = frames.list().iter().all(|f| {
                f.clone()
                    .is_ok_and(|(seq, frame)| unframe_log_record(seq, frame).is_ok())
            });
            assert!(!intact || frames.list().len() != 33, "flip at byte {i} went unnoticed");
        }
        let cut = log_frames(7, &value[..value.len() / 2]);
        let problem = cut.list()[0].clone().unwrap_err();
        assert!(problem.problem.contains("compressed log value"), "{problem}");
    }

    #[test]
    fn a_record_under_the_wrong_seq_is_refused() {
        let bytes = frame_log_record(&record(7));
        assert!(unframe_log_record(8, &bytes).unwrap_err().problem.contains("seq 7"));
    }
}
