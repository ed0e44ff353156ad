//! Deciding changes to existing tasks: StopTask, and the agent's SubmitTaskStateChange and
//! SubmitContainerStateChange, under the lifecycle rules of ECS_SEMANTICS §8 (forward only,
//! STOPPED terminal, repeats without new data are no-ops, derived stopCode and timestamps).
//! Does not create tasks (see `launch`).

use prost_types::Timestamp;

use super::{active_cluster, check_length, missing, task_in_cluster};
use crate::domain::command::{event, CommandContext, Decision, ExpireTasks, Reply};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::evolve::apply_task_change;
use crate::domain::ids::{parse_attachment_ref, printable, stored_id_of, task_id_of_attachment};
use crate::domain::lifecycle::{ContainerStatus, DesiredStatus, TaskStatus};
use crate::domain::limits::{ATTACHMENT_REPORTS_MAX, CONTAINER_REASON_MAX, FREE_TEXT_MAX, STOPPED_REASON_MAX};
use crate::domain::state::StateView;
use crate::proto::log::event::Kind;
use crate::proto::log::{AttachmentChange, ContainerChange, ManagedAgents, NetworkBindings, TaskChanged, TasksExpired};
use crate::proto::v1::*;

const ACK: &str = "ACK";

pub(super) fn stop_task(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &StopTaskRequest,
) -> DomainResult<Decision> {
    let input = request
        .task
        .as_deref()
        .ok_or_else(|| missing("task", "name the task to stop by id or ARN."))?;
    check_length("reason", request.reason.as_deref(), STOPPED_REASON_MAX)?;
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let record = existing_task(state, ctx, &cluster, input)?;
    let mut task = record.task.unwrap_or_default();
    let already_stopping = DesiredStatus::of(task.desired_status.as_deref()) == DesiredStatus::Stopped
        || TaskStatus::of(task.last_status.as_deref()) == TaskStatus::Stopped;
    if already_stopping {
        return Ok(Decision {
            events: vec![],
            reply: Reply::StopTask(StopTaskResponse { task: Some(task) }),
        });
    }
    let change = TaskChanged {
        task_arn: task.task_arn.clone().unwrap_or_default(),
        version: task.version.unwrap_or(0) + 1,
        desired_status: Some(DesiredStatus::Stopped.as_str().to_string()),
        stop_code: task.stop_code.is_none().then_some(TaskStopCode::UserInitiated as i32),
        stopped_reason: if task.stopped_reason.is_none() {
            request.reason.clone()
        } else {
            None
        },
        tags_cleared: !task.tags.is_empty(),
        ..Default::default()
    };
    apply_task_change(&mut task, &change);
    Ok(Decision {
        events: vec![event(Kind::TaskChanged(change))],
        reply: Reply::StopTask(StopTaskResponse { task: Some(task) }),
    })
}

