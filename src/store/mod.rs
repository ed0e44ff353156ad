//! The durable store: opens a directory, runs the single writer, and offers every ECS command and
//! query plus log reading, per-task history, verify and rebuild as plain Rust calls. Usable as a
//! library with no gRPC in sight; cheap to clone and safe to share between threads.
//! Does not speak any wire protocol (see `api`).

pub mod archive;
pub mod checkpoint;
pub mod clock;
pub mod codec;
mod committer;
mod compact;
mod compress;
pub mod engine;
pub mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod export_file;
pub mod history;
pub mod keys;
pub mod log;
pub mod memory;
pub mod migrate;
mod overlay;
pub mod reader;
pub mod subscribe;
pub mod verify;
pub mod views;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost_types::Timestamp;

use crate::domain::{query, Command, Reply, Scope};
use crate::proto::log::LogRecord;
use crate::proto::v1::*;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, SledEngine, SledOptions};
pub use error::{StoreError, StoreResult};
pub use log::{AppendError, KvLog, Log, LogValue};
pub use verify::{RebuildReport, RepairReport, VerifyReport};
pub use writer::{CheckpointPolicy, Executed, WriterStats};
use writer::{Job, Shared, WriterOptions};

/// How to open a store.
#[derive(Clone)]
pub struct StoreOptions {
    pub sled: SledOptions,
    /// Most commands decided and committed together in one group (one batch, one fsync).
    pub max_group: usize,
    /// Commands that may wait for the writer; callers beyond it wait for room.
    pub queue_depth: usize,
    /// Whether each group is fsynced before it is acknowledged. Only benchmarks turn this off.
    pub sync: bool,
    pub clock: Arc<dyn Clock>,
    /// Where new ids come from: random by default; a fixed value makes ids reproducible (the
    /// n-th command gets `IdSeed(IdSeed(seed).derive(n))`, n counting from 1 since opening).
    pub id_seed: Option<u128>,
    /// Writes are refused while the engine reports less free space than this, in bytes (0: never).
    pub min_free_space: u64,
    /// How long a STOPPED task stays in the views (described, listed) before the store expires
    /// it with a logged `TasksExpired` event; ECS keeps them about an hour. `None`: forever.
    /// The log, and so history, time travel, ReadLog and export, keep every task regardless.
    pub stopped_task_retention: Option<std::time::Duration>,
    /// When the views are checkpointed to `<dir>/checkpoints/` (`None`: never; a store opened
    /// with `open_engine` writes them under the path it was given).
    pub checkpoints: Option<CheckpointPolicy>,
    /// Whether closing a store opened by path (the last handle dropped) also brings sled's
    /// recovery snapshot up to date, so the next open need not replay what this session wrote.
    /// Costs the closing about what it saves the next open.
    pub settle_on_close: bool,
    /// Archive files (`taskledger archive`) holding seqs the log's engine no longer holds; each
    /// must be one that engine recorded. Needed to fold or read those seqs.
    pub archives: Vec<PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sled: SledOptions::default(),
            max_group: 512,
            queue_depth: 8192,
            sync: true,
            clock: Arc::new(SystemClock),
            id_seed: None,
            min_free_space: 64 * 1024 * 1024,
            checkpoints: Some(CheckpointPolicy::default()),
            stopped_task_retention: None,
            settle_on_close: true,
            archives: Vec::new(),
        }
    }
}

/// Who is asking: the account/region scope, a request id and a name for the log's cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub scope: Scope,
    pub request_id: String,
    /// E.g. `grpc 127.0.0.1:53412`, `aws-json`, `library`, `agent-simulator`.
    pub name: String,
    /// The W3C trace id of the request's trace (32 hex digits), or empty; goes into the cause.
    pub trace_id: String,
    /// The authenticated caller's name (from the server's auth file), or empty; goes into the cause.
    pub identity: String,
    /// How `identity` was proved (`token sha256:…`, `cert CN=…`, `sigv4 AKIA…`), or empty.
    pub principal: String,
}

