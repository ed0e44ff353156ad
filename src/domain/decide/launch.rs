//! Deciding RunTask and StartTask: request validation, clientToken idempotency (ECS_SEMANTICS
//! §10), launch-type resolution, placement on container instances by CPU/MEMORY/ports with ECS
//! `failures`, capacity-provider split for Fargate, and the new tasks themselves.
//! Does not move existing tasks (see `transition`).

use sha2::{Digest, Sha256};

use super::clusters::{validate_strategy, BUILT_IN_PROVIDERS};
use super::placement::*;
use super::{active_cluster, check_length, check_started_by, missing, resolve_task_definition, TaskDefinitionUse};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{attachment_id_of_task, parse_container_instance_ref, printable, Scope};
use crate::domain::limits::*;
use crate::domain::resources::{self, Needs};
use crate::domain::state::StateView;
use crate::domain::{tags, task_definition};
use crate::proto::log::event::Kind;
use crate::proto::log::{ClientTokenRecorded, Reservation, TaskCreated};
use crate::proto::state::ClusterRecord;
use crate::proto::v1::*;

/// The members RunTask and StartTask share, borrowed from either request.
struct Launch<'a> {
    task_definition: Option<&'a str>,
    overrides: Option<&'a TaskOverride>,
    group: Option<&'a str>,
    started_by: Option<&'a str>,
    network_configuration: Option<&'a NetworkConfiguration>,
    tags: &'a [Tag],
    propagate_tags: Option<i32>,
    enable_ecs_managed_tags: bool,
    enable_execute_command: bool,
    reference_id: Option<&'a str>,
    volume_configurations: &'a [TaskVolumeConfiguration],
    placement_constraints: &'a [PlacementConstraint],
}

/// The task definition and cluster a launch resolved to, with what each task needs.
struct Resolved {
    cluster: String,
    cluster_record: ClusterRecord,
    definition: TaskDefinition,
    definition_tags: Vec<Tag>,
    needs: Needs,
}

