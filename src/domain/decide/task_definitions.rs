//! Task definitions: RegisterTaskDefinition (revisions numbered per family),
//! DeregisterTaskDefinition (ACTIVE → INACTIVE) and DeleteTaskDefinitions (INACTIVE →
//! DELETE_IN_PROGRESS). The content checks live in `domain::task_definition`.

use super::{failure, missing, resolve_task_definition, TaskDefinitionUse};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{parse_task_definition_ref, printable, TaskDefinitionRef};
use crate::domain::limits::{REVISIONS_PER_FAMILY_MAX, TASK_DEFINITIONS_DELETE_MAX, TASK_DEFINITION_BYTES_MAX};
use crate::domain::state::StateView;
use crate::domain::task_definition;
use crate::proto::log::event::Kind;
use crate::proto::log::{TaskDefinitionDeleted, TaskDefinitionDeregistered, TaskDefinitionRegistered};
use crate::proto::v1::*;

pub(super) fn register_task_definition(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &RegisterTaskDefinitionRequest,
) -> DomainResult<Decision> {
    let (mut definition, tags) = task_definition::validate_registration(request)?;
    let family = definition.family.clone().unwrap_or_default();
    let last_revision = state.family(&ctx.scope, &family)?.map(|f| f.last_revision).unwrap_or(0);
    if last_revision >= REVISIONS_PER_FAMILY_MAX {
        return Err(DomainError::new(
            EcsException::LimitExceededException,
            format!("Family '{family}' has reached {REVISIONS_PER_FAMILY_MAX} revisions; use another family name."),
        ));
    }
    let revision = last_revision + 1;
    definition.task_definition_arn = Some(ctx.scope.task_definition_arn(&family, revision));
    definition.revision = Some(revision as i32);
    definition.status = Some(TaskDefinitionStatus::Active as i32);
    definition.registered_at = Some(ctx.now);
    definition.registered_by = Some(format!(
        "arn:{}:iam::{}:root",
        ctx.scope.partition(),
        ctx.scope.account()
    ));
    let size = crate::ecs_json::json_len(&definition);
    if size > TASK_DEFINITION_BYTES_MAX {
        return Err(DomainError::client(format!(
            "The task definition is {size} bytes as JSON; at most {TASK_DEFINITION_BYTES_MAX} are allowed."
        )));
    }
    Ok(Decision {
        events: vec![event(Kind::TaskDefinitionRegistered(TaskDefinitionRegistered {
            task_definition: Some(definition.clone()),
            tags: tags.clone(),
        }))],
        reply: Reply::RegisterTaskDefinition(RegisterTaskDefinitionResponse {
            task_definition: Some(definition),
            tags,
        }),
    })
}

pub(super) fn deregister_task_definition(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeregisterTaskDefinitionRequest,
) -> DomainResult<Decision> {
    let input = request
        .task_definition
        .as_deref()
        .ok_or_else(|| missing("taskDefinition", "name the family:revision to deregister."))?;
    if let TaskDefinitionRef::Family(family) = parse_task_definition_ref(&ctx.scope, "taskDefinition", input)? {
        return Err(
            DomainError::client_at("taskDefinition", "Revision is missing.").hint(format!(
                "Deregistering needs a revision: use '{family}:<revision>' or the full ARN."
            )),
        );
    }
    let record = resolve_task_definition(state, &ctx.scope, "taskDefinition", input, TaskDefinitionUse::Describe)?;
    let mut definition = record.task_definition.unwrap_or_default();
    if definition.status == Some(TaskDefinitionStatus::Inactive as i32) {
        return Ok(Decision {
            events: vec![],
            reply: Reply::DeregisterTaskDefinition(DeregisterTaskDefinitionResponse {
                task_definition: Some(definition),
            }),
        });
    }
    let arn = definition.task_definition_arn.clone().unwrap_or_default();
    definition.status = Some(TaskDefinitionStatus::Inactive as i32);
    definition.deregistered_at = Some(ctx.now);
    Ok(Decision {
        events: vec![event(Kind::TaskDefinitionDeregistered(TaskDefinitionDeregistered {
            task_definition_arn: arn,
            deregistered_at: Some(ctx.now),
        }))],
        reply: Reply::DeregisterTaskDefinition(DeregisterTaskDefinitionResponse {
            task_definition: Some(definition),
        }),
    })
}

const STILL_ACTIVE: &str =
    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.";
const DOES_NOT_EXIST: &str =
    "The specified task definition does not exist. Specify a valid account, family, revision and try again.";
const NO_REVISION: &str = "The specified task definition identifier is invalid. Specify a family:revision or an ARN.";

/// INACTIVE revisions move to DELETE_IN_PROGRESS: they leave the INACTIVE listing, can never be
/// launched again and are still described, as ECS describes them while tasks reference them.
/// Per-item problems (still ACTIVE, missing, no revision named) are `failures`.
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
