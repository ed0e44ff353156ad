//! Lifecycle conformance: the version sequence measured on real Fargate, and the rules of
//! ECS_SEMANTICS §8 (forward only, STOPPED terminal, no-op repeats).

use crate::support::*;
use taskledger::domain::EcsException;
use taskledger::proto::v1::*;

#[test]
fn fargate_lifecycle_versions_match_what_real_fargate_reports() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let task = f.run_fargate("prod", "web", 1).tasks.remove(0);
    let arn = task.task_arn.clone().unwrap();
    assert_eq!(
        (task.version, task.last_status.as_deref()),
        (Some(1), Some("PROVISIONING"))
    );
    f.report("prod", &arn, "PENDING").unwrap();
    assert_eq!(f.describe("prod", &arn).version, Some(2));
    f.report("prod", &arn, "RUNNING").unwrap();
    let running = f.describe("prod", &arn);
    assert_eq!(
        (running.version, running.last_status.as_deref()),
        (Some(3), Some("RUNNING"))
    );
    assert!(running.started_at.is_some());
    let stopped = f
        .store
        .stop_task(
            &f.caller,
            StopTaskRequest {
                cluster: Some("prod".into()),
                task: Some(arn.clone()),
                reason: Some("done".into()),
            },
        )
        .unwrap()
        .task
        .unwrap();
    assert_eq!(
        (
            stopped.version,
            stopped.last_status.as_deref(),
            stopped.desired_status.as_deref()
        ),
        (Some(4), Some("RUNNING"), Some("STOPPED"))
    );
    assert_eq!(stopped.stop_code, Some(TaskStopCode::UserInitiated as i32));
    f.report("prod", &arn, "DEPROVISIONING").unwrap();
    assert_eq!(f.describe("prod", &arn).version, Some(5));
    f.report("prod", &arn, "STOPPED").unwrap();
    let done = f.describe("prod", &arn);
    assert_eq!((done.version, done.last_status.as_deref()), (Some(6), Some("STOPPED")));
    assert_eq!(done.stopped_reason.as_deref(), Some("done"));
    assert!(done.stopped_at.is_some() && done.stopping_at.is_some());
    f.verify_clean();
}

#[test]
fn backward_moves_and_changes_after_stopped_are_rejected() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    f.report("prod", &arn, "RUNNING").unwrap();
    let head = f.store.head_seq();
    let err = f.report("prod", &arn, "PENDING").unwrap_err();
    assert_eq!(err.exception(), EcsException::InvalidParameterException);
    assert_eq!(f.store.head_seq(), head);
    f.report("prod", &arn, "STOPPED").unwrap();
    let err = f.report("prod", &arn, "RUNNING").unwrap_err();
    assert_eq!(err.exception(), EcsException::InvalidParameterException);
    assert!(err.to_string().contains("STOPPED"), "{err}");
}

#[test]
fn a_repeated_report_without_new_data_appends_nothing() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    f.report("prod", &arn, "RUNNING").unwrap();
    let head = f.store.head_seq();
    f.report("prod", &arn, "RUNNING").unwrap();
    assert_eq!(f.store.head_seq(), head);
    // PROVISIONING (1) -> RUNNING (2): skipping forward is one change.
    assert_eq!(f.describe("prod", &arn).version, Some(2));
}
