//! Container instances: RegisterContainerInstance (resources, attributes, the identity
//! document; re-registration keeps what running tasks hold) and DeregisterContainerInstance
//! (refused with tasks unless forced, which stops them).

use super::{active_cluster, missing};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{parse_container_instance_ref, printable, Scope};
use crate::domain::limits::{ATTRIBUTE_NAME_MAX, ATTRIBUTE_VALUE_MAX};
use crate::domain::resources::{default_total_resources, CPU, MEMORY, PORTS, PORTS_UDP};
use crate::domain::state::StateView;
use crate::domain::tags;
use crate::proto::log::event::Kind;
use crate::proto::log::{ContainerInstanceDeregistered, ContainerInstanceRegistered, TaskChanged};
use crate::proto::state::ContainerInstanceRecord;
use crate::proto::v1::*;

pub(super) fn register_container_instance(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &RegisterContainerInstanceRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    // The request first, then the cluster, as ECS checks them.
    tags::validate_tags("tags", &request.tags)?;
    let total = if request.total_resources.is_empty() {
        default_total_resources()
    } else {
        validate_resources(&request.total_resources)?;
        request.total_resources.clone()
    };
    let identity = identity_document(request.instance_identity_document.as_deref())?;
    let mut attributes = validate_attributes(&request.attributes)?;
    for (name, value) in [
        ("ecs.availability-zone", identity.availability_zone.clone()),
        ("ecs.instance-type", identity.instance_type.clone()),
        ("ecs.ami-id", identity.image_id.clone()),
        ("ecs.os-type", Some("linux".to_string())),
    ] {
        if let Some(value) = value {
            if !attributes.iter().any(|a| a.name.as_deref() == Some(name)) {
                attributes.push(Attribute {
                    name: Some(name.to_string()),
                    value: Some(value),
                    ..Default::default()
                });
            }
        }
    }
    for (i, device) in request.platform_devices.iter().enumerate() {
        if device.id.as_deref().unwrap_or("").is_empty() || device.r#type.is_none() {
            return Err(missing(
                &format!("platformDevices[{i}]"),
                "every platform device needs an id and a type.",
            ));
        }
    }
    let (cluster, _) = active_cluster(state, scope, request.cluster.as_deref())?;

    let (id, version, remaining, registered_at, previous_tags) = match request.container_instance_arn.as_deref() {
        Some(input) => {
            let reference = parse_container_instance_ref(scope, "containerInstanceArn", input)?;
            let record = registered_instance(state, scope, &cluster, &reference.id, reference.cluster.as_deref())?
                .ok_or_else(|| {
                    DomainError::invalid_parameter(
                        "containerInstanceArn",
                        format!(
                            "Container instance '{}' is not registered in cluster '{cluster}'; omit \
                             containerInstanceArn to register a new instance.",
                            printable(input)
                        ),
                    )
                })?;
            let old = record.container_instance.unwrap_or_default();
            let remaining = carry_usage(&old, &total);
            (
                reference.id,
                old.version.unwrap_or(0) + 1,
                remaining,
                old.registered_at,
                old.tags,
            )
        }
        None => (ctx.seed.resource_id(0), 1, total.clone(), Some(ctx.now), Vec::new()),
    };
    let previous = state.container_instance(&id)?.and_then(|r| r.container_instance);
    let instance = ContainerInstance {
        container_instance_arn: Some(scope.container_instance_arn(&cluster, &id)),
        ec2_instance_id: identity.instance_id,
        version: Some(version),
        version_info: request.version_info.clone(),
        remaining_resources: remaining,
        registered_resources: total,
        status: Some("ACTIVE".to_string()),
        agent_connected: Some(true),
        running_tasks_count: Some(previous.as_ref().and_then(|p| p.running_tasks_count).unwrap_or(0)),
        pending_tasks_count: Some(previous.as_ref().and_then(|p| p.pending_tasks_count).unwrap_or(0)),
        attributes,
        registered_at,
        tags: if request.tags.is_empty() {
            previous_tags
        } else {
            request.tags.clone()
        },
        ..Default::default()
    };
    Ok(Decision {
        events: vec![event(Kind::ContainerInstanceRegistered(ContainerInstanceRegistered {
            container_instance: Some(instance.clone()),
        }))],
        reply: Reply::RegisterContainerInstance(RegisterContainerInstanceResponse {
            container_instance: Some(instance),
        }),
    })
}

