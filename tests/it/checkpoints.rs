//! Checkpoints are derived data: a store opens from the newest sound one plus the log after it,
//! and one that is missing, damaged, torn, stale or left half-written by a crash never changes an
//! answer. `verify` proves checkpoint + tail == fold(whole log).

use std::path::{Path, PathBuf};

use crate::support::*;
use taskledger::store::checkpoint;
use taskledger::store::memory::ViewBatch;
use taskledger::store::{CheckpointPolicy, Store, StoreOptions};

/// A store in `dir` that checkpoints every `every` events.
fn open(dir: &Path, every: u64) -> Store {
    let clock = taskledger::store::ManualClock::new(1_700_000_000_000);
    Store::open_with(
        dir,
        StoreOptions {
            checkpoints: Some(CheckpointPolicy {
                every_events: every,
                interval: std::time::Duration::from_secs(3600),
            }),
            ..options(&clock)
        },
    )
    .unwrap()
}

/// The varied workload in a new store; returns it closed, with its views.
fn written(every: u64) -> (tempfile::TempDir, std::collections::BTreeMap<Vec<u8>, Vec<u8>>) {
    let f = fixture();
    let dir = f.dir.path().to_path_buf();
    drop(f.store);
    let store = open(&dir, every);
    let f = Fixture { store, ..f };
    varied_workload(&f);
    let views = f.store.view_entries().unwrap();
    let Fixture { store, dir, .. } = f;
    drop(store);
    (dir, views)
}

fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    checkpoint::list(dir).unwrap()
}

#[test]
fn a_closed_store_reopens_from_a_checkpoint_at_its_head() {
    let (dir, views) = written(1_000_000);
    let found = files(dir.path());
    let store = open(dir.path(), 1_000_000);
    assert_eq!(found.first().map(|(seq, _)| *seq), Some(store.head_seq()), "{found:?}");
    assert_eq!(store.view_entries().unwrap(), views);
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(!report.checkpoints.is_empty());
    assert!(report.checkpoints.iter().all(|c| c.problem.is_none()), "{report:?}");
}

#[test]
fn an_older_checkpoint_plus_the_log_after_it_gives_the_same_views() {
    let (dir, views) = written(7);
    let found = files(dir.path());
    assert_eq!(found.len(), checkpoint::KEEP, "{found:?}");
    std::fs::remove_file(&found[0].1).unwrap();
    let store = open(dir.path(), 1_000_000);
    assert!(found[1].0 < store.head_seq());
    assert_eq!(store.view_entries().unwrap(), views);
    // With every checkpoint gone, the whole log gives them too.
    drop(store);
    std::fs::remove_dir_all(checkpoint::directory(dir.path())).unwrap();
    let store = open(dir.path(), 1_000_000);
    assert_eq!(store.view_entries().unwrap(), views);
}

