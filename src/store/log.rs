//! The log engine boundary: what the store needs from wherever its log lives. The log is a
//! sequence of values, each holding the framed records of consecutive seqs (see `codec`); an
//! append states the head it was decided against and fails with `Conflict` if the log moved, so
//! an engine that several servers append to (etcd) fences concurrent writers with it. Beside the
//! log, a small keyspace holds derived data (anything that can be rebuilt from the log).
//! `KvLog` puts the log on an ordered key-value `Engine` (sled, the embedded default); flushes,
//! fsyncs and blob files stay inside that engine.
//! Does not decode records (see `codec`) or know what events mean.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::archive::Archived;
use super::engine::{Engine, EngineError, EngineResult, WriteBatch};
use super::keys;

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log's head is not the one the records were decided against: another writer appended
    /// first. Nothing was written; the writer catches up and decides again.
    #[error("the log moved: its head is {head}, not the {expected} this append was decided against")]
    Conflict { expected: u64, head: u64 },
    /// The engine failed; whether anything was written is unknown until the log is read again.
    #[error(transparent)]
    Failed(#[from] EngineError),
}

/// One stored value of the log: the records from `first` on, framed (one bare frame or a chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogValue {
    pub first: u64,
    pub bytes: Vec<u8>,
}

/// The most one append may carry, for engines that cap a request (etcd); the writer closes a
/// group before it grows past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendLimit {
    /// Bytes of log values.
    pub bytes: usize,
    /// Log values.
    pub values: usize,
}

/// Log values in seq order.
pub type LogValues<'a> = Box<dyn Iterator<Item = EngineResult<LogValue>> + Send + 'a>;

/// Why `archive` refuses a log whose engine cannot remove archived seqs.
pub const NOT_ARCHIVABLE: &str =
    "this log engine keeps its whole log; `archive` is for a log on etcd, whose space quota bounds it";

/// What the store needs from a log engine.
pub trait Log: Send + Sync + 'static {
    /// The last seq durably in the log (0 for an empty log).
    fn head(&self) -> EngineResult<u64>;
    /// Appends `values`, which hold the seqs `expected_head + 1 ..= last` in order, in one durable
    /// write: on `Ok` every record is on stable storage (or committed by the engine's quorum).
    fn append(&self, expected_head: u64, last: u64, values: Vec<LogValue>) -> Result<(), AppendError>;
    /// The most one append may carry, if the engine caps it.
    fn append_limit(&self) -> Option<AppendLimit> {
        None
    }
    /// Whether other servers may append too (their appends show as `Conflict` and as a head
    /// beyond what this server appended), so the writer follows the log.
    fn shared(&self) -> bool {
        false
    }
    /// The values from the one holding `from` (or the first after it) to the end, in seq order.
    fn read(&self, from: u64) -> LogValues<'_>;
    /// Waits until the head passes `seen` or `timeout` elapses, and returns the head: how a
    /// follower learns of appends, including other servers' on a shared log.
    fn wait_beyond(&self, seen: u64, timeout: Duration) -> EngineResult<u64>;
    /// A value of the derived keyspace.
    fn derived_get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>>;
    /// The entries of the derived keyspace whose keys start with `prefix`, in key order.
    fn derived_range(&self, prefix: &[u8]) -> EngineResult<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Sets (`Some`) or removes (`None`) values of the derived keyspace, all or none. Not
    /// synced by itself: derived data carries the seq it reflects and is rebuilt from the log
    /// if a crash loses it (the next durable append makes it durable too).
    fn derived_apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> EngineResult<()>;
    /// Bytes the log and its keyspace occupy on disk.
    fn size_on_disk(&self) -> EngineResult<u64>;
    /// Bytes the engine can still grow by, where it knows; the writer keeps a reserve.
    fn available_space(&self) -> EngineResult<Option<u64>>;
    /// The free space, when a `reserve` (0: none) is set and the free space is below it.
    fn short_of(&self, reserve: u64) -> EngineResult<Option<u64>> {
        if reserve == 0 {
            return Ok(None);
        }
        Ok(self.available_space()?.filter(|available| *available < reserve))
    }
    /// The stretches of the log moved to archive files, oldest first (see `archive`).
    fn archived(&self) -> EngineResult<Vec<Archived>> {
        Ok(Vec::new())
    }
    /// The head as the engine has it now, not as this server last saw it (for a shared log:
    /// a linearizable read). Equal to `head` for a log with one writer.
    fn current_head(&self) -> EngineResult<u64> {
        self.head()
    }
    /// Asks the engine whether it would take an append now (etcd: a quorum answers); an
    /// embedded engine always would.
    fn probe(&self) -> EngineResult<()> {
        Ok(())
    }
    /// Whether `remove_archived` works on this engine.
    fn archivable(&self) -> bool {
        false
    }
    /// Records `archived` and removes its seqs, which must be the oldest the engine holds and
    /// end just before a stored value starts (a value is never cut in two). Only engines whose
    /// size is bounded by something other than a disk support it.
    fn remove_archived(&self, archived: &Archived) -> EngineResult<()> {
        let _ = archived;
        Err(EngineError(NOT_ARCHIVABLE.into()))
    }
}

