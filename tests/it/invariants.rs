//! One test per DESIGN invariant (1–8), named after the promise it checks. The SIGKILL tests for
//! invariants 1 and 3 live in `crash`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::*;
use taskledger::domain::{Command, EcsException};
use taskledger::proto::log::event::Kind;
use taskledger::proto::v1::*;
use taskledger::store::engine::{Engine, EngineError, EngineResult, Entries, SledEngine, SledOptions, WriteBatch};
use taskledger::store::{Store, StoreError};

#[test]
fn acknowledged_events_are_in_the_log_after_reopen() {
    let f = fixture();
    varied_workload(&f);
    let head = f.store.head_seq();
    let before = f.store.read_log(1, usize::MAX).unwrap();
    let f = f.reopen();
    assert_eq!(f.store.head_seq(), head);
    assert_eq!(f.store.read_log(1, usize::MAX).unwrap(), before);
}

/// Files in the blob directory of the sled store in `dir`.
fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs")).map_or(0, |listing| listing.count())
}

/// Acknowledged means durable also for the pages sled keeps outside its data file: a page above
/// 128 KiB goes to a blob file that sled itself never syncs. `sync` fsyncs each one, and opening a
/// store fsyncs those an earlier process left.
#[test]
fn blob_files_sled_writes_are_synced_by_sync_and_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(engine.synced_blob_files(), 0);
    let mut batch = WriteBatch::default();
    batch.put(b"large".to_vec(), vec![7; 300 * 1024]);
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    let files = blob_files(dir.path());
    assert!(files >= 1, "a 300 KiB value makes sled write a blob file");
    assert_eq!(engine.synced_blob_files(), files, "every blob file was synced");
    let blob_bytes: u64 = std::fs::read_dir(dir.path().join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    let data_bytes = std::fs::metadata(dir.path().join("db")).unwrap().len();
    assert!(
        engine.size_on_disk().unwrap() >= data_bytes + blob_bytes,
        "blob files count on disk"
    );
    drop(engine);
    let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(engine.synced_blob_files(), blob_files(dir.path()));
    assert_eq!(engine.get(b"large").unwrap().map(|v| v.len()), Some(300 * 1024));
}

/// The writer's log chunks stay small enough that sled keeps the log's pages in its data file:
/// with 32 KiB chunks, a log leaf passed 128 KiB and became one blob file per page written.
#[test]
fn a_busy_log_writes_no_blob_files() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    std::thread::scope(|threads| {
        for _ in 0..16 {
            threads.spawn(|| {
                for _ in 0..40 {
                    f.store.run_task(&f.caller, fargate_run("prod", "web", 10)).unwrap();
                }
            });
        }
    });
    assert!(f.store.head_seq() >= 6_400);
    let f = f.reopen();
    assert_eq!(blob_files(f.dir.path()), 0, "log pages went to blob files");
}

#[test]
fn views_are_a_pure_function_of_the_log() {
    let f = fixture();
    varied_workload(&f);
    f.verify_clean();
    let views = f.store.view_entries().unwrap();
    // Rebuilding from the log alone gives the same bytes.
    let report = f.store.rebuild(|_, _| {}).unwrap();
    assert_eq!((report.entries_written, report.entries_removed), (0, 0), "{report:?}");
    assert_eq!(f.store.view_entries().unwrap(), views);
}