#[test]
fn damaged_torn_and_half_written_checkpoints_are_skipped() {
    let (dir, views) = written(7);
    let found = files(dir.path());
    // The newest: one flipped bit. The older: cut short, as by a crash while writing it.
    let mut bytes = std::fs::read(&found[0].1).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&found[0].1, &bytes).unwrap();
    let older = std::fs::read(&found[1].1).unwrap();
    std::fs::write(&found[1].1, &older[..older.len() / 3]).unwrap();
    // And a temporary file a killed checkpoint writer left.
    let leftover = checkpoint::directory(dir.path()).join(".checkpoint-00000000000000000003.bin.tmp");
    std::fs::write(&leftover, b"half a checkpoint").unwrap();
    let store = open(dir.path(), 5);
    assert_eq!(store.view_entries().unwrap(), views);
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let problems: Vec<_> = report.checkpoints.iter().filter_map(|c| c.problem.clone()).collect();
    assert_eq!(problems.len(), 2, "{report:?}");
    assert!(problems.iter().all(|p| p.starts_with("damaged")), "{problems:?}");
    // The next checkpoint written replaces them and removes the leftover.
    let caller = taskledger::store::Caller::library(scope());
    for n in 0..6 {
        store
            .create_cluster(
                &caller,
                taskledger::proto::v1::CreateClusterRequest {
                    cluster_name: Some(format!("more-{n}")),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    let head = store.head_seq();
    drop(store);
    assert_eq!(files(dir.path())[0].0, head);
    assert!(!leftover.exists());
}

#[test]
fn a_checkpoint_of_another_log_is_never_trusted() {
    // Two stores with the same number of events but different histories: a checkpoint copied
    // from one into the other names a seq whose record is not the one it was taken after.
    let (a, _) = written(1_000_000);
    // Both on sled: the checkpoint is copied between their data directories.
    let b = crate::support::fixture_on(crate::backend::Backend::Sled);
    let caller = taskledger::store::Caller::library(scope());
    let head_a = open(a.path(), 1_000_000).head_seq();
    while b.store.head_seq() < head_a {
        let n = b.store.head_seq();
        b.store
            .create_cluster(
                &caller,
                taskledger::proto::v1::CreateClusterRequest {
                    cluster_name: Some(format!("other-{n}")),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    assert_eq!(b.store.head_seq(), head_a);
    let views_b = b.store.view_entries().unwrap();
    let Fixture { store, dir: dir_b, .. } = b;
    drop(store);
    std::fs::remove_dir_all(checkpoint::directory(dir_b.path())).unwrap();
    std::fs::create_dir_all(checkpoint::directory(dir_b.path())).unwrap();
    let (_, path) = files(a.path()).remove(0);
    std::fs::copy(
        &path,
        checkpoint::directory(dir_b.path()).join(path.file_name().unwrap()),
    )
    .unwrap();
    let store = open(dir_b.path(), 1_000_000);
    assert_eq!(store.view_entries().unwrap(), views_b);
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        report.checkpoints[0].problem.as_deref().unwrap().starts_with("stale"),
        "{report:?}"
    );
}

#[test]
fn verify_proves_a_sound_checkpoint_that_disagrees_with_the_log_wrong() {
    // A checkpoint whose CRC and stamp are right but whose views are not what the log implies
    // (a bug in the binary that wrote it) is loaded, and verify names the differences.
    let (dir, _) = written(1_000_000);
    let (_, path) = files(dir.path()).remove(0);
    let (stamp, mut views) = checkpoint::read(&path).unwrap();
    let mut batch = ViewBatch::default();
    batch
        .other
        .put(taskledger::store::keys::cluster(&scope(), "prod"), b"garbage".to_vec());
    views.apply(batch, stamp.head);
    checkpoint::write(dir.path(), stamp, &views).unwrap();
    let store = open(dir.path(), 1_000_000);
    let report = store.verify(|_, _| {}).unwrap();
    assert!(!report.is_clean(), "{report:?}");
    assert_eq!(report.differences, 2, "{report:?}");
    assert!(
        report.first_differences.iter().all(|d| d.kind == "different"),
        "{report:?}"
    );
    assert!(report.checkpoints[0].problem.is_some(), "{report:?}");
    // rebuild replaces the views and checkpoints them at once.
    store.rebuild(|_, _| {}).unwrap();
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A store holding enough tasks to compress its records (`memory::Views` trains a dictionary at
/// 4,096 tasks) answers as before, checkpoints them compressed and reopens from that checkpoint,
/// from an older one, and from the log alone with the same answers.
#[test]
fn compressed_task_records_answer_as_before_through_checkpoints_and_folds() {
    let f = fixture();
    let dir = f.dir.path().to_path_buf();
    drop(f.store);
    let f = Fixture {
        store: open(&dir, 20_000),
        ..f
    };
    f.cluster("prod");
    f.fargate_definition("web");
    let mut arns = Vec::new();
    for _ in 0..450 {
        let run = f.run_fargate("prod", "web", 10);
        arns.extend(run.tasks.into_iter().filter_map(|t| t.task_arn));
    }
    for arn in arns.iter().step_by(3) {
        f.report("prod", arn, "RUNNING").unwrap();
    }
    let first = f.describe("prod", &arns[0]);
    let last = f.describe("prod", arns.last().unwrap());
    let running = f.describe("prod", &arns[4_002]);
    assert_eq!(running.last_status.as_deref(), Some("RUNNING"));
    let views = f.store.view_entries().unwrap();
    f.verify_clean();
    let f = Fixture {
        store: {
            drop(f.store);
            open(&dir, 20_000)
        },
        ..f
    };
    assert!(!files(&dir).is_empty());
    assert_eq!(f.store.view_entries().unwrap(), views);
    assert_eq!(f.describe("prod", &arns[0]), first);
    assert_eq!(f.describe("prod", arns.last().unwrap()), last);
    assert_eq!(f.describe("prod", &arns[4_002]), running);
    f.verify_clean();
    drop(f.store);
    std::fs::remove_dir_all(checkpoint::directory(&dir)).unwrap();
    let store = open(&dir, 1_000_000);
    assert_eq!(store.view_entries().unwrap(), views);
}
