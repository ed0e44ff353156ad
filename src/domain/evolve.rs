//! Folding events into state: `evolve` applies one logged event to the records it touches,
//! including every derived counter (cluster task counts, instance resources). It decides
//! nothing: all choices were made by `decide` and are written in the event.
//! Does not read the clock or configuration; the record's own time is its only input besides
//! the event.

use prost_types::Timestamp;

use super::error::InconsistentEvent;
use super::ids::{split_stored_arn, stored_cluster_of, stored_id_of, Scope};
use super::lifecycle::{DesiredStatus, TaskStatus};
use super::resources::apply_reservation;
use super::state::{task_definition_is_active, StateMut};
use super::tags;
use crate::proto::log::{
    event::Kind, AttributesChanged, ClientTokenRecorded, ClusterCreated, ClusterDeleted, ContainerInstanceDeregistered,
    ContainerInstanceRegistered, ContainerInstanceStatusChanged, Event, TaskChanged, TaskCreated,
    TaskDefinitionDeleted, TaskDefinitionDeregistered, TaskDefinitionRegistered, TasksExpired,
};
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};
use crate::proto::v1::{Cluster, ContainerInstance, KeyValuePair, LaunchType, Task, TaskDefinitionStatus};

type Result<T> = std::result::Result<T, InconsistentEvent>;

fn fault(message: String) -> InconsistentEvent {
    InconsistentEvent(message)
}

fn read<T>(result: super::error::DomainResult<T>) -> Result<T> {
    result.map_err(|e| fault(format!("reading state: {}", e.message)))
}

/// Changes a task record (taken out of `state`) by one `TaskChanged`, and the counters of its
/// cluster and instance in `state`. A version that does not follow the task's is refused before
/// anything changes.
fn change_task(
    state: &mut impl StateMut,
    id: &str,
    record: &mut TaskRecord,
    seq: u64,
    change: &TaskChanged,
) -> Result<()> {
    let task = record
        .task
        .as_mut()
        .ok_or_else(|| fault(format!("task {id} has no body")))?;
    let before = (
        TaskStatus::of(task.last_status.as_deref()),
        DesiredStatus::of(task.desired_status.as_deref()),
    );
    if task.version.unwrap_or(0) + 1 != change.version {
        return Err(fault(format!(
            "TaskChanged for {} has version {}, but the task is at {}",
            change.task_arn,
            change.version,
            task.version.unwrap_or(0)
        )));
    }
    apply_task_change(task, change);
    record.history.push(seq);
    let after = (
        TaskStatus::of(task.last_status.as_deref()),
        DesiredStatus::of(task.desired_status.as_deref()),
    );
    if before == after {
        return Ok(());
    }
    let (scope, cluster_name) = cluster_of(&change.task_arn)?;
    let mut cluster = existing_cluster(state, &scope, &cluster_name)?;
    count_task(&mut cluster, task, before.0, -1);
    count_task(&mut cluster, task, after.0, 1);
    let stops = before.0 != TaskStatus::Stopped && after.0 == TaskStatus::Stopped;
    if stops {
        cluster.unstopped_tasks = cluster.unstopped_tasks.saturating_sub(1);
    }
    state.put_cluster(&scope, &cluster_name, cluster);
    if let Some(reservation) = &record.reservation {
        let instance_id = stored_id_of(&reservation.container_instance_arn).to_string();
        let mut instance = existing_instance(state, &instance_id)?;
        if let Some(ci) = instance.container_instance.as_mut() {
            count_instance_task(ci, before.0, before.1, -1);
            count_instance_task(ci, after.0, after.1, 1);
            if stops {
                apply_reservation(ci, reservation, false);
            }
        }
        if stops {
            instance.unstopped_tasks = instance.unstopped_tasks.saturating_sub(1);
        }
        state.put_container_instance(&instance_id, instance);
    }
    Ok(())
}

