//! PutAttributes and DeleteAttributes: custom attributes on container instances, the ones
//! placement constraints match (`memberOf(attribute:stack == prod)`). Each attribute names its
//! target; the request is checked whole before any instance is looked up, every target must be
//! a registered instance of the cluster (else TargetNotFoundException) and an instance holds at
//! most 10 custom attributes (AttributeLimitExceededException). One `AttributesChanged` event per
//! instance that changes. ListAttributes is a query (`query::list_attributes`).

use super::instances::{registered_instance, validate_attributes};
use super::{active_cluster, missing};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{parse_container_instance_ref, printable, ResourceRef, Scope};
use crate::domain::limits::{ATTRIBUTES_PER_CALL_MAX, CUSTOM_ATTRIBUTES_MAX};
use crate::domain::state::StateView;
use crate::proto::log::event::Kind;
use crate::proto::log::AttributesChanged;
use crate::proto::v1::*;

pub(super) fn put_attributes(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &PutAttributesRequest,
) -> DomainResult<Decision> {
    let targets = checked(&ctx.scope, &request.attributes)?;
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let mut changes = Changes::default();
    for (attribute, target) in request.attributes.iter().zip(&targets) {
        let change = changes.of(state, &ctx.scope, &cluster, target)?;
        let name = attribute.name.clone();
        let value = attribute.value.clone();
        match change.instance.attributes.iter_mut().find(|a| a.name == name) {
            Some(existing) if existing.value == value => continue,
            Some(existing) => existing.value.clone_from(&value),
            None => change.instance.attributes.push(Attribute {
                name: name.clone(),
                value: value.clone(),
                ..Default::default()
            }),
        }
        change.event.deleted.retain(|d| Some(d) != name.as_ref());
        change.event.put.retain(|p| p.name != name);
        change.event.put.push(Attribute {
            name,
            value,
            ..Default::default()
        });
    }
    for change in &changes.0 {
        let custom = change.instance.attributes.iter().filter(|a| is_custom(a)).count();
        if custom > CUSTOM_ATTRIBUTES_MAX {
            return Err(DomainError::new(
                EcsException::AttributeLimitExceededException,
                format!("You can apply up to {CUSTOM_ATTRIBUTES_MAX} custom attributes for each resource."),
            )
            .hint(format!(
                "{} would have {custom}; remove some with DeleteAttributes first.",
                change.event.container_instance_arn
            )));
        }
    }
    Ok(Decision {
        events: changes.events(),
        reply: Reply::PutAttributes(PutAttributesResponse {
            attributes: request.attributes.clone(),
        }),
    })
}

pub(super) fn delete_attributes(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeleteAttributesRequest,
) -> DomainResult<Decision> {
    let targets = checked(&ctx.scope, &request.attributes)?;
    let (cluster, _) = active_cluster(state, &ctx.scope, request.cluster.as_deref())?;
    let mut changes = Changes::default();
    for (attribute, target) in request.attributes.iter().zip(&targets) {
        let change = changes.of(state, &ctx.scope, &cluster, target)?;
        let before = change.instance.attributes.len();
        change.instance.attributes.retain(|a| a.name != attribute.name);
        if change.instance.attributes.len() < before {
            change.event.put.retain(|p| p.name != attribute.name);
            change.event.deleted.extend(attribute.name.clone());
        }
    }
    Ok(Decision {
        events: changes.events(),
        reply: Reply::DeleteAttributes(DeleteAttributesResponse {
            attributes: request.attributes.clone(),
        }),
    })
}

/// Whether an attribute is the caller's own, not one ECS or its agent sets.
fn is_custom(attribute: &Attribute) -> bool {
    let name = attribute.name.as_deref().unwrap_or("");
    !name.starts_with("ecs.") && !name.starts_with("com.amazonaws.ecs.")
}

/// Checks the whole request before anything is looked up: 1–10 attributes, each with a valid
/// name and value, a container-instance target and a target id (an ARN, or an id with
/// `targetType`). Returns each attribute's target.
fn checked(scope: &Scope, attributes: &[Attribute]) -> DomainResult<Vec<ResourceRef>> {
    if attributes.is_empty() {
        return Err(missing("attributes", "name at least one attribute and its targetId."));
    }
    if attributes.len() > ATTRIBUTES_PER_CALL_MAX {
        return Err(DomainError::invalid_parameter(
            "attributes",
            format!(
                "attributes can have at most {ATTRIBUTES_PER_CALL_MAX} items; got {}.",
                attributes.len()
            ),
        ));
    }
    validate_attributes(attributes)?;
    let mut targets = Vec::with_capacity(attributes.len());
    for (i, attribute) in attributes.iter().enumerate() {
        let at = format!("attributes[{i}]");
        if !is_custom(attribute) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Attribute name '{}' is reserved.",
                    printable(attribute.name.as_deref().unwrap_or(""))
                ),
            )
            .hint("Names beginning with 'ecs.' or 'com.amazonaws.ecs.' are set by ECS and its agent."));
        }
        let target_type = match attribute.target_type.map(TargetType::try_from) {
            None => None,
            Some(Ok(TargetType::ContainerInstance)) => Some(TargetType::ContainerInstance),
            Some(_) => {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.targetType"),
                    "targetType can only be container-instance.",
                ))
            }
        };
        let Some(target_id) = attribute.target_id.as_deref() else {
            return Err(missing(
                &format!("{at}.targetId"),
                "the container instance's id or ARN.",
            ));
        };
        if target_type.is_none() && !target_id.starts_with("arn:") {
            return Err(DomainError::invalid_parameter(
                format!("{at}.targetType"),
                "targetType is required when targetId is not an ARN.",
            )
            .hint("Set targetType to container-instance, or give the instance's full ARN."));
        }
        targets.push(parse_container_instance_ref(
            scope,
            &format!("{at}.targetId"),
            target_id,
        )?);
    }
    Ok(targets)
}

/// The instances a request changes, in the order it first names them.
#[derive(Default)]
struct Changes(Vec<Change>);

struct Change {
    id: String,
    instance: ContainerInstance,
    event: AttributesChanged,
}

impl Changes {
    /// The change to `target`, a registered instance of `cluster`.
    fn of(
        &mut self,
        state: &impl StateView,
        scope: &Scope,
        cluster: &str,
        target: &ResourceRef,
    ) -> DomainResult<&mut Change> {
        if let Some(i) = self.0.iter().position(|c| c.id == target.id) {
            return Ok(&mut self.0[i]);
        }
        let arn = scope.container_instance_arn(cluster, &target.id);
        let instance = registered_instance(state, scope, cluster, &target.id, target.cluster.as_deref())?
            .and_then(|r| r.container_instance)
            .ok_or_else(|| {
                DomainError::new(EcsException::TargetNotFoundException, format!("Could not find {arn}."))
                    .hint("Name a registered container instance of this cluster (ListContainerInstances).")
            })?;
        self.0.push(Change {
            id: target.id.clone(),
            instance,
            event: AttributesChanged {
                container_instance_arn: arn,
                put: Vec::new(),
                deleted: Vec::new(),
            },
        });
        Ok(self.0.last_mut().expect("just pushed"))
    }

    fn events(self) -> Vec<crate::proto::log::Event> {
        self.0
            .into_iter()
            .filter(|c| !c.event.put.is_empty() || !c.event.deleted.is_empty())
            .map(|c| event(Kind::AttributesChanged(c.event)))
            .collect()
    }
}
