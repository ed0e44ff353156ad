//! `--simulate-agent`: a built-in stand-in for the ECS container agent. It follows the log and,
//! one step per delay, moves every task it sees change along the lifecycle (PROVISIONING → PENDING
//! → RUNNING, and once desiredStatus is STOPPED: DEACTIVATING → STOPPING → DEPROVISIONING →
//! STOPPED) by submitting ordinary `SubmitTaskStateChange` commands, so each step is an event and
//! replay stays pure. Does not drive tasks whose last event was written before it started.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::operations::Operations;
use crate::domain::ids::stored_cluster_of;
use crate::domain::lifecycle::{ContainerStatus, DesiredStatus, TaskStatus};
use crate::proto::log::event::Kind;
use crate::proto::log::LogRecord;
use crate::proto::v1::*;
use crate::store::{Caller, Store, StoreError};

/// The caller name the simulated agent's events carry.
pub const CALLER_NAME: &str = "agent-simulator";
/// How long one wait for new log records lasts; bounds how long stopping the agent takes.
const POLL: Duration = Duration::from_millis(100);
/// Log records read at once.
const BATCH: usize = 256;

/// How the simulated agent behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOptions {
    /// The wait before each lifecycle step of a task.
    pub step_delay: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            step_delay: Duration::from_millis(500),
        }
    }
}

/// Tasks with a step scheduled; an event about one of them schedules nothing more, because the
/// step reads the task's state only after its delay.
type Scheduled = Arc<Mutex<HashSet<String>>>;