impl Caller {
    /// A caller for library use, with a fresh request id.
    pub fn library(scope: Scope) -> Caller {
        Caller {
            scope,
            request_id: uuid::Uuid::new_v4().to_string(),
            name: "library".to_string(),
            trace_id: String::new(),
            identity: String::new(),
            principal: String::new(),
        }
    }
}

/// A taskledger store. Cloning gives another handle to the same store; the writer stops when
/// the last handle is dropped, after answering everything already queued.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while the last handle is being dropped.
    engine: Option<Arc<dyn Engine>>,
    /// `None` only while the last handle is being dropped.
    log: Option<Arc<dyn Log>>,
    /// Whether checkpoints are written under `path`.
    checkpoints: bool,
    /// The history index and its follower thread (`None` once stopped).
    history: Option<Arc<history::HistoryIndex>>,
    history_thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    queue: Option<flume::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    /// Whether to settle the sled store in `path` once it is closed (see `SledEngine::settle`).
    settle_on_close: bool,
    /// The free space writes keep (`StoreOptions::min_free_space`).
    min_free_space: u64,
}

impl Inner {
    fn log(&self) -> &dyn Log {
        self.log
            .as_deref()
            .expect("the log lives until the last handle is dropped")
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(history) = self.history.take() {
            history.stop();
            if let Some(thread) = self.history_thread.take() {
                let _ = thread.join();
            }
        }
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let Some(engine) = self.engine.take() else { return };
        // The log holds the engine too: drop it first so the engine's count tells who else has it.
        self.log.take();
        // Only a healthy engine that nothing else holds is closed here and can be reopened.
        let settle = self.settle_on_close && Arc::strong_count(&engine) == 1 && self.shared.refusal().is_none();
        drop(engine);
        if settle {
            let started = std::time::Instant::now();
            match SledEngine::settle(&self.path) {
                Ok(()) => tracing::debug!(
                    path = %self.path.display(),
                    seconds = started.elapsed().as_secs_f64(),
                    "sled's recovery snapshot brought up to date"
                ),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not settle the store after closing it; the next open replays sled's log")
                }
            }
        }
    }
}

macro_rules! command_methods {
    ($($(#[$doc:meta])* $name:ident: $variant:ident($request:ty) -> $response:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self, caller: &Caller, request: $request) -> StoreResult<$response> {
                match self.execute(caller, Command::$variant(request))?.reply {
                    Reply::$variant(response) => Ok(response),
                    other => unreachable!("{} answered with {other:?}", stringify!($variant)),
                }
            }
        )*
    };
}

macro_rules! query_methods {
    ($($(#[$doc:meta])* $name:ident($request:ty) -> $response:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self, scope: &Scope, request: &$request) -> StoreResult<$response> {
                query::$name(&*self.state(), scope, request).map_err(StoreError::from_read)
            }
        )*
    };
}

