//! The history index: task id → the seqs of its events, for the history of any task ever,
//! including STOPPED tasks the views no longer hold (expired). A follower thread reads the log
//! after the commit, collects seqs in memory and flushes them every few seconds (or every
//! `FLUSH_SEQS` seqs) into the log engine's derived keyspace, one value per task per flush, with
//! the seq the index reaches; it never touches the commit path. A query merges the flushed
//! values, what is still in memory and the log the follower has not read yet, so an index that
//! is behind, lost or damaged never changes an answer; at worst a query reads more of the log.
//! Keys: `h` + task id + `\0` + first seq (big endian) → the seqs (8 bytes each, big endian);
//! `hseq` → the last seq flushed.
//! Does not serve the history of tasks still in the views (their records list it).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::codec::{log_frames, unframe_log_record};
use super::error::{StoreError, StoreResult};
use super::log::Log;
use crate::domain::command::event_task_id;

/// Seqs held in memory at most before a flush.
const FLUSH_SEQS: usize = 65_536;
/// Longest the follower keeps seqs in memory.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
const INDEXED_KEY: &[u8] = b"hseq";

fn task_prefix(task_id: &str) -> Vec<u8> {
    [b"h", task_id.as_bytes(), &[0]].concat()
}

/// What the follower has read and not yet flushed.
#[derive(Default)]
struct Progress {
    /// Every record up to here is flushed or in `pending`.
    read: u64,
    pending: HashMap<String, Vec<u64>>,
    pending_seqs: usize,
}

/// The index's shared state; the follower thread and the queries hold it.
pub struct HistoryIndex {
    log: Arc<dyn Log>,
    progress: Mutex<Progress>,
    stop: AtomicBool,
}