/// Applies one event, logged as `seq` at `time`, to the state. When the event does not apply
/// (an `InconsistentEvent`), the records it touched may be partly changed.
pub fn evolve(state: &mut impl StateMut, seq: u64, time: &Timestamp, event: &Event) -> Result<()> {
    let kind = event
        .kind
        .as_ref()
        .ok_or_else(|| fault("event without a kind".into()))?;
    match kind {
        Kind::TaskCreated(created) => task_created(state, seq, created),
        Kind::TaskChanged(change) => task_changed(state, seq, change),
        Kind::TagsChanged(change) => apply_tags(state, seq, &change.resource_arn, &change.set, &change.removed_keys),
        Kind::TasksExpired(expired) => tasks_expired(state, expired),
        Kind::ClientTokenRecorded(recorded) => client_token_recorded(state, time, recorded),
        Kind::TaskDefinitionRegistered(registered) => task_definition_registered(state, registered),
        Kind::TaskDefinitionDeregistered(deregistered) => task_definition_deregistered(state, deregistered),
        Kind::TaskDefinitionDeleted(deleted) => task_definition_deleted(state, deleted),
        Kind::ClusterCreated(created) => cluster_created(state, created),
        Kind::ClusterDeleted(deleted) => cluster_deleted(state, deleted),
        Kind::ContainerInstanceRegistered(registered) => container_instance_registered(state, registered),
        Kind::ContainerInstanceStatusChanged(changed) => container_instance_status_changed(state, changed),
        Kind::AttributesChanged(changed) => attributes_changed(state, changed),
        Kind::ContainerInstanceDeregistered(deregistered) => container_instance_deregistered(state, deregistered),
    }
}

fn task_created(state: &mut impl StateMut, seq: u64, created: &TaskCreated) -> Result<()> {
    let task = created
        .task
        .as_ref()
        .ok_or_else(|| fault("TaskCreated without a task".into()))?;
    let arn = task.task_arn.as_deref().unwrap_or_default();
    let id = stored_id_of(arn).to_string();
    if read(state.task(&id))?.is_some() {
        return Err(fault(format!("TaskCreated for {arn}, which already exists")));
    }
    let (scope, cluster_name) = cluster_of(arn)?;
    let mut cluster = existing_cluster(state, &scope, &cluster_name)?;
    let status = TaskStatus::of(task.last_status.as_deref());
    count_task(&mut cluster, task, status, 1);
    cluster.unstopped_tasks += 1;
    state.put_cluster(&scope, &cluster_name, cluster);
    if let Some(reservation) = &created.reservation {
        let instance_id = stored_id_of(&reservation.container_instance_arn).to_string();
        let mut instance = existing_instance(state, &instance_id)?;
        if let Some(ci) = instance.container_instance.as_mut() {
            apply_reservation(ci, reservation, true);
            count_instance_task(ci, status, DesiredStatus::Running, 1);
        }
        instance.unstopped_tasks += 1;
        state.put_container_instance(&instance_id, instance);
    }
    state.put_task(
        &id,
        TaskRecord {
            task: Some(task.clone()),
            reservation: created.reservation.clone(),
            history: vec![seq],
            derived_arns: 0,
        },
    );
    Ok(())
}

fn task_changed(state: &mut impl StateMut, seq: u64, change: &TaskChanged) -> Result<()> {
    let id = stored_id_of(&change.task_arn).to_string();
    let mut record = read(state.take_task(&id))?
        .ok_or_else(|| fault(format!("TaskChanged for unknown task {}", change.task_arn)))?;
    let changed = change_task(state, &id, &mut record, seq, change);
    state.put_task(&id, record);
    changed?;
    Ok(())
}

fn tasks_expired(state: &mut impl StateMut, expired: &TasksExpired) -> Result<()> {
    for arn in &expired.task_arns {
        let id = stored_id_of(arn);
        let task = read(state.task(id))?
            .and_then(|r| r.task)
            .ok_or_else(|| fault(format!("TasksExpired for unknown task {arn}")))?;
        if TaskStatus::of(task.last_status.as_deref()) != TaskStatus::Stopped {
            return Err(fault(format!("TasksExpired for {arn}, which is not STOPPED")));
        }
        state.remove_task(id);
    }
    Ok(())
}

