//! Golden stores: a store written by an older taskledger, kept in `tests/golden/`, opened by this
//! one. It must migrate, verify clean, keep every log record bit for bit and describe every task
//! exactly as the binary that wrote it did.
//!
//! `tests/golden/v1/` was written at commit 99d81c8 (schema version 1: whole task records, one
//! sled value per log record) by the workload of the last test below, `varied_workload`:
//! `TASKLEDGER_WRITE_GOLDEN=$PWD/tests/golden/v1 cargo test --test it golden::the_golden_workload`
//! on a checkout of that commit with this file and `support.rs` added. `tests/golden/v3/` was
//! written the same way at commit a8cb91a (schema version 3: compact task records and every view
//! stored in sled beside a chunked log), the last layout before views moved to memory, and
//! `tests/golden/v4/` at commit 7b0b808 (schema version 4: the log alone in sled, its chunks not
//! yet compressed).

use std::path::{Path, PathBuf};

use prost::Message;
use taskledger::proto::log::LogRecord;
use taskledger::proto::v1::*;
use taskledger::store::Store;

use crate::support::*;

const CLUSTERS: [&str; 2] = ["prod", "batch"];

fn golden(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(version)
}

/// Every task of the golden clusters, as DescribeTasks (with tags) shows them, in ECS JSON.
fn described(store: &Store) -> String {
    let mut out = String::new();
    for cluster in CLUSTERS {
        let mut arns = Vec::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let listed = store
                .list_tasks(
                    &scope(),
                    &ListTasksRequest {
                        cluster: Some(cluster.into()),
                        desired_status: Some(desired as i32),
                        ..Default::default()
                    },
                )
                .unwrap();
            arns.extend(listed.task_arns);
        }
        arns.sort();
        let response = store
            .describe_tasks(
                &scope(),
                &DescribeTasksRequest {
                    cluster: Some(cluster.into()),
                    tasks: arns,
                    include: vec![TaskField::Tags as i32],
                },
            )
            .unwrap();
        out.push_str(&taskledger::ecs_json::to_string(&response));
        out.push('\n');
    }
    out
}

fn log_bytes(store: &Store) -> Vec<u8> {
    let records = store.read_log(1, usize::MAX).unwrap();
    records
        .iter()
        .flat_map(|r| r.encode_length_delimited_to_vec())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_version_1_store_opens_migrated_with_the_same_log_and_tasks() {
    opens_migrated("v1");
}

#[test]
fn a_version_3_store_opens_migrated_with_the_same_log_and_tasks() {
    opens_migrated("v3");
}

#[test]
fn a_version_4_store_opens_migrated_with_the_same_log_and_tasks() {
    opens_migrated("v4");
}

fn opens_migrated(version: &str) {
    let golden = golden(version);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("store"), dir.path());
    let store = Store::open(dir.path()).unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    let log = std::fs::read(golden.join("log.bin")).unwrap();
    assert_eq!(log_bytes(&store), log, "every log record reads back as written");
    let tasks = std::fs::read_to_string(golden.join("tasks.json")).unwrap();
    assert_eq!(
        described(&store),
        tasks,
        "every task is described as the old binary did"
    );
    // It takes writes, and a rebuild from its log gives the views it has.
    let records: Vec<LogRecord> = store.read_log(1, usize::MAX).unwrap();
    assert!(records.len() > 20);
    let caller = taskledger::store::Caller::library(scope());
    store
        .create_cluster(
            &caller,
            CreateClusterRequest {
                cluster_name: Some("after-upgrade".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let rebuilt = store.rebuild(|_, _| {}).unwrap();
    assert_eq!(
        (rebuilt.entries_written, rebuilt.entries_removed),
        (0, 0),
        "{rebuilt:?}"
    );
    // Reopened, it is the same store.
    let views = store.view_entries().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.view_entries().unwrap(), views);
}

/// Writes the golden workload with this binary into a new store, closes it and opens a copy: the
/// log and the described tasks come back as they were. With `TASKLEDGER_WRITE_GOLDEN=DIR` the
/// store, its log and its DescribeTasks output are kept in DIR, which is how a golden store is
/// made on the commit whose format it keeps.
#[test]
fn the_golden_workload_reopens_with_the_same_log_and_tasks() {
    let temp = tempfile::tempdir().unwrap();
    let out = match std::env::var_os("TASKLEDGER_WRITE_GOLDEN") {
        Some(dir) => PathBuf::from(dir),
        None => temp.path().join("golden"),
    };
    let _ = std::fs::remove_dir_all(&out);
    let clock = taskledger::store::ManualClock::new(1_700_000_000_000);
    let f = Fixture {
        store: Store::open_with(out.join("store"), options(&clock)).unwrap(),
        clock,
        caller: taskledger::store::Caller::library(scope()),
        dir: tempfile::tempdir().unwrap(),
        backend: crate::backend::Backend::Sled,
    };
    varied_workload(&f);
    let tasks = described(&f.store);
    let log = log_bytes(&f.store);
    drop(f);
    std::fs::write(out.join("tasks.json"), &tasks).unwrap();
    std::fs::write(out.join("log.bin"), &log).unwrap();
    let copy = temp.path().join("copy");
    copy_dir(&out.join("store"), &copy);
    let store = Store::open(&copy).unwrap();
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    assert_eq!(log_bytes(&store), log);
    assert_eq!(described(&store), tasks);
}
