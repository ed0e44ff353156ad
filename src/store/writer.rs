//! The single writer. One thread drains a bounded queue of commands in groups, decides each
//! against the in-memory views plus what earlier commands of its group changed, and appends the
//! group's log records in ONE durable write to the log engine: that append is the commit. Only
//! then are the group's changes applied to the views, the new head published and the callers
//! answered, so a reader never sees a change that is not durable nor half a group. While the
//! writer waits on an append, new commands queue and form the next, larger group.
//! Maintenance (rebuild, verify, checkpoints) runs on the writer thread, between groups.
//! Does not serve reads: readers take the views' read lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use prost_types::Timestamp;

use super::clock::Clock;
use super::codec::{LogChunk, LOG_CHUNK_BYTES};
use super::error::{StoreError, StoreResult};
use super::log::{AppendError, Log, LogValue};
use super::memory::Views;
use super::overlay::Overlay;
use super::Caller;
use crate::domain::{decide, evolve, Command, CommandContext, EcsException, IdSeed, Reply};
use crate::proto::log::{Cause, LogRecord};

/// What a command produced once durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub reply: Reply,
    /// Seqs of the events it appended, if any.
    pub seqs: Option<std::ops::RangeInclusive<u64>>,
}

type ReplyTo = flume::Sender<StoreResult<Executed>>;

/// Work for the writer thread.
// Nearly every job is a command; maintenance jobs are rare.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Job {
    Command {
        caller: Caller,
        command: Command,
        reply: ReplyTo,
    },
    /// Runs with exclusive access between groups (rebuild, verify).
    Maintenance(Box<dyn FnOnce(&mut WriterState) + Send>),
}

/// Counters of the writer, for benchmarks and the admin API.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub groups: AtomicU64,
    pub commands: AtomicU64,
    pub events: AtomicU64,
    pub syncs: AtomicU64,
}

/// State shared between the writer and the `Store` handles.
pub(crate) struct Shared {
    /// The last durable seq, and a condition variable rung when it moves.
    pub head: Mutex<u64>,
    pub head_moved: Condvar,
    /// The same head for async waiters (subscriptions).
    pub head_watch: tokio::sync::watch::Sender<u64>,
    /// Why writes are refused (after a failed write or fsync), if they are.
    pub refused: Mutex<Option<String>>,
    pub stats: WriterStats,
    /// The views at the published head; only the writer takes the write lock.
    pub views: RwLock<Views>,
}

impl Shared {
    pub fn new(views: Views) -> Shared {
        let head = views.head;
        Shared {
            views: RwLock::new(views),
            head: Mutex::new(head),
            head_moved: Condvar::new(),
            head_watch: tokio::sync::watch::Sender::new(head),
            refused: Mutex::new(None),
            stats: WriterStats::default(),
        }
    }

    /// The views for reading (poisoning is ignored: the views change only between groups).
    pub fn views(&self) -> RwLockReadGuard<'_, Views> {
        self.views.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn views_mut(&self) -> RwLockWriteGuard<'_, Views> {
        self.views.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn head(&self) -> u64 {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn publish(&self, head: u64) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
        self.head_moved.notify_all();
        self.head_watch.send_replace(head);
    }

    pub(crate) fn refusal(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a failed write or fsync nothing more is written until the store is reopened: the
    /// engine's state is unknown, and retrying an fsync can report success for lost data.
    pub(crate) fn refuse_writes(&self, context: &'static str, error: &str) {
        tracing::error!(%error, context, "storage failure: the store refuses writes until it is reopened");
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(format!("{context}: {error}"));
    }
}

pub(crate) struct WriterOptions {
    pub max_group: usize,
    pub sync: bool,
    pub id_seed: u128,
    pub min_free_space: u64,
}

/// The writer thread's state; maintenance jobs get it mutably.
pub(crate) struct WriterState {
    pub log: Arc<dyn Log>,
    pub shared: Arc<Shared>,
    /// The last seq appended (and applied to the views).
    pub head: u64,
    pub last_time: Timestamp,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    seed: IdSeed,
    commands_seen: u64,
    /// Whether the last group was refused for want of space (to log changes only).
    short_of_space: bool,
}

pub(crate) fn spawn(
    log: Arc<dyn Log>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    last_time: Timestamp,
    queue: flume::Receiver<Job>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let seed = IdSeed(options.id_seed);
    let head = shared.head();
    let mut state = WriterState {
        log,
        shared,
        head,
        last_time,
        clock,
        options,
        seed,
        commands_seen: 0,
        short_of_space: false,
    };
    std::thread::Builder::new()
        .name("taskledger-writer".into())
        .spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut jobs = vec![first];
                while jobs.len() < state.options.max_group {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let mut commands = Vec::with_capacity(jobs.len());
                for job in jobs {
                    match job {
                        Job::Command { caller, command, reply } => commands.push((caller, command, reply)),
                        Job::Maintenance(work) => {
                            state.commit(std::mem::take(&mut commands));
                            work(&mut state);
                        }
                    }
                }
                state.commit(commands);
            }
            tracing::debug!(head = state.head, "writer stopped: every store handle is closed");
        })
}

type Pending = (Caller, Command, ReplyTo);

