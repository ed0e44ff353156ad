//! The rules of task definitions (ECS_SEMANTICS §3.1, §11): turning a RegisterTaskDefinition
//! request into the TaskDefinition ECS would describe (defaults filled in, cpu/memory normalised,
//! `compatibilities` and `requiresAttributes` computed), the resources a task of a definition
//! reserves on a container instance, and the checks on RunTask/StartTask overrides.
//! Does not assign ARNs, revisions, status, times or `registeredBy`, and looks nothing up.
//!
//! This module validates the request as a whole (family, container count, volumes, placement
//! constraints, task-level members, tags) and holds the helpers its parts share; the parts are
//! `container` (container definitions), `ports` (port mappings), `size` (task cpu/memory
//! normalised, container totals against them), `compatibility` (launch-type rules, Fargate
//! sizes, `compatibilities` and `requiresAttributes`), `resources` (what a task reserves on an
//! instance) and `overrides` (RunTask/StartTask overrides).

mod compatibility;
mod container;
#[cfg(test)]
mod fixtures;
mod overrides;
mod ports;
mod resources;
mod size;

use std::ops::RangeInclusive;

use super::error::{DomainError, DomainResult, EcsException};
use super::ids::{printable, validate_name};
use super::limits::{CONTAINERS_PER_TASK_DEFINITION_MAX, PLACEMENT_CONSTRAINTS_MAX};
use super::tags::validate_tags;
use crate::proto::v1::{
    Compatibility, CpuArchitecture, IpcMode, NetworkMode, OsFamily, PidMode, ProxyConfigurationType,
    RegisterTaskDefinitionRequest, Tag, TaskDefinition, TaskDefinitionPlacementConstraintType,
};
use compatibility::{compatibilities, launch_type_problem, requires_attributes};
use container::container;
use size::{check_container_totals, task_size};

pub use compatibility::supports_launch_type;
pub use overrides::validate_overrides;
pub use resources::{resources, TaskResources};
pub use size::{normalise_cpu, normalise_memory};

/// `ephemeralStorage.sizeInGiB`.
const EPHEMERAL_STORAGE_GIB: RangeInclusive<i32> = 21..=200;
/// Length of a placement-constraint `expression`.
const PLACEMENT_EXPRESSION_MAX: usize = 2000;