/// The instance's new remaining resources: the new totals minus what its tasks hold now.
fn carry_usage(old: &ContainerInstance, total: &[Resource]) -> Vec<Resource> {
    use crate::domain::resources::{amount, ports};
    let mut remaining = total.to_vec();
    for resource in remaining.iter_mut() {
        match resource.name.as_deref() {
            Some(name @ (CPU | MEMORY)) => {
                let used = amount(&old.registered_resources, name) - amount(&old.remaining_resources, name);
                let value = amount(total, name) - used;
                resource.integer_value = Some(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
                resource.long_value = None;
                resource.double_value = None;
            }
            Some(name @ (PORTS | PORTS_UDP)) => {
                let agent_ports = ports(&old.registered_resources, name);
                for port in ports(&old.remaining_resources, name) {
                    let text = port.to_string();
                    if !agent_ports.contains(&port) && !resource.string_set_value.contains(&text) {
                        resource.string_set_value.push(text);
                    }
                }
            }
            _ => {}
        }
    }
    remaining
}

fn validate_resources(resources: &[Resource]) -> DomainResult<()> {
    for (i, resource) in resources.iter().enumerate() {
        let at = format!("totalResources[{i}]");
        let name = resource.name.as_deref().unwrap_or("");
        if name.is_empty() || name.len() > 255 {
            return Err(missing(
                &format!("{at}.name"),
                "every resource needs a name such as CPU or MEMORY.",
            ));
        }
        if resources[..i].iter().any(|r| r.name.as_deref() == Some(name)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!("Resource '{}' is listed twice.", printable(name)),
            ));
        }
        let kind = resource
            .r#type
            .as_deref()
            .unwrap_or(if resource.string_set_value.is_empty() {
                "INTEGER"
            } else {
                "STRINGSET"
            });
        let negative = resource.integer_value.is_some_and(|v| v < 0)
            || resource.long_value.is_some_and(|v| v < 0)
            || resource.double_value.is_some_and(|v| !v.is_finite() || v < 0.0);
        if negative {
            return Err(DomainError::invalid_parameter(
                at.to_string(),
                format!("Resource '{}' cannot be negative.", printable(name)),
            ));
        }
        match kind {
            "INTEGER" | "LONG" | "DOUBLE" => {}
            "STRINGSET" => {
                if matches!(name, PORTS | PORTS_UDP) {
                    if let Some(bad) = resource.string_set_value.iter().find(|p| p.parse::<u16>().is_err()) {
                        return Err(DomainError::invalid_parameter(
                            format!("{at}.stringSetValue"),
                            format!("'{}' is not a port number (0-65535).", printable(bad)),
                        ));
                    }
                }
            }
            other => {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.type"),
                    format!(
                        "Resource type '{}' is invalid; use INTEGER, LONG, DOUBLE or STRINGSET.",
                        printable(other)
                    ),
                ))
            }
        }
        if matches!(name, CPU | MEMORY) && kind == "STRINGSET" {
            return Err(DomainError::invalid_parameter(
                format!("{at}.type"),
                format!("{name} must be a number."),
            ));
        }
    }
    Ok(())
}

/// Checks agent- or user-given attributes (ECS_SEMANTICS §5).
pub(crate) fn validate_attributes(attributes: &[Attribute]) -> DomainResult<Vec<Attribute>> {
    for (i, attribute) in attributes.iter().enumerate() {
        let at = format!("attributes[{i}]");
        let name = attribute.name.as_deref().unwrap_or("");
        if name.is_empty()
            || name.len() > ATTRIBUTE_NAME_MAX
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_/\\.-".contains(c))
        {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Attribute name '{}' is invalid: use 1 to {ATTRIBUTE_NAME_MAX} letters, digits, and _ / \\ . -",
                    printable(name)
                ),
            ));
        }
        if let Some(value) = attribute.value.as_deref() {
            let ok = !value.is_empty()
                && value.len() <= ATTRIBUTE_VALUE_MAX
                && !value.starts_with(' ')
                && !value.ends_with(' ')
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c));
            if !ok {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.value"),
                    format!(
                        "Value of attribute '{}' is invalid: use 1 to {ATTRIBUTE_VALUE_MAX} letters, digits, \
                         spaces (not at the ends) and - _ . @ / \\ :",
                        printable(name)
                    ),
                ));
            }
        }
    }
    Ok(attributes
        .iter()
        .map(|a| Attribute {
            name: a.name.clone(),
            value: a.value.clone(),
            target_type: None,
            target_id: None,
        })
        .collect())
}

