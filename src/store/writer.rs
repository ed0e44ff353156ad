//! The single writer: the first stage of the commit pipeline. One thread drains a bounded queue
//! of commands in groups, decides each against its working views (the published views plus every
//! group already handed on) and what earlier commands of its group changed, applies the group to a
//! copy of the working views and hands the sealed group to the committer (`committer.rs`), which
//! appends it in ONE durable write (that append is the commit) and only then publishes those views
//! and the new head and answers the callers. A reader therefore never sees a change that is not
//! durable nor half a group. While the committer waits on the disk, this thread decides the next
//! group from the commands that queued meanwhile.
//! Maintenance (rebuild, verify, checkpoints) runs on this thread, between groups, once every
//! group handed on is durable. Does not serve reads: readers take the published views
//! (`Shared::views`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use prost_types::Timestamp;

use super::checkpoint::{self, Stamp};
use super::clock::Clock;
use super::codec::{LogChunk, LOG_CHUNK_BYTES};
use super::committer::{Committer, Sealed};
use super::error::{StoreError, StoreResult};
use super::log::{Log, LogValue};
use super::memory::Views;
use super::overlay::Overlay;
use super::Caller;
use crate::domain::command::{event_kind_name, ExpireTasks};
use crate::domain::ids::split_stored_arn;
use crate::domain::state::StateView;
use crate::domain::{decide, evolve, Command, CommandContext, EcsException, IdSeed, Reply};
use crate::proto::log::{Cause, LogRecord};

/// What a command produced once durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub reply: Reply,
    /// Seqs of the events it appended, if any.
    pub seqs: Option<std::ops::RangeInclusive<u64>>,
}

pub(crate) type ReplyTo = flume::Sender<StoreResult<Executed>>;

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
    /// Groups decided again because another server appended to a shared log first.
    pub conflicts: AtomicU64,
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
    /// The views at the published head. Readers take the `Arc` (the lock is held only to clone
    /// it) and keep a consistent snapshot for as long as they need; the writer publishes a new
    /// `Arc` after each group, built by changing a clone (persistent maps: the clone copies roots,
    /// the changes copy the paths they touch), so neither ever waits for the other's work.
    views: Mutex<Arc<Views>>,
}

impl Shared {
    pub fn new(views: Views) -> Shared {
        let head = views.head;
        Shared {
            views: Mutex::new(Arc::new(views)),
            head: Mutex::new(head),
            head_moved: Condvar::new(),
            head_watch: tokio::sync::watch::Sender::new(head),
            refused: Mutex::new(None),
            stats: WriterStats::default(),
        }
    }

    /// The views at the published head, for reading.
    pub fn views(&self) -> Arc<Views> {
        Arc::clone(&self.views.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Publishes `views` in place of the current ones (after a rebuild).
    pub(crate) fn replace_views(&self, views: Views) {
        self.publish_views(Arc::new(views));
    }

    /// Publishes the views of a durable group (or of a rebuild).
    pub(crate) fn publish_views(&self, views: Arc<Views>) {
        let previous = std::mem::replace(&mut *self.views.lock().unwrap_or_else(|p| p.into_inner()), views);
        // Freed outside the lock (if no reader still holds it).
        drop(previous);
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
    /// Where and how often the views are checkpointed; `None`: never.
    pub checkpoints: Option<(PathBuf, CheckpointPolicy)>,
    /// How long STOPPED tasks stay in the views; `None`: forever.
    pub retention: Option<Duration>,
}

/// How often an idle writer on a shared log looks for other servers' appends.
const FOLLOW_EVERY: Duration = Duration::from_millis(5);

/// What woke the writer.
// Lives for one loop turn; boxing the common case to shrink the rare one gains nothing.
#[allow(clippy::large_enum_variant)]
enum Woken {
    Job(Result<Job, flume::RecvError>),
    Bounced(Result<Vec<Pending>, flume::RecvError>),
}

/// How often the writer looks for STOPPED tasks past their retention, at most.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Tasks one `TasksExpired` event names at most.
pub const EXPIRE_BATCH: usize = 1_000;
/// Batches one expiry check writes at most before it lets commands through again.
const EXPIRE_BATCHES_PER_CHECK: usize = 8;

/// When the views are checkpointed: after `every_events` events or, if anything was written,
/// after `interval`, whichever comes first; and when the store closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_events: u64,
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_events: 100_000,
            interval: Duration::from_secs(60),
        }
    }
}