impl Store {
    /// Opens (or creates) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> StoreResult<Store> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`: migrates it if it is older, refuses it if it is
    /// newer, checks the last log record, and starts the writer.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> StoreResult<Store> {
        let path = dir.as_ref().to_path_buf();
        let engine: Arc<dyn Engine> =
            Arc::new(SledEngine::open(&path, &options.sled).map_err(|e| StoreError::storage("opening the store", e))?);
        let settle_on_close = options.settle_on_close;
        Store::start(engine, path, options, settle_on_close)
    }

    /// Repairs the store in `dir` that will not open because the end of its log is damaged (a torn
    /// record, a gap, a head stamped beyond the log): keeps the longest intact prefix of the log,
    /// removes what follows and rewrites the views and the head to match. `dry_run` only reports.
    /// Refuses a store newer than this binary; the store must not be open elsewhere.
    pub fn repair(dir: impl AsRef<Path>, progress: verify::Progress, dry_run: bool) -> StoreResult<RepairReport> {
        let path = dir.as_ref();
        let engine: Arc<dyn Engine> = Arc::new(
            SledEngine::open(path, &SledOptions::default())
                .map_err(|e| StoreError::storage("opening the store to repair", e))?,
        );
        migrate::prepare(&*engine, path)?;
        let report = verify::repair(engine, progress, dry_run)?;
        if !dry_run {
            // A checkpoint beyond the repaired head describes records that are gone.
            for removed in checkpoint::remove_beyond(path, report.head)
                .map_err(|e| StoreError::storage("removing checkpoints beyond the repaired log", e))?
            {
                tracing::info!(file = %removed.display(), "checkpoint beyond the repaired log removed");
            }
        }
        tracing::info!(path = %path.display(), head = report.head, removed = report.removed.len(), dry_run, "repair");
        Ok(report)
    }

    /// Opens only the log of the store in `dir` (no views, no writer), for commands that read
    /// or archive it; `archives` as in `StoreOptions`.
    pub fn open_log(dir: impl AsRef<Path>, archives: &[PathBuf]) -> StoreResult<Arc<dyn Log>> {
        let path = dir.as_ref();
        let engine: Arc<dyn Engine> = Arc::new(
            SledEngine::open(path, &SledOptions::default()).map_err(|e| StoreError::storage("opening the store", e))?,
        );
        migrate::prepare(&*engine, path)?;
        let (head, _) = recover(&*engine)?;
        archive::WithArchives::wrap(Arc::new(KvLog::new(engine, head, true)), archives, &|_, _| {})
    }

    /// Opens only a log on etcd (no views, no writer); `dir` holds local derived data.
    #[cfg(feature = "etcd")]
    pub fn open_etcd_log(
        dir: impl AsRef<Path>,
        etcd: &etcd::EtcdOptions,
        archives: &[PathBuf],
    ) -> StoreResult<Arc<dyn Log>> {
        let path = dir.as_ref();
        let local: Arc<dyn Engine> = Arc::new(
            SledEngine::open(path, &SledOptions::default())
                .map_err(|e| StoreError::storage("opening the local store", e))?,
        );
        migrate::prepare(&*local, path)?;
        let log = etcd::EtcdLog::connect(etcd, migrate::current_version(), local)
            .map_err(|e| StoreError::storage("opening the log on etcd", e))?;
        archive::WithArchives::wrap(Arc::new(log), archives, &|_, _| {})
    }

    /// What was archived from this store's log (`taskledger archive`), oldest first.
    pub fn archived(&self) -> StoreResult<Vec<archive::Archived>> {
        self.inner
            .log()
            .archived()
            .map_err(|e| StoreError::storage("reading what was archived", e))
    }

    /// Opens a store on any engine (the path is only used in messages; nothing is settled on
    /// close, whatever `options.settle_on_close` says).
    pub fn open_engine(engine: Arc<dyn Engine>, path: PathBuf, options: StoreOptions) -> StoreResult<Store> {
        Store::start(engine, path, options, false)
    }

    fn start(
        engine: Arc<dyn Engine>,
        path: PathBuf,
        options: StoreOptions,
        settle_on_close: bool,
    ) -> StoreResult<Store> {
        migrate::prepare(&*engine, &path)?;
        let (head, recovered_time) = recover(&*engine)?;
        let log: Arc<dyn Log> = Arc::new(KvLog::new(Arc::clone(&engine), head, options.sync));
        let log = archive::WithArchives::wrap(log, &options.archives, &|_, _| {})?;
        Store::start_on(engine, log, (head, recovered_time), path, options, settle_on_close)
    }

    /// Opens (or creates) a store whose log lives on etcd under `etcd.prefix`; `dir` holds this
    /// server's derived data (checkpoints, the history index) in a local sled engine.
    #[cfg(feature = "etcd")]
    pub fn open_etcd(dir: impl AsRef<Path>, etcd: &etcd::EtcdOptions, options: StoreOptions) -> StoreResult<Store> {
        let path = dir.as_ref().to_path_buf();
        let local: Arc<dyn Engine> = Arc::new(
            SledEngine::open(&path, &options.sled).map_err(|e| StoreError::storage("opening the local store", e))?,
        );
        migrate::prepare(&*local, &path)?;
        let log = etcd::EtcdLog::connect(etcd, migrate::current_version(), Arc::clone(&local))
            .map_err(|e| StoreError::storage("opening the log on etcd", e))?;
        let log = archive::WithArchives::wrap(Arc::new(log), &options.archives, &|_, _| {})?;
        let recovered = recover_log(&*log)?;
        let settle_on_close = options.settle_on_close;
        Store::start_on(local, log, recovered, path, options, settle_on_close)
    }

    /// Loads the newest usable checkpoint, folds the log after it and starts the writer and
    /// the history index on `log`, whose head and last record's time are `recovered`.
    fn start_on(
        engine: Arc<dyn Engine>,
        log: Arc<dyn Log>,
        (head, recovered_time): (u64, Timestamp),
        path: PathBuf,
        options: StoreOptions,
        settle_on_close: bool,
    ) -> StoreResult<Store> {
        let started = std::time::Instant::now();
        let (mut views, mut last_time) = match checkpoint::newest_usable(&path, &*log, head, migrate::current_version())
        {
            Some((stamp, views)) => {
                let (seconds, nanos) = stamp.last_time;
                (views, Timestamp { seconds, nanos })
            }
            None => (memory::Views::default(), Timestamp::default()),
        };
        let opened_from_checkpoint = views.head;
        let checkpoints_on = options.checkpoints.is_some();
        let min_free_space = options.min_free_space;
        if views.head < head {
            let from = views.head;
            let reported = std::sync::atomic::AtomicU64::new(from);
            verify::catch_up(&*log, &mut views, &|done, total| {
                // A line per 1,000,000 records or so: a long fold shows progress, a short one is quiet.
                let last = reported.load(std::sync::atomic::Ordering::Relaxed);
                if done >= last + 1_000_000 || (done == total && last > from) {
                    reported.store(done, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(done, total, "folding the log after the checkpoint into the views");
                }
            })?;
            last_time = recovered_time;
        }
        tracing::info!(
            head,
            tasks = views.task_count(),
            seconds = started.elapsed().as_secs_f64(),
            "views folded from the log"
        );
        let shared = Arc::new(Shared::new(views));
        let (sender, receiver) = flume::bounded(options.queue_depth.max(1));
        let writer = writer::spawn(
            Arc::clone(&log),
            Arc::clone(&shared),
            Arc::clone(&options.clock),
            WriterOptions {
                max_group: options.max_group.max(1),
                sync: options.sync,
                id_seed: options.id_seed.unwrap_or_else(|| uuid::Uuid::new_v4().as_u128()),
                min_free_space: options.min_free_space,
                checkpoints: options.checkpoints.map(|policy| (path.clone(), policy)),
                retention: options.stopped_task_retention,
            },
            last_time,
            opened_from_checkpoint,
            receiver,
        )
        .map_err(|e| StoreError::storage("starting the writer thread", e))?;
        let history = history::HistoryIndex::open(Arc::clone(&log))?;
        let history_thread = history
            .follow()
            .map_err(|e| StoreError::storage("starting the history index thread", e))?;
        tracing::info!(path = %path.display(), head, "store open");
        Ok(Store {
            inner: Arc::new(Inner {
                engine: Some(engine),
                log: Some(log),
                checkpoints: checkpoints_on,
                history: Some(history),
                history_thread: Some(history_thread),
                shared,
                queue: Some(sender),
                writer: Some(writer),
                path,
                settle_on_close,
                min_free_space,
            }),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where this store's checkpoints are, if it writes any.
    fn checkpoints_dir(&self) -> Option<PathBuf> {
        self.inner.checkpoints.then(|| self.inner.path.clone())
    }

    fn queue(&self) -> &flume::Sender<Job> {
        self.inner.queue.as_ref().expect("the queue lives as long as the store")
    }

    /// The views at the published head, for reading: a snapshot that stays consistent however
    /// long it is held, and never holds up the writer.
    pub(crate) fn state(&self) -> Arc<memory::Views> {
        self.inner.shared.views()
    }

    /// Executes a command: returns once its events are durable (or it was refused).
    pub fn execute(&self, caller: &Caller, command: Command) -> StoreResult<Executed> {
        let (reply, answer) = flume::bounded(1);
        self.queue()
            .send(Job::Command {
                caller: caller.clone(),
                command,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// `execute` for async callers: waits without blocking the executor's thread.
    pub async fn execute_async(&self, caller: &Caller, command: Command) -> StoreResult<Executed> {
        let (reply, answer) = flume::bounded(1);
        self.queue()
            .send_async(Job::Command {
                caller: caller.clone(),
                command,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.recv_async().await.map_err(|_| StoreError::Closed)?
    }

    command_methods! {
        /// RunTask: launches `count` tasks; see ECS_SEMANTICS §2.1.
        run_task: RunTask(RunTaskRequest) -> RunTaskResponse;
        start_task: StartTask(StartTaskRequest) -> StartTaskResponse;
        stop_task: StopTask(StopTaskRequest) -> StopTaskResponse;
        submit_task_state_change: SubmitTaskStateChange(SubmitTaskStateChangeRequest) -> SubmitTaskStateChangeResponse;
        submit_container_state_change: SubmitContainerStateChange(SubmitContainerStateChangeRequest) -> SubmitContainerStateChangeResponse;
        submit_attachment_state_changes: SubmitAttachmentStateChanges(SubmitAttachmentStateChangesRequest) -> SubmitAttachmentStateChangesResponse;
        register_task_definition: RegisterTaskDefinition(RegisterTaskDefinitionRequest) -> RegisterTaskDefinitionResponse;
        deregister_task_definition: DeregisterTaskDefinition(DeregisterTaskDefinitionRequest) -> DeregisterTaskDefinitionResponse;
        create_cluster: CreateCluster(CreateClusterRequest) -> CreateClusterResponse;
        delete_cluster: DeleteCluster(DeleteClusterRequest) -> DeleteClusterResponse;
        register_container_instance: RegisterContainerInstance(RegisterContainerInstanceRequest) -> RegisterContainerInstanceResponse;
        deregister_container_instance: DeregisterContainerInstance(DeregisterContainerInstanceRequest) -> DeregisterContainerInstanceResponse;
        update_container_instances_state: UpdateContainerInstancesState(UpdateContainerInstancesStateRequest) -> UpdateContainerInstancesStateResponse;
        delete_task_definitions: DeleteTaskDefinitions(DeleteTaskDefinitionsRequest) -> DeleteTaskDefinitionsResponse;
        put_attributes: PutAttributes(PutAttributesRequest) -> PutAttributesResponse;
        delete_attributes: DeleteAttributes(DeleteAttributesRequest) -> DeleteAttributesResponse;
        tag_resource: TagResource(TagResourceRequest) -> TagResourceResponse;
        untag_resource: UntagResource(UntagResourceRequest) -> UntagResourceResponse;
    }

    query_methods! {
        describe_tasks(DescribeTasksRequest) -> DescribeTasksResponse;
        list_tasks(ListTasksRequest) -> ListTasksResponse;
        describe_task_definition(DescribeTaskDefinitionRequest) -> DescribeTaskDefinitionResponse;
        list_task_definitions(ListTaskDefinitionsRequest) -> ListTaskDefinitionsResponse;
        list_task_definition_families(ListTaskDefinitionFamiliesRequest) -> ListTaskDefinitionFamiliesResponse;
        describe_clusters(DescribeClustersRequest) -> DescribeClustersResponse;
        list_clusters(ListClustersRequest) -> ListClustersResponse;
        describe_container_instances(DescribeContainerInstancesRequest) -> DescribeContainerInstancesResponse;
        list_container_instances(ListContainerInstancesRequest) -> ListContainerInstancesResponse;
        list_attributes(ListAttributesRequest) -> ListAttributesResponse;
        list_tags_for_resource(ListTagsForResourceRequest) -> ListTagsForResourceResponse;
    }

    /// The seq of the last durable event (0 for an empty store).
    pub fn head_seq(&self) -> u64 {
        self.inner.shared.head()
    }

    /// Waits until the head passes `seq` or `timeout` elapses; returns the head.
    pub fn wait_for_head(&self, seq: u64, timeout: std::time::Duration) -> u64 {
        let shared = &self.inner.shared;
        let guard = shared.head.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = shared
            .head_moved
            .wait_timeout_while(guard, timeout, |head| *head <= seq)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }

    /// Up to `limit` log records from `from` (inclusive), in seq order; only durable ones.
    pub fn read_log(&self, from: u64, limit: usize) -> StoreResult<Vec<LogRecord>> {
        read_records(self.inner.log(), self.head_seq(), from, limit)
    }

    /// The log record at `seq`, if it is durable.
    fn log_record(&self, seq: u64) -> StoreResult<Option<LogRecord>> {
        Ok(self.read_log(seq, 1)?.pop().filter(|r| r.seq == seq))
    }

    /// The events about one task (by id), after seq `after`, in order; at most `limit`. Any
    /// task ever: one the views no longer hold (expired) through the history index.
    pub fn task_history(&self, task_id: &str, after: Option<u64>, limit: usize) -> StoreResult<Vec<LogRecord>> {
        let head = self.head_seq();
        let in_views = {
            use crate::domain::state::StateView;
            let state = self.state();
            state.task(task_id).map_err(StoreError::from_read)?.map(|r| r.history)
        };
        let history = match (in_views, &self.inner.history) {
            (Some(history), _) => history,
            (None, Some(index)) => index.seqs(task_id, head)?,
            (None, None) => Vec::new(),
        };
        let mut records = Vec::new();
        for seq in history.into_iter().filter(|s| after.is_none_or(|a| *s > a)).take(limit) {
            if seq > head {
                break;
            }
            match self.log_record(seq)? {
                Some(record) => records.push(record),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "history of {task_id} names seq {seq}, which is not in the log"
                    )))
                }
            }
        }
        Ok(records)
    }

    /// A receiver that sees the durable head move (for async waiting).
    pub fn watch_head(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.shared.head_watch.subscribe()
    }

    /// Why the store refuses writes, once a write or fsync failed (until it is reopened).
    pub fn write_refusal(&self) -> Option<String> {
        self.inner.shared.refusal()
    }

    /// Whether a write could succeed now: not after a failed write or fsync (until reopened),
    /// nor while the log's engine does not answer (etcd without a quorum). Asks the engine, so
    /// it blocks for up to its request timeout; for health checks.
    pub fn writable(&self) -> Result<(), String> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let log = self.inner.log();
        let reserve = self.inner.min_free_space;
        if let Ok(Some(available)) = log.short_of(reserve) {
            return Err(StoreError::DiskFull { available, reserve }.to_string());
        }
        log.probe()
            .map_err(|e| format!("the log's engine does not answer: {e}"))
    }

    /// The seq the history index has read the log up to.
    pub fn history_seq(&self) -> u64 {
        self.inner.history.as_ref().map_or(0, |history| history.read_to())
    }

    /// Tasks in the views (expired STOPPED tasks are not).
    pub fn task_count(&self) -> usize {
        self.state().task_count()
    }

    /// Each ACTIVE cluster's PENDING and RUNNING tasks: (region, cluster, pending, running).
    pub fn cluster_task_counts(&self) -> Vec<(String, String, usize, usize)> {
        self.state().cluster_task_counts()
    }

    /// Free bytes where the store grows (the data directory's filesystem), where it is known.
    pub fn available_space(&self) -> Option<u64> {
        self.inner.log().available_space().ok().flatten()
    }

    /// Tasks in the views by cluster and desired status: (region, cluster, desired, count).
    pub fn tasks_by_cluster(&self) -> Vec<(String, String, crate::domain::lifecycle::DesiredStatus, usize)> {
        self.state().tasks_by_cluster()
    }

    /// Writer counters.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.shared.stats
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> StoreResult<u64> {
        self.inner
            .log()
            .size_on_disk()
            .map_err(|e| StoreError::storage("measuring the store", e))
    }

    /// Runs `work` on the writer thread between groups, with writes paused.
    fn maintenance<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut writer::WriterState) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (reply, answer) = flume::bounded(1);
        self.queue()
            .send(Job::Maintenance(Box::new(move |state| {
                let _ = reply.send(work(state));
            })))
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Folds the whole log again and compares it with the views. Writes wait while it runs.
    /// `progress(done, total)` is called as records are replayed.
    pub fn verify(&self, progress: impl Fn(u64, u64) + Send + Sync + 'static) -> StoreResult<VerifyReport> {
        let checkpoints = self.checkpoints_dir();
        self.maintenance(move |state| {
            verify::verify(&*state.log, &state.shared.views(), checkpoints.as_deref(), &progress)
        })
    }

    /// Every entry of the views (records, indexes, head), in key order, as the first version
    /// stored them: for audit tools and tests that compare a store with a model.
    pub fn view_entries(&self) -> StoreResult<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
        Ok(verify::stored_entries(&self.state()))
    }

    /// Expires, now, every STOPPED task past the retention (the writer otherwise checks about
    /// once a second); returns how many expired. Nothing happens without a retention.
    pub fn expire_stopped_tasks(&self) -> StoreResult<usize> {
        self.maintenance(|state| Ok(state.expire(usize::MAX)))
    }

    /// Replaces the views with a fold of the whole log, and checkpoints them. Writes wait while
    /// it runs.
    pub fn rebuild(&self, progress: impl Fn(u64, u64) + Send + Sync + 'static) -> StoreResult<RebuildReport> {
        self.maintenance(move |state| {
            let (views, report) = verify::rebuild(&*state.log, &state.shared.views(), &progress)?;
            state.shared.replace_views(views);
            state.checkpoint_now();
            Ok(report)
        })
    }
}

/// Up to `limit` records of `log` from `from` (inclusive) to `head`, in seq order.
fn read_records(log: &dyn Log, head: u64, from: u64, limit: usize) -> StoreResult<Vec<LogRecord>> {
    let from = from.max(1);
    let mut records = Vec::new();
    if limit == 0 || from > head {
        return Ok(records);
    }
    for value in log.read(from) {
        let value = value.map_err(|e| StoreError::storage("reading the log", e))?;
        for frame in codec::log_frames(value.first, &value.bytes).list() {
            let (seq, frame) = frame.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if seq < from {
                continue;
            }
            if seq > head || records.len() == limit {
                return Ok(records);
            }
            records.push(codec::unframe_log_record(seq, frame).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
    }
    Ok(records)
}

/// A durable log to read records from: a store, or a log opened alone (`Store::open_log`).
pub trait LogSource {
    fn head_seq(&self) -> StoreResult<u64>;
    /// Up to `limit` records from `from` (inclusive), in seq order.
    fn read_log(&self, from: u64, limit: usize) -> StoreResult<Vec<LogRecord>>;
}

impl LogSource for Store {
    fn head_seq(&self) -> StoreResult<u64> {
        Ok(Store::head_seq(self))
    }

    fn read_log(&self, from: u64, limit: usize) -> StoreResult<Vec<LogRecord>> {
        Store::read_log(self, from, limit)
    }
}

impl LogSource for dyn Log {
    fn head_seq(&self) -> StoreResult<u64> {
        self.head().map_err(|e| StoreError::storage("reading the head", e))
    }

    fn read_log(&self, from: u64, limit: usize) -> StoreResult<Vec<LogRecord>> {
        read_records(self, LogSource::head_seq(self)?, from, limit)
    }
}

/// The head of `log` and the time of its last record, read through the log trait (for engines
/// other than sled, whose head and log are written in one transaction).
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
fn recover_log(log: &dyn Log) -> StoreResult<(u64, Timestamp)> {
    let head = log.head().map_err(|e| StoreError::storage("reading the head", e))?;
    if head == 0 {
        return Ok((0, Timestamp::default()));
    }
    let value = log
        .read(head)
        .next()
        .transpose()
        .map_err(|e| StoreError::storage("reading the end of the log", e))?
        .ok_or_else(|| StoreError::Corrupt(format!("the head is seq {head}, but the log is empty")))?;
    for frame in codec::log_frames(value.first, &value.bytes).list() {
        let (seq, frame) = frame.map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if seq == head {
            let record = codec::unframe_log_record(seq, frame).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            return Ok((head, record.time.unwrap_or_default()));
        }
    }
    Err(StoreError::Corrupt(format!(
        "the head is seq {head}, but the log value from seq {} does not hold it",
        value.first
    )))
}

/// The head and the time of the last record, after checking that the last record is intact
/// and that the log ends where meta says it does.
fn recover(engine: &dyn Engine) -> StoreResult<(u64, Timestamp)> {
    let head = verify::head_of(engine)?;
    let log_start = keys::log(1);
    let log_end = keys::prefix_end(&[keys::LOG]);
    let last = engine
        .range_rev(&log_start, &log_end)
        .next()
        .transpose()
        .map_err(|e| StoreError::storage("reading the end of the log", e))?;
    match last {
        None if head == 0 => Ok((0, Timestamp::default())),
        None => Err(StoreError::Corrupt(format!(
            "meta says the log ends at seq {head}, but the log is empty"
        ))),
        Some((key, bytes)) => {
            let first = keys::log_seq(&key).unwrap_or(0);
            let frames = codec::log_frames(first, &bytes);
            let last = frames
                .list()
                .last()
                .expect("a log value holds at least one frame")
                .clone();
            let (seq, frame) = last.map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if seq != head {
                return Err(StoreError::Corrupt(format!(
                    "the log ends at seq {seq}, but meta says {head}"
                )));
            }
            let record = codec::unframe_log_record(seq, frame).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((head, record.time.unwrap_or_default()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::CreateClusterRequest;

    fn create(store: &Store, name: &str) -> StoreResult<()> {
        let caller = Caller::library(crate::domain::Scope::new("us-east-1", "123456789012").unwrap());
        let request = CreateClusterRequest {
            cluster_name: Some(name.into()),
            ..Default::default()
        };
        store.create_cluster(&caller, request).map(|_| ())
    }

    /// A reader holding the views (however long) neither waits for the writer nor holds it up,
    /// and keeps seeing the head it started at.
    #[test]
    fn a_reader_holding_the_views_does_not_hold_up_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        create(&store, "before").unwrap();
        let held = store.state();
        let head = held.head;
        let (done, finished) = std::sync::mpsc::channel();
        let writer = store.clone();
        // Not joined: if the write waited for the reader, it would wait forever.
        std::thread::spawn(move || done.send(create(&writer, "during")));
        let written = finished.recv_timeout(std::time::Duration::from_secs(60));
        assert!(
            matches!(written, Ok(Ok(()))),
            "the write waited for the reader: {written:?}"
        );
        assert_eq!(held.head, head, "a held snapshot does not move");
        assert_eq!(store.state().head, store.head_seq());
        assert!(store.state().head > head);
    }
}