pub(super) fn run_task(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &RunTaskRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let launch = Launch {
        task_definition: request.task_definition.as_deref(),
        overrides: request.overrides.as_ref(),
        group: request.group.as_deref(),
        started_by: request.started_by.as_deref(),
        network_configuration: request.network_configuration.as_ref(),
        tags: &request.tags,
        propagate_tags: request.propagate_tags,
        enable_ecs_managed_tags: request.enable_ecs_managed_tags == Some(true),
        enable_execute_command: request.enable_execute_command == Some(true),
        reference_id: request.reference_id.as_deref(),
        volume_configurations: &request.volume_configurations,
        placement_constraints: &request.placement_constraints,
    };
    validate_launch_shape(&launch, STARTED_BY_RUN_TASK_MAX)?;
    let count = request.count.unwrap_or(1);
    if !(1..=RUN_TASK_COUNT_MAX).contains(&count) {
        return Err(DomainError::invalid_parameter(
            "count",
            format!("count must be between 1 and {RUN_TASK_COUNT_MAX}; got {count}."),
        ));
    }
    if request.launch_type.is_some() && !request.capacity_provider_strategy.is_empty() {
        return Err(DomainError::invalid_parameter(
            "launchType",
            "Specify either launchType or capacityProviderStrategy, not both.",
        ));
    }
    let launch_type = match request.launch_type {
        None => None,
        Some(v) => match LaunchType::try_from(v) {
            Ok(LaunchType::ManagedInstances) => {
                return Err(DomainError::invalid_parameter(
                    "launchType",
                    "MANAGED_INSTANCES is reached through a capacity provider strategy, not launchType.",
                ))
            }
            Ok(LaunchType::Unspecified) | Err(_) => {
                return Err(DomainError::invalid_parameter(
                    "launchType",
                    "launchType must be EC2, FARGATE or EXTERNAL.",
                ))
            }
            Ok(t) => Some(t),
        },
    };
    validate_strategy("capacityProviderStrategy", &request.capacity_provider_strategy)?;
    if let Some(token) = request.client_token.as_deref() {
        if token.is_empty() || token.len() > CLIENT_TOKEN_MAX || !token.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(DomainError::invalid_parameter(
                "clientToken",
                format!(
                    "clientToken must be 1 to {CLIENT_TOKEN_MAX} printable ASCII characters without spaces; got '{}'.",
                    printable(token)
                ),
            ));
        }
    }
    if request.placement_strategy.len() > PLACEMENT_STRATEGIES_MAX {
        return Err(DomainError::invalid_parameter(
            "placementStrategy",
            format!("At most {PLACEMENT_STRATEGIES_MAX} placement strategies are allowed."),
        ));
    }
    for (i, strategy) in request.placement_strategy.iter().enumerate() {
        validate_placement_strategy(i, strategy)?;
    }
    let platform_version = match request.platform_version.as_deref() {
        None | Some("LATEST") | Some("1.4.0") => "1.4.0",
        Some("1.3.0") => "1.3.0",
        Some(other) => {
            return Err(DomainError::new(
                EcsException::PlatformUnknownException,
                format!(
                    "Platform version '{}' does not exist; use LATEST, 1.4.0 or 1.3.0.",
                    printable(other)
                ),
            )
            .at("platformVersion"))
        }
    };

    let (cluster, cluster_record) = active_cluster(state, scope, request.cluster.as_deref())?;
    let cluster_arn = scope.cluster_arn(&cluster);
    let fingerprint = run_task_fingerprint(request, &cluster_arn);
    if let Some(token) = request.client_token.as_deref() {
        if let Some(record) = state.client_token(&cluster_arn, token)? {
            let recorded = record.recorded_at.map(|t| t.seconds).unwrap_or(i64::MIN);
            if ctx.now.seconds.saturating_sub(recorded) < CLIENT_TOKEN_TTL_SECONDS {
                if record.fingerprint != fingerprint {
                    return Err(DomainError {
                        exception: EcsException::ConflictException,
                        message: format!(
                            "clientToken '{}' was already used in cluster '{cluster}' with different \
                             parameters; retry with the original parameters or use a new token.",
                            printable(token)
                        ),
                        hint: None,
                        field: Some("clientToken".to_string()),
                        resource_ids: record.task_arns,
                    });
                }
                // The same request again: the original tasks as they are now, nothing appended.
                let mut tasks = Vec::new();
                for arn in &record.task_arns {
                    if let Some(task) = state.task(crate::domain::ids::stored_id_of(arn))?.and_then(|r| r.task) {
                        tasks.push(task);
                    }
                }
                return Ok(Decision {
                    events: vec![],
                    reply: Reply::RunTask(RunTaskResponse {
                        tasks,
                        failures: record.failures,
                    }),
                });
            }
        }
    }

    let resolved = resolve(state, scope, cluster, cluster_record, &launch)?;
    let plan = launch_plan(&resolved, launch_type, &request.capacity_provider_strategy, count)?;
    check_network(
        &resolved.definition,
        launch.network_configuration,
        plan.iter().any(|p| p.launch_type == LaunchType::Fargate),
    )?;

    let mut placements: Vec<Option<Placement>> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let on_instances = plan.iter().filter(|p| p.launch_type != LaunchType::Fargate).count();
    if on_instances > 0 {
        let constraints: Vec<PlacementConstraint> = resolved
            .definition
            .placement_constraints
            .iter()
            .map(|c| PlacementConstraint {
                r#type: Some(PlacementConstraintType::MemberOf as i32),
                expression: c.expression.clone(),
            })
            .chain(request.placement_constraints.iter().cloned())
            .collect();
        let instances = load_instances(state, scope, &resolved.cluster)?;
        if instances.is_empty() {
            return Err(DomainError::invalid_parameter(
                "cluster",
                "No Container Instances were found in your cluster.",
            )
            .hint("Register one with RegisterContainerInstance, or launch with FARGATE."));
        }
        let chosen = place(
            instances,
            &resolved.needs,
            &constraints,
            &request.placement_strategy,
            on_instances,
            ctx,
            &mut failures,
        )?;
        placements.extend(chosen.into_iter().map(Some));
    }
    let mut instance_slots = placements.into_iter();
    let mut tasks = Vec::new();
    let mut events = Vec::new();
    for (index, slot) in plan.iter().enumerate() {
        let placement = if slot.launch_type == LaunchType::Fargate {
            None
        } else {
            match instance_slots.next() {
                Some(p) => p,
                None => continue,
            }
        };
        let (task, reservation) = build_task(
            ctx,
            &resolved,
            &launch,
            index as u64,
            slot,
            placement.as_ref(),
            platform_version,
        );
        events.push(event(Kind::TaskCreated(TaskCreated {
            task: Some(task.clone()),
            reservation,
        })));
        tasks.push(task);
    }
    if let Some(token) = request.client_token.as_deref() {
        events.push(event(Kind::ClientTokenRecorded(ClientTokenRecorded {
            cluster_arn,
            client_token: token.to_string(),
            fingerprint,
            task_arns: tasks.iter().filter_map(|t| t.task_arn.clone()).collect(),
            failures: failures.clone(),
        })));
    }
    Ok(Decision {
        events,
        reply: Reply::RunTask(RunTaskResponse { tasks, failures }),
    })
}