struct Identity {
    instance_id: Option<String>,
    availability_zone: Option<String>,
    instance_type: Option<String>,
    image_id: Option<String>,
}

/// Reads the EC2 instance identity document (JSON) an agent sends.
fn identity_document(document: Option<&str>) -> DomainResult<Identity> {
    let Some(text) = document else {
        return Ok(Identity {
            instance_id: None,
            availability_zone: None,
            instance_type: None,
            image_id: None,
        });
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        DomainError::invalid_parameter(
            "instanceIdentityDocument",
            format!("The instance identity document is not JSON: {e}."),
        )
    })?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(255).collect::<String>())
    };
    Ok(Identity {
        instance_id: field("instanceId"),
        availability_zone: field("availabilityZone"),
        instance_type: field("instanceType"),
        image_id: field("imageId"),
    })
}

/// A registered (not INACTIVE) instance of the cluster, by id.
pub(super) fn registered_instance(
    state: &impl StateView,
    scope: &Scope,
    cluster: &str,
    id: &str,
    arn_cluster: Option<&str>,
) -> DomainResult<Option<ContainerInstanceRecord>> {
    if arn_cluster.is_some_and(|c| c != cluster) {
        return Ok(None);
    }
    let expected = scope.container_instance_arn(cluster, id);
    Ok(state.container_instance(id)?.filter(|r| {
        r.container_instance.as_ref().is_some_and(|ci| {
            ci.container_instance_arn.as_deref() == Some(expected.as_str()) && ci.status.as_deref() != Some("INACTIVE")
        })
    }))
}

pub(super) fn deregister_container_instance(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeregisterContainerInstanceRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let input = request
        .container_instance
        .as_deref()
        .ok_or_else(|| missing("containerInstance", "name the container instance to deregister."))?;
    let reference = parse_container_instance_ref(scope, "containerInstance", input)?;
    let (cluster, _) = active_cluster(state, scope, request.cluster.as_deref())?;
    let expected = scope.container_instance_arn(&cluster, &reference.id);
    let record = state
        .container_instance(&reference.id)?
        .filter(|r| {
            r.container_instance
                .as_ref()
                .and_then(|c| c.container_instance_arn.as_deref())
                == Some(expected.as_str())
        })
        .filter(|_| reference.cluster.as_deref().is_none_or(|c| c == cluster))
        .ok_or_else(|| {
            DomainError::invalid_parameter(
                "containerInstance",
                format!(
                    "Container instance '{}' was not found in cluster '{cluster}'.",
                    printable(input)
                ),
            )
        })?;
    let mut instance = record.container_instance.clone().unwrap_or_default();
    if instance.status.as_deref() == Some("INACTIVE") {
        return Ok(Decision {
            events: vec![],
            reply: Reply::DeregisterContainerInstance(DeregisterContainerInstanceResponse {
                container_instance: Some(instance),
            }),
        });
    }
    let task_ids = state.unstopped_task_ids_on_instance(&reference.id)?;
    if !task_ids.is_empty() && request.force != Some(true) {
        return Err(
            DomainError::invalid_parameter("force", "Found running tasks on the instance.").hint(format!(
                "{} task(s) are not STOPPED. Stop them first, or pass force=true to deregister anyway \
                 (their desired status becomes STOPPED).",
                task_ids.len()
            )),
        );
    }
    let mut events = Vec::new();
    for task_id in task_ids {
        let Some(task) = state.task(&task_id)?.and_then(|r| r.task) else {
            continue;
        };
        if task.desired_status.as_deref() == Some("STOPPED") {
            continue;
        }
        events.push(event(Kind::TaskChanged(TaskChanged {
            task_arn: task.task_arn.clone().unwrap_or_default(),
            version: task.version.unwrap_or(0) + 1,
            desired_status: Some("STOPPED".to_string()),
            stop_code: task
                .stop_code
                .is_none()
                .then_some(TaskStopCode::TerminationNotice as i32),
            stopped_reason: task
                .stopped_reason
                .is_none()
                .then(|| format!("Container instance {expected} was deregistered with force.")),
            ..Default::default()
        })));
    }
    events.push(event(Kind::ContainerInstanceDeregistered(
        ContainerInstanceDeregistered {
            container_instance_arn: expected,
        },
    )));
    instance.status = Some("INACTIVE".to_string());
    instance.version = Some(instance.version.unwrap_or(0) + 1);
    Ok(Decision {
        events,
        reply: Reply::DeregisterContainerInstance(DeregisterContainerInstanceResponse {
            container_instance: Some(instance),
        }),
    })
}