fn client_token_recorded(state: &mut impl StateMut, time: &Timestamp, recorded: &ClientTokenRecorded) -> Result<()> {
    state.put_client_token(
        &recorded.cluster_arn,
        &recorded.client_token,
        ClientTokenRecord {
            fingerprint: recorded.fingerprint.clone(),
            task_arns: recorded.task_arns.clone(),
            failures: recorded.failures.clone(),
            recorded_at: Some(*time),
        },
    );
    Ok(())
}

fn task_definition_registered(state: &mut impl StateMut, registered: &TaskDefinitionRegistered) -> Result<()> {
    let td = registered
        .task_definition
        .as_ref()
        .ok_or_else(|| fault("TaskDefinitionRegistered without a definition".into()))?;
    let arn = td.task_definition_arn.as_deref().unwrap_or_default();
    let (scope, family, revision) = task_definition_of(arn)?;
    let mut family_record = read(state.family(&scope, &family))?.unwrap_or(FamilyRecord {
        family: family.clone(),
        ..Default::default()
    });
    if revision <= family_record.last_revision {
        return Err(fault(format!(
            "{arn} registered after revision {}",
            family_record.last_revision
        )));
    }
    family_record.last_revision = revision;
    family_record.active_revisions += 1;
    state.put_family(&scope, &family, family_record);
    state.put_task_definition(
        &scope,
        &family,
        revision,
        TaskDefinitionRecord {
            task_definition: Some(td.clone()),
            tags: registered.tags.clone(),
        },
    );
    Ok(())
}

fn task_definition_deregistered(state: &mut impl StateMut, deregistered: &TaskDefinitionDeregistered) -> Result<()> {
    let (scope, family, revision) = task_definition_of(&deregistered.task_definition_arn)?;
    let mut record = read(state.task_definition(&scope, &family, revision))?.ok_or_else(|| {
        fault(format!(
            "deregistration of unknown {}",
            deregistered.task_definition_arn
        ))
    })?;
    if !task_definition_is_active(&record) {
        return Err(fault(format!(
            "{} deregistered twice",
            deregistered.task_definition_arn
        )));
    }
    if let Some(td) = record.task_definition.as_mut() {
        td.status = Some(TaskDefinitionStatus::Inactive as i32);
        td.deregistered_at = deregistered.deregistered_at;
    }
    let mut family_record =
        read(state.family(&scope, &family))?.ok_or_else(|| fault(format!("family {family} missing")))?;
    family_record.active_revisions = family_record.active_revisions.saturating_sub(1);
    state.put_family(&scope, &family, family_record);
    state.put_task_definition(&scope, &family, revision, record);
    Ok(())
}

fn task_definition_deleted(state: &mut impl StateMut, deleted: &TaskDefinitionDeleted) -> Result<()> {
    let arn = &deleted.task_definition_arn;
    let (scope, family, revision) = task_definition_of(arn)?;
    let mut record = read(state.task_definition(&scope, &family, revision))?
        .ok_or_else(|| fault(format!("deletion of unknown {arn}")))?;
    let definition = record.task_definition.get_or_insert_with(Default::default);
    if definition.status != Some(TaskDefinitionStatus::Inactive as i32) {
        return Err(fault(format!("{arn} deleted while not INACTIVE")));
    }
    definition.status = Some(TaskDefinitionStatus::DeleteInProgress as i32);
    definition.delete_requested_at = deleted.delete_requested_at;
    state.put_task_definition(&scope, &family, revision, record);
    Ok(())
}

fn cluster_created(state: &mut impl StateMut, created: &ClusterCreated) -> Result<()> {
    let cluster = created
        .cluster
        .as_ref()
        .ok_or_else(|| fault("ClusterCreated without a cluster".into()))?;
    let (scope, name) = cluster_of(cluster.cluster_arn.as_deref().unwrap_or_default())?;
    let unstopped_tasks = read(state.cluster(&scope, &name))?
        .map(|c| c.unstopped_tasks)
        .unwrap_or(0);
    state.put_cluster(
        &scope,
        &name,
        ClusterRecord {
            cluster: Some(cluster.clone()),
            unstopped_tasks,
        },
    );
    Ok(())
}