impl WriterState {
    /// The free space, when it is below the reserve. One statfs(2) per group, only with a reserve.
    fn space_below_reserve(&mut self) -> Option<u64> {
        let reserve = self.options.min_free_space;
        if reserve == 0 {
            return None;
        }
        let available = match self.log.available_space() {
            Ok(Some(available)) => available,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the free disk space; writing anyway");
                return None;
            }
        };
        let short = available < reserve;
        if short != self.short_of_space {
            self.short_of_space = short;
            if short {
                tracing::error!(
                    available,
                    reserve,
                    "disk nearly full: refusing writes until space is freed"
                );
            } else {
                tracing::info!(available, reserve, "disk space freed: taking writes again");
            }
        }
        short.then_some(available)
    }

    /// Decides one group, appends its records durably, applies it to the views and answers.
    fn commit(&mut self, group: Vec<Pending>) {
        if group.is_empty() {
            return;
        }
        if let Some(reason) = self.shared.refusal() {
            return fail_all(group, || StoreError::WritesRefused(reason.clone()));
        }
        if let Some(available) = self.space_below_reserve() {
            let reserve = self.options.min_free_space;
            return fail_all(group, || StoreError::DiskFull { available, reserve });
        }
        let now = later(self.clock.now(), self.last_time);
        let group_start = self.head + 1;
        let span = tracing::debug_span!(
            "group_commit",
            first_seq = group_start,
            commands = group.len(),
            events = tracing::field::Empty
        );
        let _entered = span.enter();

        let shared = Arc::clone(&self.shared);
        let views = shared.views();
        let mut overlay = Overlay::new(&views);
        let mut results: Vec<StoreResult<Executed>> = Vec::with_capacity(group.len());
        let mut seq = self.head;
        // The group's records go into chunks (one log value per ~4 KiB of records).
        let mut values = Vec::new();
        let mut chunk = LogChunk::default();
        let mut chunk_first = self.head + 1;
        for (caller, command, _) in &group {
            self.commands_seen += 1;
            let ctx = CommandContext {
                scope: caller.scope.clone(),
                now,
                seed: IdSeed(self.seed.derive(self.commands_seen)),
            };
            let decision = match decide(&overlay, &ctx, command) {
                Ok(decision) => decision,
                Err(e) if e.exception == EcsException::ServerException => {
                    results.push(Err(StoreError::from_read(e)));
                    continue;
                }
                Err(e) => {
                    results.push(Err(StoreError::Rejected(e)));
                    continue;
                }
            };
            let first = seq + 1;
            let cause = Cause {
                request_id: caller.request_id.clone(),
                operation: command.operation().to_string(),
                caller: caller.name.clone(),
                client_token: command.client_token().unwrap_or_default().to_string(),
                group_commit: group_start,
            };
            for event in decision.events {
                seq += 1;
                if let Err(e) = evolve(&mut overlay, seq, &now, &event) {
                    // The views and the log would disagree: write nothing of this group.
                    tracing::error!(seq, error = %e, "cannot apply a decided event; the views may be damaged (run verify)");
                    let message = format!("applying seq {seq}: {e}");
                    return fail_all(group, || StoreError::Corrupt(message.clone()));
                }
                let record = LogRecord {
                    seq,
                    time: Some(now),
                    cause: Some(cause.clone()),
                    event: Some(event),
                };
                chunk.push(&record);
                if chunk.bytes() >= LOG_CHUNK_BYTES {
                    values.push(LogValue {
                        first: chunk_first,
                        bytes: std::mem::take(&mut chunk).finish(),
                    });
                    chunk_first = seq + 1;
                }
            }
            results.push(Ok(Executed {
                reply: decision.reply,
                seqs: (seq >= first).then_some(first..=seq),
            }));
        }
        let events = seq - self.head;
        span.record("events", events);
        self.shared.stats.groups.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats
            .commands
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        if events > 0 {
            if chunk.records() > 0 {
                values.push(LogValue {
                    first: chunk_first,
                    bytes: chunk.finish(),
                });
            }
            let batch = match overlay.into_batch() {
                Ok(batch) => batch,
                Err(e) => return fail_all(group, || StoreError::from_read(e.clone())),
            };
            drop(views);
            if let Err(e) = self.log.append(self.head, seq, values) {
                let context = match &e {
                    AppendError::Conflict { .. } => "appending a group commit: another writer appended first",
                    AppendError::Failed(_) => "appending a group commit",
                };
                let message = e.to_string();
                // A failed append may or may not have reached the disk: nothing more is
                // written until the store is reopened and has read its log again.
                self.shared.refuse_writes(context, &message);
                return fail_all(group, || StoreError::Storage {
                    context,
                    message: message.clone(),
                });
            }
            if self.options.sync {
                self.shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
            }
            self.shared.views_mut().apply(batch, seq);
            self.head = seq;
            self.last_time = now;
            self.shared.stats.events.fetch_add(events, Ordering::Relaxed);
            self.shared.publish(seq);
        } else {
            drop(views);
        }
        for ((_, _, reply), result) in group.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

fn fail_all(group: Vec<Pending>, error: impl Fn() -> StoreError) {
    for (_, _, reply) in group {
        let _ = reply.send(Err(error()));
    }
}

fn later(a: Timestamp, b: Timestamp) -> Timestamp {
    if (a.seconds, a.nanos) >= (b.seconds, b.nanos) {
        a
    } else {
        b
    }
}
