//! The single writer. One thread drains a bounded queue of commands in groups, decides each
//! against the committed views plus what earlier commands of its group changed, and writes the
//! group's log records, view changes and head in ONE atomic batch. A second thread, the syncer,
//! makes applied groups durable (one flush + fdatasync for everything applied so far) and only
//! then answers their callers, in order. Deciding group N+1 thus overlaps the fsync of group N,
//! and one fsync often covers several groups. Maintenance (rebuild, verify) runs on the writer
//! thread, between groups.
//! Does not serve reads: readers go to the engine directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use prost_types::Timestamp;

use super::clock::Clock;
use super::codec::{LogChunk, LOG_CHUNK_BYTES};
use super::engine::{Engine, WriteBatch};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::overlay::{Overlay, RecordCache};
use super::reader::SledState;
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

/// State shared between the writer, the syncer and the `Store` handles.
pub(crate) struct Shared {
    /// The last durable seq, and a condition variable rung when it moves.
    pub head: Mutex<u64>,
    pub head_moved: Condvar,
    /// The same head for async waiters (subscriptions).
    pub head_watch: tokio::sync::watch::Sender<u64>,
    /// Why writes are refused (after a failed write or fsync), if they are.
    pub refused: Mutex<Option<String>>,
    pub stats: WriterStats,
}

impl Shared {
    pub fn new(head: u64) -> Shared {
        Shared {
            head: Mutex::new(head),
            head_moved: Condvar::new(),
            head_watch: tokio::sync::watch::Sender::new(head),
            refused: Mutex::new(None),
            stats: WriterStats::default(),
        }
    }

    pub fn head(&self) -> u64 {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, head: u64) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
        self.head_moved.notify_all();
        self.head_watch.send_replace(head);
    }

    pub(crate) fn refusal(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a failed write or fsync nothing more is written until the store is reopened: the
    /// engine's state is unknown, and retrying an fsync can report success for lost data.
    fn refuse_writes(&self, context: &'static str, error: &str) {
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
    pub engine: Arc<dyn Engine>,
    shared: Arc<Shared>,
    /// The last seq applied (durable or about to be).
    head: u64,
    last_time: Timestamp,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    seed: IdSeed,
    commands_seen: u64,
    syncer: flume::Sender<Applied>,
    cache: RecordCache,
    /// Whether the last group was refused for want of space (to log changes only).
    short_of_space: bool,
}

/// A group applied to the engine, waiting to be made durable and answered.
struct Applied {
    head: u64,
    needs_sync: bool,
    answers: Vec<(ReplyTo, StoreResult<Executed>)>,
}

pub(crate) fn spawn(
    engine: Arc<dyn Engine>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    head: u64,
    last_time: Timestamp,
    queue: flume::Receiver<Job>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (to_syncer, applied) = flume::unbounded();
    let syncer = {
        let (engine, shared, sync) = (Arc::clone(&engine), Arc::clone(&shared), options.sync);
        std::thread::Builder::new()
            .name("taskledger-syncer".into())
            .spawn(move || run_syncer(&*engine, &shared, sync, applied))?
    };
    let seed = IdSeed(options.id_seed);
    let mut state = WriterState {
        engine,
        shared,
        head,
        last_time,
        clock,
        options,
        seed,
        commands_seen: 0,
        syncer: to_syncer,
        cache: RecordCache::default(),
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
            let head = state.head;
            drop(state); // closes the syncer's queue: it answers what is pending, then stops
            let _ = syncer.join();
            tracing::debug!(head, "writer stopped: every store handle is closed");
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
        let available = match self.engine.available_space() {
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

    /// Decides and applies one group, then hands it to the syncer to be made durable and answered.
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

        let engine = Arc::clone(&self.engine);
        let mut overlay = Overlay::new(SledState { engine: &*engine }, &self.cache);
        let mut batch = WriteBatch::default();
        let mut results: Vec<StoreResult<Executed>> = Vec::with_capacity(group.len());
        let mut seq = self.head;
        // The group's records go into chunks (one sled value per ~4 KiB of records).
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
                    // The views and the log disagree: write nothing of this group.
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
                    batch.put(keys::log(chunk_first), std::mem::take(&mut chunk).finish());
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
        if chunk.records() > 0 {
            batch.put(keys::log(chunk_first), chunk.finish());
        }
        if events > 0 {
            let changes = match overlay.into_batch(&mut batch) {
                Ok(changes) => changes,
                Err(e) => return fail_all(group, || StoreError::from_read(e.clone())),
            };
            batch.put(keys::META_HEAD_SEQ.to_vec(), seq.to_be_bytes().to_vec());
            if let Err(e) = self.engine.apply(batch) {
                self.cache.clear();
                let message = e.to_string();
                self.shared.refuse_writes("applying a group commit", &message);
                return fail_all(group, || StoreError::Storage {
                    context: "applying a group commit",
                    message: message.clone(),
                });
            }
            self.cache.absorb(changes);
            self.head = seq;
            self.last_time = now;
            self.shared.stats.events.fetch_add(events, Ordering::Relaxed);
        }
        // Even a group that wrote nothing is answered through the syncer: its answers may rest
        // on earlier groups that are applied but not yet durable.
        let answers = group.into_iter().map(|(_, _, reply)| reply).zip(results).collect();
        if self
            .syncer
            .send(Applied {
                head: seq,
                needs_sync: events > 0,
                answers,
            })
            .is_err()
        {
            tracing::error!("the syncer thread is gone; answers are lost");
        }
    }
}

/// Makes applied groups durable, as many at a time as have piled up, then answers them in order.
fn run_syncer(engine: &dyn Engine, shared: &Shared, sync: bool, applied: flume::Receiver<Applied>) {
    while let Ok(first) = applied.recv() {
        let mut pending = vec![first];
        pending.extend(applied.try_iter());
        let head = pending.iter().map(|a| a.head).max().unwrap_or(0);
        let outcome = match shared.refusal() {
            // Applied after a failed sync: built on state that may be lost.
            Some(reason) => Err(StoreError::WritesRefused(reason)),
            None if sync && pending.iter().any(|a| a.needs_sync) => match engine.sync() {
                Ok(()) => {
                    shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    let message = e.to_string();
                    shared.refuse_writes("making a group commit durable", &message);
                    Err(StoreError::Storage {
                        context: "making a group commit durable",
                        message,
                    })
                }
            },
            None => Ok(()),
        };
        if outcome.is_ok() {
            shared.publish(head);
        }
        for (reply, result) in pending.into_iter().flat_map(|a| a.answers) {
            // When the group could not be made durable, even its rejections may rest on state
            // that is now lost: every caller hears of the failure.
            let answer = match &outcome {
                Ok(()) => result,
                Err(StoreError::Storage { context, message }) => Err(StoreError::Storage {
                    context,
                    message: message.clone(),
                }),
                Err(other) => Err(StoreError::WritesRefused(other.to_string())),
            };
            let _ = reply.send(answer);
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
