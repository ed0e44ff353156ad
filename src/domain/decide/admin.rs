//! Deciding the commands about resources other than tasks: clusters, task definitions,
//! container instances, and tags on any resource.
//! Does not launch or move tasks (see `launch` and `transition`).

use super::{active_cluster, missing, resolve_task_definition, task_in_cluster, TaskDefinitionUse};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{
    parse_container_instance_ref, parse_resource_arn, parse_task_definition_ref, printable, validate_name, ResourceArn,
    Scope, TaskDefinitionRef,
};
use crate::domain::limits::{
    ATTRIBUTE_NAME_MAX, ATTRIBUTE_VALUE_MAX, CAPACITY_PROVIDER_STRATEGY_MAX, CLUSTERS_MAX, REVISIONS_PER_FAMILY_MAX,
    TASK_DEFINITION_BYTES_MAX,
};
use crate::domain::resources::{default_total_resources, CPU, MEMORY, PORTS, PORTS_UDP};
use crate::domain::state::{cluster_is_active, StateView};
use crate::domain::{tags, task_definition};
use crate::proto::log::event::Kind;
use crate::proto::log::{
    ClusterCreated, ClusterDeleted, ContainerInstanceDeregistered, ContainerInstanceRegistered, TagsChanged,
    TaskChanged, TaskDefinitionDeregistered, TaskDefinitionRegistered,
};
use crate::proto::state::ContainerInstanceRecord;
use crate::proto::v1::*;

/// The built-in capacity providers every cluster may associate.
pub(crate) const BUILT_IN_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

pub(super) fn create_cluster(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &CreateClusterRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let name = request.cluster_name.clone().unwrap_or_else(|| "default".to_string());
    validate_name("clusterName", "Cluster name", &name)?;
    tags::validate_tags("tags", &request.tags)?;
    for (i, setting) in request.settings.iter().enumerate() {
        if setting.name.is_none() {
            return Err(missing(
                &format!("settings[{i}].name"),
                "name the setting (containerInsights).",
            ));
        }
        super::check_enum::<ClusterSettingName>(&format!("settings[{i}].name"), setting.name)?;
        match setting.value.as_deref() {
            Some("enhanced" | "enabled" | "disabled") => {}
            other => {
                return Err(DomainError::invalid_parameter(
                    format!("settings[{i}].value"),
                    format!(
                        "containerInsights value '{}' is invalid; use enhanced, enabled or disabled.",
                        printable(other.unwrap_or(""))
                    ),
                ))
            }
        }
    }
    for (i, provider) in request.capacity_providers.iter().enumerate() {
        if !BUILT_IN_PROVIDERS.contains(&provider.as_str()) {
            return Err(DomainError::invalid_parameter(
                format!("capacityProviders[{i}]"),
                format!(
                    "Capacity provider '{}' does not exist; taskledger offers FARGATE and FARGATE_SPOT.",
                    printable(provider)
                ),
            ));
        }
    }
    validate_strategy(
        "defaultCapacityProviderStrategy",
        &request.default_capacity_provider_strategy,
    )?;
    for (i, item) in request.default_capacity_provider_strategy.iter().enumerate() {
        let provider = item.capacity_provider.as_deref().unwrap_or_default();
        if !request.capacity_providers.iter().any(|p| p == provider) {
            return Err(DomainError::invalid_parameter(
                format!("defaultCapacityProviderStrategy[{i}].capacityProvider"),
                format!(
                    "Capacity provider '{}' must also be listed in capacityProviders.",
                    printable(provider)
                ),
            ));
        }
    }
    if let Some(existing) = state.cluster(scope, &name)? {
        if cluster_is_active(&existing) {
            let cluster = existing.cluster.unwrap_or_default();
            return Ok(Decision {
                events: vec![],
                reply: Reply::CreateCluster(CreateClusterResponse { cluster: Some(cluster) }),
            });
        }
    }
    if state.active_cluster_count(scope)? >= CLUSTERS_MAX {
        return Err(DomainError::new(
            EcsException::LimitExceededException,
            format!(
                "This account already has {CLUSTERS_MAX} clusters in {}; delete one first.",
                scope.region()
            ),
        ));
    }
    let settings = if request.settings.is_empty() {
        vec![ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights as i32),
            value: Some("disabled".to_string()),
        }]
    } else {
        request.settings.clone()
    };
    let cluster = Cluster {
        cluster_arn: Some(scope.cluster_arn(&name)),
        cluster_name: Some(name),
        status: Some("ACTIVE".to_string()),
        registered_container_instances_count: Some(0),
        running_tasks_count: Some(0),
        pending_tasks_count: Some(0),
        active_services_count: Some(0),
        tags: request.tags.clone(),
        settings,
        configuration: request.configuration.clone(),
        capacity_providers: request.capacity_providers.clone(),
        default_capacity_provider_strategy: request.default_capacity_provider_strategy.clone(),
        service_connect_defaults: request
            .service_connect_defaults
            .as_ref()
            .map(|d| ClusterServiceConnectDefaults {
                namespace: d.namespace.clone(),
            }),
        ..Default::default()
    };
    Ok(Decision {
        events: vec![event(Kind::ClusterCreated(ClusterCreated {
            cluster: Some(cluster.clone()),
        }))],
        reply: Reply::CreateCluster(CreateClusterResponse { cluster: Some(cluster) }),
    })
}