fn cluster_deleted(state: &mut impl StateMut, deleted: &ClusterDeleted) -> Result<()> {
    let (scope, name) = cluster_of(&deleted.cluster_arn)?;
    let mut record = existing_cluster(state, &scope, &name)?;
    if let Some(c) = record.cluster.as_mut() {
        c.status = Some("INACTIVE".to_string());
    }
    state.put_cluster(&scope, &name, record);
    Ok(())
}

fn container_instance_registered(state: &mut impl StateMut, registered: &ContainerInstanceRegistered) -> Result<()> {
    let ci = registered
        .container_instance
        .as_ref()
        .ok_or_else(|| fault("ContainerInstanceRegistered without an instance".into()))?;
    let arn = ci.container_instance_arn.as_deref().unwrap_or_default();
    let id = stored_id_of(arn).to_string();
    let (scope, cluster_name) = cluster_of(arn)?;
    let previous = read(state.container_instance(&id))?;
    let was_registered = previous.as_ref().is_some_and(instance_is_registered);
    if !was_registered {
        let mut cluster = existing_cluster(state, &scope, &cluster_name)?;
        if let Some(c) = cluster.cluster.as_mut() {
            c.registered_container_instances_count = Some(c.registered_container_instances_count.unwrap_or(0) + 1);
        }
        state.put_cluster(&scope, &cluster_name, cluster);
    }
    let unstopped_tasks = previous.map(|p| p.unstopped_tasks).unwrap_or(0);
    state.put_container_instance(
        &id,
        ContainerInstanceRecord {
            container_instance: Some(ci.clone()),
            cluster_name,
            unstopped_tasks,
        },
    );
    Ok(())
}

fn container_instance_status_changed(
    state: &mut impl StateMut,
    changed: &ContainerInstanceStatusChanged,
) -> Result<()> {
    change_registered_instance(state, &changed.container_instance_arn, "changed status", |ci| {
        ci.status = Some(changed.status.clone());
    })
}

fn attributes_changed(state: &mut impl StateMut, changed: &AttributesChanged) -> Result<()> {
    change_registered_instance(state, &changed.container_instance_arn, "changed attributes", |ci| {
        ci.attributes
            .retain(|a| !changed.deleted.iter().any(|d| a.name.as_ref() == Some(d)));
        for put in &changed.put {
            match ci.attributes.iter_mut().find(|a| a.name == put.name) {
                Some(existing) => existing.value.clone_from(&put.value),
                None => ci.attributes.push(put.clone()),
            }
        }
    })
}

/// Changes a registered instance's record by `change` and bumps its version; `what` names the
/// change in the fault when the instance is not registered.
fn change_registered_instance(
    state: &mut impl StateMut,
    arn: &str,
    what: &str,
    change: impl FnOnce(&mut ContainerInstance),
) -> Result<()> {
    let id = stored_id_of(arn).to_string();
    let mut record = existing_instance(state, &id)?;
    if !instance_is_registered(&record) {
        return Err(fault(format!("{arn} {what} while not registered")));
    }
    if let Some(ci) = record.container_instance.as_mut() {
        change(ci);
        ci.version = Some(ci.version.unwrap_or(0) + 1);
    }
    state.put_container_instance(&id, record);
    Ok(())
}

fn container_instance_deregistered(
    state: &mut impl StateMut,
    deregistered: &ContainerInstanceDeregistered,
) -> Result<()> {
    let arn = &deregistered.container_instance_arn;
    let (scope, cluster_name) = cluster_of(arn)?;
    change_registered_instance(state, arn, "deregistered", |ci| {
        ci.status = Some("INACTIVE".to_string());
    })?;
    let mut cluster = existing_cluster(state, &scope, &cluster_name)?;
    if let Some(c) = cluster.cluster.as_mut() {
        c.registered_container_instances_count = Some((c.registered_container_instances_count.unwrap_or(0) - 1).max(0));
    }
    state.put_cluster(&scope, &cluster_name, cluster);
    Ok(())
}