/// A snapshot of the views for the checkpoint thread, which encodes and writes it off the
/// commit path. The snapshot is the published `Arc<Views>` between groups (the writer's next
/// changes go to a clone of it); if the thread is still busy with the previous one, none is taken.
struct Checkpointer {
    dir: PathBuf,
    policy: CheckpointPolicy,
    /// The head of the last snapshot taken (or of the checkpoint the store opened from).
    taken: u64,
    taken_at: Instant,
    /// The free-space reserve a checkpoint must leave.
    reserve: u64,
    to_thread: Option<flume::Sender<(Stamp, Arc<Views>)>>,
    /// Whether the thread waits for a snapshot (cleared by the writer when it hands one over,
    /// set by the thread when it has written it).
    idle: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(
        dir: PathBuf,
        policy: CheckpointPolicy,
        log: Arc<dyn Log>,
        opened_at: u64,
        reserve: u64,
    ) -> std::io::Result<Checkpointer> {
        let (to_thread, snapshots) = flume::bounded::<(Stamp, Arc<Views>)>(0);
        let folder = dir.clone();
        let idle = Arc::new(AtomicBool::new(true));
        let done = Arc::clone(&idle);
        let thread = std::thread::Builder::new()
            .name("taskledger-checkpoint".into())
            .spawn(move || {
                for (stamp, views) in snapshots {
                    write_checkpoint(&folder, &*log, stamp, &views, reserve);
                    drop(views);
                    done.store(true, Ordering::Release);
                }
            })?;
        Ok(Checkpointer {
            dir,
            policy,
            taken: opened_at,
            taken_at: Instant::now(),
            reserve,
            to_thread: Some(to_thread),
            idle,
            thread: Some(thread),
        })
    }

    /// Writes a checkpoint on the calling thread.
    fn write_here(&self, log: &dyn Log, stamp: Stamp, views: &Views) {
        write_checkpoint(&self.dir, log, stamp, views, self.reserve);
    }

    /// Whether a snapshot is due at `head` for views holding `tasks` tasks. Writing one costs
    /// the checkpoint thread (and the disk) time in proportion to the views, so a large store
    /// waits for at least as many events as it holds tasks (and, on the timer, a twentieth of
    /// that): the cost per event stays bounded whatever the size.
    fn due(&self, head: u64, tasks: impl FnOnce() -> usize) -> bool {
        let events = head.saturating_sub(self.taken);
        let timer = self.taken_at.elapsed() >= self.policy.interval;
        if events == 0 || (events < self.policy.every_events && !timer) {
            return false;
        }
        let tasks = tasks() as u64;
        events >= self.policy.every_events.max(tasks) || (timer && events >= tasks / 20)
    }
}

/// Writes one checkpoint, logging the outcome; a failure costs only a longer next open. One that
/// would leave less than `reserve` bytes free (judged by the size of the last one) is skipped:
/// the free-space reserve is there for the log's appends.
fn write_checkpoint(dir: &Path, log: &dyn Log, mut stamp: Stamp, views: &Views, reserve: u64) {
    let started = Instant::now();
    if reserve > 0 {
        let needed = checkpoint::newest_size(dir).unwrap_or(0);
        if let Ok(available) = fs2::available_space(dir) {
            if available < reserve.saturating_add(needed) {
                tracing::warn!(
                    seq = stamp.head,
                    available,
                    needed,
                    reserve,
                    "checkpoint not written: it would eat into the free-space reserve"
                );
                return;
            }
        }
    }
    stamp.head_crc = match checkpoint::record_crc(log, stamp.head) {
        Ok(crc) => crc,
        Err(e) => {
            tracing::warn!(seq = stamp.head, error = %e, "checkpoint not written: cannot read its log record");
            return;
        }
    };
    match checkpoint::write(dir, stamp, views) {
        Ok(bytes) => {
            crate::metrics::checkpoint_written(stamp.head);
            tracing::info!(
                seq = stamp.head,
                tasks = views.task_count(),
                bytes,
                seconds = started.elapsed().as_secs_f64(),
                "checkpoint written"
            )
        }
        Err(e) => tracing::warn!(seq = stamp.head, error = %e, "checkpoint not written"),
    }
}

