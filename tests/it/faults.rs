//! Fault injection at the storage boundary: `FaultyEngine` wraps the sled engine and, on
//! command, fails before a batch is applied, "crashes" after the batch but before fdatasync,
//! has fdatasync report an error, or tears the last log record of a batch. The tests prove that
//! no reply is sent before its events are synced, that a store whose write or fsync failed
//! refuses writes (reads still work) until it is reopened, and that a torn or corrupted record is
//! detected by its CRC and named by its seq, never served; and that below the free-space reserve
//! writes are refused without being attempted, reads work, and writes resume once space is back;
//! and that `repair` cuts a damaged end off the log, keeping every acknowledged write.
//! Does not fill a disk (see `disk_full`) or kill processes (see `crash`, `crash_loop`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use taskledger::domain::{Command, EcsException};
use taskledger::proto::v1::*;
use taskledger::store::engine::{Engine, EngineError, EngineResult, Entries, SledEngine, SledOptions, WriteBatch};
use taskledger::store::{keys, Caller, ManualClock, Store, StoreError};

use crate::support::{assert_acknowledged, fargate_run, options, scope};

/// The fault the next write or sync meets. Each fires once, then the engine behaves again
/// (the store, however, must keep refusing writes until it is reopened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `apply` returns an error and writes nothing.
    BeforeBatch,
    /// `apply` succeeds; the following `sync` returns an error without flushing or syncing
    /// anything, as if the process had died between the two.
    AfterBatchBeforeSync,
    /// `sync` flushes and fdatasyncs, then reports an error (EIO from fdatasync: the state of
    /// the data is unknown).
    SyncError,
    /// `apply` writes the batch with its last log record cut in half, makes that durable, and
    /// returns an error: the process "crashed" in the middle of writing the record.
    TornLastRecord,
}

/// A sled engine that fails on command, and remembers the head that was last made durable.
struct FaultyEngine {
    inner: SledEngine,
    armed: Mutex<Option<Fault>>,
    /// Set by `AfterBatchBeforeSync` once its batch is applied: the next sync fails.
    sync_must_fail: AtomicBool,
    /// `meta/head_seq` as it was when the last successful sync began: everything up to it is durable.
    synced_head: AtomicU64,
    faults_fired: AtomicU64,
    /// The free space the engine reports instead of its filesystem's, when set.
    free_space: Mutex<Option<u64>>,
}

impl FaultyEngine {
    fn open(dir: &std::path::Path) -> Arc<FaultyEngine> {
        Arc::new(FaultyEngine {
            inner: SledEngine::open(dir, &SledOptions::default()).expect("open sled"),
            armed: Mutex::new(None),
            sync_must_fail: AtomicBool::new(false),
            synced_head: AtomicU64::new(0),
            faults_fired: AtomicU64::new(0),
            free_space: Mutex::new(None),
        })
    }

    fn arm(&self, fault: Fault) {
        *self.armed.lock().unwrap() = Some(fault);
    }

    fn take(&self, wanted: &[Fault]) -> Option<Fault> {
        let mut armed = self.armed.lock().unwrap();
        match *armed {
            Some(fault) if wanted.contains(&fault) => {
                *armed = None;
                self.faults_fired.fetch_add(1, Ordering::SeqCst);
                Some(fault)
            }
            _ => None,
        }
    }

    fn head_in_engine(&self) -> u64 {
        self.inner
            .get(keys::META_HEAD_SEQ)
            .unwrap()
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    }
}

