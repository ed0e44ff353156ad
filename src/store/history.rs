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

use prost::Message;

use super::codec::{frame_payload, log_frames};
use super::error::{StoreError, StoreResult};
use super::log::Log;
use crate::domain::ids::stored_id_of;

/// Seqs held in memory at most before a flush.
const FLUSH_SEQS: usize = 65_536;
/// Longest the follower keeps seqs in memory.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
const INDEXED_KEY: &[u8] = b"hseq";
/// Keys written per engine batch. sled 0.34 applies a batch under a lock that the log's own
/// appends wait for, so a flush goes in small batches (the seq it reaches last) rather than hold
/// the commit path up for as long as thousands of keys take.
const FLUSH_BATCH: usize = 256;

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
        for batch in writes.chunks(FLUSH_BATCH) {
            self.log
                .derived_apply(batch.to_vec())
                .map_err(|e| StoreError::storage("writing the history index", e))?;
        }
        // Only once every value is written does the index claim to reach `read`.
        self.log
            .derived_apply(vec![(INDEXED_KEY.to_vec(), Some(read.to_be_bytes().to_vec()))])
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
        for frame in log_frames(value.first, &value.bytes).list() {
            let (seq, frame) = frame.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if seq < from {
                continue;
            }
            if seq > until {
                return Ok(());
            }
            let payload = frame_payload(seq, frame).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let record = projection::Record::decode(payload)
                .map_err(|e| StoreError::Corrupt(format!("log record {seq}: undecodable: {e}")))?;
            if record.seq != seq {
                return Err(StoreError::Corrupt(format!(
                    "log record {seq}: holds seq {} instead",
                    record.seq
                )));
            }
            each(seq, record.task_id());
        }
    }
    Ok(())
}

/// The few fields of a log record the index needs, decoded without the rest (prost skips the
/// fields a message does not declare). Field numbers are those of `log.proto` and `ecs.proto`;
/// the cases mirror `domain::command::event_task_id`.
mod projection {
    use super::stored_id_of;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Record {
        #[prost(uint64, tag = "1")]
        pub seq: u64,
        #[prost(message, optional, tag = "4")]
        pub event: Option<Event>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(message, optional, tag = "1")]
        pub task_created: Option<TaskCreated>,
        #[prost(message, optional, tag = "2")]
        pub task_changed: Option<Arn>,
        #[prost(message, optional, tag = "3")]
        pub tags_changed: Option<Arn>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TaskCreated {
        #[prost(message, optional, tag = "1")]
        pub task: Option<Task>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Task {
        #[prost(string, optional, tag = "33")]
        pub task_arn: Option<String>,
    }

    /// `TaskChanged.task_arn` and `TagsChanged.resource_arn` are both field 1.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Arn {
        #[prost(string, tag = "1")]
        pub arn: String,
    }

    impl Record {
        pub fn task_id(&self) -> Option<&str> {
            let event = self.event.as_ref()?;
            let arn = if let Some(created) = &event.task_created {
                created.task.as_ref()?.task_arn.as_deref()?
            } else if let Some(changed) = &event.task_changed {
                changed.arn.as_str()
            } else if let Some(tags) = event.tags_changed.as_ref().filter(|t| t.arn.contains(":task/")) {
                tags.arn.as_str()
            } else {
                return None;
            };
            Some(stored_id_of(arn))
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::projection;
    use crate::domain::command::event_task_id;
    use crate::proto::log::{event::Kind, Event, LogRecord, TagsChanged, TaskChanged, TaskCreated};
    use crate::proto::v1::Task;

    #[test]
    fn the_projection_finds_the_task_every_event_is_about() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
        let events = [
            Kind::TaskCreated(TaskCreated {
                task: Some(Task {
                    task_arn: Some(arn.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            Kind::TaskChanged(TaskChanged {
                task_arn: arn.into(),
                version: 2,
                ..Default::default()
            }),
            Kind::TagsChanged(TagsChanged {
                resource_arn: arn.into(),
                ..Default::default()
            }),
            Kind::TagsChanged(TagsChanged {
                resource_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
                ..Default::default()
            }),
        ];
        for kind in events {
            let record = LogRecord {
                seq: 7,
                event: Some(Event { kind: Some(kind) }),
                ..Default::default()
            };
            let projected = projection::Record::decode(record.encode_to_vec().as_slice()).unwrap();
            assert_eq!(projected.seq, 7);
            assert_eq!(projected.task_id(), record.event.as_ref().and_then(event_task_id));
        }
    }
}
