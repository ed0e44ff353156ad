//! Task records squeezed for memory and checkpoints: a zstd dictionary trained on the store's own
//! compact records (one per store, trained once the views hold `TRAIN_AT` tasks) takes a Fargate
//! task's ~410 bytes to ~115, and back in about a microsecond. Derived data like the views: a
//! checkpoint carries its dictionary, and a fold of the log trains its own.
//! Does not decide which records are squeezed (see `memory::Views`).

use std::cell::RefCell;
use std::sync::Arc;

use zstd::zstd_safe::{CCtx, DCtx};

/// The views train a dictionary once they hold this many task records.
pub const TRAIN_AT: usize = 4096;
/// Records sampled to train it.
const SAMPLES: usize = 4096;
/// The dictionary's size in bytes.
const SIZE: usize = 8 * 1024;
const LEVEL: i32 = 3;
/// No record decompresses to more than this (a damaged frame cannot make a read allocate more).
const MAX_RECORD: u64 = 16 << 20;

thread_local! {
    static COMPRESSOR: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
    static DECOMPRESSOR: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// A trained dictionary, prepared for both directions.
pub struct RecordDictionary {
    raw: Box<[u8]>,
    compress: zstd::dict::EncoderDictionary<'static>,
    decompress: zstd::dict::DecoderDictionary<'static>,
}

impl std::fmt::Debug for RecordDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordDictionary({} bytes)", self.raw.len())
    }
}

impl PartialEq for RecordDictionary {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl RecordDictionary {
    /// A dictionary trained on `samples`, or `None` when zstd finds too little in them to train
    /// on (then records stay as they are).
    pub fn train<'a>(samples: impl Iterator<Item = &'a [u8]>) -> Option<Arc<RecordDictionary>> {
        let samples: Vec<&[u8]> = samples.take(SAMPLES).collect();
        let started = std::time::Instant::now();
        match zstd::dict::from_samples(&samples, SIZE) {
            Ok(raw) => {
                tracing::info!(
                    samples = samples.len(),
                    bytes = raw.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "trained the task records' compression dictionary"
                );
                Some(Arc::new(RecordDictionary::from_raw(raw)))
            }
            Err(e) => {
                tracing::warn!(
                    samples = samples.len(),
                    "task records stay uncompressed: zstd could not train on them: {e}"
                );
                None
            }
        }
    }

    /// A dictionary from its bytes (as `raw` gives them).
    pub fn from_raw(raw: Vec<u8>) -> RecordDictionary {
        RecordDictionary {
            compress: zstd::dict::EncoderDictionary::copy(&raw, LEVEL),
            decompress: zstd::dict::DecoderDictionary::copy(&raw),
            raw: raw.into_boxed_slice(),
        }
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn compress(&self, record: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(record.len()));
        COMPRESSOR.with_borrow_mut(|cctx| {
            // The bound above is always enough room, so this cannot fail.
            cctx.compress_using_cdict(&mut out, record, self.compress.as_cdict())
                .expect("zstd compresses into a buffer of compress_bound bytes");
        });
        out.shrink_to_fit();
        out
    }

    pub fn decompress(&self, squeezed: &[u8]) -> Result<Vec<u8>, String> {
        let size = match zstd::zstd_safe::get_frame_content_size(squeezed) {
            Ok(Some(size)) if size <= MAX_RECORD => size as usize,
            Ok(size) => return Err(format!("a compressed task record names its size as {size:?}")),
            Err(_) => return Err("a compressed task record has no zstd frame header".into()),
        };
        let mut out = Vec::with_capacity(size);
        DECOMPRESSOR.with_borrow_mut(|dctx| {
            dctx.decompress_using_ddict(&mut out, squeezed, self.decompress.as_ddict())
                .map_err(|code| {
                    format!(
                        "a compressed task record does not decompress: {}",
                        zstd::zstd_safe::get_error_name(code)
                    )
                })
        })?;
        if out.len() != size {
            return Err(format!("a compressed task record gave {} bytes, not {size}", out.len()));
        }
        Ok(out)
    }
}

/// Serde for an optional dictionary: its bytes, or none.
pub mod serde_option {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Arc<RecordDictionary>>, serializer: S) -> Result<S::Ok, S::Error> {
        value
            .as_ref()
            .map(|d| serde_bytes::Bytes::new(d.raw()))
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arc<RecordDictionary>>, D::Error> {
        let raw = Option::<serde_bytes::ByteBuf>::deserialize(deserializer)?;
        Ok(raw.map(|raw| Arc::new(RecordDictionary::from_raw(raw.into_vec()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        (0..2000u32)
            .map(|i| {
                format!(
                    "arn:aws:ecs:us-east-1:123456789012:task/prod/{i:032x} family:web RUNNING nginx:1.25 subnet-{} {}",
                    i % 7,
                    i * 7919
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn records_round_trip_and_shrink() {
        let samples = samples();
        let dictionary = RecordDictionary::train(samples.iter().map(|s| s.as_slice())).unwrap();
        let again = RecordDictionary::from_raw(dictionary.raw().to_vec());
        for record in &samples {
            let squeezed = dictionary.compress(record);
            assert!(
                squeezed.len() < record.len() / 2,
                "{} of {}",
                squeezed.len(),
                record.len()
            );
            assert_eq!(&again.decompress(&squeezed).unwrap(), record);
        }
        assert_eq!(dictionary.decompress(&dictionary.compress(b"")).unwrap(), b"");
    }

    #[test]
    fn damaged_records_are_errors() {
        let samples = samples();
        let dictionary = RecordDictionary::train(samples.iter().map(|s| s.as_slice())).unwrap();
        let squeezed = dictionary.compress(&samples[5]);
        assert!(dictionary.decompress(&squeezed[..squeezed.len() - 3]).is_err());
        assert!(dictionary.decompress(b"not zstd").is_err());
        assert!(dictionary.decompress(&[]).is_err());
        let mut flipped = squeezed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        // A flipped bit either fails or yields other bytes; it never panics.
        let _ = dictionary.decompress(&flipped);
    }
}