/// Validates a RegisterTaskDefinition request (ECS_SEMANTICS §3.1) and returns the definition as
/// DescribeTaskDefinition shows it, without the fields the store assigns (`taskDefinitionArn`,
/// `revision`, `status`, `registeredAt`, `registeredBy`), together with the request's tags, which
/// are kept beside the definition. The first violation is returned, in this order: family,
/// container count, each container in order, task-level rules, launch-type rules, tags.
pub fn validate_registration(req: &RegisterTaskDefinitionRequest) -> DomainResult<(TaskDefinition, Vec<Tag>)> {
    // Destructured without `..` so that a new request member cannot be dropped unnoticed.
    let RegisterTaskDefinitionRequest {
        family,
        task_role_arn,
        execution_role_arn,
        network_mode,
        container_definitions,
        volumes,
        placement_constraints,
        requires_compatibilities,
        cpu,
        memory,
        tags,
        pid_mode,
        ipc_mode,
        proxy_configuration,
        inference_accelerators,
        ephemeral_storage,
        runtime_platform,
        enable_fault_injection,
        trusted_execution_configuration,
    } = req;

    let family = family.as_deref().unwrap_or("");
    if family.is_empty() {
        return Err(DomainError::invalid_parameter(
            "family",
            "A task definition needs a family: 1 to 255 letters, digits, hyphens and underscores.",
        ));
    }
    validate_name("family", "Family", family)?;

    if container_definitions.is_empty() || container_definitions.len() > CONTAINERS_PER_TASK_DEFINITION_MAX {
        return Err(DomainError::client_at(
            "containerDefinitions",
            format!(
                "A task definition holds 1 to {CONTAINERS_PER_TASK_DEFINITION_MAX} containers; \
                 the request has {}.",
                container_definitions.len()
            ),
        ));
    }

    let mode = match network_mode {
        None => NetworkMode::Bridge,
        Some(value) => known::<NetworkMode>(*value).ok_or_else(|| {
            DomainError::client_at(
                "networkMode",
                format!("networkMode {value} is not valid; use bridge, host, awsvpc or none."),
            )
        })?,
    };

    let containers = container_definitions
        .iter()
        .enumerate()
        .map(|(i, c)| container(i, c, req, mode))
        .collect::<DomainResult<Vec<_>>>()?;
    if !containers.iter().any(|c| c.essential == Some(true)) {
        return Err(DomainError::client_at(
            "containerDefinitions",
            "A task definition needs at least one essential container; set essential to true \
             (or leave it out, which means true) on at least one of them.",
        ));
    }

    let task_cpu = task_size(
        "cpu",
        cpu.as_deref(),
        normalise_cpu,
        "CPU units ('1024') or vCPUs ('1 vCPU', '0.25 vCPU')",
    )?;
    let task_memory = task_size(
        "memory",
        memory.as_deref(),
        normalise_memory,
        "MiB ('2048') or GB ('2 GB', '0.5GB')",
    )?;
    check_container_totals(&containers, task_cpu, task_memory)?;

    check_volumes(req)?;
    check_placement_constraints(req)?;
    check_enum::<PidMode>("pidMode", *pid_mode, "host or task")?;
    check_enum::<IpcMode>("ipcMode", *ipc_mode, "host, task or none")?;
    if let Some(proxy) = proxy_configuration {
        check_enum::<ProxyConfigurationType>("proxyConfiguration.type", proxy.r#type, "APPMESH")?;
        let name = proxy.container_name.as_deref().unwrap_or("");
        if !containers.iter().any(|c| c.name.as_deref() == Some(name)) {
            return Err(DomainError::client_at(
                "proxyConfiguration.containerName",
                format!(
                    "proxyConfiguration.containerName '{}' must name a container of this task \
                     definition.",
                    printable(name)
                ),
            ));
        }
    }
    if let Some(platform) = runtime_platform {
        check_enum::<CpuArchitecture>(
            "runtimePlatform.cpuArchitecture",
            platform.cpu_architecture,
            "X86_64 or ARM64",
        )?;
        check_enum::<OsFamily>(
            "runtimePlatform.operatingSystemFamily",
            platform.operating_system_family,
            "LINUX or one of the WINDOWS_SERVER_* families",
        )?;
    }

    let mut requires = Vec::with_capacity(requires_compatibilities.len());
    for (i, value) in requires_compatibilities.iter().enumerate() {
        let compatibility = known::<Compatibility>(*value).ok_or_else(|| {
            DomainError::client_at(
                format!("requiresCompatibilities[{i}]"),
                format!(
                    "Launch type {value} is not valid; use EC2, FARGATE, EXTERNAL or \
                     MANAGED_INSTANCES."
                ),
            )
        })?;
        requires.push(compatibility);
    }

    if let Some(storage) = ephemeral_storage {
        if !requires.contains(&Compatibility::Fargate) {
            return Err(DomainError::client_at(
                "ephemeralStorage",
                "ephemeralStorage is supported only on Fargate: add FARGATE to \
                 requiresCompatibilities or remove ephemeralStorage.",
            ));
        }
        match storage.size_in_gib {
            Some(size) if EPHEMERAL_STORAGE_GIB.contains(&size) => {}
            size => {
                return Err(DomainError::client_at(
                    "ephemeralStorage.sizeInGiB",
                    format!(
                        "ephemeralStorage.sizeInGiB must be {} to {} GiB; got {}.",
                        EPHEMERAL_STORAGE_GIB.start(),
                        EPHEMERAL_STORAGE_GIB.end(),
                        shown(size)
                    ),
                ))
            }
        }
    }

    let mut definition = TaskDefinition {
        container_definitions: containers,
        family: Some(family.to_string()),
        task_role_arn: task_role_arn.clone(),
        execution_role_arn: execution_role_arn.clone(),
        network_mode: *network_mode,
        volumes: volumes.clone(),
        placement_constraints: placement_constraints.clone(),
        runtime_platform: *runtime_platform,
        requires_compatibilities: requires_compatibilities.clone(),
        cpu: task_cpu.map(|units| units.to_string()),
        memory: task_memory.map(|mib| mib.to_string()),
        inference_accelerators: inference_accelerators.clone(),
        pid_mode: *pid_mode,
        ipc_mode: *ipc_mode,
        proxy_configuration: proxy_configuration.clone(),
        ephemeral_storage: *ephemeral_storage,
        enable_fault_injection: *enable_fault_injection,
        trusted_execution_configuration: trusted_execution_configuration.clone(),
        ..Default::default()
    };

    // Without requiresCompatibilities the definition is validated for EC2, as ECS does.
    let validated_for = if requires.is_empty() {
        vec![Compatibility::Ec2]
    } else {
        requires.clone()
    };
    for compatibility in &validated_for {
        if let Some(problem) = launch_type_problem(&definition, *compatibility) {
            return Err(problem);
        }
    }
    definition.compatibilities = compatibilities(&definition, &requires);
    definition.requires_attributes = requires_attributes(&definition);

    validate_tags("tags", tags)?;
    Ok((definition, tags.clone()))
}

/// The family and revision of a task-definition ARN (`…:task-definition/<family>:<revision>`).
pub fn family_of_arn(arn: &str) -> Option<(&str, u32)> {
    if !arn.starts_with("arn:") {
        return None;
    }
    let (_, body) = arn.split_once(":task-definition/")?;
    let (family, revision) = body.rsplit_once(':')?;
    if family.is_empty() || revision.is_empty() || !revision.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((family, revision.parse().ok()?))
}

/// Volume names (present, valid, unique) and at most one `configuredAtLaunch` volume.
fn check_volumes(req: &RegisterTaskDefinitionRequest) -> DomainResult<()> {
    for (i, volume) in req.volumes.iter().enumerate() {
        let at = format!("volumes[{i}].name");
        let name = volume.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(DomainError::client_at(
                at,
                "Every volume needs a name of 1 to 255 letters, digits, hyphens and underscores.",
            ));
        }
        validate_name(&at, "Volume name", name).map_err(as_client)?;
        if let Some(j) = req.volumes[..i].iter().position(|v| v.name.as_deref() == Some(name)) {
            return Err(DomainError::client_at(
                at,
                format!("Volume name '{name}' is already used by volumes[{j}]; volume names must be unique."),
            ));
        }
    }
    let at_launch = req
        .volumes
        .iter()
        .filter(|v| v.configured_at_launch == Some(true))
        .count();
    if at_launch > 1 {
        return Err(DomainError::client_at(
            "volumes",
            format!("At most one volume may be configuredAtLaunch; {at_launch} are."),
        ));
    }
    Ok(())
}