impl Engine for FaultyEngine {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range(start, end)
    }
    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range_rev(start, end)
    }
    fn apply(&self, mut batch: WriteBatch) -> EngineResult<()> {
        match self.take(&[Fault::BeforeBatch, Fault::AfterBatchBeforeSync, Fault::TornLastRecord]) {
            None => self.inner.apply(batch),
            Some(Fault::BeforeBatch) => Err(EngineError("injected: the batch could not be written".into())),
            Some(Fault::AfterBatchBeforeSync) => {
                self.inner.apply(batch)?;
                self.sync_must_fail.store(true, Ordering::SeqCst);
                Ok(())
            }
            Some(Fault::TornLastRecord) => {
                let last_log = batch
                    .writes
                    .iter_mut()
                    .filter(|(key, value)| key.first() == Some(&keys::LOG) && value.is_some())
                    .max_by(|a, b| a.0.cmp(&b.0))
                    .expect("a group commit writes log records");
                let value = last_log.1.as_mut().expect("filtered on Some");
                value.truncate(value.len() / 2);
                self.inner.apply(batch)?;
                self.inner.sync()?;
                Err(EngineError(
                    "injected: crashed while writing the last log record".into(),
                ))
            }
            Some(Fault::SyncError) => unreachable!("not taken by apply"),
        }
    }
    fn sync(&self) -> EngineResult<()> {
        if self.sync_must_fail.swap(false, Ordering::SeqCst) {
            return Err(EngineError("injected: the process died before fdatasync".into()));
        }
        let head = self.head_in_engine();
        self.inner.sync()?;
        if self.take(&[Fault::SyncError]).is_some() {
            return Err(EngineError("injected: fdatasync failed with EIO".into()));
        }
        self.synced_head.fetch_max(head, Ordering::SeqCst);
        Ok(())
    }
    fn size_on_disk(&self) -> EngineResult<u64> {
        self.inner.size_on_disk()
    }
    fn available_space(&self) -> EngineResult<Option<u64>> {
        match *self.free_space.lock().unwrap() {
            Some(free) => Ok(Some(free)),
            None => self.inner.available_space(),
        }
    }
}

fn clock() -> ManualClock {
    ManualClock::new(1_700_000_000_000)
}

fn caller() -> Caller {
    Caller::library(scope())
}

/// A store on a `FaultyEngine` in `dir`, with cluster "prod" and Fargate family "web".
fn faulty_store(dir: &std::path::Path) -> (Store, Arc<FaultyEngine>) {
    let engine = FaultyEngine::open(dir);
    let store = Store::open_engine(engine.clone(), dir.into(), options(&clock())).unwrap();
    store
        .create_cluster(
            &caller(),
            CreateClusterRequest {
                cluster_name: Some("prod".into()),
                ..Default::default()
            },
        )
        .unwrap();
    store
        .register_task_definition(&caller(), crate::grpc_support::fargate_definition("web"))
        .unwrap();
    (store, engine)
}

fn create_cluster(store: &Store, name: &str) -> Result<(), StoreError> {
    store
        .create_cluster(
            &caller(),
            CreateClusterRequest {
                cluster_name: Some(name.into()),
                ..Default::default()
            },
        )
        .map(|_| ())
}

fn cluster_exists(store: &Store, name: &str) -> bool {
    !store
        .describe_clusters(
            &scope(),
            &DescribeClustersRequest {
                clusters: vec![name.into()],
                include: vec![],
            },
        )
        .unwrap()
        .clusters
        .is_empty()
}

/// What a load run saw: the last acknowledged version of each task, and the first error.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeMap<String, i64>,
    errors: Vec<StoreError>,
}

/// `writers` threads run tasks and report PENDING, RUNNING, STOPPED for each, until a call
/// fails; after every acknowledged change `on_ack(total acks so far)` runs on the writer's thread.
/// Checks on every reply that its events were synced before it was sent.
fn run_load(store: &Store, engine: &FaultyEngine, writers: usize, on_ack: impl Fn(u64) + Sync) -> Seen {
    let seen = Mutex::new(Seen::default());
    let acks = AtomicU64::new(0);
    let ack = |arn: &str, version: i64, seqs: Option<std::ops::RangeInclusive<u64>>| {
        if let Some(seqs) = seqs {
            let synced = engine.synced_head.load(Ordering::SeqCst);
            assert!(
                *seqs.end() <= synced,
                "seq {} was acknowledged while only {synced} was synced",
                seqs.end()
            );
        }
        let mut seen = seen.lock().unwrap();
        let entry = seen.acknowledged.entry(arn.to_string()).or_default();
        *entry = (*entry).max(version);
        drop(seen);
        on_ack(acks.fetch_add(1, Ordering::SeqCst) + 1);
    };
    let fail = |error: StoreError| seen.lock().unwrap().errors.push(error);
    std::thread::scope(|threads| {
        for _ in 0..writers {
            threads.spawn(|| loop {
                let created = match store.execute(&caller(), Command::RunTask(fargate_run("prod", "web", 1))) {
                    Ok(created) => created,
                    Err(e) => return fail(e),
                };
                let taskledger::domain::Reply::RunTask(reply) = created.reply else {
                    panic!("RunTask answered with another reply")
                };
                let arn = reply.tasks[0].task_arn.clone().unwrap();
                ack(&arn, 1, created.seqs);
                let mut version = 1;
                for status in ["PENDING", "RUNNING", "STOPPED"] {
                    let report = Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
                        cluster: Some("prod".into()),
                        task: Some(arn.clone()),
                        status: Some(status.into()),
                        ..Default::default()
                    });
                    match store.execute(&caller(), report) {
                        Ok(executed) => {
                            version += 1;
                            ack(&arn, version, executed.seqs);
                        }
                        Err(e) => return fail(e),
                    }
                }
            });
        }
    });
    seen.into_inner().unwrap()
}

