//! Checkpoints: the in-memory views at some seq N written to a file, so that opening a store
//! loads the newest sound checkpoint and folds only the log after N. Derived data: bincode 2
//! (serde) with a magic number, a format version and a CRC32C over everything, written to a
//! temporary file, fsynced and renamed into `<dir>/checkpoints/`. A checkpoint also names the CRC
//! of the log record at N, so one that no longer matches the log (after a repair cut the log
//! and other records took those seqs) is never trusted. A missing, torn, stale or foreign
//! checkpoint is skipped with a log line; the log alone always suffices.
//! Does not decide when to write one (see `Store`'s checkpointer).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::codec;
use super::log::Log;
use super::memory::Views;

const MAGIC: &[u8; 8] = b"TLCKPT\0\0";
/// The checkpoint layout this binary writes and reads; another is skipped (and rebuilt).
pub const CHECKPOINT_FORMAT: u32 = 2;
/// Checkpoints kept; older ones are removed once a new one is durable.
pub const KEEP: usize = 2;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".bin";

/// Everything a checkpoint holds beside the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub format: u32,
    /// The store's schema version when it was written.
    pub schema: u32,
    /// The seq the views reflect.
    pub head: u64,
    /// The CRC32C of the log record at `head` (0 for an empty log).
    pub head_crc: u32,
    /// The time of the record at `head`, as (seconds, nanos).
    pub last_time: (i64, i32),
}

#[derive(Serialize)]
struct Body<'a> {
    stamp: Stamp,
    views: &'a Views,
}

#[derive(Deserialize)]
struct OwnedBody {
    stamp: Stamp,
    views: Views,
}

/// Why a checkpoint was not used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("damaged: {0}")]
    Damaged(String),
    #[error("stale: {0}")]
    Stale(String),
}

fn config() -> impl bincode::config::Config {
    // A damaged length can never make a read allocate more than this.
    bincode::config::standard().with_limit::<{ 1 << 36 }>()
}

/// The directory checkpoints of the store in `dir` live in.
pub fn directory(dir: &Path) -> PathBuf {
    dir.join("checkpoints")
}

fn file_name(head: u64) -> String {
    format!("{PREFIX}{head:020}{SUFFIX}")
}

/// The checkpoint files in `dir`, newest (highest seq) first.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let listing = match std::fs::read_dir(directory(dir)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        listing => listing?,
    };
    for entry in listing {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let seq = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(SUFFIX))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(seq) = seq {
            found.push((seq, entry.path()));
        }
    }
    found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(found)
}

/// Feeds every byte written through a CRC32C.
struct Crc<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.crc = crc32c::crc32c_append(self.crc, &bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }
}

/// Writes `views` (at `stamp.head`) as the newest checkpoint of the store in `dir`, durably, and
/// removes all but the newest `KEEP`. Returns the file's size.
pub fn write(dir: &Path, stamp: Stamp, views: &Views) -> std::io::Result<u64> {
    let folder = directory(dir);
    std::fs::create_dir_all(&folder)?;
    // Leftovers of a checkpoint whose writer died are useless.
    for entry in std::fs::read_dir(&folder)?.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let temporary = folder.join(format!(".{}.tmp", file_name(stamp.head)));
    let size = match write_file(&temporary, stamp, views) {
        Ok(size) => size,
        Err(e) => {
            // A half-written file (the disk filled up, say) must not keep its space.
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
    };
    std::fs::rename(&temporary, folder.join(file_name(stamp.head)))?;
    super::engine::sync_directory(&folder)?;
    for (_, old) in list(dir)?.into_iter().skip(KEEP) {
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(file = %old.display(), error = %e, "could not remove an old checkpoint");
        }
    }
    Ok(size)
}

/// The size of the newest checkpoint file in `dir`, if any: what the next one will need, about.
pub fn newest_size(dir: &Path) -> Option<u64> {
    let (_, path) = list(dir).ok()?.into_iter().next()?;
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn write_file(temporary: &Path, stamp: Stamp, views: &Views) -> std::io::Result<u64> {
    let file = File::create(temporary)?;
    let mut out = Crc {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: 0,
    };
    out.write_all(MAGIC)?;
    bincode::serde::encode_into_std_write(&Body { stamp, views }, &mut out, config())
        .map_err(|e| std::io::Error::other(format!("encoding the checkpoint: {e}")))?;
    let crc = out.crc;
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&crc.to_le_bytes())?;
    file.sync_all()?;
    file.metadata().map(|m| m.len())
}

