//! A task's history: folding the events about one task (TaskCreated, TaskChanged, TagsChanged)
//! into the task as it stood after each of them. The same rules as `evolve`, for one task only,
//! so time travel needs the task's own events and not a fold of the whole log.
//! Does not read the log; callers hand the events over in seq order.

use super::evolve::apply_task_change;
use super::tags;
use crate::proto::log::{event::Kind, LogRecord};
use crate::proto::v1::Task;

/// The task after each of its events, in order: `(record, task after it)`. Events about other
/// resources are skipped; a change before the task's creation is reported as an error.
pub fn replay_task<'a>(records: impl IntoIterator<Item = &'a LogRecord>) -> Result<Vec<(&'a LogRecord, Task)>, String> {
    let mut task: Option<Task> = None;
    let mut out = Vec::new();
    for record in records {
        let Some(kind) = record.event.as_ref().and_then(|e| e.kind.as_ref()) else {
            continue;
        };
        match kind {
            Kind::TaskCreated(created) => {
                task = created.task.clone();
            }
            Kind::TaskChanged(change) => {
                let current = task
                    .as_mut()
                    .ok_or_else(|| format!("seq {} changes a task that was never created", record.seq))?;
                apply_task_change(current, change);
            }
            Kind::TagsChanged(change) => {
                let current = task
                    .as_mut()
                    .ok_or_else(|| format!("seq {} tags a task that was never created", record.seq))?;
                let merged = tags::merge("tags", &current.tags, &change.set).unwrap_or_else(|_| {
                    let mut all = current.tags.clone();
                    all.extend(change.set.iter().cloned());
                    all
                });
                current.tags = tags::remove(&merged, &change.removed_keys);
            }
            _ => continue,
        }
        if let Some(current) = &task {
            out.push((record, current.clone()));
        }
    }
    Ok(out)
}

/// The task as it stood after every event up to and including `seq`.
pub fn task_as_of<'a>(records: impl IntoIterator<Item = &'a LogRecord>, seq: u64) -> Result<Option<Task>, String> {
    Ok(replay_task(records.into_iter().filter(|r| r.seq <= seq))?
        .pop()
        .map(|(_, task)| task))
}