/// Every error a caller got after the fault is a ServerException with a message.
fn assert_server_exceptions(errors: &[StoreError]) {
    assert!(!errors.is_empty(), "the fault reached no caller");
    for error in errors {
        assert_eq!(error.exception(), EcsException::ServerException, "{error}");
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn no_reply_is_sent_before_its_events_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = faulty_store(dir.path());
    // Stop the load once enough has been acknowledged: a BeforeBatch fault ends every writer.
    let seen = run_load(&store, &engine, 8, |acks| {
        if acks == 400 {
            engine.arm(Fault::BeforeBatch);
        }
    });
    assert!(
        seen.acknowledged.len() >= 50,
        "too little load: {}",
        seen.acknowledged.len()
    );
    assert_server_exceptions(&seen.errors);
}

#[test]
fn a_batch_that_fails_to_apply_is_not_acknowledged_and_the_store_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = faulty_store(dir.path());
    create_cluster(&store, "before").unwrap();
    let head = store.head_seq();
    engine.arm(Fault::BeforeBatch);
    let error = create_cluster(&store, "lost").unwrap_err();
    assert!(matches!(error, StoreError::Storage { .. }), "{error}");
    assert_eq!(error.exception(), EcsException::ServerException);
    assert!(error.to_string().contains("could not be written"), "{error}");
    assert_eq!(store.head_seq(), head);
    // The engine works again, but the store does not trust it until it is reopened.
    let refused = create_cluster(&store, "after").unwrap_err();
    assert!(matches!(refused, StoreError::WritesRefused(_)), "{refused}");
    assert!(refused.to_string().contains("reopen"), "{refused}");
    assert!(cluster_exists(&store, "before"), "reads still work");
    assert!(!cluster_exists(&store, "lost"));
    drop((store, engine));

    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert_eq!(store.head_seq(), head);
    assert!(!cluster_exists(&store, "lost"));
    create_cluster(&store, "after").unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}

#[test]
fn a_crash_between_batch_and_fdatasync_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = faulty_store(dir.path());
    let seen = run_load(&store, &engine, 8, |acks| {
        if acks == 300 {
            engine.arm(Fault::AfterBatchBeforeSync);
        }
    });
    assert_eq!(engine.faults_fired.load(Ordering::SeqCst), 1);
    assert_server_exceptions(&seen.errors);
    let refused = create_cluster(&store, "after").unwrap_err();
    assert!(matches!(refused, StoreError::WritesRefused(_)), "{refused}");
    let head_before_crash = store.head_seq();
    drop((store, engine));

    // Reopened: every acknowledged version is there; what was applied but never synced may or
    // may not be (sled flushes on its own), but it was never acknowledged.
    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert!(store.head_seq() >= head_before_crash);
    assert_acknowledged(&store, "prod", &seen.acknowledged, 0);
    create_cluster(&store, "after").unwrap();
}