/// SHA-256 of RunTask's canonical form: the request as given, minus `clientToken`, with the
/// cluster resolved to its ARN and `count` defaulted. The task definition is fingerprinted as
/// written (a bare family stays a family), so a retry is judged on what the caller sent.
pub fn run_task_fingerprint(request: &RunTaskRequest, cluster_arn: &str) -> Vec<u8> {
    let canonical = RunTaskRequest {
        client_token: None,
        cluster: Some(cluster_arn.to_string()),
        count: Some(request.count.unwrap_or(1)),
        ..request.clone()
    };
    Sha256::digest(prost::Message::encode_to_vec(&canonical)).to_vec()
}

pub(super) fn start_task(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &StartTaskRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let launch = Launch {
        task_definition: request.task_definition.as_deref(),
        overrides: request.overrides.as_ref(),
        group: request.group.as_deref(),
        started_by: request.started_by.as_deref(),
        network_configuration: request.network_configuration.as_ref(),
        tags: &request.tags,
        propagate_tags: request.propagate_tags,
        enable_ecs_managed_tags: request.enable_ecs_managed_tags == Some(true),
        enable_execute_command: request.enable_execute_command == Some(true),
        reference_id: request.reference_id.as_deref(),
        volume_configurations: &request.volume_configurations,
        placement_constraints: &[],
    };
    validate_launch_shape(&launch, STARTED_BY_START_TASK_MAX)?;
    if request.container_instances.is_empty() || request.container_instances.len() > START_TASK_INSTANCES_MAX {
        return Err(DomainError::invalid_parameter(
            "containerInstances",
            format!(
                "containerInstances must list 1 to {START_TASK_INSTANCES_MAX} container instances; got {}.",
                request.container_instances.len()
            ),
        ));
    }
    let (cluster, cluster_record) = active_cluster(state, scope, request.cluster.as_deref())?;
    let resolved = resolve(state, scope, cluster, cluster_record, &launch)?;
    if !task_definition::supports_launch_type(&resolved.definition, LaunchType::Ec2) {
        return Err(DomainError::invalid_parameter(
            "taskDefinition",
            "Task definition does not support launch_type EC2, which StartTask uses.",
        ));
    }
    check_network(&resolved.definition, launch.network_configuration, false)?;
    let slot = Slot {
        launch_type: LaunchType::Ec2,
        provider: None,
    };
    let mut failures = Vec::new();
    let mut tasks = Vec::new();
    let mut events = Vec::new();
    let mut taken: Vec<(String, ContainerInstance)> = Vec::new();
    for (i, input) in request.container_instances.iter().enumerate() {
        let reference = parse_container_instance_ref(scope, &format!("containerInstances[{i}]"), input)?;
        let arn = scope.container_instance_arn(&resolved.cluster, &reference.id);
        let fail = |reason: &str| Failure {
            arn: Some(arn.clone()),
            reason: Some(reason.to_string()),
            detail: None,
        };
        let current = taken
            .iter()
            .find(|(id, _)| *id == reference.id)
            .map(|(_, ci)| ci.clone());
        let instance = match current {
            Some(ci) => Some(ci),
            None => state
                .container_instance(&reference.id)?
                .and_then(|r| r.container_instance)
                .filter(|ci| ci.container_instance_arn.as_deref() == Some(arn.as_str()))
                .filter(|_| reference.cluster.as_deref().is_none_or(|c| c == resolved.cluster)),
        };
        let Some(mut instance) = instance else {
            failures.push(fail("MISSING"));
            continue;
        };
        if let Some(reason) = unavailable(&instance) {
            failures.push(fail(reason));
            continue;
        }
        let constraints: Vec<PlacementConstraint> = resolved
            .definition
            .placement_constraints
            .iter()
            .map(|c| PlacementConstraint {
                r#type: Some(PlacementConstraintType::MemberOf as i32),
                expression: c.expression.clone(),
            })
            .collect();
        if !constraints.iter().all(|c| satisfies(&instance, c)) {
            failures.push(fail("ATTRIBUTE"));
            continue;
        }
        if let Some(reason) = resources::shortfall(&instance, &resolved.needs) {
            failures.push(fail(reason));
            continue;
        }
        let reservation = reservation_for(&arn, &resolved.needs);
        resources::apply_reservation(&mut instance, &reservation, true);
        let placement = Placement {
            instance: instance.clone(),
            reservation,
        };
        let (task, reservation) = build_task(ctx, &resolved, &launch, i as u64, &slot, Some(&placement), "1.4.0");
        events.push(event(Kind::TaskCreated(TaskCreated {
            task: Some(task.clone()),
            reservation,
        })));
        tasks.push(task);
        taken.retain(|(id, _)| *id != reference.id);
        taken.push((reference.id, instance));
    }
    Ok(Decision {
        events,
        reply: Reply::StartTask(StartTaskResponse { tasks, failures }),
    })
}