/// Reads one checkpoint file, checking its magic, CRC and format (not yet against the log).
pub fn read(path: &Path) -> Result<(Stamp, Views), CheckpointError> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size < (MAGIC.len() + 4) as u64 {
        return Err(CheckpointError::Damaged(format!("only {size} bytes")));
    }
    let mut input = Crc {
        inner: BufReader::with_capacity(1 << 20, file).take(size - 4),
        crc: 0,
    };
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(CheckpointError::Damaged("not a taskledger checkpoint".into()));
    }
    let body: Result<OwnedBody, _> = bincode::serde::decode_from_std_read(&mut input, config());
    // Whatever was decoded counts only if every byte up to the CRC was read and matches it.
    let mut rest = Vec::new();
    input.read_to_end(&mut rest)?;
    let computed = input.crc;
    let mut stored = [0u8; 4];
    input.inner.into_inner().read_exact(&mut stored)?;
    if u32::from_le_bytes(stored) != computed {
        return Err(CheckpointError::Damaged(format!(
            "checksum mismatch (stored {:08x}, computed {computed:08x})",
            u32::from_le_bytes(stored)
        )));
    }
    let body = body.map_err(|e| CheckpointError::Damaged(format!("undecodable: {e}")))?;
    if !rest.is_empty() {
        return Err(CheckpointError::Damaged(format!(
            "{} bytes after the views",
            rest.len()
        )));
    }
    if body.stamp.format != CHECKPOINT_FORMAT {
        return Err(CheckpointError::Stale(format!(
            "format {} is not the {CHECKPOINT_FORMAT} this binary reads",
            body.stamp.format
        )));
    }
    if body.views.head != body.stamp.head {
        return Err(CheckpointError::Damaged(format!(
            "stamped at seq {} but holds views at {}",
            body.stamp.head, body.views.head
        )));
    }
    Ok((body.stamp, body.views))
}

/// The CRC32C of the log record at `seq` as its frame stores it (0 for seq 0).
pub fn record_crc(log: &dyn Log, seq: u64) -> Result<u32, String> {
    if seq == 0 {
        return Ok(0);
    }
    let value = log
        .read(seq)
        .next()
        .ok_or_else(|| format!("the log has no record {seq}"))?
        .map_err(|e| e.to_string())?;
    for frame in codec::log_frames(value.first, &value.bytes).list() {
        let (at, frame) = frame.map_err(|e| e.to_string())?;
        if at == seq {
            return codec::frame_crc(frame).ok_or_else(|| format!("log record {seq} is too short"));
        }
    }
    Err(format!("the log has no record {seq}"))
}

/// Checks a checkpoint against the log it is to be used with.
pub fn matches_log(stamp: &Stamp, log: &dyn Log, head: u64, schema: u32) -> Result<(), CheckpointError> {
    if stamp.schema != schema {
        return Err(CheckpointError::Stale(format!(
            "written at schema version {}, the store is at {schema}",
            stamp.schema
        )));
    }
    if stamp.head > head {
        return Err(CheckpointError::Stale(format!(
            "at seq {}, beyond the log's head {head}",
            stamp.head
        )));
    }
    let crc = record_crc(log, stamp.head).map_err(CheckpointError::Stale)?;
    if crc != stamp.head_crc {
        return Err(CheckpointError::Stale(format!(
            "the log record at seq {} is not the one it was taken after",
            stamp.head
        )));
    }
    Ok(())
}

/// The newest checkpoint of the store in `dir` that is sound and matches `log`, skipping (with
/// a warning) every one that is not.
pub fn newest_usable(dir: &Path, log: &dyn Log, head: u64, schema: u32) -> Option<(Stamp, Views)> {
    let found = match list(dir) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list the checkpoints; folding the whole log");
            return None;
        }
    };
    for (seq, path) in found {
        let started = std::time::Instant::now();
        match read(&path).and_then(|(stamp, views)| matches_log(&stamp, log, head, schema).map(|()| (stamp, views))) {
            Ok(usable) => {
                tracing::info!(
                    seq,
                    tasks = usable.1.task_count(),
                    seconds = started.elapsed().as_secs_f64(),
                    "checkpoint loaded"
                );
                return Some(usable);
            }
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "checkpoint skipped; trying an older one, else the whole log"
            ),
        }
    }
    None
}

/// Removes every checkpoint beyond `head` (after a repair shortened the log).
pub fn remove_beyond(dir: &Path, head: u64) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (seq, path) in list(dir)? {
        if seq > head {
            std::fs::remove_file(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}