pub(super) fn submit_task_state_change(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &SubmitTaskStateChangeRequest,
) -> DomainResult<Decision> {
    let input = request
        .task
        .as_deref()
        .ok_or_else(|| missing("task", "name the task the report is about."))?;
    check_length("reason", request.reason.as_deref(), FREE_TEXT_MAX)?;
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let task = find_task(state, ctx, &cluster, input)?;
    let mut change = blank_change(&task);

    let current = TaskStatus::of(task.last_status.as_deref());
    let desired = DesiredStatus::of(task.desired_status.as_deref());
    let target = match request.status.as_deref() {
        None | Some("") => current,
        Some(text) => TaskStatus::parse("status", text)?,
    };
    if target < current {
        return Err(DomainError::invalid_parameter(
            "status",
            format!(
                "Task {} is {}; it cannot move back to {}. Task status only moves forward.",
                short_id(&task),
                current.as_str(),
                target.as_str()
            ),
        ));
    }
    if desired == DesiredStatus::Stopped
        && matches!(target, TaskStatus::Activating | TaskStatus::Running)
        && target > current
    {
        return Err(DomainError::invalid_parameter(
            "status",
            format!(
                "Task {} has desiredStatus STOPPED; it cannot move to {}.",
                short_id(&task),
                target.as_str()
            ),
        ));
    }
    let now = ctx.now;
    if target > current {
        change.last_status = Some(target.as_str().to_string());
        if target == TaskStatus::Running && task.started_at.is_none() {
            change.started_at = Some(now);
        }
        if (target.is_stopping_phase() || target == TaskStatus::Stopped) && task.stopping_at.is_none() {
            change.stopping_at = Some(now);
        }
        if target == TaskStatus::Stopped {
            change.stopped_at = Some(now);
            if desired == DesiredStatus::Running {
                change.desired_status = Some(DesiredStatus::Stopped.as_str().to_string());
            }
            if task.stop_code.is_none() {
                let never_ran = task.started_at.is_none() && change.started_at.is_none();
                let code = if never_ran {
                    TaskStopCode::TaskFailedToStart
                } else {
                    TaskStopCode::EssentialContainerExited
                };
                change.stop_code = Some(code as i32);
                if task.stopped_reason.is_none() {
                    change.stopped_reason = request.reason.clone().filter(|r| !r.is_empty()).or_else(|| {
                        (code == TaskStopCode::EssentialContainerExited)
                            .then(|| "Essential container in task exited".to_string())
                    });
                }
            }
        }
    }
    set_if_new(
        &mut change.pull_started_at,
        &task.pull_started_at,
        request.pull_started_at,
    );
    set_if_new(
        &mut change.pull_stopped_at,
        &task.pull_stopped_at,
        request.pull_stopped_at,
    );
    set_if_new(
        &mut change.execution_stopped_at,
        &task.execution_stopped_at,
        request.execution_stopped_at,
    );

    for (i, report) in request.containers.iter().enumerate() {
        let field = format!("containers[{i}]");
        let name = report
            .container_name
            .as_deref()
            .ok_or_else(|| missing(&format!("{field}.containerName"), "name the container."))?;
        let update = ContainerUpdate {
            status: report.status.as_deref(),
            exit_code: report.exit_code,
            reason: report.reason.as_deref(),
            image_digest: report.image_digest.as_deref(),
            runtime_id: report.runtime_id.as_deref(),
            network_bindings: (!report.network_bindings.is_empty()).then_some(&report.network_bindings[..]),
        };
        container_change(&task, &mut change, &field, name, update)?;
    }
    for (i, report) in request.managed_agents.iter().enumerate() {
        managed_agent_change(&task, &mut change, i, report, now)?;
    }
    for (i, report) in request.attachments.iter().enumerate() {
        let field = format!("attachments[{i}]");
        let (arn, status) = attachment_report(&field, report)?;
        let id = stored_id_of(arn);
        let attachment = task
            .attachments
            .iter()
            .find(|a| a.id.as_deref() == Some(id))
            .ok_or_else(|| {
                DomainError::invalid_parameter(
                    format!("{field}.attachmentArn"),
                    format!("Task {} has no attachment '{}'.", short_id(&task), printable(arn)),
                )
            })?;
        if attachment.status.as_deref() != Some(status) {
            change.attachments.push(AttachmentChange {
                attachment_arn: arn.to_string(),
                status: status.to_string(),
            });
        }
    }
    if target == TaskStatus::Stopped && target > current {
        // A stopped task's containers are stopped, whether or not the agent said so.
        for container in &task.containers {
            let name = container.name.clone().unwrap_or_default();
            let reported = change
                .containers
                .iter()
                .any(|c| c.name == name && c.last_status.is_some());
            if !reported && ContainerStatus::of(container.last_status.as_deref()) != ContainerStatus::Stopped {
                entry(&mut change, &name).last_status = Some(ContainerStatus::Stopped.as_str().to_string());
            }
        }
    }
    decided(
        change,
        Reply::SubmitTaskStateChange(SubmitTaskStateChangeResponse {
            acknowledgment: Some(ACK.into()),
        }),
    )
}

pub(super) fn submit_container_state_change(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &SubmitContainerStateChangeRequest,
) -> DomainResult<Decision> {
    let input = request
        .task
        .as_deref()
        .ok_or_else(|| missing("task", "name the task the report is about."))?;
    let name = request
        .container_name
        .as_deref()
        .ok_or_else(|| missing("containerName", "name the container."))?;
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let task = find_task(state, ctx, &cluster, input)?;
    let mut change = blank_change(&task);
    let update = ContainerUpdate {
        status: request.status.as_deref(),
        exit_code: request.exit_code,
        reason: request.reason.as_deref(),
        image_digest: None,
        runtime_id: request.runtime_id.as_deref(),
        network_bindings: (!request.network_bindings.is_empty()).then_some(&request.network_bindings[..]),
    };
    container_change(&task, &mut change, "containerName", name, update)?;
    decided(
        change,
        Reply::SubmitContainerStateChange(SubmitContainerStateChangeResponse {
            acknowledgment: Some(ACK.into()),
        }),
    )
}

