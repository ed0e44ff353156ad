//! DeleteTaskDefinitions: INACTIVE revisions move to DELETE_IN_PROGRESS. They leave the
//! INACTIVE listing, can never be launched again and are still described (with their status and
//! `deleteRequestedAt`), as ECS describes them while tasks reference them. Per-item problems —
//! a revision still ACTIVE, one that does not exist, an identifier that names no revision — are
//! `failures`, as ECS reports them.

use super::failure;
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{parse_task_definition_ref, printable, TaskDefinitionRef};
use crate::domain::limits::TASK_DEFINITIONS_DELETE_MAX;
use crate::domain::state::StateView;
use crate::proto::log::event::Kind;
use crate::proto::log::TaskDefinitionDeleted;
use crate::proto::v1::*;

const STILL_ACTIVE: &str =
    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.";
const DOES_NOT_EXIST: &str =
    "The specified task definition does not exist. Specify a valid account, family, revision and try again.";
const NO_REVISION: &str = "The specified task definition identifier is invalid. Specify a family:revision or an ARN.";

pub(super) fn delete_task_definitions(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeleteTaskDefinitionsRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    if request.task_definitions.is_empty() {
        return Err(DomainError::invalid_parameter(
            "taskDefinitions",
            "Task Definitions cannot be empty.",
        ));
    }
    if request.task_definitions.len() > TASK_DEFINITIONS_DELETE_MAX {
        return Err(DomainError::invalid_parameter(
            "taskDefinitions",
            format!(
                "Task Definitions can have at most {TASK_DEFINITIONS_DELETE_MAX} items; got {}.",
                request.task_definitions.len()
            ),
        ));
    }
    let mut events = Vec::new();
    let mut response = DeleteTaskDefinitionsResponse::default();
    let mut seen: Vec<(String, u32)> = Vec::new();
    for (i, input) in request.task_definitions.iter().enumerate() {
        let field = format!("taskDefinitions[{i}]");
        let (family, revision) = match parse_task_definition_ref(scope, &field, input) {
            Ok(TaskDefinitionRef::Revision(family, revision)) => (family, revision),
            Ok(TaskDefinitionRef::Family(_)) | Err(_) => {
                response.failures.push(failure(printable(input), NO_REVISION));
                continue;
            }
        };
        let arn = scope.task_definition_arn(&family, revision);
        if seen.contains(&(family.clone(), revision)) {
            continue;
        }
        seen.push((family.clone(), revision));
        let Some(mut definition) = state
            .task_definition(scope, &family, revision)?
            .and_then(|r| r.task_definition)
        else {
            response.failures.push(failure(arn, DOES_NOT_EXIST));
            continue;
        };
        match definition.status.map(TaskDefinitionStatus::try_from) {
            Some(Ok(TaskDefinitionStatus::Inactive)) => {
                events.push(event(Kind::TaskDefinitionDeleted(TaskDefinitionDeleted {
                    task_definition_arn: arn,
                    delete_requested_at: Some(ctx.now),
                })));
                definition.status = Some(TaskDefinitionStatus::DeleteInProgress as i32);
                definition.delete_requested_at = Some(ctx.now);
            }
            // Asked again: answered as it is, nothing appended.
            Some(Ok(TaskDefinitionStatus::DeleteInProgress)) => {}
            _ => {
                response.failures.push(failure(arn, STILL_ACTIVE));
                continue;
            }
        }
        response.task_definitions.push(definition);
    }
    Ok(Decision {
        events,
        reply: Reply::DeleteTaskDefinitions(response),
    })
}
