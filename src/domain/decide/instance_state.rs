//! UpdateContainerInstancesState: registered container instances move between ACTIVE and
//! DRAINING. A DRAINING instance keeps its tasks but gets no new ones (placement in `launch`
//! names it in `failures` with reason DRAINING); setting ACTIVE again takes it back.

use super::{active_cluster, failure, missing};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::parse_container_instance_ref;
use crate::domain::limits::STATE_UPDATE_INSTANCES_MAX;
use crate::domain::state::StateView;
use crate::proto::log::event::Kind;
use crate::proto::log::ContainerInstanceStatusChanged;
use crate::proto::v1::*;

pub(super) fn update_container_instances_state(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &UpdateContainerInstancesStateRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    // The request first, then the cluster, as ECS checks them.
    if request.container_instances.is_empty() {
        return Err(DomainError::client_at(
            "containerInstances",
            "Container Instances cannot be empty.",
        ));
    }
    if request.container_instances.len() > STATE_UPDATE_INSTANCES_MAX {
        return Err(DomainError::invalid_parameter(
            "containerInstances",
            format!(
                "At most {STATE_UPDATE_INSTANCES_MAX} container instances can be updated at once; got {}.",
                request.container_instances.len()
            ),
        ));
    }
    let status = match request.status.map(ContainerInstanceStatus::try_from) {
        None => return Err(missing("status", "ACTIVE or DRAINING.")),
        Some(Ok(ContainerInstanceStatus::Active)) => "ACTIVE",
        Some(Ok(ContainerInstanceStatus::Draining)) => "DRAINING",
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "status",
                "Container instance status can only be ACTIVE or DRAINING.",
            )
            .hint("REGISTERING, DEREGISTERING and REGISTRATION_FAILED are set by ECS, never by a caller."))
        }
    };
    let references = request
        .container_instances
        .iter()
        .enumerate()
        .map(|(i, input)| parse_container_instance_ref(scope, &format!("containerInstances[{i}]"), input))
        .collect::<DomainResult<Vec<_>>>()?;
    let (cluster, _) = active_cluster(state, scope, request.cluster.as_deref())?;

    let mut events = Vec::new();
    let mut response = UpdateContainerInstancesStateResponse::default();
    let mut seen = Vec::new();
    for reference in references {
        if seen.contains(&reference.id) {
            continue;
        }
        seen.push(reference.id.clone());
        let arn = scope.container_instance_arn(&cluster, &reference.id);
        let found = state
            .container_instance(&reference.id)?
            .and_then(|r| r.container_instance)
            .filter(|ci| ci.container_instance_arn.as_deref() == Some(arn.as_str()))
            .filter(|_| reference.cluster.as_deref().is_none_or(|c| c == cluster));
        let Some(mut instance) = found else {
            response.failures.push(failure(arn, "MISSING"));
            continue;
        };
        match instance.status.as_deref() {
            Some(current) if current == status => {}
            Some("ACTIVE" | "DRAINING") => {
                events.push(event(Kind::ContainerInstanceStatusChanged(
                    ContainerInstanceStatusChanged {
                        container_instance_arn: arn,
                        status: status.to_string(),
                    },
                )));
                instance.status = Some(status.to_string());
                instance.version = Some(instance.version.unwrap_or(0) + 1);
            }
            // Deregistered (INACTIVE), or in a state only ECS moves it out of.
            other => {
                response.failures.push(failure(arn, other.unwrap_or("INACTIVE")));
                continue;
            }
        }
        instance.tags.clear();
        response.container_instances.push(instance);
    }
    Ok(Decision {
        events,
        reply: Reply::UpdateContainerInstancesState(response),
    })
}