/// A task of the cluster, or the error ECS gives for one that is not.
fn existing_task(
    state: &impl StateView,
    ctx: &CommandContext,
    cluster: &str,
    input: &str,
) -> DomainResult<crate::proto::state::TaskRecord> {
    task_in_cluster(state, &ctx.scope, cluster, "task", input)?.ok_or_else(|| {
        DomainError::invalid_parameter("task", "The referenced task was not found.")
            .hint(format!("'{}' is not a task of cluster '{cluster}'.", printable(input)))
    })
}

/// A task of the cluster that can still change (not STOPPED).
fn find_task(state: &impl StateView, ctx: &CommandContext, cluster: &str, input: &str) -> DomainResult<Task> {
    let record = existing_task(state, ctx, cluster, input)?;
    let task = record.task.unwrap_or_default();
    if TaskStatus::of(task.last_status.as_deref()) == TaskStatus::Stopped {
        return Err(DomainError::invalid_parameter(
            "task",
            format!(
                "Task {} is STOPPED; a stopped task takes no further state changes.",
                short_id(&task)
            ),
        ));
    }
    Ok(task)
}

fn blank_change(task: &Task) -> TaskChanged {
    TaskChanged {
        task_arn: task.task_arn.clone().unwrap_or_default(),
        version: task.version.unwrap_or(0) + 1,
        ..Default::default()
    }
}

/// One event when something changed; an acknowledged no-op when the report brought nothing new.
fn decided(change: TaskChanged, reply: Reply) -> DomainResult<Decision> {
    let empty = TaskChanged {
        task_arn: change.task_arn.clone(),
        version: change.version,
        ..Default::default()
    };
    if change == empty {
        return Ok(Decision { events: vec![], reply });
    }
    Ok(Decision {
        events: vec![event(Kind::TaskChanged(change))],
        reply,
    })
}

/// SubmitAttachmentStateChanges: the agent reports the status of task network-interface
/// attachments by ARN alone. An attachment's id is its task's id in UUID form
/// (`ids::attachment_id_of_task`), so each report finds its task directly; one `TaskChanged` per
/// task whose attachments change. The reports are checked whole before the cluster is looked up;
/// an attachment that is not a live task's of this cluster is InvalidParameterException.
pub(super) fn submit_attachment_state_changes(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &SubmitAttachmentStateChangesRequest,
) -> DomainResult<Decision> {
    if request.attachments.is_empty() {
        return Err(missing("attachments", "report at least one attachment."));
    }
    if request.attachments.len() > ATTACHMENT_REPORTS_MAX {
        return Err(DomainError::invalid_parameter(
            "attachments",
            format!(
                "attachments can have at most {ATTACHMENT_REPORTS_MAX} items; got {}.",
                request.attachments.len()
            ),
        ));
    }
    let mut reports = Vec::with_capacity(request.attachments.len());
    for (i, report) in request.attachments.iter().enumerate() {
        let field = format!("attachments[{i}]");
        let (arn, status) = attachment_report(&field, report)?;
        let id = parse_attachment_ref(&ctx.scope, &format!("{field}.attachmentArn"), arn)?;
        reports.push((field, arn, id, status));
    }
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let mut changes: Vec<(Task, TaskChanged)> = Vec::new();
    for (field, arn, id, status) in reports {
        let unknown = || {
            DomainError::invalid_parameter(format!("{field}.attachmentArn"), "Attachment not found.").hint(format!(
                "'{}' is not an attachment of a task of cluster '{cluster}' that has not stopped.",
                printable(arn)
            ))
        };
        let task_id = task_id_of_attachment(id).ok_or_else(unknown)?;
        let i = match changes.iter().position(|(t, _)| short_id(t) == task_id) {
            Some(i) => i,
            None => {
                let task = task_in_cluster(state, &ctx.scope, &cluster, &field, &task_id)?
                    .and_then(|r| r.task)
                    .filter(|t| TaskStatus::of(t.last_status.as_deref()) != TaskStatus::Stopped)
                    .ok_or_else(unknown)?;
                let change = blank_change(&task);
                changes.push((task, change));
                changes.len() - 1
            }
        };
        let (task, change) = &mut changes[i];
        let current = task
            .attachments
            .iter()
            .find(|a| a.id.as_deref() == Some(id))
            .ok_or_else(unknown)?;
        change.attachments.retain(|a| stored_id_of(&a.attachment_arn) != id);
        if current.status.as_deref() != Some(status) {
            change.attachments.push(AttachmentChange {
                attachment_arn: arn.to_string(),
                status: status.to_string(),
            });
        }
    }
    Ok(Decision {
        events: changes
            .into_iter()
            .filter(|(_, change)| !change.attachments.is_empty())
            .map(|(_, change)| event(Kind::TaskChanged(change)))
            .collect(),
        reply: Reply::SubmitAttachmentStateChanges(SubmitAttachmentStateChangesResponse {
            acknowledgment: Some(ACK.into()),
        }),
    })
}