/// Shape checks RunTask and StartTask share (ECS_SEMANTICS §2.1 step 1).
fn validate_launch_shape(launch: &Launch, started_by_max: usize) -> DomainResult<()> {
    if launch.task_definition.unwrap_or("").is_empty() {
        return Err(missing(
            "taskDefinition",
            "name a family, family:revision or task-definition ARN.",
        ));
    }
    tags::validate_tags("tags", launch.tags)?;
    super::check_enum::<PropagateTags>("propagateTags", launch.propagate_tags)?;
    check_started_by(launch.started_by, started_by_max)?;
    check_length("group", launch.group, GROUP_MAX)?;
    if launch.group == Some("") {
        return Err(DomainError::invalid_parameter(
            "group",
            "group cannot be empty; omit it to use family:<family>.",
        ));
    }
    check_length("referenceId", launch.reference_id, FREE_TEXT_MAX)?;
    if launch.propagate_tags == Some(PropagateTags::Service as i32) {
        return Err(DomainError::invalid_parameter(
            "propagateTags",
            "propagateTags SERVICE is only for services; use TASK_DEFINITION or NONE.",
        ));
    }
    if let Some(network) = launch.network_configuration {
        let vpc = network.awsvpc_configuration.as_ref().ok_or_else(|| {
            missing(
                "networkConfiguration.awsvpcConfiguration",
                "give the subnets (and security groups) for the task.",
            )
        })?;
        if vpc.subnets.is_empty() || vpc.subnets.len() > SUBNETS_MAX {
            return Err(DomainError::invalid_parameter(
                "networkConfiguration.awsvpcConfiguration.subnets",
                format!("List 1 to {SUBNETS_MAX} subnets; got {}.", vpc.subnets.len()),
            ));
        }
        if vpc.security_groups.len() > SECURITY_GROUPS_MAX {
            return Err(DomainError::invalid_parameter(
                "networkConfiguration.awsvpcConfiguration.securityGroups",
                format!(
                    "At most {SECURITY_GROUPS_MAX} security groups are allowed; got {}.",
                    vpc.security_groups.len()
                ),
            ));
        }
        for (i, text) in vpc.subnets.iter().chain(vpc.security_groups.iter()).enumerate() {
            if text.is_empty() || text.len() > 255 {
                return Err(DomainError::invalid_parameter(
                    "networkConfiguration.awsvpcConfiguration",
                    format!("Subnet and security-group ids must be 1 to 255 characters (entry {i})."),
                ));
            }
        }
    }
    if let Some(overrides) = launch.overrides {
        let size = crate::ecs_json::json_len(overrides);
        if size > OVERRIDES_JSON_MAX {
            return Err(DomainError::invalid_parameter(
                "overrides",
                format!("overrides is {size} characters as JSON; at most {OVERRIDES_JSON_MAX} are allowed."),
            ));
        }
    }
    if launch.placement_constraints.len() > PLACEMENT_CONSTRAINTS_MAX {
        return Err(DomainError::invalid_parameter(
            "placementConstraints",
            format!("At most {PLACEMENT_CONSTRAINTS_MAX} placement constraints are allowed."),
        ));
    }
    for (i, constraint) in launch.placement_constraints.iter().enumerate() {
        let at = format!("placementConstraints[{i}]");
        match constraint
            .r#type
            .and_then(|t| PlacementConstraintType::try_from(t).ok())
        {
            Some(PlacementConstraintType::DistinctInstance) if constraint.expression.is_some() => {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.expression"),
                    "distinctInstance takes no expression.",
                ))
            }
            Some(PlacementConstraintType::DistinctInstance) => {}
            Some(PlacementConstraintType::MemberOf) => {
                let expression = constraint.expression.as_deref().unwrap_or("");
                if expression.is_empty() || expression.len() > 2000 {
                    return Err(DomainError::invalid_parameter(
                        format!("{at}.expression"),
                        "memberOf needs an expression of 1 to 2000 characters.",
                    ));
                }
                parse_expression(&format!("{at}.expression"), expression)?;
            }
            _ => return Err(missing(&format!("{at}.type"), "use distinctInstance or memberOf.")),
        }
    }
    Ok(())
}