/// Task-definition placement constraints: at most 10, each `memberOf` with an expression.
fn check_placement_constraints(req: &RegisterTaskDefinitionRequest) -> DomainResult<()> {
    let constraints = &req.placement_constraints;
    if constraints.len() > PLACEMENT_CONSTRAINTS_MAX {
        return Err(DomainError::invalid_parameter(
            "placementConstraints",
            format!(
                "At most {PLACEMENT_CONSTRAINTS_MAX} placement constraints are allowed; got {}.",
                constraints.len()
            ),
        ));
    }
    for (i, constraint) in constraints.iter().enumerate() {
        let at = format!("placementConstraints[{i}]");
        if constraint.r#type != Some(TaskDefinitionPlacementConstraintType::MemberOf as i32) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.type"),
                "Task-definition placement constraints must have type 'memberOf'.",
            ));
        }
        let expression = constraint.expression.as_deref().unwrap_or("");
        let length = expression.chars().count();
        if length == 0 || length > PLACEMENT_EXPRESSION_MAX {
            return Err(DomainError::invalid_parameter(
                format!("{at}.expression"),
                format!(
                    "A memberOf constraint needs an expression of 1 to {PLACEMENT_EXPRESSION_MAX} \
                     characters; got {length}."
                ),
            ));
        }
    }
    Ok(())
}

/// The definition's network mode; absent (or unreadable) means bridge, the Linux default.
fn task_network_mode(td: &TaskDefinition) -> NetworkMode {
    td.network_mode
        .and_then(known::<NetworkMode>)
        .unwrap_or(NetworkMode::Bridge)
}

fn network_mode_name(mode: NetworkMode) -> &'static str {
    match mode {
        NetworkMode::Bridge | NetworkMode::Unspecified => "bridge",
        NetworkMode::Host => "host",
        NetworkMode::Awsvpc => "awsvpc",
        NetworkMode::None => "none",
    }
}