#[test]
fn after_an_fdatasync_error_the_store_refuses_writes_and_serves_reads_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = faulty_store(dir.path());
    let seen = run_load(&store, &engine, 8, |acks| {
        if acks == 300 {
            engine.arm(Fault::SyncError);
        }
    });
    assert_eq!(engine.faults_fired.load(Ordering::SeqCst), 1);
    assert_server_exceptions(&seen.errors);
    assert!(
        seen.errors
            .iter()
            .any(|e| e.to_string().contains("fdatasync failed with EIO")),
        "the callers of the failed group hear why: {:?}",
        seen.errors.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    // Writes are refused even though the engine would now sync fine: a retried fsync can
    // report success for pages the kernel already dropped.
    for name in ["a", "b", "c"] {
        let refused = create_cluster(&store, name).unwrap_err();
        assert!(matches!(refused, StoreError::WritesRefused(_)), "{refused}");
        assert_eq!(refused.exception(), EcsException::ServerException);
    }
    // Reads work, and they show every acknowledged version.
    for (arn, version) in &seen.acknowledged {
        let described = store
            .describe_tasks(
                &scope(),
                &DescribeTasksRequest {
                    cluster: Some("prod".into()),
                    tasks: vec![arn.clone()],
                    include: vec![],
                },
            )
            .unwrap();
        assert!(described.tasks[0].version.unwrap() >= *version);
    }
    assert!(store.read_log(1, 10).unwrap().len() == 10);
    drop((store, engine));

    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert_acknowledged(&store, "prod", &seen.acknowledged, 0);
    create_cluster(&store, "after-reopen").unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}

#[test]
fn a_torn_last_record_is_detected_by_its_crc_on_open_and_named_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let torn_seq = {
        let (store, engine) = faulty_store(dir.path());
        create_cluster(&store, "kept").unwrap();
        let torn_seq = store.head_seq() + 1;
        engine.arm(Fault::TornLastRecord);
        let error = create_cluster(&store, "torn").unwrap_err();
        assert_eq!(error.exception(), EcsException::ServerException);
        torn_seq
    };
    // The "crashed" process is gone; a new one opens the directory with the plain engine.
    let Err(error) = Store::open_with(dir.path(), options(&clock())) else {
        panic!("a store ending in a torn record must not open")
    };
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt(_)), "{message}");
    assert!(message.contains(&format!("log record {torn_seq}")), "{message}");
    assert!(message.contains("checksum mismatch"), "{message}");
}

#[test]
fn a_corrupted_record_inside_the_log_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (damaged_seq, task_id) = {
        let (store, _engine) = faulty_store(dir.path());
        let run = store.run_task(&caller(), fargate_run("prod", "web", 1)).unwrap();
        let arn = run.tasks[0].task_arn.clone().unwrap();
        let damaged_seq = store.task_history(arn.rsplit('/').next().unwrap(), None, 1).unwrap()[0].seq;
        create_cluster(&store, "later").unwrap();
        (damaged_seq, arn.rsplit('/').next().unwrap().to_string())
    };
    {
        // Bit rot in the middle of the log, behind the store's back.
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let key = keys::log(damaged_seq);
        let mut bytes = engine.get(&key).unwrap().unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        let mut batch = WriteBatch::default();
        batch.put(key, bytes);
        engine.apply(batch).unwrap();
        engine.sync().unwrap();
    }
    // Opening folds the log after the newest checkpoint: a damaged record there stops the open,
    // naming its seq. One a checkpoint covers lets the store open, but is refused wherever it
    // would be read.
    let named = format!("log record {damaged_seq}");
    let store = match Store::open_with(dir.path(), options(&clock())) {
        Err(refused) => {
            assert!(refused.to_string().contains(&named), "{refused}");
            assert!(refused.to_string().contains("checksum mismatch"), "{refused}");
            return;
        }
        Ok(store) => store,
    };
    let read = store.read_log(1, usize::MAX).unwrap_err();
    assert_eq!(read.exception(), EcsException::ServerException);
    assert!(read.to_string().contains(&named), "{read}");
    let history = store.task_history(&task_id, None, usize::MAX).unwrap_err();
    assert!(history.to_string().contains(&named), "{history}");
    let verify = store.verify(|_, _| {}).unwrap_err();
    assert!(verify.to_string().contains(&named), "{verify}");
    assert!(verify.to_string().contains("checksum mismatch"), "{verify}");
}