fn validate_placement_strategy(i: usize, strategy: &PlacementStrategy) -> DomainResult<()> {
    let at = format!("placementStrategy[{i}]");
    let field = strategy.field.as_deref();
    match strategy.r#type.and_then(|t| PlacementStrategyType::try_from(t).ok()) {
        Some(PlacementStrategyType::Random) if field.is_none() => Ok(()),
        Some(PlacementStrategyType::Binpack)
            if matches!(field.map(str::to_ascii_lowercase).as_deref(), Some("cpu" | "memory")) =>
        {
            Ok(())
        }
        Some(PlacementStrategyType::Spread)
            if field.is_some_and(|f| matches!(f, "instanceId" | "host") || f.starts_with("attribute:")) =>
        {
            Ok(())
        }
        Some(PlacementStrategyType::Random) => Err(DomainError::invalid_parameter(
            format!("{at}.field"),
            "random takes no field.",
        )),
        Some(PlacementStrategyType::Binpack) => Err(DomainError::invalid_parameter(
            format!("{at}.field"),
            "binpack needs field cpu or memory.",
        )),
        Some(PlacementStrategyType::Spread) => Err(DomainError::invalid_parameter(
            format!("{at}.field"),
            "spread needs field instanceId, host or attribute:<name>.",
        )),
        _ => Err(missing(&format!("{at}.type"), "use random, spread or binpack.")),
    }
}