/// Runs the agent until `stop` completes; returns once nothing it started still runs. Steps still
/// waiting out their delay are dropped; steps already submitting finish, so no command of the
/// agent's is left in the store's queue when it returns.
pub async fn run(store: Store, options: AgentOptions, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let (stopping, stopping_seen) = watch::channel(false);
    let mut steps = Steps {
        operations: Operations::new(store.clone()),
        delay: options.step_delay,
        scheduled: Arc::default(),
        stopping: stopping_seen,
        running: JoinSet::new(),
    };
    let mut next = store.head_seq() + 1;
    let delay_ms = options.step_delay.as_millis() as u64;
    tracing::info!(step_delay_ms = delay_ms, from_seq = next, "simulated agent started");
    loop {
        let reader = store.clone();
        let mut read = tokio::task::spawn_blocking(move || {
            reader.wait_for_head(next - 1, POLL);
            reader.read_log(next, BATCH)
        });
        let records = tokio::select! {
            () = &mut stop => {
                // The read holds a store handle; wait for it so none outlives the agent.
                let _ = read.await;
                break;
            }
            read = &mut read => read,
        };
        match records {
            Ok(Ok(records)) => {
                for record in records {
                    next = record.seq + 1;
                    if let Some(task_arn) = task_to_drive(record) {
                        steps.schedule(task_arn);
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "simulated agent could not read the log; retrying");
                tokio::time::sleep(POLL).await; // back off before retrying a failed read
            }
            Err(error) => tracing::warn!(error = %error, "simulated agent's log read did not complete; retrying"),
        }
        while steps.running.try_join_next().is_some() {}
    }
    let _ = stopping.send(true);
    while steps.running.join_next().await.is_some() {}
    tracing::info!("simulated agent stopped");
}

/// The steps the agent has scheduled or is taking.
struct Steps {
    operations: Operations,
    delay: Duration,
    scheduled: Scheduled,
    stopping: watch::Receiver<bool>,
    running: JoinSet<()>,
}

impl Steps {
    /// Schedules a step for the task unless one is already waiting.
    fn schedule(&mut self, task_arn: String) {
        let newly = self
            .scheduled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(task_arn.clone());
        if newly {
            let scheduled = Arc::clone(&self.scheduled);
            let stopping = self.stopping.clone();
            self.running
                .spawn(step(self.operations.clone(), task_arn, self.delay, scheduled, stopping));
        }
    }
}

/// The task an event may give the agent something to do for: a new task, or a change to one that
/// is not STOPPED yet.
fn task_to_drive(record: LogRecord) -> Option<String> {
    match record.event?.kind? {
        Kind::TaskCreated(created) => created.task?.task_arn,
        Kind::TaskChanged(changed) if changed.last_status.as_deref() != Some(TaskStatus::Stopped.as_str()) => {
            Some(changed.task_arn)
        }
        _ => None,
    }
}

/// The next lifecycle step toward the desired status, if any is left.
fn next_status(last: TaskStatus, desired: DesiredStatus) -> Option<TaskStatus> {
    match (desired, last) {
        (DesiredStatus::Running, TaskStatus::Provisioning) => Some(TaskStatus::Pending),
        (DesiredStatus::Running, TaskStatus::Pending | TaskStatus::Activating) => Some(TaskStatus::Running),
        (
            DesiredStatus::Running,
            TaskStatus::Running
            | TaskStatus::Deactivating
            | TaskStatus::Stopping
            | TaskStatus::Deprovisioning
            | TaskStatus::Stopped,
        ) => None,
        (
            DesiredStatus::Stopped,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating | TaskStatus::Running,
        ) => Some(TaskStatus::Deactivating),
        (DesiredStatus::Stopped, TaskStatus::Deactivating) => Some(TaskStatus::Stopping),
        (DesiredStatus::Stopped, TaskStatus::Stopping) => Some(TaskStatus::Deprovisioning),
        (DesiredStatus::Stopped, TaskStatus::Deprovisioning) => Some(TaskStatus::Stopped),
        (DesiredStatus::Stopped, TaskStatus::Stopped) => None,
    }
}

/// After the delay, reads the task and submits its next step (with its containers RUNNING when
/// the task starts running). Rejections, e.g. a task stopped meanwhile, are skipped. Stopping the
/// agent cancels the delay, never a submission under way.
async fn step(
    operations: Operations,
    task_arn: String,
    delay: Duration,
    scheduled: Scheduled,
    mut stopping: watch::Receiver<bool>,
) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {} // the simulated step delay
        _ = stopping.wait_for(|stopping| *stopping) => return,
    }
    scheduled
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&task_arn);
    let Some((scope, cluster)) = stored_cluster_of(&task_arn) else {
        tracing::warn!(task = %task_arn, "simulated agent skips a task whose ARN it cannot read");
        return;
    };
    let caller = Caller {
        scope,
        request_id: uuid::Uuid::new_v4().to_string(),
        name: CALLER_NAME.to_string(),
        trace_id: String::new(),
        identity: String::new(),
        principal: String::new(),
    };
    let describe = DescribeTasksRequest {
        cluster: Some(cluster.clone()),
        tasks: vec![task_arn.clone()],
        include: vec![],
    };
    let task = match operations.describe_tasks(&caller, describe).await {
        Ok(response) => response.tasks.into_iter().next(),
        Err(error) => return skipped(&task_arn, &error),
    };
    let Some(task) = task else {
        tracing::debug!(task = %task_arn, "simulated agent skips a task it cannot find");
        return;
    };
    let last = TaskStatus::of(task.last_status.as_deref());
    let Some(status) = next_status(last, DesiredStatus::of(task.desired_status.as_deref())) else {
        return;
    };
    let containers = if status == TaskStatus::Running {
        task.containers
            .iter()
            .filter(|c| ContainerStatus::of(c.last_status.as_deref()) == ContainerStatus::Pending)
            .map(|c| ContainerStateChange {
                container_name: c.name.clone(),
                status: Some(ContainerStatus::Running.as_str().to_string()),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    let report = SubmitTaskStateChangeRequest {
        cluster: Some(cluster),
        task: Some(task_arn.clone()),
        status: Some(status.as_str().to_string()),
        containers,
        ..Default::default()
    };
    match operations.submit_task_state_change(&caller, report).await {
        Ok(_) => {
            tracing::debug!(task = %task_arn, from = last.as_str(), to = status.as_str(), "simulated agent moved a task")
        }
        Err(error) => skipped(&task_arn, &error),
    }
}

fn skipped(task_arn: &str, error: &StoreError) {
    match error {
        StoreError::Rejected(rejection) => {
            tracing::debug!(task = %task_arn, exception = rejection.exception.name(), "simulated agent skipped a step: {rejection}")
        }
        other => tracing::warn!(task = %task_arn, error = %other, "simulated agent could not submit a step"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_lead_to_running_then_through_every_stopping_status() {
        let walk = |mut status: TaskStatus, desired: DesiredStatus| {
            let mut seen = vec![status];
            while let Some(next) = next_status(status, desired) {
                status = next;
                seen.push(status);
            }
            seen.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(
            walk(TaskStatus::Provisioning, DesiredStatus::Running),
            "PROVISIONING PENDING RUNNING"
        );
        assert_eq!(walk(TaskStatus::Pending, DesiredStatus::Running), "PENDING RUNNING");
        assert_eq!(
            walk(TaskStatus::Running, DesiredStatus::Stopped),
            "RUNNING DEACTIVATING STOPPING DEPROVISIONING STOPPED"
        );
        assert_eq!(
            walk(TaskStatus::Stopping, DesiredStatus::Stopped),
            "STOPPING DEPROVISIONING STOPPED"
        );
    }
}
