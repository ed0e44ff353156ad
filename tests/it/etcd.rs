//! The log on etcd (`--features etcd`), against a real etcd: a store is its log alone (a new
//! server with an empty data directory folds the same views), groups larger than one etcd
//! request are split into several appends, and two servers on one prefix never both append
//! from the same head. The rest of the suite runs on etcd with `TASKLEDGER_TEST_ENGINE=etcd`.

use taskledger::domain::Command;
use taskledger::proto::v1::*;
use taskledger::store::{Store, StoreError};

use crate::backend::Backend;
use crate::log_check::LogIndex;
use crate::support::{fargate_run, fixture_on, options, varied_workload};

#[test]
fn a_store_on_etcd_is_its_log_a_new_server_folds_the_same_views() {
    let f = fixture_on(Backend::etcd());
    varied_workload(&f);
    let entries = f.store.view_entries().unwrap();
    let head = f.store.head_seq();
    assert!(head > 10, "the workload wrote {head} records");
    let elsewhere = tempfile::tempdir().unwrap();
    let backend = f.backend.clone();
    let clock = f.clock.clone();
    drop(f.store);
    // Another machine: nothing on its disk, everything from etcd.
    let store = backend.open(elsewhere.path(), options(&clock)).unwrap();
    assert_eq!(store.head_seq(), head);
    assert_eq!(store.view_entries().unwrap(), entries);
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    LogIndex::read(&store, "etcd");
}

#[test]
fn groups_larger_than_one_etcd_request_are_split_and_every_command_lands() {
    let f = fixture_on(Backend::etcd());
    f.cluster("big");
    f.fargate_definition("web");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // 400 RunTasks of 10 in flight at once: ~4,000 records, several MiB, queued together so
    // the writer's groups would pass etcd's 1.5 MiB request limit if they were not split.
    let launched: usize = runtime.block_on(async {
        let calls = (0..400).map(|_| {
            let store = f.store.clone();
            let caller = f.caller.clone();
            tokio::spawn(async move {
                store
                    .execute_async(&caller, Command::RunTask(fargate_run("big", "web", 10)))
                    .await
            })
        });
        let mut launched = 0;
        for call in calls.collect::<Vec<_>>() {
            let executed = call.await.unwrap().expect("every RunTask is committed");
            launched += executed.seqs.map_or(0, |seqs| seqs.count());
        }
        launched
    });
    assert_eq!(launched, 4_000);
    let stats = f.store.stats();
    let groups = stats.groups.load(std::sync::atomic::Ordering::Relaxed);
    assert!(groups > 1, "{groups} groups");
    let report = f.store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    LogIndex::read(&f.store, "etcd");
}

#[test]
fn a_second_server_on_the_same_prefix_never_appends_from_a_stale_head() {
    let first = fixture_on(Backend::etcd());
    first.cluster("shared");
    let elsewhere = tempfile::tempdir().unwrap();
    let second: Store = first.backend.open(elsewhere.path(), options(&first.clock)).unwrap();
    // The first server writes after the second has read the log ...
    first.cluster("from-first");
    // ... so the second's next append is fenced: refused, with nothing written.
    let head = first.store.head_seq();
    let refused = second.create_cluster(
        &first.caller,
        CreateClusterRequest {
            cluster_name: Some("from-second".into()),
            ..Default::default()
        },
    );
    match refused {
        Err(StoreError::Storage { .. }) | Err(StoreError::WritesRefused(_)) => {}
        other => panic!("the stale server appended or answered otherwise: {other:?}"),
    }
    drop(second);
    drop(first.store);
    let reader = tempfile::tempdir().unwrap();
    let store = first.backend.open(reader.path(), options(&first.clock)).unwrap();
    assert_eq!(store.head_seq(), head, "the fenced append wrote nothing");
    LogIndex::read(&store, "etcd");
}