/// Resolves the task definition and checks what depends on it (overrides, exec, volumes).
fn resolve(
    state: &impl StateView,
    scope: &Scope,
    cluster: String,
    cluster_record: ClusterRecord,
    launch: &Launch,
) -> DomainResult<Resolved> {
    let input = launch.task_definition.unwrap_or_default();
    let record = resolve_task_definition(state, scope, "taskDefinition", input, TaskDefinitionUse::Launch)?;
    let definition = record.task_definition.unwrap_or_default();
    if let Some(overrides) = launch.overrides {
        task_definition::validate_overrides(&definition, overrides)?;
    }
    if launch.enable_execute_command
        && definition.task_role_arn.is_none()
        && launch.overrides.and_then(|o| o.task_role_arn.as_ref()).is_none()
    {
        return Err(DomainError::invalid_parameter(
            "enableExecuteCommand",
            "enableExecuteCommand needs a task role: set taskRoleArn in the task definition or in overrides.",
        ));
    }
    for (i, volume) in launch.volume_configurations.iter().enumerate() {
        let name = volume.name.as_deref().unwrap_or("");
        let configured = definition
            .volumes
            .iter()
            .any(|v| v.name.as_deref() == Some(name) && v.configured_at_launch == Some(true));
        if !configured {
            return Err(DomainError::invalid_parameter(
                format!("volumeConfigurations[{i}].name"),
                format!(
                    "Volume '{}' is not a volume marked configuredAtLaunch in the task definition.",
                    printable(name)
                ),
            ));
        }
    }
    let needs = {
        let r = task_definition::resources(&definition, launch.overrides);
        Needs {
            cpu: r.cpu,
            memory: r.memory,
            tcp_ports: r.tcp_ports,
            udp_ports: r.udp_ports,
        }
    };
    Ok(Resolved {
        cluster,
        cluster_record,
        definition,
        definition_tags: record.tags,
        needs,
    })
}

/// How one task of the request is launched.
#[derive(Debug, Clone)]
struct Slot {
    launch_type: LaunchType,
    provider: Option<String>,
}

/// Decides each task's launch type (and capacity provider), in request order.
fn launch_plan(
    resolved: &Resolved,
    launch_type: Option<LaunchType>,
    strategy: &[CapacityProviderStrategyItem],
    count: i32,
) -> DomainResult<Vec<Slot>> {
    let cluster = resolved.cluster_record.cluster.clone().unwrap_or_default();
    let (strategy, field) = if !strategy.is_empty() {
        (strategy.to_vec(), "capacityProviderStrategy")
    } else if launch_type.is_none() && !cluster.default_capacity_provider_strategy.is_empty() {
        (cluster.default_capacity_provider_strategy.clone(), "cluster")
    } else {
        let launch_type = launch_type.unwrap_or(LaunchType::Ec2);
        check_compatible(&resolved.definition, launch_type)?;
        return Ok((0..count)
            .map(|_| Slot {
                launch_type,
                provider: None,
            })
            .collect());
    };
    for (i, item) in strategy.iter().enumerate() {
        let provider = item.capacity_provider.as_deref().unwrap_or_default();
        if !BUILT_IN_PROVIDERS.contains(&provider) || !cluster.capacity_providers.iter().any(|p| p == provider) {
            return Err(DomainError::invalid_parameter(
                format!("{field}[{i}].capacityProvider"),
                format!(
                    "Capacity provider '{}' is not associated with cluster '{}'; associate FARGATE or \
                     FARGATE_SPOT with the cluster first.",
                    printable(provider),
                    resolved.cluster
                ),
            ));
        }
    }
    check_compatible(&resolved.definition, LaunchType::Fargate)?;
    // Base first, then by weight: each next task goes to the provider furthest below its share.
    let mut placed = vec![0i64; strategy.len()];
    let mut slots = Vec::new();
    for _ in 0..count {
        let index = strategy
            .iter()
            .enumerate()
            .position(|(i, item)| placed[i] < i64::from(item.base.unwrap_or(0)))
            .unwrap_or_else(|| {
                let weights: Vec<i64> = strategy.iter().map(|i| i64::from(i.weight.unwrap_or(0))).collect();
                let total: i64 = weights.iter().sum::<i64>().max(1);
                let all: i64 = placed.iter().sum::<i64>() + 1;
                (0..strategy.len())
                    .filter(|i| weights[*i] > 0)
                    .max_by_key(|i| {
                        (
                            weights[*i] * all * 1000 / total - placed[*i] * 1000,
                            std::cmp::Reverse(*i),
                        )
                    })
                    .unwrap_or(0)
            });
        placed[index] += 1;
        slots.push(Slot {
            launch_type: LaunchType::Fargate,
            provider: strategy[index].capacity_provider.clone(),
        });
    }
    Ok(slots)
}