/// The writer thread's state; maintenance jobs get it mutably.
pub(crate) struct WriterState {
    pub log: Arc<dyn Log>,
    pub shared: Arc<Shared>,
    /// The views with every group decided so far applied: the published views plus the groups
    /// the committer has not yet made durable. The next group is decided against these.
    working: Arc<Views>,
    /// The last seq decided (appended, or handed to the committer to append).
    pub head: u64,
    pub last_time: Timestamp,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    seed: IdSeed,
    commands_seen: u64,
    /// Whether the last group was refused for want of space (to log changes only).
    short_of_space: bool,
    checkpointer: Option<Checkpointer>,
    committer: Committer,
    /// Groups the committer gave back after a conflict, to be decided again in order, and
    /// those already taken from it.
    bounced: flume::Receiver<Vec<Pending>>,
    retry: Vec<Pending>,
    /// When the last expiry check ran, and whether it left expired tasks behind.
    expiry_checked: Instant,
    expiry_behind: bool,
}

pub(crate) fn spawn(
    log: Arc<dyn Log>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    options: WriterOptions,
    last_time: Timestamp,
    opened_from_checkpoint: u64,
    queue: flume::Receiver<Job>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let seed = IdSeed(options.id_seed);
    let head = shared.head();
    let checkpointer = match &options.checkpoints {
        Some((dir, policy)) => Some(Checkpointer::start(
            dir.clone(),
            *policy,
            Arc::clone(&log),
            opened_from_checkpoint,
            options.min_free_space,
        )?),
        None => None,
    };
    let (bounce, bounced) = flume::unbounded();
    let committer = Committer::start(Arc::clone(&log), Arc::clone(&shared), options.sync, bounce)?;
    let mut state = WriterState {
        working: shared.views(),
        committer,
        bounced,
        retry: Vec::new(),
        checkpointer,
        expiry_checked: Instant::now(),
        expiry_behind: false,
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
            loop {
                let mut wait = state
                    .checkpointer
                    .as_ref()
                    .map_or(Duration::from_secs(3600), |c| c.policy.interval);
                if state.options.retention.is_some() {
                    wait = wait.min(EXPIRY_CHECK_EVERY);
                }
                if state.log.shared() {
                    wait = wait.min(FOLLOW_EVERY);
                }
                let woken = flume::Selector::new()
                    .recv(&queue, Woken::Job)
                    .recv(&state.bounced, Woken::Bounced)
                    .wait_timeout(wait);
                let first = match woken {
                    Ok(Woken::Job(Ok(job))) => job,
                    Ok(Woken::Job(Err(flume::RecvError::Disconnected))) => break,
                    Ok(Woken::Bounced(group)) => {
                        state.retry.extend(group.unwrap_or_default());
                        state.drain();
                        continue;
                    }
                    Err(flume::select::SelectError::Timeout) => {
                        state.follow();
                        state.maybe_expire();
                        state.maybe_checkpoint();
                        continue;
                    }
                };
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
                            state.drain();
                            work(&mut state);
                            state.drain();
                        }
                    }
                }
                state.commit(commands);
                state.maybe_expire();
                state.maybe_checkpoint();
            }
            state.drain();
            state.committer.stop();
            state.close_checkpoints();
            tracing::debug!(head = state.head, "writer stopped: every store handle is closed");
        })
}

/// A command waiting for its group, with whom to answer.
pub(crate) type Pending = (Caller, Command, ReplyTo);

