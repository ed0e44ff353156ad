//! Stopped-task retention, as ECS does it: a STOPPED task leaves DescribeTasks and ListTasks
//! some time after it stops, through a logged `TasksExpired` event (the views stay a fold of the
//! log), while its history stays available. And the history index that serves the history of
//! tasks the views no longer hold: behind, lost or ahead of the log, it changes no answer.

use std::time::Duration;

use crate::support::*;
use taskledger::proto::log::event::Kind;
use taskledger::proto::v1::*;
use taskledger::store::{ManualClock, Store, StoreOptions};

const HOUR_MS: i64 = 3_600_000;

fn retaining(backend: &crate::backend::Backend, dir: &std::path::Path, clock: &ManualClock) -> Store {
    backend
        .open(
            dir,
            StoreOptions {
                stopped_task_retention: Some(Duration::from_secs(3600)),
                ..options(clock)
            },
        )
        .unwrap()
}

/// A fixture whose store expires STOPPED tasks an hour after they stop.
fn fixture_retaining() -> Fixture {
    let f = fixture();
    let Fixture {
        store,
        clock,
        caller,
        dir,
        backend,
    } = f;
    drop(store);
    Fixture {
        store: retaining(&backend, dir.path(), &clock),
        clock,
        caller,
        dir,
        backend,
    }
}

fn stop(f: &Fixture, arn: &str) {
    f.report("prod", arn, "PENDING").unwrap();
    f.report("prod", arn, "RUNNING").unwrap();
    f.report("prod", arn, "STOPPED").unwrap();
}

fn described(f: &Fixture, arns: &[String]) -> DescribeTasksResponse {
    f.store
        .describe_tasks(
            &f.caller.scope,
            &DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: arns.to_vec(),
                include: vec![],
            },
        )
        .unwrap()
}

fn listed(f: &Fixture, desired: DesiredStatus) -> Vec<String> {
    f.store
        .list_tasks(
            &f.caller.scope,
            &ListTasksRequest {
                cluster: Some("prod".into()),
                desired_status: Some(desired as i32),
                ..Default::default()
            },
        )
        .unwrap()
        .task_arns
}

#[test]
fn stopped_tasks_leave_the_views_an_hour_after_they_stop_through_a_logged_event() {
    let f = fixture_retaining();
    f.cluster("prod");
    f.fargate_definition("web");
    let arns: Vec<String> = f
        .run_fargate("prod", "web", 3)
        .tasks
        .into_iter()
        .map(|t| t.task_arn.unwrap())
        .collect();
    stop(&f, &arns[0]);
    f.clock.advance(HOUR_MS / 2);
    stop(&f, &arns[1]);
    let history_before = f
        .store
        .task_history(arns[0].rsplit('/').next().unwrap(), None, 100)
        .unwrap();
    assert_eq!(history_before.len(), 4);

    // Half an hour after the first stopped: nothing has been stopped an hour yet.
    assert_eq!(f.store.expire_stopped_tasks().unwrap(), 0);
    assert_eq!(described(&f, &arns).tasks.len(), 3);

    // An hour and a bit: the first goes, the second (stopped half an hour ago) stays.
    f.clock.advance(HOUR_MS / 2 + 1_000);
    assert_eq!(f.store.expire_stopped_tasks().unwrap(), 1);
    let response = described(&f, &arns);
    assert_eq!(response.tasks.len(), 2);
    assert_eq!(response.failures.len(), 1);
    assert_eq!(response.failures[0].arn.as_deref(), Some(arns[0].as_str()));
    assert_eq!(response.failures[0].reason.as_deref(), Some("MISSING"));
    assert!(!listed(&f, DesiredStatus::Stopped).contains(&arns[0]));
    assert!(listed(&f, DesiredStatus::Stopped).contains(&arns[1]));
    assert!(listed(&f, DesiredStatus::Running).contains(&arns[2]));

    // The expiry is in the log, and the history of the expired task is whole.
    let last = f.store.read_log(f.store.head_seq(), 1).unwrap().remove(0);
    match last.event.unwrap().kind.unwrap() {
        Kind::TasksExpired(expired) => {
            assert_eq!(expired.task_arns, vec![arns[0].clone()]);
            assert_eq!(expired.retention_seconds, 3600);
        }
        other => panic!("expected TasksExpired, got {other:?}"),
    }
    assert_eq!(last.cause.unwrap().caller, "retention");
    let history_after = f
        .store
        .task_history(arns[0].rsplit('/').next().unwrap(), None, 100)
        .unwrap();
    assert_eq!(history_after, history_before);
    f.verify_clean();

    // The views are a fold of the log: reopened from the log alone, it is the same.
    let views = f.store.view_entries().unwrap();
    let Fixture {
        store,
        clock,
        dir,
        backend,
        ..
    } = f;
    drop(store);
    std::fs::remove_dir_all(taskledger::store::checkpoint::directory(dir.path())).unwrap();
    let store = retaining(&backend, dir.path(), &clock);
    assert_eq!(store.view_entries().unwrap(), views);
}