fn check_compatible(definition: &TaskDefinition, launch_type: LaunchType) -> DomainResult<()> {
    if task_definition::supports_launch_type(definition, launch_type) {
        return Ok(());
    }
    let name = match launch_type {
        LaunchType::Fargate => "FARGATE",
        LaunchType::External => "EXTERNAL",
        LaunchType::ManagedInstances => "MANAGED_INSTANCES",
        LaunchType::Ec2 | LaunchType::Unspecified => "EC2",
    };
    Err(DomainError::invalid_parameter(
        "launchType",
        format!("Task definition does not support launch_type {name}."),
    )
    .hint(format!(
        "Register a revision that lists {name} in requiresCompatibilities, or launch it another way."
    )))
}

/// awsvpc tasks need a network configuration; other modes must not have one.
fn check_network(
    definition: &TaskDefinition,
    network: Option<&NetworkConfiguration>,
    fargate: bool,
) -> DomainResult<()> {
    let awsvpc = definition.network_mode == Some(NetworkMode::Awsvpc as i32);
    match (awsvpc, network.is_some()) {
        (true, false) => {
            let error = DomainError::invalid_parameter(
                "networkConfiguration",
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            );
            Err(if fargate {
                error.hint("Fargate tasks always use awsvpc: give awsvpcConfiguration with subnets.")
            } else {
                error
            })
        }
        (false, true) => Err(DomainError::invalid_parameter(
            "networkConfiguration",
            "Network Configuration is only for task definitions with networkMode 'awsvpc'; remove it.",
        )),
        _ => Ok(()),
    }
}

