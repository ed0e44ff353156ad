//! `decide`: validates a command against current state and the ECS limits and turns it into
//! events plus the reply the caller will get once they are durable. Pure: state comes through
//! `StateView`, time, scope and id randomness through `CommandContext`.
//! Does not apply events (`evolve` does) and never writes.

mod attributes;
mod clusters;
mod instance_state;
mod instances;
mod launch;
mod placement;
mod tagging;
mod task_definitions;
mod transition;

use super::command::{Command, CommandContext, Decision};
use super::error::{DomainError, DomainResult, EcsException};
use super::ids::{self, parse_cluster, parse_task_definition_ref, printable, Scope, TaskDefinitionRef};
use super::state::{cluster_is_active, task_definition_is_active, StateView};
use crate::proto::state::{ClusterRecord, TaskDefinitionRecord, TaskRecord};
use crate::proto::v1::Failure;

pub use launch::run_task_fingerprint;
pub(crate) use placement::{check_expression, instance_satisfies};
pub(crate) use tagging::tags_of;

/// Validates `command` against `state` and decides its events and reply.
pub fn decide(state: &impl StateView, ctx: &CommandContext, command: &Command) -> DomainResult<Decision> {
    match command {
        Command::RunTask(request) => launch::run_task(state, ctx, request),
        Command::StartTask(request) => launch::start_task(state, ctx, request),
        Command::StopTask(request) => transition::stop_task(state, ctx, request),
        Command::SubmitTaskStateChange(request) => transition::submit_task_state_change(state, ctx, request),
        Command::SubmitContainerStateChange(request) => transition::submit_container_state_change(state, ctx, request),
        Command::SubmitAttachmentStateChanges(request) => {
            transition::submit_attachment_state_changes(state, ctx, request)
        }
        Command::RegisterTaskDefinition(request) => task_definitions::register_task_definition(state, ctx, request),
        Command::DeregisterTaskDefinition(request) => task_definitions::deregister_task_definition(state, ctx, request),
        Command::CreateCluster(request) => clusters::create_cluster(state, ctx, request),
        Command::DeleteCluster(request) => clusters::delete_cluster(state, ctx, request),
        Command::RegisterContainerInstance(request) => instances::register_container_instance(state, ctx, request),
        Command::DeregisterContainerInstance(request) => instances::deregister_container_instance(state, ctx, request),
        Command::UpdateContainerInstancesState(request) => {
            instance_state::update_container_instances_state(state, ctx, request)
        }
        Command::DeleteTaskDefinitions(request) => task_definitions::delete_task_definitions(state, ctx, request),
        Command::PutAttributes(request) => attributes::put_attributes(state, ctx, request),
        Command::DeleteAttributes(request) => attributes::delete_attributes(state, ctx, request),
        Command::TagResource(request) => tagging::tag_resource(state, ctx, request),
        Command::UntagResource(request) => tagging::untag_resource(state, ctx, request),
        Command::ExpireTasks(request) => transition::expire_tasks(state, ctx, request),
    }
}

/// Resolves the `cluster` parameter to an ACTIVE cluster, or `ClusterNotFoundException`.
pub(crate) fn active_cluster(
    state: &impl StateView,
    scope: &Scope,
    input: Option<&str>,
) -> DomainResult<(String, ClusterRecord)> {
    let name = parse_cluster(scope, "cluster", input)?;
    match state.cluster(scope, &name)? {
        Some(record) if cluster_is_active(&record) => Ok((name, record)),
        _ => Err(DomainError::cluster_not_found(&name)),
    }
}

/// Resolves the `cluster` parameter of a read: ACTIVE or INACTIVE (deleted clusters stay
/// describable), otherwise `ClusterNotFoundException`.
pub(crate) fn known_cluster(
    state: &impl StateView,
    scope: &Scope,
    input: Option<&str>,
) -> DomainResult<(String, ClusterRecord)> {
    let name = parse_cluster(scope, "cluster", input)?;
    match state.cluster(scope, &name)? {
        Some(record) => Ok((name, record)),
        None => Err(DomainError::cluster_not_found(&name)),
    }
}