impl HistoryIndex {
    /// The index over `log`, resuming where the last flush got to (from seq 1 if nothing was
    /// flushed, or if the flushed seq is beyond the log's head: the log was cut by a repair).
    pub fn open(log: Arc<dyn Log>) -> StoreResult<Arc<HistoryIndex>> {
        let head = log.head().map_err(|e| StoreError::storage("reading the head", e))?;
        let flushed = log
            .derived_get(INDEXED_KEY)
            .map_err(|e| StoreError::storage("reading the history index", e))?
            .and_then(|bytes| bytes.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let read = if flushed > head {
            tracing::warn!(flushed, head, "the history index is ahead of the log; rebuilding it");
            let stale: Vec<_> = log
                .derived_range(b"h")
                .map_err(|e| StoreError::storage("clearing the history index", e))?
                .into_iter()
                .map(|(key, _)| (key, None))
                .collect();
            log.derived_apply(stale)
                .map_err(|e| StoreError::storage("clearing the history index", e))?;
            0
        } else {
            flushed
        };
        Ok(Arc::new(HistoryIndex {
            log,
            progress: Mutex::new(Progress {
                read,
                ..Progress::default()
            }),
            stop: AtomicBool::new(false),
        }))
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How far the index has read the log.
    pub fn read_to(&self) -> u64 {
        self.progress().read
    }

    /// Starts the follower thread; it stops after `stop`, flushing what it holds.
    pub fn follow(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let index = Arc::clone(self);
        std::thread::Builder::new()
            .name("taskledger-history".into())
            .spawn(move || index.run())
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    fn run(&self) {
        let mut flushed_at = Instant::now();
        let started = self.read_to();
        let mut caught_up_logged = false;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let read = self.read_to();
            let head = match self.log.head() {
                Ok(head) => head,
                Err(e) => {
                    tracing::warn!(error = %e, "history index: cannot read the head; stopping");
                    return;
                }
            };
            if head > read {
                if let Err(e) = self.read_log(read, head) {
                    tracing::warn!(error = %e, "history index: cannot read the log; it will be read by queries instead");
                    return;
                }
            } else if !caught_up_logged && started < head {
                tracing::info!(seq = head, "history index caught up with the log");
                caught_up_logged = true;
            }
            let full = self.progress().pending_seqs >= FLUSH_SEQS;
            if stopping || full || flushed_at.elapsed() >= FLUSH_EVERY {
                if let Err(e) = self.flush() {
                    tracing::warn!(error = %e, "history index: flush failed; queries read the log instead");
                }
                flushed_at = Instant::now();
            }
            if stopping {
                return;
            }
            if head <= self.read_to() {
                let _ = self.log.wait_beyond(head, Duration::from_millis(200));
            }
        }
    }

    /// Reads the records after `read` up to `head` (at most a few thousand at a time).
    fn read_log(&self, read: u64, head: u64) -> StoreResult<()> {
        let until = head.min(read + 16_384);
        let mut found: Vec<(String, u64)> = Vec::new();
        let mut last = read;
        scan(&*self.log, read + 1, until, |seq, task_id| {
            if let Some(id) = task_id {
                found.push((id.to_string(), seq));
            }
            last = seq;
        })?;
        let mut progress = self.progress();
        for (id, seq) in found {
            progress.pending.entry(id).or_default().push(seq);
            progress.pending_seqs += 1;
        }
        progress.read = last.max(progress.read);
        if last % 1_048_576 < read % 1_048_576 {
            tracing::info!(seq = last, head, "history index: reading the log");
        }
        Ok(())
    }

    /// Writes what is in memory to the derived keyspace, with the seq it reaches.
    fn flush(&self) -> StoreResult<()> {
        let (pending, read) = {
            let progress = self.progress();
            if progress.pending.is_empty() {
                (HashMap::new(), progress.read)
            } else {
                (progress.pending.clone(), progress.read)
            }
        };
        let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(pending.len() + 1);
        for (id, seqs) in &pending {
            let key = [task_prefix(id), seqs[0].to_be_bytes().to_vec()].concat();
            let value = seqs.iter().flat_map(|s| s.to_be_bytes()).collect();
            writes.push((key, Some(value)));
        }
        writes.push((INDEXED_KEY.to_vec(), Some(read.to_be_bytes().to_vec())));
        self.log
            .derived_apply(writes)
            .map_err(|e| StoreError::storage("writing the history index", e))?;
        // Forget only what was flushed: the follower may have read more meanwhile.
        let mut progress = self.progress();
        for (id, seqs) in pending {
            if let Some(held) = progress.pending.get_mut(&id) {
                held.drain(..seqs.len().min(held.len()));
                if held.is_empty() {
                    progress.pending.remove(&id);
                }
            }
            progress.pending_seqs = progress.pending_seqs.saturating_sub(seqs.len());
        }
        Ok(())
    }

    /// Every seq of the task's events up to `head`, ascending: the flushed index, what the
    /// follower holds, and the log it has not read yet.
    pub fn seqs(&self, task_id: &str, head: u64) -> StoreResult<Vec<u64>> {
        let mut seqs = BTreeSet::new();
        let read = {
            let progress = self.progress();
            seqs.extend(progress.pending.get(task_id).into_iter().flatten().copied());
            progress.read
        };
        for (_, value) in self
            .log
            .derived_range(&task_prefix(task_id))
            .map_err(|e| StoreError::storage("reading the history index", e))?
        {
            seqs.extend(
                value
                    .chunks_exact(8)
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))),
            );
        }
        if read < head {
            scan(&*self.log, read + 1, head, |seq, id| {
                if id == Some(task_id) {
                    seqs.insert(seq);
                }
            })?;
        }
        Ok(seqs.into_iter().filter(|s| *s <= head).collect())
    }
}

/// Calls `each(seq, task id)` for every record from `from` to `until`.
fn scan(log: &dyn Log, from: u64, until: u64, mut each: impl FnMut(u64, Option<&str>)) -> StoreResult<()> {
    for value in log.read(from) {
        let value = value.map_err(|e| StoreError::storage("reading the log", e))?;
        for frame in log_frames(value.first, &value.bytes) {
            let (seq, frame) = frame.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if seq < from {
                continue;
            }
            if seq > until {
                return Ok(());
            }
            let record = unframe_log_record(seq, frame).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            each(seq, record.event.as_ref().and_then(event_task_id));
        }
    }
    Ok(())
}
