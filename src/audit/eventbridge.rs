//! The EventBridge "ECS Task State Change" event (ECS_SEMANTICS §13) for the log's task state
//! changes: the envelope, and `detail` = the task as DescribeTasks would show it after the event,
//! with ISO-8601 millisecond times, `updatedAt`, its `version`, and no tags.
//! Does not deliver events anywhere; readers of the log ask for this rendering.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::domain::history::replay_task;
use crate::domain::ids::split_stored_arn;
use crate::ecs_json::{iso8601_millis, to_value, TimeStyle, WriteOptions};
use crate::proto::log::{event::Kind, LogRecord};
use crate::proto::v1::Task;
use crate::store::{Store, StoreError, StoreResult};

/// Whether an event is one that ECS announces as a task state change (it bumps `version`).
pub fn is_task_state_change(record: &LogRecord) -> bool {
    matches!(
        record.event.as_ref().and_then(|e| e.kind.as_ref()),
        Some(Kind::TaskCreated(_) | Kind::TaskChanged(_))
    )
}

/// The event for a task state change, given the task as it stood right after it.
pub fn task_state_change(record: &LogRecord, task: &Task) -> Value {
    let task_arn = task.task_arn.clone().unwrap_or_default();
    let (region, account) = split_stored_arn(&task_arn)
        .map(|(scope, _)| (scope.region().to_string(), scope.account().to_string()))
        .unwrap_or_default();
    let time = record.time.unwrap_or_default();
    let mut detail_task = task.clone();
    detail_task.tags.clear();
    let mut detail = to_value(
        &detail_task,
        &WriteOptions {
            time_style: TimeStyle::Iso8601Millis,
            emit_empty_lists: false,
        },
    );
    if let Value::Object(members) = &mut detail {
        members.insert(
            "updatedAt".into(),
            Value::String(iso8601_millis(time.seconds, time.nanos)),
        );
        members.insert("version".into(), json!(task.version.unwrap_or(0)));
    }
    let mut seconds = iso8601_millis(time.seconds, 0);
    seconds.truncate(seconds.len() - 5);
    seconds.push('Z');
    json!({
        "version": "0",
        "id": event_id(&task_arn, task.version.unwrap_or(0)),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": seconds,
        "region": region,
        "resources": [task_arn],
        "detail": detail,
    })
}

/// A stable UUID for (task, version): re-rendering the same change gives the same id, so
/// consumers can drop duplicates.
fn event_id(task_arn: &str, version: i64) -> String {
    let digest = Sha256::digest(format!("{task_arn}#{version}"));
    let mut b: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Renders the task state changes among `records` (others give `None`), reading each task's
/// history to know its state after the event.
pub fn render(store: &Store, records: &[LogRecord]) -> StoreResult<Vec<Option<Value>>> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        if !is_task_state_change(record) {
            out.push(None);
            continue;
        }
        let task_id = record
            .event
            .as_ref()
            .and_then(crate::domain::command::event_task_id)
            .unwrap_or_default();
        let history = store.task_history(task_id, None, usize::MAX)?;
        let replayed = replay_task(history.iter().filter(|r| r.seq <= record.seq)).map_err(StoreError::Corrupt)?;
        let task = replayed
            .last()
            .map(|(_, task)| task)
            .ok_or_else(|| StoreError::Corrupt(format!("seq {} names a task without history", record.seq)))?;
        out.push(Some(task_state_change(record, task)));
    }
    Ok(out)
}