#[test]
fn without_a_retention_stopped_tasks_stay() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    stop(&f, &arn);
    f.clock.advance(1000 * HOUR_MS);
    assert_eq!(f.store.expire_stopped_tasks().unwrap(), 0);
    assert_eq!(described(&f, std::slice::from_ref(&arn)).tasks.len(), 1);
}

#[test]
fn the_writer_expires_tasks_by_itself() {
    let f = fixture_retaining();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    stop(&f, &arn);
    let head = f.store.head_seq();
    f.clock.advance(2 * HOUR_MS);
    // The writer looks about once a second; wait for its event (bounded, not a timing claim).
    let moved = f.store.wait_for_head(head, Duration::from_secs(30));
    assert_eq!(moved, head + 1);
    assert_eq!(described(&f, std::slice::from_ref(&arn)).failures.len(), 1);
}

#[test]
fn a_history_index_that_is_behind_lost_or_ahead_changes_no_answer() {
    use taskledger::store::engine::{Engine, SledEngine, SledOptions, WriteBatch};
    let f = fixture_retaining();
    f.cluster("prod");
    f.fargate_definition("web");
    let arns: Vec<String> = f
        .run_fargate("prod", "web", 4)
        .tasks
        .into_iter()
        .map(|t| t.task_arn.unwrap())
        .collect();
    for arn in &arns {
        stop(&f, arn);
    }
    f.clock.advance(2 * HOUR_MS);
    assert_eq!(f.store.expire_stopped_tasks().unwrap(), 4);
    let ids: Vec<&str> = arns.iter().map(|a| a.rsplit('/').next().unwrap()).collect();
    let histories: Vec<_> = ids
        .iter()
        .map(|id| f.store.task_history(id, None, 100).unwrap())
        .collect();
    assert!(histories.iter().all(|h| h.len() == 4), "{histories:?}");
    // On etcd too: the history index is derived data on the server's own disk.
    let Fixture {
        store,
        clock,
        dir,
        backend,
        ..
    } = f;
    drop(store);
    let damage: [fn(&SledEngine); 3] = [
        // Behind: the index says it reached seq 1 only.
        |engine| {
            let mut batch = WriteBatch::default();
            batch.put(b"Phseq".to_vec(), 1u64.to_be_bytes().to_vec());
            engine.apply(batch).unwrap();
        },
        // Lost: every key gone.
        |engine| {
            let mut batch = WriteBatch::default();
            for entry in engine.range(b"P", b"Q") {
                batch.delete(entry.unwrap().0);
            }
            engine.apply(batch).unwrap();
        },
        // Ahead of the log (as after a repair cut it): rebuilt from the start.
        |engine| {
            let mut batch = WriteBatch::default();
            batch.put(b"Phseq".to_vec(), u64::MAX.to_be_bytes().to_vec());
            engine.apply(batch).unwrap();
        },
    ];
    for damage in damage {
        {
            let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
            damage(&engine);
            engine.sync().unwrap();
        }
        let store = retaining(&backend, dir.path(), &clock);
        for (id, history) in ids.iter().zip(&histories) {
            assert_eq!(&store.task_history(id, None, 100).unwrap(), history);
        }
        drop(store);
    }
}