impl WriterState {
    /// Waits until every group handed to the committer is durable and answered, and starts
    /// deciding from the published views again (after a failed append they are behind the
    /// working views; after a rebuild they replace them). Groups given back after a conflict
    /// are decided again, after catching up with the log, until none is.
    fn drain(&mut self) {
        self.committer.drain();
        loop {
            let mut retry = std::mem::take(&mut self.retry);
            retry.extend(self.bounced.try_iter().flatten());
            if retry.is_empty() {
                break;
            }
            tracing::debug!(
                commands = retry.len(),
                "another server appended first: catching up with the log and deciding again"
            );
            let caught_up = self.catch_up();
            self.committer.resume();
            self.working = self.shared.views();
            self.head = self.working.head;
            match caught_up {
                Ok(()) => self.commit(retry),
                // Nothing of theirs was written and the log is intact: the callers may retry.
                Err(e) => fail_all(retry, || StoreError::Storage {
                    context: "catching up with the log another server appended to",
                    message: e.to_string(),
                }),
            }
            self.committer.drain();
        }
        self.working = self.shared.views();
        self.head = self.working.head;
    }

    /// Folds what other servers appended to a shared log into the published views, and
    /// publishes them with the new head. A log that cannot be read now changes nothing; one
    /// that does not fold (damaged) refuses writes.
    fn catch_up(&mut self) -> StoreResult<()> {
        let mut views = Views::clone(&self.shared.views());
        match super::verify::catch_up(&*self.log, &mut views, &|_, _| {}) {
            Ok(()) => {}
            Err(e @ StoreError::Corrupt(_)) => {
                self.shared
                    .refuse_writes("catching up with the shared log", &e.to_string());
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        let head = views.head;
        if head > self.shared.head() {
            self.shared.publish_views(Arc::new(views));
            self.shared.publish(head);
        }
        Ok(())
    }

    /// On a shared log, takes in what other servers appended while this one had nothing to do.
    fn follow(&mut self) {
        if !self.log.shared() || self.shared.refusal().is_some() {
            return;
        }
        match self.log.head() {
            Ok(head) if head > self.shared.head() => {}
            _ => return,
        }
        self.drain();
        if let Err(e) = self.catch_up() {
            tracing::warn!(error = %e, "cannot follow the shared log now; trying again");
        }
        self.working = self.shared.views();
        self.head = self.working.head;
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            format: checkpoint::CHECKPOINT_FORMAT,
            schema: super::migrate::current_version(),
            head: self.head,
            head_crc: 0,
            last_time: (self.last_time.seconds, self.last_time.nanos),
        }
    }

    /// Expires STOPPED tasks past the retention if a check is due (once a second, or at once
    /// while the last one left some behind).
    fn maybe_expire(&mut self) {
        if self.options.retention.is_some()
            && (self.expiry_behind || self.expiry_checked.elapsed() >= EXPIRY_CHECK_EVERY)
        {
            self.expire(EXPIRE_BATCHES_PER_CHECK);
        }
    }

    /// Writes up to `batches` `TasksExpired` events for the STOPPED tasks past the retention, as
    /// commands of the store's own, each committed like any other. Returns how many expired.
    pub(crate) fn expire(&mut self, batches: usize) -> usize {
        self.expiry_checked = Instant::now();
        self.expiry_behind = false;
        let Some(retention) = self.options.retention else {
            return 0;
        };
        let retention_seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        let mut expired = 0;
        for _ in 0..batches {
            if self.shared.refusal().is_some() {
                break;
            }
            let now = later(self.clock.now(), self.last_time);
            let cutoff = now.seconds.saturating_sub(retention_seconds);
            let arns: Vec<String> = {
                let views = &self.working;
                views
                    .stopped_before(cutoff, EXPIRE_BATCH)
                    .iter()
                    .filter_map(|id| views.task(id).ok().flatten()?.task?.task_arn)
                    .collect()
            };
            let Some((scope, _)) = arns.first().and_then(|arn| split_stored_arn(arn)) else {
                break;
            };
            let caller = Caller {
                scope,
                request_id: String::new(),
                name: "retention".to_string(),
                trace_id: String::new(),
                identity: String::new(),
                principal: String::new(),
            };
            let full = arns.len() == EXPIRE_BATCH;
            let command = Command::ExpireTasks(ExpireTasks {
                task_arns: arns,
                retention_seconds,
            });
            let (reply, answer) = flume::bounded(1);
            self.commit(vec![(caller, command, reply)]);
            // Answered once durable, or decided again first if another server appended.
            self.drain();
            match answer.recv() {
                Ok(Ok(Executed {
                    reply: Reply::ExpireTasks(n),
                    ..
                })) if n > 0 => expired += n,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "expiring stopped tasks failed");
                    break;
                }
                _ => break,
            }
            self.expiry_behind = full;
            if !full {
                break;
            }
        }
        if expired > 0 {
            tracing::debug!(expired, "stopped tasks past their retention expired");
        }
        expired
    }

    /// Hands a snapshot of the views to the checkpoint thread if one is due and it is idle.
    fn maybe_checkpoint(&mut self) {
        let working = &self.working;
        match &self.checkpointer {
            Some(checkpointer)
                if checkpointer.idle.load(Ordering::Acquire)
                    && checkpointer.due(self.head, || working.task_count()) => {}
            _ => return,
        }
        // The snapshot is of durable views, stamped with their head and time.
        self.drain();
        let head = self.head;
        let stamp = self.stamp();
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return;
        };
        if self.shared.refusal().is_some() {
            return;
        }
        let Some(to_thread) = &checkpointer.to_thread else {
            return;
        };
        // A rendezvous: only an idle thread takes it, so snapshots never pile up in memory.
        let started = Instant::now();
        let snapshot = self.shared.views();
        let cloned = started.elapsed();
        checkpointer.idle.store(false, Ordering::Release);
        if to_thread.try_send((stamp, snapshot)).is_ok() {
            tracing::debug!(
                seq = head,
                seconds = cloned.as_secs_f64(),
                "views snapshot taken for a checkpoint"
            );
            checkpointer.taken = head;
            checkpointer.taken_at = Instant::now();
        } else {
            // Not yet back in its receive: try again after the next group.
            checkpointer.idle.store(true, Ordering::Release);
        }
    }

    /// Writes a checkpoint of the views now, on this thread (after a rebuild replaced them).
    pub(crate) fn checkpoint_now(&mut self) {
        let stamp = self.stamp();
        if let Some(checkpointer) = self.checkpointer.as_mut() {
            checkpointer.write_here(&*self.log, stamp, &self.shared.views());
            checkpointer.taken = self.head;
            checkpointer.taken_at = Instant::now();
        }
    }

    /// Waits for the checkpoint thread and, if the views moved since the last snapshot and the
    /// store is healthy, writes a last checkpoint at the final head so the next open folds nothing.
    fn close_checkpoints(&mut self) {
        let stamp = self.stamp();
        let Some(mut checkpointer) = self.checkpointer.take() else {
            return;
        };
        drop(checkpointer.to_thread.take());
        if let Some(thread) = checkpointer.thread.take() {
            let _ = thread.join();
        }
        if self.head > checkpointer.taken && self.shared.refusal().is_none() {
            checkpointer.write_here(&*self.log, stamp, &self.shared.views());
        }
    }

    /// The free space, when it is below the reserve. One statfs(2) per group, only with a reserve.
    fn space_below_reserve(&mut self) -> Option<u64> {
        let reserve = self.options.min_free_space;
        let available = match self.log.short_of(reserve) {
            Ok(available) => available,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the free disk space; writing anyway");
                return None;
            }
        };
        let short = available.is_some();
        if short != self.short_of_space {
            self.short_of_space = short;
            if short {
                tracing::error!(
                    available = available.unwrap_or_default(),
                    reserve,
                    "disk nearly full: refusing writes until space is freed"
                );
            } else {
                tracing::info!(reserve, "disk space freed: taking writes again");
            }
        }
        available
    }

    /// Decides one group, appends its records durably, applies it to the views and answers; in
    /// several groups where the log engine caps what one append may carry.
    fn commit(&mut self, group: Vec<Pending>) {
        let mut next = Some(group);
        while let Some(group) = next.take() {
            next = self.commit_group(group);
        }
    }

    /// `commit` of one group; returns the commands left for the next group when the engine's
    /// append limit closed this one early.
    fn commit_group(&mut self, mut group: Vec<Pending>) -> Option<Vec<Pending>> {
        if group.is_empty() {
            return None;
        }
        if let Some(reason) = self.shared.refusal() {
            fail_all(group, || StoreError::WritesRefused(reason.clone()));
            return None;
        }
        if let Some(available) = self.space_below_reserve() {
            let reserve = self.options.min_free_space;
            fail_all(group, || StoreError::DiskFull { available, reserve });
            return None;
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

        let views = Arc::clone(&self.working);
        let mut overlay = Overlay::new(&views);
        let mut results: Vec<StoreResult<Executed>> = Vec::with_capacity(group.len());
        let mut seq = self.head;
        // The group's records go into chunks (one log value per 16 KiB of records).
        let mut values = Vec::new();
        let mut chunk = LogChunk::default();
        let mut chunk_first = self.head + 1;
        // Closed at half the engine's cap, so that the command that crosses it still fits.
        let limit = self.log.append_limit();
        let mut sealed_bytes = 0;
        let mut split_at = None;
        let mut kinds = Vec::new();
        for (index, (caller, command, _)) in group.iter().enumerate() {
            if let Some(limit) = limit {
                if index > 0
                    && (sealed_bytes + chunk.bytes() >= limit.bytes / 2 || values.len() + 1 >= limit.values / 2)
                {
                    split_at = Some(index);
                    break;
                }
            }
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
                trace_id: caller.trace_id.clone(),
                identity: caller.identity.clone(),
                principal: caller.principal.clone(),
            };
            for event in decision.events {
                seq += 1;
                crate::metrics::tally(&mut kinds, event_kind_name(&event));
                if let Err(e) = evolve(&mut overlay, seq, &now, &event) {
                    // The views and the log would disagree: write nothing of this group.
                    tracing::error!(seq, error = %e, "cannot apply a decided event; the views may be damaged (run verify)");
                    let message = format!("applying seq {seq}: {e}");
                    fail_all(group, || StoreError::Corrupt(message.clone()));
                    return None;
                }
                let record = LogRecord {
                    seq,
                    time: Some(now),
                    cause: Some(cause.clone()),
                    event: Some(event),
                };
                chunk.push(&record);
                if chunk.bytes() >= LOG_CHUNK_BYTES {
                    sealed_bytes += chunk.bytes();
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
        let rest = split_at.map(|index| group.split_off(index));
        let events = seq - self.head;
        span.record("events", events);
        self.shared.stats.groups.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats
            .commands
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        crate::metrics::group_decided(group.len());
        if events > 0 {
            if chunk.records() > 0 {
                values.push(LogValue {
                    first: chunk_first,
                    bytes: chunk.finish(),
                });
            }
            let batch = match overlay.into_batch() {
                Ok(batch) => batch,
                Err(e) => {
                    fail_all(group, || StoreError::from_read(e.clone()));
                    return None;
                }
            };
            // Persistent maps: the clone copies roots, the batch copies the paths it touches.
            let mut next = Views::clone(&views);
            drop(views);
            next.apply(batch, seq);
            self.working = Arc::new(next);
            self.last_time = now;
        } else {
            drop(overlay);
            drop(views);
        }
        let expected_head = std::mem::replace(&mut self.head, seq);
        let (commands, replies): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|(caller, command, reply)| ((caller, command), reply))
            .unzip();
        self.committer.hand_over(Sealed {
            expected_head,
            last: seq,
            values,
            views: Arc::clone(&self.working),
            events,
            kinds,
            commands,
            replies: replies.into_iter().zip(results).collect(),
        });
        rest
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