#[test]
fn below_the_free_space_reserve_writes_are_refused_untried_and_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (store, engine) = faulty_store(dir.path());
    let task = store.run_task(&caller(), fargate_run("prod", "web", 1)).unwrap().tasks[0]
        .task_arn
        .clone()
        .unwrap();
    let head = store.head_seq();
    *engine.free_space.lock().unwrap() = Some(1024 * 1024);
    for name in ["a", "b"] {
        let refused = create_cluster(&store, name).unwrap_err();
        assert!(
            matches!(
                refused,
                StoreError::DiskFull {
                    available: 1_048_576,
                    reserve: 67_108_864
                }
            ),
            "{refused}"
        );
        assert_eq!(refused.exception(), EcsException::ServerException);
        assert!(refused.to_string().contains("free space and retry"), "{refused}");
    }
    assert_eq!(store.head_seq(), head, "nothing was written");
    assert_eq!(engine.faults_fired.load(Ordering::SeqCst), 0);
    let described = store
        .describe_tasks(
            &scope(),
            &DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: vec![task],
                include: vec![],
            },
        )
        .expect("reads work below the reserve");
    assert_eq!(described.tasks.len(), 1);
    // Space is freed: the next write goes through, with no reopen.
    *engine.free_space.lock().unwrap() = None;
    create_cluster(&store, "a").unwrap();
    assert!(cluster_exists(&store, "a"));
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}

/// Deletes the last log value (a record, or a chunk of them) of the closed store in `dir`,
/// leaving the head naming its last record (as a torn batch did); returns that head and the seq
/// the value was stored under.
fn drop_last_log_value(dir: &std::path::Path) -> (u64, u64) {
    let engine = SledEngine::open(dir, &SledOptions::default()).unwrap();
    let head = u64::from_be_bytes(engine.get(keys::META_HEAD_SEQ).unwrap().unwrap().try_into().unwrap());
    let (key, _) = engine
        .range_rev(&keys::log(0), &keys::log(head + 1))
        .next()
        .unwrap()
        .unwrap();
    let first = keys::log_seq(&key).unwrap();
    let mut batch = WriteBatch::default();
    batch.delete(key);
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    (head, first)
}

/// A store whose last write tore its record (or left meta ahead of the log) does not open;
/// `repair` first reports, changing nothing, then keeps the intact prefix with every acknowledged
/// write, and the store opens, verifies clean and takes writes again.
#[test]
fn repair_cuts_a_torn_or_missing_end_off_the_log_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (acknowledged, torn_seq) = {
        let (store, engine) = faulty_store(dir.path());
        let seen = run_load(&store, &engine, 4, |acks| {
            if acks == 200 {
                engine.arm(Fault::TornLastRecord);
            }
        });
        assert_eq!(engine.faults_fired.load(Ordering::SeqCst), 1);
        // The torn record is the last of its group, so the head meta names it.
        (seen.acknowledged, engine.head_in_engine())
    };
    assert!(Store::open_with(dir.path(), options(&clock())).is_err());
    let dry = Store::repair(dir.path(), &|_, _| {}, true).unwrap();
    // The torn value held the group's last records: the intact log ends before the cut.
    let intact = dry.head;
    assert!(intact < torn_seq, "{dry:?}");
    assert_eq!(dry.previous_head, torn_seq);
    assert!(
        dry.problem
            .as_deref()
            .unwrap()
            .contains(&format!("log record {}", intact + 1)),
        "{dry:?}"
    );
    assert_eq!(dry.removed.len(), 1, "{dry:?}");
    assert!(
        Store::open_with(dir.path(), options(&clock())).is_err(),
        "a dry run changes nothing"
    );

    let repaired = Store::repair(dir.path(), &|_, _| {}, false).unwrap();
    assert_eq!(repaired.head, intact);
    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert_eq!(store.head_seq(), intact);
    assert_acknowledged(&store, "prod", &acknowledged, 0);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    create_cluster(&store, "after-repair").unwrap();
    drop(store);

    // Meta ahead of the log: the last record is gone but the head still names it.
    let (head, first) = drop_last_log_value(dir.path());
    let Err(error) = Store::open_with(dir.path(), options(&clock())) else {
        panic!("a store whose head is beyond its log must not open")
    };
    assert!(error.to_string().contains("meta says"), "{error}");
    let repaired = Store::repair(dir.path(), &|_, _| {}, false).unwrap();
    assert_eq!(
        (repaired.previous_head, repaired.head),
        (head, first - 1),
        "{repaired:?}"
    );
    assert!(repaired.removed.is_empty());
    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    assert!(!cluster_exists(&store, "after-repair"), "its event was the one removed");
    drop(store);
    let healthy = Store::repair(dir.path(), &|_, _| {}, true).unwrap();
    assert!(healthy.was_healthy(), "{healthy:?}");
}