/// The log on an ordered key-value engine: a value under `L` + first seq per stored value, the
/// head under `Mhead_seq`, derived data under `P` + name. One process owns it (sled's directory
/// lock), so the head it keeps in memory is the log's.
pub struct KvLog {
    engine: Arc<dyn Engine>,
    /// Whether appends are fsynced. Only benchmarks turn this off.
    sync: bool,
    head: Mutex<u64>,
    moved: Condvar,
}

impl KvLog {
    /// The log in `engine`, whose stamped head is `head` (see `verify::head_of`).
    pub fn new(engine: Arc<dyn Engine>, head: u64, sync: bool) -> KvLog {
        KvLog {
            engine,
            sync,
            head: Mutex::new(head),
            moved: Condvar::new(),
        }
    }

    /// The engine underneath, for the sled-only maintenance (migrations, repair).
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    fn current(&self) -> u64 {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The log values of `engine` from the one holding `from` on.
pub fn kv_read(engine: &dyn Engine, from: u64) -> LogValues<'_> {
    let start = match super::reader::log_value_holding(engine, from.max(1)) {
        Ok(Some((first, _))) => first,
        Ok(None) => from.max(1),
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    Box::new(Paged::new(engine, start))
}

/// Reads the log in pages: the engine's iterators are not `Send`, this one can move between
/// threads, and it holds no engine iterator between pages.
struct Paged<'a> {
    engine: &'a dyn Engine,
    next: u64,
    page: std::vec::IntoIter<EngineResult<LogValue>>,
    done: bool,
}

const PAGE_VALUES: usize = 256;

impl<'a> Paged<'a> {
    fn new(engine: &'a dyn Engine, start: u64) -> Paged<'a> {
        Paged {
            engine,
            next: start,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    fn fill(&mut self) {
        let end = keys::prefix_end(&[keys::LOG]);
        let mut page = Vec::with_capacity(PAGE_VALUES);
        for entry in self.engine.range(&keys::log(self.next), &end).take(PAGE_VALUES) {
            let value = entry.and_then(|(key, bytes)| {
                let first = keys::log_seq(&key)
                    .ok_or_else(|| EngineError(format!("damaged log key {}", keys::describe(&key))))?;
                Ok(LogValue { first, bytes })
            });
            match &value {
                Ok(v) => self.next = v.first + 1,
                Err(_) => self.done = true,
            }
            let failed = value.is_err();
            page.push(value);
            if failed {
                break;
            }
        }
        if page.len() < PAGE_VALUES {
            self.done = true;
        }
        self.page = page.into_iter();
    }
}

impl Iterator for Paged<'_> {
    type Item = EngineResult<LogValue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            self.fill();
        }
    }
}

/// `P` + name → derived data (checkpoint pointers, the history index's progress, …).
pub(crate) fn derived_key(key: &[u8]) -> Vec<u8> {
    [&[keys::DERIVED][..], key].concat()
}

/// The derived entries of `engine` whose keys start with `prefix`, without the `P`.
pub(crate) fn derived_range_in(engine: &dyn Engine, prefix: &[u8]) -> EngineResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let start = derived_key(prefix);
    let end = keys::prefix_end(&start);
    engine
        .range(&start, &end)
        .map(|entry| entry.map(|(key, value)| (key[1..].to_vec(), value)))
        .collect()
}

/// Sets or removes derived entries of `engine`, all or none.
pub(crate) fn derived_apply_in(engine: &dyn Engine, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> EngineResult<()> {
    let mut batch = WriteBatch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.put(derived_key(&key), value),
            None => batch.delete(derived_key(&key)),
        }
    }
    engine.apply(batch)
}

impl Log for KvLog {
    fn head(&self) -> EngineResult<u64> {
        Ok(self.current())
    }

    fn append(&self, expected_head: u64, last: u64, values: Vec<LogValue>) -> Result<(), AppendError> {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if *head != expected_head {
            return Err(AppendError::Conflict {
                expected: expected_head,
                head: *head,
            });
        }
        let mut batch = WriteBatch::default();
        for value in values {
            batch.put(keys::log(value.first), value.bytes);
        }
        batch.put(keys::META_HEAD_SEQ.to_vec(), last.to_be_bytes().to_vec());
        self.engine.apply(batch)?;
        if self.sync {
            self.engine.sync()?;
        }
        *head = last;
        drop(head);
        self.moved.notify_all();
        Ok(())
    }

    fn read(&self, from: u64) -> LogValues<'_> {
        kv_read(&*self.engine, from)
    }

    fn wait_beyond(&self, seen: u64, timeout: Duration) -> EngineResult<u64> {
        let head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let (head, _) = self
            .moved
            .wait_timeout_while(head, timeout, |head| *head <= seen)
            .unwrap_or_else(|p| p.into_inner());
        Ok(*head)
    }

    fn derived_get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.engine.get(&derived_key(key))
    }

    fn derived_range(&self, prefix: &[u8]) -> EngineResult<Vec<(Vec<u8>, Vec<u8>)>> {
        derived_range_in(&*self.engine, prefix)
    }

    fn derived_apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> EngineResult<()> {
        derived_apply_in(&*self.engine, writes)
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        self.engine.size_on_disk()
    }

    fn available_space(&self) -> EngineResult<Option<u64>> {
        self.engine.available_space()
    }
}