#[test]
fn view_records_in_the_engine_change_nothing_the_store_answers() {
    // The views live in memory, folded from the log: whatever else the engine holds under the
    // old view keys is not read, and verify compares the views with the log alone.
    let dir = tempfile::tempdir().unwrap();
    let clock = taskledger::store::ManualClock::new(1_700_000_000_000);
    let engine = Arc::new(SledEngine::open(dir.path(), &SledOptions::default()).unwrap());
    let store = Store::open_engine(engine.clone(), dir.path().into(), options(&clock)).unwrap();
    let caller = taskledger::store::Caller::library(scope());
    store
        .create_cluster(
            &caller,
            CreateClusterRequest {
                cluster_name: Some("prod".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let views = store.view_entries().unwrap();
    let mut batch = WriteBatch::default();
    let cluster_key = taskledger::store::keys::cluster(&scope(), "prod");
    batch.put(cluster_key, b"garbage".to_vec());
    engine.apply(batch).unwrap();
    assert_eq!(store.view_entries().unwrap(), views);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    let described = store
        .describe_clusters(
            &scope(),
            &DescribeClustersRequest {
                clusters: vec!["prod".into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(described.clusters.len(), 1);
}

/// An engine whose `sync` can be made to fail, to see what the store acknowledges.
struct FailingSync {
    inner: SledEngine,
    fail: AtomicBool,
}

impl Engine for FailingSync {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range(start, end)
    }
    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range_rev(start, end)
    }
    fn apply(&self, batch: WriteBatch) -> EngineResult<()> {
        self.inner.apply(batch)
    }
    fn sync(&self) -> EngineResult<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(EngineError("injected fdatasync failure".into()));
        }
        self.inner.sync()
    }
    fn size_on_disk(&self) -> EngineResult<u64> {
        self.inner.size_on_disk()
    }
}

#[test]
fn log_and_views_never_disagree_after_a_failed_sync() {
    let dir = tempfile::tempdir().unwrap();
    let clock = taskledger::store::ManualClock::new(1_700_000_000_000);
    let caller = taskledger::store::Caller::library(scope());
    {
        let engine = Arc::new(FailingSync {
            inner: SledEngine::open(dir.path(), &SledOptions::default()).unwrap(),
            fail: AtomicBool::new(false),
        });
        let store = Store::open_engine(engine.clone(), dir.path().into(), options(&clock)).unwrap();
        store
            .create_cluster(
                &caller,
                CreateClusterRequest {
                    cluster_name: Some("a".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        engine.fail.store(true, Ordering::SeqCst);
        let err = store
            .create_cluster(
                &caller,
                CreateClusterRequest {
                    cluster_name: Some("b".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.exception(), EcsException::ServerException);
        // The store now refuses writes, even once the disk recovers, until it is reopened.
        engine.fail.store(false, Ordering::SeqCst);
        let err = store
            .create_cluster(
                &caller,
                CreateClusterRequest {
                    cluster_name: Some("c".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::WritesRefused(_)), "{err}");
        // Reads still work.
        let described = store.describe_clusters(
            &caller.scope,
            &DescribeClustersRequest {
                clusters: vec!["a".into()],
                include: vec![],
            },
        );
        assert_eq!(described.unwrap().clusters.len(), 1);
    }
    let store = Store::open_with(dir.path(), options(&clock)).unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    store
        .create_cluster(
            &caller,
            CreateClusterRequest {
                cluster_name: Some("d".into()),
                ..Default::default()
            },
        )
        .unwrap();
}

#[test]
fn versions_are_dense_per_task_and_seq_is_dense() {
    let f = fixture();
    varied_workload(&f);
    let log = f.store.read_log(1, usize::MAX).unwrap();
    for (i, record) in log.iter().enumerate() {
        assert_eq!(record.seq, i as u64 + 1, "seq must be dense from 1");
    }
    let mut versions: std::collections::BTreeMap<String, i64> = Default::default();
    for record in &log {
        match record.event.as_ref().unwrap().kind.as_ref().unwrap() {
            Kind::TaskCreated(e) => {
                let task = e.task.as_ref().unwrap();
                assert_eq!(task.version, Some(1));
                versions.insert(task.task_arn.clone().unwrap(), 1);
            }
            Kind::TaskChanged(e) => {
                let last = versions.get_mut(&e.task_arn).unwrap();
                assert_eq!(e.version, *last + 1, "version must grow by exactly one");
                *last = e.version;
            }
            _ => {}
        }
    }
    // Tag changes are logged but do not bump the version.
    for (arn, version) in versions {
        let id = arn.rsplit('/').next().unwrap();
        let history = f.store.task_history(id, None, usize::MAX).unwrap();
        assert_eq!(f.describe(arn.split('/').nth(1).unwrap(), &arn).version, Some(version));
        assert!(history.len() as i64 >= version);
    }
}

#[test]
fn stopped_is_terminal_and_status_only_moves_forward() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    f.report("prod", &arn, "STOPPED").unwrap();
    let stopped = f.describe("prod", &arn);
    assert_eq!(
        stopped.stop_code,
        Some(TaskStopCode::TaskFailedToStart as i32),
        "never ran, so it failed to start"
    );
    let head = f.store.head_seq();
    for status in ["PENDING", "RUNNING", "STOPPED", "DEPROVISIONING"] {
        let err = f.report("prod", &arn, status).unwrap_err();
        assert_eq!(err.exception(), EcsException::InvalidParameterException, "{status}");
    }
    // StopTask on a stopped task succeeds and changes nothing.
    let again = f
        .store
        .stop_task(
            &f.caller,
            StopTaskRequest {
                cluster: Some("prod".into()),
                task: Some(arn.clone()),
                reason: None,
            },
        )
        .unwrap();
    assert_eq!(again.task.unwrap().version, stopped.version);
    assert_eq!(f.store.head_seq(), head);
}

#[test]
fn retry_with_same_client_token_appends_nothing() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let mut request = fargate_run("prod", "web", 2);
    request.client_token = Some("retry-me".into());
    let first = f.store.run_task(&f.caller, request.clone()).unwrap();
    let head = f.store.head_seq();
    let second = f.store.run_task(&f.caller, request.clone()).unwrap();
    assert_eq!(f.store.head_seq(), head);
    let arns = |r: &RunTaskResponse| r.tasks.iter().map(|t| t.task_arn.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(arns(&first), arns(&second));
    // The same token in another cluster is another request.
    f.cluster("other");
    let mut elsewhere = request.clone();
    elsewhere.cluster = Some("other".into());
    let third = f.store.run_task(&f.caller, elsewhere).unwrap();
    assert_ne!(arns(&first), arns(&third));
}

#[test]
fn same_client_token_with_other_parameters_is_a_conflict() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let mut request = fargate_run("prod", "web", 1);
    request.client_token = Some("tok".into());
    let first = f.store.run_task(&f.caller, request.clone()).unwrap();
    request.count = Some(2);
    let head = f.store.head_seq();
    let StoreError::Rejected(err) = f.store.run_task(&f.caller, request).unwrap_err() else {
        panic!("not a rejection")
    };
    assert_eq!(err.exception, EcsException::ConflictException);
    assert_eq!(err.resource_ids, vec![first.tasks[0].task_arn.clone().unwrap()]);
    assert_eq!(f.store.head_seq(), head);
}

#[test]
fn client_tokens_expire_after_24_hours() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let mut request = fargate_run("prod", "web", 1);
    request.client_token = Some("tok".into());
    let first = f.store.run_task(&f.caller, request.clone()).unwrap();
    f.clock.advance(24 * 3600 * 1000 + 1);
    let later = f.store.run_task(&f.caller, request).unwrap();
    assert_ne!(first.tasks[0].task_arn, later.tasks[0].task_arn);
    f.verify_clean();
}

#[test]
fn rejected_commands_change_nothing() {
    let f = fixture();
    varied_workload(&f);
    let head = f.store.head_seq();
    let views = f.store.view_entries().unwrap();
    let bad: Vec<Command> = vec![
        Command::RunTask(RunTaskRequest {
            cluster: Some("nope".into()),
            task_definition: Some("web".into()),
            ..Default::default()
        }),
        Command::RunTask(RunTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("web".into()),
            count: Some(11),
            ..Default::default()
        }),
        Command::RunTask(fargate_run("prod", "missing-family", 1)),
        Command::RunTask(RunTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("worker".into()),
            launch_type: Some(LaunchType::Fargate as i32),
            ..Default::default()
        }),
        Command::StopTask(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some("not-an-id".into()),
            reason: None,
        }),
        Command::StopTask(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some("0".repeat(32)),
            reason: None,
        }),
        Command::CreateCluster(CreateClusterRequest {
            cluster_name: Some("bad name!".into()),
            ..Default::default()
        }),
        Command::DeleteCluster(DeleteClusterRequest {
            cluster: Some("prod".into()),
        }),
        Command::RegisterTaskDefinition(RegisterTaskDefinitionRequest {
            family: Some("x".into()),
            ..Default::default()
        }),
        Command::TagResource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tags: vec![Tag {
                key: Some("aws:reserved".into()),
                value: None,
            }],
        }),
        Command::UntagResource(UntagResourceRequest {
            resource_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/ghost".into()),
            tag_keys: vec!["a".into()],
        }),
        Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
            cluster: Some("prod".into()),
            task: None,
            ..Default::default()
        }),
    ];
    for command in bad {
        let name = format!("{command:?}");
        let err = f.store.execute(&f.caller, command).unwrap_err();
        assert_ne!(err.exception(), EcsException::ServerException, "{name}: {err}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(f.store.head_seq(), head);
    assert_eq!(f.store.view_entries().unwrap(), views);
}

#[test]
fn a_store_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(
            taskledger::store::keys::META_SCHEMA_VERSION.to_vec(),
            99u32.to_be_bytes().to_vec(),
        );
        engine.apply(batch).unwrap();
        engine.sync().unwrap();
    }
    let Err(err) = Store::open(dir.path()) else {
        panic!("a newer store must be refused")
    };
    assert!(matches!(err, StoreError::NewerSchema { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_new_store_is_stamped_with_the_current_schema_version() {
    let f = fixture();
    let entries = {
        let engine = SledEngine::open(&f.dir.path().join("probe"), &SledOptions::default()).unwrap();
        taskledger::store::migrate::stored_version(&engine).unwrap()
    };
    assert_eq!(entries, 0, "an unopened directory has no stamp");
    drop(f.store);
    let engine = SledEngine::open(f.dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(
        taskledger::store::migrate::stored_version(&engine).unwrap(),
        taskledger::store::migrate::current_version()
    );
}

#[test]
fn a_torn_last_record_is_detected_on_open_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let head = {
        let store = Store::open(dir.path()).unwrap();
        let caller = taskledger::store::Caller::library(scope());
        store
            .create_cluster(
                &caller,
                CreateClusterRequest {
                    cluster_name: Some("prod".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        store.head_seq()
    };
    {
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let key = taskledger::store::keys::log(head);
        let mut torn = engine.get(&key).unwrap().unwrap();
        torn.truncate(torn.len() / 2);
        let mut batch = WriteBatch::default();
        batch.put(key, torn);
        engine.apply(batch).unwrap();
        engine.sync().unwrap();
    }
    let Err(err) = Store::open(dir.path()) else {
        panic!("a torn record must not be served")
    };
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains(&format!("log record {head}")), "{err}");
}

#[test]
fn a_version_3_store_loses_its_stored_views_on_open() {
    use taskledger::store::keys;
    // A sled layout of an older schema.
    let f = fixture_on(crate::backend::Backend::Sled);
    varied_workload(&f);
    let views = f.store.view_entries().unwrap();
    let Fixture { store, clock, dir, .. } = f;
    drop(store);
    {
        // What schema version 3 kept beside the log: view records and index entries.
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let mut batch = WriteBatch::default();
        for prefix in keys::VIEW_PREFIXES {
            for n in 0..3u8 {
                batch.put(vec![prefix, b'x', n], b"stale view".to_vec());
            }
        }
        batch.put(keys::META_SCHEMA_VERSION.to_vec(), 3u32.to_be_bytes().to_vec());
        engine.apply(batch).unwrap();
        engine.sync().unwrap();
    }
    let store = Store::open_with(dir.path(), options(&clock)).unwrap();
    assert_eq!(store.view_entries().unwrap(), views);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    drop(store);
    let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
    for prefix in keys::VIEW_PREFIXES {
        assert!(
            engine.range(&[prefix], &keys::prefix_end(&[prefix])).next().is_none(),
            "entries under {} are left",
            prefix as char
        );
    }
}