/// The CLI: `verify` on a store with a damaged end points at `repair`, which reports first and
/// repairs with `--apply`, after which `verify` is clean.
#[test]
fn the_repair_command_reports_then_applies() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _engine) = faulty_store(dir.path());
        create_cluster(&store, "a").unwrap();
    }
    drop_last_log_value(dir.path());
    let taskledger = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, text) = taskledger(&["verify"]);
    assert!(!ok && text.contains("taskledger repair --data-dir"), "{text}");
    let (ok, text) = taskledger(&["repair"]);
    assert!(ok && text.contains("nothing changed; run again with --apply"), "{text}");
    let (ok, text) = taskledger(&["repair", "--apply"]);
    assert!(ok && text.contains("repaired: the store opens at seq"), "{text}");
    let (ok, text) = taskledger(&["verify"]);
    assert!(ok && text.contains("clean"), "{text}");
    let (ok, text) = taskledger(&["repair"]);
    assert!(ok && text.contains("healthy"), "{text}");
}

/// Bit rot in the middle of a chunk (one sled value holding a group's records): reads refuse the
/// damaged record by its seq, and `repair` keeps the chunk's intact records before it.
#[test]
fn repair_keeps_the_intact_start_of_a_chunk_damaged_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let (store, _engine) = faulty_store(dir.path());
        let before = store.head_seq();
        // One command, three tasks: one group, one chunk of several records.
        store.run_task(&caller(), fargate_run("prod", "web", 3)).unwrap();
        create_cluster(&store, "later").unwrap();
        before + 1
    };
    {
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let key = keys::log(first);
        let stored = engine.get(&key).unwrap().unwrap();
        // Stored compressed; written back plain (readers take both) with one bit flipped.
        assert_eq!(
            stored[0],
            taskledger::store::codec::LOG_PACKED,
            "the chunk was compressed"
        );
        let mut chunk = taskledger::store::codec::unpack(first, &stored).unwrap().into_owned();
        assert_eq!(
            chunk[0],
            taskledger::store::codec::LOG_CHUNK,
            "the group was written as a chunk"
        );
        let first_frame = u32::from_le_bytes(chunk[1..5].try_into().unwrap()) as usize;
        let second_payload = 1 + 4 + first_frame + 4 + 5;
        chunk[second_payload + 3] ^= 0x20;
        let mut batch = WriteBatch::default();
        batch.put(key, chunk);
        engine.apply(batch).unwrap();
        engine.sync().unwrap();
    }
    let named = format!("log record {}", first + 1);
    match Store::open_with(dir.path(), options(&clock())) {
        // The damage is in the log after the newest checkpoint: the store will not open.
        Err(refused) => assert!(refused.to_string().contains(&named), "{refused}"),
        Ok(store) => {
            assert_eq!(
                store.read_log(first, 1).unwrap().len(),
                1,
                "the record before the damage reads"
            );
            let read = store.read_log(first, 10).unwrap_err().to_string();
            assert!(read.contains(&named), "{read}");
            let verify = store.verify(|_, _| {}).unwrap_err().to_string();
            assert!(verify.contains(&named), "{verify}");
        }
    }
    let repaired = Store::repair(dir.path(), &|_, _| {}, false).unwrap();
    assert_eq!(repaired.head, first, "{repaired:?}");
    assert!(repaired.problem.as_deref().unwrap().contains(&named), "{repaired:?}");
    let store = Store::open_with(dir.path(), options(&clock())).unwrap();
    assert_eq!(store.head_seq(), first);
    assert_eq!(store.read_log(1, usize::MAX).unwrap().last().unwrap().seq, first);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    create_cluster(&store, "after-repair").unwrap();
}