/// A known, specified value of a generated enum.
fn known<E: TryFrom<i32>>(value: i32) -> Option<E> {
    if value == 0 {
        return None;
    }
    E::try_from(value).ok()
}

/// An optional enum member must be a known, specified value when present.
fn check_enum<E: TryFrom<i32>>(field: &str, value: Option<i32>, allowed: &str) -> DomainResult<()> {
    match value {
        Some(v) if known::<E>(v).is_none() => Err(DomainError::client_at(
            field,
            format!("{field} value {v} is not valid; use {allowed}."),
        )),
        _ => Ok(()),
    }
}

/// Name rules reported as ClientException, as for all task-definition content.
fn as_client(error: DomainError) -> DomainError {
    DomainError {
        exception: EcsException::ClientException,
        ..error
    }
}

fn saturating_sum(values: impl Iterator<Item = i32>) -> i32 {
    let total: i64 = values.map(|v| i64::from(v.max(0))).sum();
    i32::try_from(total).unwrap_or(i32::MAX)
}

fn shown(value: Option<i32>) -> String {
    value.map_or_else(|| "nothing".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::fixtures::{assert_client, compat, container, fargate, given, mapping, registered, rejected};
    use super::*;
    use crate::proto::v1::{ContainerDefinition, EphemeralStorage, TaskDefinitionPlacementConstraint, Volume};

    #[test]
    fn minimal_bridge_definition_is_accepted_and_echoed() {
        let td = registered(given(|_| {}));
        assert_eq!(td.family.as_deref(), Some("web"));
        assert_eq!(td.task_definition_arn, None);
        assert_eq!(td.revision, None);
        assert_eq!(td.status, None);
        assert_eq!(td.network_mode, None);
        assert!(td.requires_compatibilities.is_empty());
        assert_eq!(
            td.compatibilities,
            compat(&[Compatibility::Ec2, Compatibility::External])
        );
        assert!(td.requires_attributes.is_empty());
    }

    #[test]
    fn missing_family_is_an_invalid_parameter() {
        let err = rejected(given(|r| r.family = None));
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert_eq!(err.field.as_deref(), Some("family"));
        let err = rejected(given(|r| r.family = Some("bad family".into())));
        assert_eq!(err.exception, EcsException::InvalidParameterException);
    }

    #[test]
    fn container_count_must_be_one_to_ten() {
        assert_client(
            &rejected(given(|r| r.container_definitions.clear())),
            "containerDefinitions",
        );
        let eleven = (0..11).map(|i| container(&format!("c{i}"))).collect::<Vec<_>>();
        assert_client(
            &rejected(given(|r| r.container_definitions = eleven)),
            "containerDefinitions",
        );
        let ten = (0..10).map(|i| container(&format!("c{i}"))).collect::<Vec<_>>();
        registered(given(|r| r.container_definitions = ten));
    }

    #[test]
    fn at_least_one_container_must_be_essential() {
        let err = rejected(given(|r| r.container_definitions[0].essential = Some(false)));
        assert_client(&err, "containerDefinitions");
        let td = registered(given(|r| {
            r.container_definitions[0].essential = Some(false);
            r.container_definitions.push(container("main"));
        }));
        assert_eq!(td.container_definitions[1].essential, Some(true));
    }

    #[test]
    fn ephemeral_storage_needs_fargate_and_21_to_200_gib() {
        let storage = |size| {
            Some(EphemeralStorage {
                size_in_gib: Some(size),
            })
        };
        assert_client(
            &rejected(given(|r| r.ephemeral_storage = storage(30))),
            "ephemeralStorage",
        );
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.ephemeral_storage = storage(20);
            })),
            "ephemeralStorage.sizeInGiB",
        );
        let td = registered(given(|r| {
            fargate("256", "512")(r);
            r.ephemeral_storage = storage(200);
        }));
        assert_eq!(td.ephemeral_storage, storage(200));
    }

    #[test]
    fn volume_names_are_valid_unique_and_at_most_one_is_configured_at_launch() {
        let volume = |name: &str, at_launch| Volume {
            name: Some(name.into()),
            configured_at_launch: at_launch,
            ..Default::default()
        };
        assert_client(
            &rejected(given(|r| r.volumes.push(volume("a/b", None)))),
            "volumes[0].name",
        );
        assert_client(
            &rejected(given(|r| r.volumes = vec![volume("a", None), volume("a", None)])),
            "volumes[1].name",
        );
        assert_client(
            &rejected(given(|r| {
                r.volumes = vec![volume("a", Some(true)), volume("b", Some(true))]
            })),
            "volumes",
        );
        registered(given(|r| {
            r.volumes = vec![volume("a", Some(true)), volume("b", Some(false))]
        }));
    }

    #[test]
    fn placement_constraints_are_member_of_with_an_expression() {
        let constraint = |expression: &str| TaskDefinitionPlacementConstraint {
            r#type: Some(TaskDefinitionPlacementConstraintType::MemberOf as i32),
            expression: Some(expression.into()),
        };
        registered(given(|r| {
            r.placement_constraints
                .push(constraint("attribute:ecs.instance-type =~ t3.*"))
        }));
        let err = rejected(given(|r| r.placement_constraints.push(constraint(""))));
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert_eq!(err.field.as_deref(), Some("placementConstraints[0].expression"));
        let err = rejected(given(|r| {
            r.placement_constraints.push(TaskDefinitionPlacementConstraint {
                r#type: None,
                ..constraint("x")
            })
        }));
        assert_eq!(err.field.as_deref(), Some("placementConstraints[0].type"));
        let err = rejected(given(|r| r.placement_constraints = vec![constraint("x"); 11]));
        assert_eq!(err.field.as_deref(), Some("placementConstraints"));
    }

    #[test]
    fn tags_are_validated_and_returned_beside_the_definition() {
        let tag = |k: &str| Tag {
            key: Some(k.into()),
            value: Some("v".into()),
        };
        let req = given(|r| r.tags = vec![tag("team")]);
        let (_, tags) = validate_registration(&req).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tags, vec![tag("team")]);
        let err = rejected(given(|r| r.tags = vec![tag("aws:reserved")]));
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert_eq!(err.field.as_deref(), Some("tags[0].key"));
    }

    #[test]
    fn other_members_are_copied_verbatim() {
        let td = registered(given(|r| {
            r.task_role_arn = Some("arn:aws:iam::123456789012:role/task".into());
            r.enable_fault_injection = Some(true);
            r.container_definitions[0].command = vec!["serve".into(), "--port=80".into()];
            r.container_definitions[0]
                .docker_labels
                .insert("team".into(), "blue".into());
        }));
        assert_eq!(td.task_role_arn.as_deref(), Some("arn:aws:iam::123456789012:role/task"));
        assert_eq!(td.enable_fault_injection, Some(true));
        assert_eq!(td.container_definitions[0].command, vec!["serve", "--port=80"]);
        assert_eq!(
            td.container_definitions[0]
                .docker_labels
                .get("team")
                .map(String::as_str),
            Some("blue")
        );
    }

    #[test]
    fn first_violation_wins_in_container_order() {
        let err = rejected(given(|r| {
            r.cpu = Some("lots".into());
            r.container_definitions.push(ContainerDefinition {
                image: None,
                ..container("b")
            });
            r.container_definitions.push(ContainerDefinition {
                name: None,
                ..container("c")
            });
        }));
        assert_client(&err, "containerDefinitions[1].image");
    }

    #[test]
    fn family_and_revision_are_read_from_an_arn() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:12";
        assert_eq!(family_of_arn(arn), Some(("web-app", 12)));
        assert_eq!(
            family_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web"),
            None
        );
        assert_eq!(
            family_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:x"),
            None
        );
        assert_eq!(family_of_arn("web:1"), None);
    }

    // --- robustness ---

    proptest::proptest! {
        #[test]
        fn registration_never_panics_on_arbitrary_input(
            name in ".{0,300}",
            image in ".{0,300}",
            cpu in ".{0,12}",
            host_port in proptest::prelude::any::<i32>(),
            mode in 0..6,
            compatibility in 0..6,
        ) {
            let req = given(|r| {
                r.cpu = Some(cpu);
                r.network_mode = Some(mode);
                r.requires_compatibilities = vec![compatibility];
                r.container_definitions[0].name = Some(name);
                r.container_definitions[0].image = Some(image);
                r.container_definitions[0].port_mappings.push(mapping(80, Some(host_port), None));
            });
            if let Ok((td, _)) = validate_registration(&req) {
                let _ = resources(&td, None);
            }
        }
    }
}