/// Applies a task state change to the task. Shared by `evolve` and by `decide`, which shows the
/// caller the task as it will be.
pub fn apply_task_change(task: &mut Task, change: &TaskChanged) {
    task.version = Some(change.version);
    set(&mut task.last_status, &change.last_status);
    set(&mut task.desired_status, &change.desired_status);
    set(&mut task.stop_code, &change.stop_code);
    set(&mut task.stopped_reason, &change.stopped_reason);
    set(&mut task.started_at, &change.started_at);
    set(&mut task.stopping_at, &change.stopping_at);
    set(&mut task.stopped_at, &change.stopped_at);
    set(&mut task.pull_started_at, &change.pull_started_at);
    set(&mut task.pull_stopped_at, &change.pull_stopped_at);
    set(&mut task.execution_stopped_at, &change.execution_stopped_at);
    set(&mut task.connectivity, &change.connectivity);
    set(&mut task.connectivity_at, &change.connectivity_at);
    set(&mut task.health_status, &change.health_status);
    for c in &change.containers {
        if let Some(container) = task
            .containers
            .iter_mut()
            .find(|k| k.name.as_deref() == Some(c.name.as_str()))
        {
            set(&mut container.last_status, &c.last_status);
            set(&mut container.exit_code, &c.exit_code);
            set(&mut container.reason, &c.reason);
            set(&mut container.image_digest, &c.image_digest);
            set(&mut container.runtime_id, &c.runtime_id);
            set(&mut container.health_status, &c.health_status);
            if let Some(bindings) = &c.network_bindings {
                container.network_bindings = bindings.items.clone();
            }
            if let Some(agents) = &c.managed_agents {
                container.managed_agents = agents.items.clone();
            }
        }
    }
    for a in &change.attachments {
        let id = stored_id_of(&a.attachment_arn);
        if let Some(attachment) = task.attachments.iter_mut().find(|k| k.id.as_deref() == Some(id)) {
            attachment.status = Some(a.status.clone());
        }
    }
    if change.tags_cleared {
        task.tags.clear();
    }
}

fn set<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        target.clone_from(value);
    }
}

fn apply_tags(
    state: &mut impl StateMut,
    seq: u64,
    arn: &str,
    set: &[crate::proto::v1::Tag],
    removed: &[String],
) -> Result<()> {
    let update = |current: &mut Vec<crate::proto::v1::Tag>| {
        let merged = tags::merge("tags", current, set).unwrap_or_else(|_| {
            // The limit was checked when the event was decided; replay applies what was logged.
            let mut all = current.clone();
            all.extend(set.iter().cloned());
            all
        });
        *current = tags::remove(&merged, removed);
    };
    let (scope, resource) = split_stored_arn(arn).ok_or_else(|| fault(format!("damaged ARN {arn}")))?;
    let kind = resource.split('/').next().unwrap_or_default();
    match kind {
        "cluster" => {
            let (scope, name) = cluster_of(arn)?;
            let mut record = existing_cluster(state, &scope, &name)?;
            if let Some(c) = record.cluster.as_mut() {
                update(&mut c.tags);
            }
            state.put_cluster(&scope, &name, record);
        }
        "task" => {
            let id = stored_id_of(arn);
            let mut record = read(state.task(id))?.ok_or_else(|| fault(format!("tags of unknown task {arn}")))?;
            if let Some(t) = record.task.as_mut() {
                update(&mut t.tags);
            }
            record.history.push(seq);
            state.put_task(id, record);
        }
        "container-instance" => {
            let id = stored_id_of(arn);
            let mut record = existing_instance(state, id)?;
            if let Some(ci) = record.container_instance.as_mut() {
                update(&mut ci.tags);
            }
            state.put_container_instance(id, record);
        }
        "task-definition" => {
            let (_, family, revision) = task_definition_of(arn)?;
            let mut record = read(state.task_definition(&scope, &family, revision))?
                .ok_or_else(|| fault(format!("tags of unknown {arn}")))?;
            update(&mut record.tags);
            state.put_task_definition(&scope, &family, revision, record);
        }
        _ => return Err(fault(format!("tags of unsupported resource {arn}"))),
    }
    Ok(())
}

