//! Tags on any taggable resource: TagResource, UntagResource and what ListTagsForResource
//! reads.

use super::instances::registered_instance;
use super::{active_cluster, missing, task_in_cluster};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{parse_resource_arn, printable, ResourceArn, Scope};
use crate::domain::state::{cluster_is_active, StateView};
use crate::domain::tags;
use crate::proto::log::event::Kind;
use crate::proto::log::TagsChanged;
use crate::proto::v1::*;

/// The current tags of a taggable resource, or the error ECS gives for a missing one.
fn current_tags(state: &impl StateView, scope: &Scope, arn: &str) -> DomainResult<Vec<Tag>> {
    let not_found = || {
        DomainError::new(
            EcsException::ResourceNotFoundException,
            format!("The resource '{}' does not exist.", printable(arn)),
        )
        .at("resourceArn")
    };
    match parse_resource_arn(scope, "resourceArn", arn)? {
        ResourceArn::Cluster(name) => match state.cluster(scope, &name)? {
            Some(record) if cluster_is_active(&record) => Ok(record.cluster.map(|c| c.tags).unwrap_or_default()),
            _ => Err(not_found()),
        },
        ResourceArn::Task { cluster, id } => {
            active_cluster(state, scope, Some(&cluster))?;
            let task = task_in_cluster(state, scope, &cluster, "resourceArn", &id)?.ok_or_else(not_found)?;
            Ok(task.task.map(|t| t.tags).unwrap_or_default())
        }
        ResourceArn::ContainerInstance { cluster, id } => {
            active_cluster(state, scope, Some(&cluster))?;
            let record = registered_instance(state, scope, &cluster, &id, None)?.ok_or_else(not_found)?;
            Ok(record.container_instance.map(|c| c.tags).unwrap_or_default())
        }
        ResourceArn::TaskDefinition { family, revision } => {
            let record = state.task_definition(scope, &family, revision)?.ok_or_else(not_found)?;
            Ok(record.tags)
        }
    }
}

/// Reads a resource's tags for ListTagsForResource.
pub(crate) fn tags_of(state: &impl StateView, scope: &Scope, arn: Option<&str>) -> DomainResult<Vec<Tag>> {
    let arn = arn.ok_or_else(|| missing("resourceArn", "name the resource by its ARN."))?;
    current_tags(state, scope, arn).map_err(|e| {
        if e.exception == EcsException::ResourceNotFoundException {
            DomainError {
                exception: EcsException::InvalidParameterException,
                ..e
            }
        } else {
            e
        }
    })
}

pub(super) fn tag_resource(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &TagResourceRequest,
) -> DomainResult<Decision> {
    let arn = request
        .resource_arn
        .as_deref()
        .ok_or_else(|| missing("resourceArn", "name the resource by its ARN."))?;
    if request.tags.is_empty() {
        return Err(missing("tags", "give at least one tag."));
    }
    tags::validate_tags("tags", &request.tags)?;
    let current = current_tags(state, &ctx.scope, arn)?;
    let merged = tags::merge("tags", &current, &request.tags)?;
    let events = if merged == current {
        vec![]
    } else {
        vec![event(Kind::TagsChanged(TagsChanged {
            resource_arn: canonical_arn(&ctx.scope, arn)?,
            set: request.tags.clone(),
            removed_keys: vec![],
        }))]
    };
    Ok(Decision {
        events,
        reply: Reply::TagResource(TagResourceResponse {}),
    })
}

pub(super) fn untag_resource(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &UntagResourceRequest,
) -> DomainResult<Decision> {
    let arn = request
        .resource_arn
        .as_deref()
        .ok_or_else(|| missing("resourceArn", "name the resource by its ARN."))?;
    if request.tag_keys.is_empty() {
        return Err(missing("tagKeys", "give at least one tag key to remove."));
    }
    for (i, key) in request.tag_keys.iter().enumerate() {
        tags::validate_key(&format!("tagKeys[{i}]"), key)?;
    }
    let current = current_tags(state, &ctx.scope, arn)?;
    let removed: Vec<String> = request
        .tag_keys
        .iter()
        .filter(|k| current.iter().any(|t| t.key.as_deref() == Some(k.as_str())))
        .cloned()
        .collect();
    let events = if removed.is_empty() {
        vec![]
    } else {
        vec![event(Kind::TagsChanged(TagsChanged {
            resource_arn: canonical_arn(&ctx.scope, arn)?,
            set: vec![],
            removed_keys: removed,
        }))]
    };
    Ok(Decision {
        events,
        reply: Reply::UntagResource(UntagResourceResponse {}),
    })
}

/// The ARN exactly as the store writes it for this resource.
fn canonical_arn(scope: &Scope, arn: &str) -> DomainResult<String> {
    Ok(match parse_resource_arn(scope, "resourceArn", arn)? {
        ResourceArn::Cluster(name) => scope.cluster_arn(&name),
        ResourceArn::Task { cluster, id } => scope.task_arn(&cluster, &id),
        ResourceArn::ContainerInstance { cluster, id } => scope.container_instance_arn(&cluster, &id),
        ResourceArn::TaskDefinition { family, revision } => scope.task_definition_arn(&family, revision),
    })
}