/// Checks a capacity provider strategy's shape (ECS_SEMANTICS §2.1).
pub(crate) fn validate_strategy(field: &str, strategy: &[CapacityProviderStrategyItem]) -> DomainResult<()> {
    if strategy.len() > CAPACITY_PROVIDER_STRATEGY_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!("A capacity provider strategy has at most {CAPACITY_PROVIDER_STRATEGY_MAX} items."),
        ));
    }
    let mut with_base = 0;
    for (i, item) in strategy.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if item.capacity_provider.as_deref().unwrap_or("").is_empty() {
            return Err(missing(
                &format!("{at}.capacityProvider"),
                "name the capacity provider.",
            ));
        }
        if !(0..=1000).contains(&item.weight.unwrap_or(0)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.weight"),
                "weight must be between 0 and 1000.",
            ));
        }
        if !(0..=100_000).contains(&item.base.unwrap_or(0)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.base"),
                "base must be between 0 and 100000.",
            ));
        }
        if item.base.unwrap_or(0) > 0 {
            with_base += 1;
        }
        if strategy[..i]
            .iter()
            .any(|o| o.capacity_provider == item.capacity_provider)
        {
            return Err(DomainError::invalid_parameter(
                format!("{at}.capacityProvider"),
                "Each capacity provider may appear once in a strategy.",
            ));
        }
    }
    if with_base > 1 {
        return Err(DomainError::invalid_parameter(
            field,
            "Only one capacity provider in a strategy can have a base.",
        ));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight.unwrap_or(0) == 0) {
        return Err(DomainError::invalid_parameter(
            field,
            "At least one capacity provider in a strategy needs a weight greater than 0.",
        ));
    }
    Ok(())
}

pub(super) fn delete_cluster(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeleteClusterRequest,
) -> DomainResult<Decision> {
    let input = request
        .cluster
        .as_deref()
        .ok_or_else(|| missing("cluster", "name the cluster to delete."))?;
    let (name, record) = active_cluster(state, &ctx.scope, Some(input))?;
    let mut cluster = record.cluster.unwrap_or_default();
    if cluster.registered_container_instances_count.unwrap_or(0) > 0 {
        return Err(DomainError::new(
            EcsException::ClusterContainsContainerInstancesException,
            "The Cluster cannot be deleted while Container Instances are active.",
        )
        .hint(format!(
            "Cluster '{name}' still has {} registered container instances; deregister them first.",
            cluster.registered_container_instances_count.unwrap_or(0)
        )));
    }
    if record.unstopped_tasks > 0 {
        return Err(DomainError::new(
            EcsException::ClusterContainsTasksException,
            "The Cluster cannot be deleted while Tasks are active.",
        )
        .hint(format!(
            "Cluster '{name}' still has {} tasks that are not STOPPED; stop them and wait for STOPPED first.",
            record.unstopped_tasks
        )));
    }
    let arn = ctx.scope.cluster_arn(&name);
    cluster.status = Some("INACTIVE".to_string());
    Ok(Decision {
        events: vec![event(Kind::ClusterDeleted(ClusterDeleted { cluster_arn: arn }))],
        reply: Reply::DeleteCluster(DeleteClusterResponse { cluster: Some(cluster) }),
    })
}

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

pub(super) fn register_container_instance(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &RegisterContainerInstanceRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let (cluster, _) = active_cluster(state, scope, request.cluster.as_deref())?;
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
fn registered_instance(
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
    let (cluster, _) = active_cluster(state, scope, request.cluster.as_deref())?;
    let input = request
        .container_instance
        .as_deref()
        .ok_or_else(|| missing("containerInstance", "name the container instance to deregister."))?;
    let reference = parse_container_instance_ref(scope, "containerInstance", input)?;
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