/// Builds task number `index` of a launch, as it starts (version 1).
fn build_task(
    ctx: &CommandContext,
    resolved: &Resolved,
    launch: &Launch,
    index: u64,
    slot: &Slot,
    placement: Option<&Placement>,
    platform_version: &str,
) -> (Task, Option<Reservation>) {
    let scope = &ctx.scope;
    let definition = &resolved.definition;
    let task_id = ctx.seed.resource_id(index);
    let task_arn = scope.task_arn(&resolved.cluster, &task_id);
    let family = definition.family.clone().unwrap_or_default();
    let awsvpc = definition.network_mode == Some(NetworkMode::Awsvpc as i32);
    let fargate = slot.launch_type == LaunchType::Fargate;
    let overrides = launch.overrides.cloned().unwrap_or_default();
    let container_override = |name: &str| {
        overrides
            .container_overrides
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    };

    let containers = definition
        .container_definitions
        .iter()
        .enumerate()
        .map(|(j, def)| {
            let name = def.name.clone().unwrap_or_default();
            let o = container_override(&name);
            Container {
                container_arn: Some(scope.container_arn(
                    &resolved.cluster,
                    &task_id,
                    &ctx.seed.uuid(100 + index * 16 + j as u64),
                )),
                task_arn: Some(task_arn.clone()),
                name: Some(name.clone()),
                image: def.image.clone(),
                last_status: Some("PENDING".to_string()),
                health_status: Some(HealthStatus::Unknown as i32),
                cpu: Some(o.and_then(|o| o.cpu).or(def.cpu).unwrap_or(0).to_string()),
                memory: o.and_then(|o| o.memory).or(def.memory).map(|m| m.to_string()),
                memory_reservation: o
                    .and_then(|o| o.memory_reservation)
                    .or(def.memory_reservation)
                    .map(|m| m.to_string()),
                ..Default::default()
            }
        })
        .collect();
    let container_overrides = definition
        .container_definitions
        .iter()
        .map(|def| {
            let name = def.name.clone().unwrap_or_default();
            container_override(&name).cloned().unwrap_or(ContainerOverride {
                name: Some(name),
                ..Default::default()
            })
        })
        .collect();

    let mut task_tags: Vec<Tag> = Vec::new();
    if launch.propagate_tags == Some(PropagateTags::TaskDefinition as i32) {
        task_tags = resolved.definition_tags.clone();
    }
    for tag in launch.tags {
        match task_tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value.clone(),
            None => task_tags.push(tag.clone()),
        }
    }
    if launch.enable_ecs_managed_tags {
        task_tags.push(Tag {
            key: Some("aws:ecs:clusterName".into()),
            value: Some(resolved.cluster.clone()),
        });
    }

    let attachments = if awsvpc {
        let subnet = launch
            .network_configuration
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .and_then(|v| v.subnets.first().cloned());
        vec![Attachment {
            id: Some(attachment_id_of_task(&task_id)),
            r#type: Some("ElasticNetworkInterface".to_string()),
            status: Some("PRECREATED".to_string()),
            details: subnet
                .map(|s| KeyValuePair {
                    name: Some("subnetId".into()),
                    value: Some(s),
                })
                .into_iter()
                .collect(),
        }]
    } else {
        Vec::new()
    };
    let availability_zone = match placement {
        Some(p) => attribute_value(&p.instance, "ecs.availability-zone").map(str::to_string),
        None => Some(format!("{}a", scope.region())),
    };
    let starts_provisioning = awsvpc || fargate || slot.provider.is_some();
    let task = Task {
        task_arn: Some(task_arn.clone()),
        cluster_arn: Some(scope.cluster_arn(&resolved.cluster)),
        task_definition_arn: definition.task_definition_arn.clone(),
        container_instance_arn: placement.map(|p| p.reservation.container_instance_arn.clone()),
        capacity_provider_name: slot.provider.clone(),
        launch_type: Some(slot.launch_type as i32),
        platform_version: fargate.then(|| platform_version.to_string()),
        platform_family: fargate.then(|| "Linux".to_string()),
        availability_zone,
        group: Some(
            launch
                .group
                .map(str::to_string)
                .unwrap_or_else(|| format!("family:{family}")),
        ),
        started_by: launch.started_by.map(str::to_string),
        overrides: Some(TaskOverride {
            container_overrides,
            ..overrides.clone()
        }),
        cpu: overrides.cpu.clone().or_else(|| definition.cpu.clone()),
        memory: overrides.memory.clone().or_else(|| definition.memory.clone()),
        containers,
        desired_status: Some("RUNNING".to_string()),
        last_status: Some(if starts_provisioning { "PROVISIONING" } else { "PENDING" }.to_string()),
        created_at: Some(ctx.now),
        version: Some(1),
        attachments,
        tags: task_tags,
        enable_execute_command: Some(launch.enable_execute_command),
        health_status: Some(HealthStatus::Unknown as i32),
        ephemeral_storage: if fargate {
            Some(
                definition
                    .ephemeral_storage
                    .unwrap_or(EphemeralStorage { size_in_gib: Some(20) }),
            )
        } else {
            None
        },
        ..Default::default()
    };
    (task, placement.map(|p| p.reservation.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberof_expressions_parse_and_match() {
        let instance = ContainerInstance {
            attributes: vec![Attribute {
                name: Some("ecs.instance-type".into()),
                value: Some("t3.micro".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = |e: &str| PlacementConstraint {
            r#type: Some(PlacementConstraintType::MemberOf as i32),
            expression: Some(e.into()),
        };
        assert!(satisfies(&instance, &c("attribute:ecs.instance-type == t3.micro")));
        assert!(!satisfies(&instance, &c("attribute:ecs.instance-type != t3.micro")));
        assert!(satisfies(
            &instance,
            &c("attribute:ecs.instance-type in [t3.micro, t3.small]")
        ));
        assert!(!satisfies(&instance, &c("attribute:gpu exists")));
        assert!(parse_expression("e", "task:group == web").is_err());
    }
}
