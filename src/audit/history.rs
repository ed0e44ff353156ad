//! A task's history (every event about it, with the task as it stood after each) and time
//! travel: DescribeTasks as of a seq or a time, computed from the task's own events.
//! Does not scan the whole log: the task record lists the seqs of its events.

use prost_types::Timestamp;

use crate::domain::decide::known_cluster;
use crate::domain::history::replay_task;
use crate::domain::ids::{parse_task_ref, Scope};
use crate::domain::{DomainError, EcsException};
use crate::proto::log::LogRecord;
use crate::proto::v1::{DescribeTasksRequest, DescribeTasksResponse, Failure, Task, TaskField};
use crate::store::{Store, StoreError, StoreResult};

/// One event of a task's history and the task right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub record: LogRecord,
    pub task: Task,
}

/// A point in the past.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsOf {
    /// After the event with this seq (and every earlier one).
    Seq(u64),
    /// After every event recorded at or before this time.
    Time(Timestamp),
}

/// The durable events about a task (by id or ARN, in `scope`), in seq order.
fn task_records(store: &Store, scope: &Scope, task: &str) -> StoreResult<(String, Vec<LogRecord>)> {
    let reference = parse_task_ref(scope, "task", task)?;
    let records = store.task_history(&reference.id, None, usize::MAX)?;
    let belongs = records
        .first()
        .and_then(|r| r.event.as_ref())
        .and_then(|e| match &e.kind {
            Some(crate::proto::log::event::Kind::TaskCreated(c)) => c.task.as_ref()?.task_arn.clone(),
            _ => None,
        })
        .is_some_and(|arn| {
            arn.starts_with(&format!(
                "arn:{}:ecs:{}:{}:task/",
                scope.partition(),
                scope.region(),
                scope.account()
            )) && reference
                .cluster
                .as_deref()
                .is_none_or(|c| arn.contains(&format!(":task/{c}/")))
        });
    if !belongs {
        return Err(StoreError::Rejected(
            DomainError::invalid_parameter("task", "The referenced task was not found.")
                .hint(format!("'{task}' has no history in this account and region.")),
        ));
    }
    Ok((reference.id, records))
}

/// A page of a task's history: events after seq `after`, at most `limit`, each with the task's
/// state after it.
pub fn task_history(
    store: &Store,
    scope: &Scope,
    task: &str,
    after: Option<u64>,
    limit: usize,
) -> StoreResult<Vec<HistoryEntry>> {
    let (_, records) = task_records(store, scope, task)?;
    let replayed = replay_task(&records).map_err(StoreError::Corrupt)?;
    Ok(replayed
        .into_iter()
        .filter(|(record, _)| after.is_none_or(|a| record.seq > a))
        .take(limit)
        .map(|(record, task)| HistoryEntry {
            record: record.clone(),
            task,
        })
        .collect())
}

/// DescribeTasks as the store would have answered it right after `as_of`: the same identifier
/// resolution, `MISSING` failures for tasks that did not exist yet, `include` gating.
pub fn describe_tasks_as_of(
    store: &Store,
    scope: &Scope,
    request: &DescribeTasksRequest,
    as_of: AsOf,
) -> StoreResult<DescribeTasksResponse> {
    let (cluster, _) =
        known_cluster(&*store.state(), scope, request.cluster.as_deref()).map_err(StoreError::from_read)?;
    if request.tasks.is_empty() || request.tasks.len() > crate::domain::limits::DESCRIBE_IDS_MAX {
        return Err(StoreError::Rejected(DomainError::new(
            EcsException::InvalidParameterException,
            "tasks must list 1 to 100 task ids or ARNs.",
        )));
    }
    let with_tags = request.include.contains(&(TaskField::Tags as i32));
    let mut response = DescribeTasksResponse::default();
    for (i, input) in request.tasks.iter().enumerate() {
        let reference = parse_task_ref(scope, &format!("tasks[{i}]"), input)?;
        let arn = scope.task_arn(&cluster, &reference.id);
        let records = store.task_history(&reference.id, None, usize::MAX)?;
        let bound = match as_of {
            AsOf::Seq(seq) => seq,
            AsOf::Time(time) => records
                .iter()
                .filter(|r| {
                    r.time
                        .is_some_and(|t| (t.seconds, t.nanos) <= (time.seconds, time.nanos))
                })
                .map(|r| r.seq)
                .max()
                .unwrap_or(0),
        };
        let task = crate::domain::history::task_as_of(&records, bound)
            .map_err(StoreError::Corrupt)?
            .filter(|t| t.task_arn.as_deref() == Some(arn.as_str()));
        match task {
            Some(mut task) => {
                if !with_tags {
                    task.tags.clear();
                }
                response.tasks.push(task);
            }
            None => response.failures.push(Failure {
                arn: Some(arn),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(response)
}
