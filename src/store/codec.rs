//! Encoding of what the store writes: log records framed with a format version and a CRC32C
//! (the long-lived format, see proto/taskledger/log/v1/log.proto), and view records (prost,
//! derived data that can always be rebuilt).
//! Does not decide key layout (see `keys`).

use prost::Message;

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

/// Reads a framed record stored under `seq`, checking its version, CRC and seq.
pub fn unframe_log_record(seq: u64, bytes: &[u8]) -> Result<LogRecord, CorruptRecord> {
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
    let record = LogRecord::decode(&bytes[FRAME_HEADER..]).map_err(|e| corrupt(format!("undecodable: {e}")))?;
    if record.seq != seq {
        return Err(corrupt(format!("holds seq {} instead", record.seq)));
    }
    if record.event.as_ref().and_then(|e| e.kind.as_ref()).is_none() {
        return Err(corrupt("holds an event of a kind this binary does not know".into()));
    }
    Ok(record)
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
    fn a_record_under_the_wrong_seq_is_refused() {
        let bytes = frame_log_record(&record(7));
        assert!(unframe_log_record(8, &bytes).unwrap_err().problem.contains("seq 7"));
    }
}