/// Finds a task of the cluster by id or ARN; `None` when it is not a task of that cluster.
pub(crate) fn task_in_cluster(
    state: &impl StateView,
    scope: &Scope,
    cluster: &str,
    field: &str,
    input: &str,
) -> DomainResult<Option<TaskRecord>> {
    let reference = ids::parse_task_ref(scope, field, input)?;
    if reference.cluster.as_deref().is_some_and(|c| c != cluster) {
        return Ok(None);
    }
    let expected_arn = scope.task_arn(cluster, &reference.id);
    Ok(state
        .task(&reference.id)?
        .filter(|r| r.task.as_ref().and_then(|t| t.task_arn.as_deref()) == Some(expected_arn.as_str())))
}

/// How a task definition is being used: launching needs an ACTIVE revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskDefinitionUse {
    Launch,
    Describe,
}

/// Resolves `family`, `family:revision` or an ARN (ECS_SEMANTICS §1.4).
pub(crate) fn resolve_task_definition(
    state: &impl StateView,
    scope: &Scope,
    field: &str,
    input: &str,
    usage: TaskDefinitionUse,
) -> DomainResult<TaskDefinitionRecord> {
    let unable = || {
        DomainError::client_at(field, "Unable to describe task definition.").hint(format!(
            "'{}': no such revision is registered in {}. Register it first or name an existing \
             family:revision.",
            printable(input),
            scope.region()
        ))
    };
    let reference = parse_task_definition_ref(scope, field, input)?;
    let (family, revision) = match &reference {
        TaskDefinitionRef::Family(family) => {
            let revision = state.latest_active_revision(scope, family)?.ok_or_else(unable)?;
            (family.as_str(), revision)
        }
        TaskDefinitionRef::Revision(family, revision) => (family.as_str(), *revision),
    };
    let record = state.task_definition(scope, family, revision)?.ok_or_else(unable)?;
    if usage == TaskDefinitionUse::Launch && !task_definition_is_active(&record) {
        return Err(
            DomainError::invalid_parameter(field, "TaskDefinition is inactive").hint(format!(
                "{family}:{revision} was deregistered; launch an ACTIVE revision."
            )),
        );
    }
    Ok(record)
}

/// Checks an optional free-text member's length (in characters).
pub(crate) fn check_length(field: &str, value: Option<&str>, max: usize) -> DomainResult<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(DomainError::invalid_parameter(
            field,
            format!("{field} may be at most {max} characters; got {}.", v.chars().count()),
        )),
        _ => Ok(()),
    }
}

/// Checks `startedBy`: letters, digits, `-`, `/`, `_`, at most `max` characters.
pub(crate) fn check_started_by(value: Option<&str>, max: usize) -> DomainResult<()> {
    let Some(v) = value else { return Ok(()) };
    if v.is_empty() || v.len() > max || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-/_".contains(c)) {
        return Err(DomainError::invalid_parameter(
            "startedBy",
            format!(
                "startedBy '{}' is invalid: use 1 to {max} letters, digits, hyphens, slashes or underscores.",
                printable(v)
            ),
        ));
    }
    Ok(())
}

/// A required member is missing.
/// Refuses an enum number the API does not define, and the proto-only UNSPECIFIED (0): proto3
/// keeps unknown numbers, so without this they would be ignored or even stored.
pub(crate) fn check_enum<E: TryFrom<i32>>(field: &str, value: Option<i32>) -> DomainResult<()> {
    match value {
        Some(number) if number == 0 || E::try_from(number).is_err() => Err(DomainError::invalid_parameter(
            field,
            format!("{field} is {number}, which is not a value this API defines; see the ECS API reference."),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn missing(field: &str, what: &str) -> DomainError {
    DomainError::new(EcsException::InvalidParameterException, format!("{field} is required."))
        .hint(what)
        .at(field)
}

#[cfg(test)]
mod tests;

/// A per-item problem as ECS reports it in `failures`.
fn failure(arn: String, reason: &str) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some(reason.to_string()),
        detail: None,
    }
}
