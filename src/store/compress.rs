//! zstd in the store. Task records in memory and in checkpoints: a dictionary trained on the
//! store's own compact records (one per store, trained once the views hold `TRAIN_AT` tasks)
//! takes a Fargate task's ~410 bytes to ~110, and back in about a microsecond; derived data like
//! the views, so a checkpoint carries its dictionary and a fold of the log trains its own. Log
//! values (chunks of framed records): compressed whole, without a dictionary, so that the log
//! needs nothing but itself to be read (`codec` decides which values are).
//! Does not decide which records are compressed (see `memory::Views`, `codec`).

use std::cell::RefCell;
use std::sync::Arc;

use zstd::zstd_safe::{CCtx, DCtx, SafeResult};

/// The views train a dictionary once they hold this many task records.
pub const TRAIN_AT: usize = 4096;
/// Records sampled to train it. Training runs once, on the writer thread, and takes time in
/// proportion to the samples (0.3 s for 4,096 Fargate records, for the same ratio as 1,024).
const SAMPLES: usize = 1024;
/// The dictionary's size in bytes.
const SIZE: usize = 8 * 1024;
const LEVEL: i32 = 3;
/// Nothing this module compresses is larger (a damaged zstd header cannot make a read allocate more).
const MAX_PLAIN: u64 = 64 << 20;
/// Log values are compressed fast: the commit path waits for it.
const LOG_LEVEL: i32 = 1;

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
        compress_with(record, |cctx, out| {
            cctx.compress_using_cdict(out, record, self.compress.as_cdict())
        })
    }

    pub fn decompress(&self, compressed: &[u8]) -> Result<Vec<u8>, String> {
        decompress_with(compressed, |dctx, out| {
            dctx.decompress_using_ddict(out, compressed, self.decompress.as_ddict())
        })
    }
}

/// `bytes` compressed on its own (a log value).
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    compress_with(bytes, |cctx, out| cctx.compress(out, bytes, LOG_LEVEL))
}

/// What `compress` compressed.
pub fn decompress(compressed: &[u8]) -> Result<Vec<u8>, String> {
    decompress_with(compressed, |dctx, out| dctx.decompress(out, compressed))
}

fn compress_with(bytes: &[u8], run: impl FnOnce(&mut CCtx<'static>, &mut Vec<u8>) -> SafeResult) -> Vec<u8> {
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(bytes.len()));
    COMPRESSOR.with_borrow_mut(|cctx| {
        // Room for compress_bound bytes is always enough, so this cannot fail.
        run(cctx, &mut out).expect("zstd compresses into a buffer of compress_bound bytes");
    });
    // Not shrunk: every caller copies it (into an `Arc`) or fills its spare room (`codec::pack`).
    out
}

fn decompress_with(
    compressed: &[u8],
    run: impl FnOnce(&mut DCtx<'static>, &mut Vec<u8>) -> SafeResult,
) -> Result<Vec<u8>, String> {
    let size = match zstd::zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(size)) if size <= MAX_PLAIN => size as usize,
        Ok(size) => return Err(format!("its zstd header names its size as {size:?}")),
        Err(_) => return Err("it has no zstd frame header".into()),
    };
    let mut out = Vec::with_capacity(size);
    DECOMPRESSOR
        .with_borrow_mut(|dctx| run(dctx, &mut out))
        .map_err(|code| format!("it does not decompress: {}", zstd::zstd_safe::get_error_name(code)))?;
    if out.len() != size {
        return Err(format!(
            "it decompresses to {} bytes, not the {size} its header names",
            out.len()
        ));
    }
    Ok(out)
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
        let joined = samples.concat();
        let compressed = compress(&joined);
        assert!(compressed.len() < joined.len() / 4);
        assert_eq!(decompress(&compressed).unwrap(), joined);
        assert!(decompress(&compressed[..compressed.len() / 2]).is_err());
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