/// The ARN and status of one reported attachment, both required; the status at most 64
/// characters.
fn attachment_report<'a>(field: &str, report: &'a AttachmentStateChange) -> DomainResult<(&'a str, &'a str)> {
    let arn = report
        .attachment_arn
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.attachmentArn"), "name the attachment."))?;
    let status = report
        .status
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.status"), "give the attachment's status."))?;
    check_length(&format!("{field}.status"), Some(status), 64)?;
    Ok((arn, status))
}

fn short_id(task: &Task) -> &str {
    stored_id_of(task.task_arn.as_deref().unwrap_or_default())
}

fn set_if_new(target: &mut Option<Timestamp>, current: &Option<Timestamp>, reported: Option<Timestamp>) {
    if let Some(time) = reported {
        if current.as_ref() != Some(&time) {
            *target = Some(time);
        }
    }
}

fn entry<'a>(change: &'a mut TaskChanged, name: &str) -> &'a mut ContainerChange {
    if let Some(i) = change.containers.iter().position(|c| c.name == name) {
        return &mut change.containers[i];
    }
    change.containers.push(ContainerChange {
        name: name.to_string(),
        ..Default::default()
    });
    change.containers.last_mut().expect("just pushed")
}

/// What an agent reports about one container.
struct ContainerUpdate<'a> {
    status: Option<&'a str>,
    exit_code: Option<i32>,
    reason: Option<&'a str>,
    image_digest: Option<&'a str>,
    runtime_id: Option<&'a str>,
    network_bindings: Option<&'a [NetworkBinding]>,
}

fn container_change(
    task: &Task,
    change: &mut TaskChanged,
    field: &str,
    name: &str,
    update: ContainerUpdate,
) -> DomainResult<()> {
    let container = task
        .containers
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
        .ok_or_else(|| {
            DomainError::invalid_parameter(
                field,
                format!("Task {} has no container named '{}'.", short_id(task), printable(name)),
            )
        })?;
    let mut delta = ContainerChange {
        name: name.to_string(),
        ..Default::default()
    };
    if let Some(text) = update.status.filter(|s| !s.is_empty()) {
        let reported = ContainerStatus::parse(&format!("{field}.status"), text)?;
        let current = ContainerStatus::of(container.last_status.as_deref());
        if reported < current {
            return Err(DomainError::invalid_parameter(
                format!("{field}.status"),
                format!(
                    "Container '{}' is {}; it cannot move back to {}.",
                    printable(name),
                    current.as_str(),
                    reported.as_str()
                ),
            ));
        }
        if reported > current {
            delta.last_status = Some(reported.as_str().to_string());
        }
    }
    if update.exit_code.is_some() && update.exit_code != container.exit_code {
        delta.exit_code = update.exit_code;
    }
    if let Some(reason) = update.reason.filter(|r| !r.is_empty()) {
        let reason: String = reason.chars().take(CONTAINER_REASON_MAX).collect();
        if container.reason.as_deref() != Some(reason.as_str()) {
            delta.reason = Some(reason);
        }
    }
    for (value, current, what) in [
        (update.image_digest, container.image_digest.as_deref(), "imageDigest"),
        (update.runtime_id, container.runtime_id.as_deref(), "runtimeId"),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            check_length(&format!("{field}.{what}"), Some(value), 255)?;
            if current != Some(value) {
                if what == "imageDigest" {
                    delta.image_digest = Some(value.to_string());
                } else {
                    delta.runtime_id = Some(value.to_string());
                }
            }
        }
    }
    if let Some(bindings) = update.network_bindings {
        for (i, binding) in bindings.iter().enumerate() {
            for (port, what) in [
                (binding.container_port, "containerPort"),
                (binding.host_port, "hostPort"),
            ] {
                if port.is_some_and(|p| !(0..=65535).contains(&p)) {
                    return Err(DomainError::invalid_parameter(
                        format!("{field}.networkBindings[{i}].{what}"),
                        "Ports are numbers from 0 to 65535.",
                    ));
                }
            }
        }
        if container.network_bindings != bindings {
            delta.network_bindings = Some(NetworkBindings {
                items: bindings.to_vec(),
            });
        }
    }
    let empty = ContainerChange {
        name: name.to_string(),
        ..Default::default()
    };
    if delta != empty {
        let slot = entry(change, name);
        if delta.last_status.is_some() {
            slot.last_status = delta.last_status;
        }
        slot.exit_code = delta.exit_code.or(slot.exit_code);
        slot.reason = delta.reason.or(slot.reason.take());
        slot.image_digest = delta.image_digest.or(slot.image_digest.take());
        slot.runtime_id = delta.runtime_id.or(slot.runtime_id.take());
        slot.network_bindings = delta.network_bindings.or(slot.network_bindings.take());
    }
    Ok(())
}