fn cluster_of(arn: &str) -> Result<(Scope, String)> {
    stored_cluster_of(arn).ok_or_else(|| fault(format!("damaged ARN {arn}")))
}

fn task_definition_of(arn: &str) -> Result<(Scope, String, u32)> {
    let damaged = || fault(format!("damaged task-definition ARN {arn}"));
    let (scope, resource) = split_stored_arn(arn).ok_or_else(damaged)?;
    let (family, revision) = resource
        .strip_prefix("task-definition/")
        .and_then(|r| r.split_once(':'))
        .ok_or_else(damaged)?;
    Ok((scope, family.to_string(), revision.parse().map_err(|_| damaged())?))
}

fn existing_cluster(state: &impl StateMut, scope: &Scope, name: &str) -> Result<ClusterRecord> {
    read(state.cluster(scope, name))?.ok_or_else(|| fault(format!("cluster {name} missing in {}", scope.region())))
}

fn existing_instance(state: &impl StateMut, id: &str) -> Result<ContainerInstanceRecord> {
    read(state.container_instance(id))?.ok_or_else(|| fault(format!("container instance {id} missing")))
}

fn instance_is_registered(record: &ContainerInstanceRecord) -> bool {
    record.container_instance.as_ref().and_then(|c| c.status.as_deref()) != Some("INACTIVE")
}

/// Adds `delta` to the cluster's counters for one task in `status`.
fn count_task(record: &mut ClusterRecord, task: &Task, status: TaskStatus, delta: i32) {
    let Some(cluster) = record.cluster.as_mut() else { return };
    let fargate = task.launch_type == Some(LaunchType::Fargate as i32);
    let (counter, statistic) = match (status, fargate) {
        (TaskStatus::Running, false) => (&mut cluster.running_tasks_count, "runningEC2TasksCount"),
        (TaskStatus::Running, true) => (&mut cluster.running_tasks_count, "RunningFargateTasksCount"),
        (TaskStatus::Pending, false) => (&mut cluster.pending_tasks_count, "pendingEC2TasksCount"),
        (TaskStatus::Pending, true) => (&mut cluster.pending_tasks_count, "pendingFargateTasksCount"),
        _ => return,
    };
    *counter = Some((counter.unwrap_or(0) + delta).max(0));
    bump_statistic(cluster, statistic, delta);
}

fn bump_statistic(cluster: &mut Cluster, name: &str, delta: i32) {
    let entry = match cluster.statistics.iter_mut().find(|s| s.name.as_deref() == Some(name)) {
        Some(entry) => entry,
        None => {
            cluster.statistics.push(KeyValuePair {
                name: Some(name.to_string()),
                value: Some("0".to_string()),
            });
            cluster.statistics.last_mut().expect("just pushed")
        }
    };
    let value: i64 = entry.value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
    entry.value = Some((value + i64::from(delta)).max(0).to_string());
}

/// Adds `delta` to an instance's counters for one task: pending counts lastStatus PENDING,
/// running counts desiredStatus RUNNING (ECS_SEMANTICS §5).
fn count_instance_task(
    ci: &mut crate::proto::v1::ContainerInstance,
    status: TaskStatus,
    desired: DesiredStatus,
    delta: i32,
) {
    if status == TaskStatus::Pending {
        ci.pending_tasks_count = Some((ci.pending_tasks_count.unwrap_or(0) + delta).max(0));
    }
    if desired == DesiredStatus::Running && status != TaskStatus::Stopped {
        ci.running_tasks_count = Some((ci.running_tasks_count.unwrap_or(0) + delta).max(0));
    }
}