fn managed_agent_change(
    task: &Task,
    change: &mut TaskChanged,
    i: usize,
    report: &ManagedAgentStateChange,
    now: Timestamp,
) -> DomainResult<()> {
    let field = format!("managedAgents[{i}]");
    let name = report
        .container_name
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.containerName"), "name the container."))?;
    let agent_name = report
        .managed_agent_name
        .ok_or_else(|| missing(&format!("{field}.managedAgentName"), "use ExecuteCommandAgent."))?;
    let status = report
        .status
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.status"), "give the agent's status."))?;
    check_length(&format!("{field}.status"), Some(status), 64)?;
    let container = task
        .containers
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
        .ok_or_else(|| {
            DomainError::invalid_parameter(
                format!("{field}.containerName"),
                format!("Task {} has no container named '{}'.", short_id(task), printable(name)),
            )
        })?;
    let pending = change
        .containers
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.managed_agents.clone());
    let mut agents = pending
        .map(|a| a.items)
        .unwrap_or_else(|| container.managed_agents.clone());
    let reason: Option<String> = report
        .reason
        .as_ref()
        .map(|r| r.chars().take(CONTAINER_REASON_MAX).collect());
    let position = agents.iter().position(|a| a.name == Some(agent_name));
    let unchanged =
        position.is_some_and(|p| agents[p].last_status.as_deref() == Some(status) && agents[p].reason == reason);
    if unchanged {
        return Ok(());
    }
    let started = (status == "RUNNING").then_some(now);
    match position {
        Some(p) => {
            agents[p].last_status = Some(status.to_string());
            agents[p].reason = reason;
            if started.is_some() {
                agents[p].last_started_at = started;
            }
        }
        None => agents.push(ManagedAgent {
            name: Some(agent_name),
            last_status: Some(status.to_string()),
            reason,
            last_started_at: started,
        }),
    }
    entry(change, name).managed_agents = Some(ManagedAgents { items: agents });
    Ok(())
}

/// The tasks of `request` that are STOPPED and have been for at least its retention, as one
/// `TasksExpired` event (none if no task qualifies).
pub fn expire_tasks(state: &impl StateView, ctx: &CommandContext, request: &ExpireTasks) -> DomainResult<Decision> {
    let mut expired = Vec::new();
    for arn in &request.task_arns {
        let Some(task) = state.task(stored_id_of(arn))?.and_then(|r| r.task) else {
            continue;
        };
        let stopped_at = task.stopped_at.map(|t| t.seconds);
        let old_enough = stopped_at.is_some_and(|at| ctx.now.seconds.saturating_sub(at) >= request.retention_seconds);
        if TaskStatus::of(task.last_status.as_deref()) == TaskStatus::Stopped
            && old_enough
            && task.task_arn.as_deref() == Some(arn.as_str())
            && !expired.contains(arn)
        {
            expired.push(arn.clone());
        }
    }
    let count = expired.len();
    let events = if expired.is_empty() {
        Vec::new()
    } else {
        vec![event(Kind::TasksExpired(TasksExpired {
            task_arns: expired,
            retention_seconds: request.retention_seconds,
        }))]
    };
    Ok(Decision {
        events,
        reply: Reply::ExpireTasks(count),
    })
}
