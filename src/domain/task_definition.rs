//! The rules of task definitions (ECS_SEMANTICS §3.1, §11): turning a RegisterTaskDefinition
//! request into the TaskDefinition ECS would describe (defaults filled in, cpu/memory normalised,
//! `compatibilities` and `requiresAttributes` computed), the resources a task of a definition
//! reserves on a container instance, and the checks on RunTask/StartTask overrides.
//! Does not assign ARNs, revisions, status, times or `registeredBy`, and looks nothing up.

use std::ops::RangeInclusive;

use super::error::{DomainError, DomainResult, EcsException};
use super::ids::{printable, validate_name};
use super::limits::{CONTAINERS_PER_TASK_DEFINITION_MAX, PLACEMENT_CONSTRAINTS_MAX};
use super::tags::validate_tags;
use crate::proto::v1::{
    ApplicationProtocol, Attribute, Compatibility, ContainerCondition, ContainerDefinition, ContainerOverride,
    CpuArchitecture, EnvironmentFile, EnvironmentFileType, HealthCheck, IpcMode, LaunchType, LogDriver, NetworkMode,
    OsFamily, PidMode, PortMapping, ProxyConfigurationType, RegisterTaskDefinitionRequest, Tag, TaskDefinition,
    TaskDefinitionPlacementConstraintType, TaskOverride, TransportProtocol, VersionConsistency,
};

/// Task cpu range on EC2 and EXTERNAL (0.125 to 192 vCPU).
const EC2_CPU: RangeInclusive<i32> = 128..=196_608;
/// `ephemeralStorage.sizeInGiB`.
const EPHEMERAL_STORAGE_GIB: RangeInclusive<i32> = 21..=200;
/// Longest container `stopTimeout` Fargate allows, in seconds.
const FARGATE_STOP_TIMEOUT_MAX: i32 = 120;
/// Length of a placement-constraint `expression`.
const PLACEMENT_EXPRESSION_MAX: usize = 2000;
/// `environmentFiles` per container (definition or override).
const ENVIRONMENT_FILES_MAX: usize = 10;
/// Length of a port mapping's `name`.
const PORT_MAPPING_NAME_MAX: usize = 64;
/// Port numbers.
const PORTS: RangeInclusive<i32> = 0..=65_535;
/// Image reference length, before any `@digest`.
const IMAGE_MAX: usize = 255;

/// Health-check settings: (member, allowed seconds or count, default ECS echoes when absent).
const HEALTH_CHECK_SETTINGS: [(&str, RangeInclusive<i32>, Option<i32>); 4] = [
    ("interval", 5..=300, Some(30)),
    ("timeout", 2..=60, Some(5)),
    ("retries", 1..=10, Some(3)),
    ("startPeriod", 0..=300, None),
];

/// Allowed memory values as inclusive `(first, last, step)` runs, in MiB.
type MemoryRuns = &'static [(i32, i32, i32)];

/// Fargate task sizes (ECS_SEMANTICS §3.1): task cpu units → allowed task memory in MiB, as
/// inclusive `(first, last, step)` runs.
const FARGATE_SIZES: [(i32, MemoryRuns); 7] = [
    (256, &[(512, 512, 1), (1024, 1024, 1), (2048, 2048, 1)]),
    (512, &[(1024, 4096, 1024)]),
    (1024, &[(2048, 8192, 1024)]),
    (2048, &[(4096, 16_384, 1024)]),
    (4096, &[(8192, 30_720, 1024)]),
    (8192, &[(16_384, 61_440, 4096)]),
    (16_384, &[(32_768, 122_880, 8192)]),
];

// Attributes a container instance needs for a definition (`requiresAttributes`). ECS computes
// a longer list (docker-remote-api versions and more); taskledger computes this honest subset:
// awsvpc → task-eni; any awslogs container → the awslogs logging driver, and with an execution
// role also execution-role-awslogs; any `dependsOn` → container-ordering.
const ATTRIBUTE_TASK_ENI: &str = "ecs.capability.task-eni";
const ATTRIBUTE_AWSLOGS: &str = "com.amazonaws.ecs.capability.logging-driver.awslogs";
const ATTRIBUTE_EXECUTION_ROLE_AWSLOGS: &str = "ecs.capability.execution-role-awslogs";
const ATTRIBUTE_CONTAINER_ORDERING: &str = "ecs.capability.container-ordering";

/// What a task of a definition reserves on a container instance (ECS_SEMANTICS §11).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskResources {
    /// CPU units.
    pub cpu: i32,
    /// MiB.
    pub memory: i32,
    /// Host ports, sorted and without duplicates.
    pub tcp_ports: Vec<i32>,
    pub udp_ports: Vec<i32>,
}

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

/// A task-level `cpu` or `memory` string, normalised; `forms` says what is accepted.
fn task_size(
    member: &str,
    text: Option<&str>,
    normalise: fn(&str) -> Option<i32>,
    forms: &str,
) -> DomainResult<Option<i32>> {
    let Some(text) = text else { return Ok(None) };
    match normalise(text) {
        Some(value) => Ok(Some(value)),
        None => Err(DomainError::client_at(
            member,
            format!(
                "Invalid '{member}' setting for task: '{}' is not valid; give {forms}, amounting \
                 to a positive whole number.",
                printable(text)
            ),
        )),
    }
}

/// Task `cpu` as CPU units: an integer (`"1024"`) or vCPUs (`"1 vCPU"`, `"0.25 vcpu"`,
/// `"2vCPU"`; 1 vCPU = 1024 units). `None` when the text is neither or does not come to a
/// positive whole number of units that fits an `i32`.
pub fn normalise_cpu(text: &str) -> Option<i32> {
    scaled(text, "vcpu")
}

/// Task `memory` in MiB: an integer (`"2048"`) or GB (`"2 GB"`, `"0.5GB"`; 1 GB = 1024 MiB).
/// `None` when the text is neither or does not come to a positive whole number of MiB.
pub fn normalise_memory(text: &str) -> Option<i32> {
    scaled(text, "gb")
}

/// An integer, or a decimal number (`"2"`, `"0.25"`, `".5"`) followed by `unit` (any case,
/// optional space) worth 1024.
fn scaled(text: &str, unit: &str) -> Option<i32> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, factor) = match lower.strip_suffix(unit) {
        Some(number) => (number.trim_end(), 1024),
        None if lower.contains('.') => return None,
        None => (lower.as_str(), 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let parse = |s: &str| {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse::<u128>().ok()
        }
    };
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let value = (parse(whole)? * scale + parse(fraction)?) * factor;
    if value % scale != 0 {
        return None;
    }
    i32::try_from(value / scale).ok().filter(|v| *v > 0)
}

/// Whether tasks of this definition may run with `launch_type` (from `compatibilities`).
pub fn supports_launch_type(td: &TaskDefinition, launch_type: LaunchType) -> bool {
    let wanted = match launch_type {
        LaunchType::Ec2 => Compatibility::Ec2,
        LaunchType::Fargate => Compatibility::Fargate,
        LaunchType::External => Compatibility::External,
        LaunchType::ManagedInstances => Compatibility::ManagedInstances,
        LaunchType::Unspecified => return false,
    };
    td.compatibilities.contains(&(wanted as i32))
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

/// What a task of `td` reserves on an instance (ECS_SEMANTICS §11), after `overrides`:
/// CPU = task cpu (override first) if set, else the sum of container cpu; MEMORY = task memory if
/// set, else per container `memoryReservation`, else `memory`, summed; ports only in bridge and
/// host mode: every non-zero `hostPort`, and in host mode `containerPort` when `hostPort` is
/// absent or 0. Bridge dynamic ports and awsvpc/none tasks reserve no host ports.
pub fn resources(td: &TaskDefinition, overrides: Option<&TaskOverride>) -> TaskResources {
    let override_for = |container: &ContainerDefinition| -> Option<&ContainerOverride> {
        let name = container.name.as_deref()?;
        overrides?
            .container_overrides
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    };
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .and_then(normalise_cpu)
        .or_else(|| td.cpu.as_deref().and_then(normalise_cpu));
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .and_then(normalise_memory)
        .or_else(|| td.memory.as_deref().and_then(normalise_memory));

    let cpu = task_cpu.unwrap_or_else(|| {
        saturating_sum(
            td.container_definitions
                .iter()
                .map(|c| override_for(c).and_then(|o| o.cpu).or(c.cpu).unwrap_or(0)),
        )
    });
    let memory = task_memory.unwrap_or_else(|| {
        saturating_sum(td.container_definitions.iter().map(|c| {
            let o = override_for(c);
            o.and_then(|o| o.memory_reservation)
                .or(c.memory_reservation)
                .or_else(|| o.and_then(|o| o.memory))
                .or(c.memory)
                .unwrap_or(0)
        }))
    });

    let mut tcp_ports = Vec::new();
    let mut udp_ports = Vec::new();
    let mode = task_network_mode(td);
    if matches!(mode, NetworkMode::Bridge | NetworkMode::Host) {
        for mapping in td.container_definitions.iter().flat_map(|c| &c.port_mappings) {
            let host_port = match mapping.host_port.filter(|p| *p != 0) {
                Some(port) => Some(port),
                None if mode == NetworkMode::Host => mapping.container_port,
                None => None,
            };
            let Some(port) = host_port.filter(|p| (1..=*PORTS.end()).contains(p)) else {
                continue;
            };
            if mapping.protocol == Some(TransportProtocol::Udp as i32) {
                udp_ports.push(port);
            } else {
                tcp_ports.push(port);
            }
        }
    }
    for ports in [&mut tcp_ports, &mut udp_ports] {
        ports.sort_unstable();
        ports.dedup();
    }
    TaskResources {
        cpu,
        memory,
        tcp_ports,
        udp_ports,
    }
}

/// Checks RunTask/StartTask `overrides` against the definition (ECS_SEMANTICS §7.3): every
/// container override names a container of the definition (once), environment files are S3
/// files (at most 10), cpu/memory values are valid. The 8192-character JSON limit is the
/// caller's to check.
pub fn validate_overrides(td: &TaskDefinition, overrides: &TaskOverride) -> DomainResult<()> {
    for (i, o) in overrides.container_overrides.iter().enumerate() {
        let at = format!("overrides.containerOverrides[{i}]");
        let name = o.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                "Every container override needs the name of the container it overrides.",
            ));
        }
        if !td.container_definitions.iter().any(|c| c.name.as_deref() == Some(name)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Container override names '{}', which is not a container of this task \
                     definition; use one of: {}.",
                    printable(name),
                    container_names(td)
                ),
            ));
        }
        if overrides.container_overrides[..i]
            .iter()
            .any(|earlier| earlier.name.as_deref() == Some(name))
        {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Container '{}' is overridden twice; give one override per container.",
                    printable(name)
                ),
            ));
        }
        check_environment_files(&format!("{at}.environmentFiles"), &o.environment_files).map_err(|e| DomainError {
            exception: EcsException::InvalidParameterException,
            ..e
        })?;
        for (member, value) in [
            ("cpu", o.cpu),
            ("memory", o.memory),
            ("memoryReservation", o.memory_reservation),
        ] {
            if let Some(value) = value.filter(|v| *v < 0) {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.{member}"),
                    format!("Container override {member} must not be negative; got {value}."),
                ));
            }
        }
    }
    if let Some(text) = overrides.cpu.as_deref() {
        if normalise_cpu(text).is_none() {
            return Err(DomainError::invalid_parameter(
                "overrides.cpu",
                format!(
                    "Task cpu override '{}' is not valid: give CPU units ('512') or vCPUs ('0.5 vCPU').",
                    printable(text)
                ),
            ));
        }
    }
    if let Some(text) = overrides.memory.as_deref() {
        if normalise_memory(text).is_none() {
            return Err(DomainError::invalid_parameter(
                "overrides.memory",
                format!(
                    "Task memory override '{}' is not valid: give MiB ('1024') or GB ('1 GB').",
                    printable(text)
                ),
            ));
        }
    }
    if let Some(storage) = overrides.ephemeral_storage {
        if !storage
            .size_in_gib
            .is_some_and(|size| EPHEMERAL_STORAGE_GIB.contains(&size))
        {
            return Err(DomainError::invalid_parameter(
                "overrides.ephemeralStorage.sizeInGiB",
                format!(
                    "ephemeralStorage.sizeInGiB must be {} to {} GiB; got {}.",
                    EPHEMERAL_STORAGE_GIB.start(),
                    EPHEMERAL_STORAGE_GIB.end(),
                    shown(storage.size_in_gib)
                ),
            ));
        }
    }
    Ok(())
}

/// Validates container `i` and returns it as ECS echoes it: `essential` and `cpu` filled in,
/// health-check defaults filled in, port mappings with their protocol (and, in awsvpc/host mode,
/// their host port).
fn container(
    i: usize,
    c: &ContainerDefinition,
    req: &RegisterTaskDefinitionRequest,
    mode: NetworkMode,
) -> DomainResult<ContainerDefinition> {
    let at = format!("containerDefinitions[{i}]");
    let name = c.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return Err(DomainError::client_at(
            format!("{at}.name"),
            "Container.name should not be null or empty. Name every container with 1 to 255 \
             letters, digits, hyphens and underscores.",
        ));
    }
    validate_name(&format!("{at}.name"), "Container name", name).map_err(as_client)?;
    if let Some(j) = req.container_definitions[..i]
        .iter()
        .position(|o| o.name.as_deref() == Some(name))
    {
        return Err(DomainError::client_at(
            format!("{at}.name"),
            format!(
                "Container name '{name}' is already used by containerDefinitions[{j}]; container \
                 names must be unique within a task definition."
            ),
        ));
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        return Err(DomainError::client_at(
            format!("{at}.image"),
            format!(
                "Container.image should not be null or empty. Give container '{name}' an image \
                 such as 'repository/image:tag' or 'repository/image@sha256:<digest>'."
            ),
        ));
    }
    check_image(&format!("{at}.image"), image)?;

    for (member, value) in [
        ("cpu", c.cpu),
        ("startTimeout", c.start_timeout),
        ("stopTimeout", c.stop_timeout),
    ] {
        if let Some(value) = value.filter(|v| *v < 0) {
            return Err(DomainError::client_at(
                format!("{at}.{member}"),
                format!("Invalid setting for container '{name}': {member} must not be negative; got {value}."),
            ));
        }
    }
    for (member, value) in [("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
        if let Some(value) = value.filter(|v| *v <= 0) {
            return Err(DomainError::client_at(
                format!("{at}.{member}"),
                format!(
                    "Invalid setting for container '{name}': {member} must be a positive number of MiB; got {value}."
                ),
            ));
        }
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        if hard < soft {
            return Err(DomainError::client_at(
                format!("{at}.memoryReservation"),
                format!(
                    "Invalid setting for container '{name}': memoryReservation ({soft} MiB) must not \
                     exceed memory ({hard} MiB), the hard limit."
                ),
            ));
        }
    }
    check_enum::<VersionConsistency>(
        &format!("{at}.versionConsistency"),
        c.version_consistency,
        "enabled or disabled",
    )?;

    let port_mappings = c
        .port_mappings
        .iter()
        .enumerate()
        .map(|(k, mapping)| port_mapping(&format!("{at}.portMappings[{k}]"), name, mapping, mode))
        .collect::<DomainResult<Vec<_>>>()?;

    for (k, mount) in c.mount_points.iter().enumerate() {
        let volume = mount.source_volume.as_deref().unwrap_or("");
        if !req.volumes.iter().any(|v| v.name.as_deref() == Some(volume)) {
            return Err(DomainError::client_at(
                format!("{at}.mountPoints[{k}].sourceVolume"),
                format!(
                    "Container '{name}' mounts volume '{}', which is not declared in volumes; \
                     every mountPoints.sourceVolume must name a volume of the task definition.",
                    printable(volume)
                ),
            ));
        }
    }
    for (k, from) in c.volumes_from.iter().enumerate() {
        let source = from.source_container.as_deref().unwrap_or("");
        if source == name
            || !req
                .container_definitions
                .iter()
                .any(|o| o.name.as_deref() == Some(source))
        {
            return Err(DomainError::client_at(
                format!("{at}.volumesFrom[{k}].sourceContainer"),
                format!(
                    "Container '{name}' takes volumes from '{}'; volumesFrom.sourceContainer must \
                     name another container of this task definition.",
                    printable(source)
                ),
            ));
        }
    }
    for (k, dependency) in c.depends_on.iter().enumerate() {
        let other = dependency.container_name.as_deref().unwrap_or("");
        if other == name
            || !req
                .container_definitions
                .iter()
                .any(|o| o.name.as_deref() == Some(other))
        {
            return Err(DomainError::client_at(
                format!("{at}.dependsOn[{k}].containerName"),
                format!(
                    "Container '{name}' depends on '{}'; dependsOn.containerName must name another \
                     container of this task definition.",
                    printable(other)
                ),
            ));
        }
        if dependency.condition.and_then(known::<ContainerCondition>).is_none() {
            return Err(DomainError::client_at(
                format!("{at}.dependsOn[{k}].condition"),
                format!(
                    "The dependency of container '{name}' on '{other}' needs a condition: START, \
                     COMPLETE, SUCCESS or HEALTHY."
                ),
            ));
        }
    }
    check_environment_files(&format!("{at}.environmentFiles"), &c.environment_files)?;
    let health_check = c
        .health_check
        .as_ref()
        .map(|hc| health_check(&format!("{at}.healthCheck"), hc))
        .transpose()?;
    if let Some(log) = &c.log_configuration {
        if log.log_driver.and_then(known::<LogDriver>).is_none() {
            return Err(DomainError::client_at(
                format!("{at}.logConfiguration.logDriver"),
                format!(
                    "The log configuration of container '{name}' needs a logDriver: json-file, \
                     syslog, journald, gelf, fluentd, awslogs, splunk or awsfirelens."
                ),
            ));
        }
    }

    Ok(ContainerDefinition {
        essential: Some(c.essential.unwrap_or(true)),
        cpu: Some(c.cpu.unwrap_or(0)),
        port_mappings,
        health_check,
        ..c.clone()
    })
}

/// Checks an image reference: ≤255 characters of `[A-Za-z0-9-_:./#]` before any `@`, and a
/// digest after `@` of `sha256:` + 64 hexadecimal characters.
fn check_image(at: &str, image: &str) -> DomainResult<()> {
    let (reference, digest) = match image.split_once('@') {
        Some((reference, digest)) => (reference, Some(digest)),
        None => (image, None),
    };
    let length = reference.chars().count();
    if length == 0 || length > IMAGE_MAX {
        return Err(DomainError::client_at(
            at,
            format!(
                "Image '{}' must have 1 to {IMAGE_MAX} characters before any '@digest'; it has {length}.",
                printable(image)
            ),
        ));
    }
    if let Some(bad) = reference
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_:./#".contains(*c)))
    {
        return Err(DomainError::client_at(
            at,
            format!(
                "Image '{}' contains {bad:?}; image references may hold letters, digits and - _ : . / #.",
                printable(image)
            ),
        ));
    }
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DomainError::client_at(
                at,
                format!(
                    "Image digest '{}' is not valid: after '@' give 'sha256:' followed by 64 \
                     hexadecimal characters.",
                    printable(digest)
                ),
            ));
        }
    }
    Ok(())
}

/// Checks one port mapping and returns it as ECS echoes it (protocol `tcp` when absent; in
/// awsvpc and host mode a missing host port is the container port).
fn port_mapping(at: &str, container: &str, mapping: &PortMapping, mode: NetworkMode) -> DomainResult<PortMapping> {
    if mode == NetworkMode::None {
        return Err(DomainError::client_at(
            at,
            format!(
                "Container '{container}' has port mappings, but networkMode 'none' allows none; \
                 remove them or use another network mode."
            ),
        ));
    }
    if mapping.container_port.is_none() && mapping.container_port_range.is_none() {
        return Err(DomainError::client_at(
            format!("{at}.containerPort"),
            format!("A port mapping of container '{container}' needs a containerPort (or a containerPortRange)."),
        ));
    }
    if let Some(port) = mapping.container_port.filter(|p| !(1..=*PORTS.end()).contains(p)) {
        return Err(DomainError::client_at(
            format!("{at}.containerPort"),
            format!("containerPort must be 1 to 65535; container '{container}' has {port}."),
        ));
    }
    if let Some(port) = mapping.host_port.filter(|p| !PORTS.contains(p)) {
        return Err(DomainError::client_at(
            format!("{at}.hostPort"),
            format!("hostPort must be 0 to 65535; container '{container}' has {port}."),
        ));
    }
    check_enum::<TransportProtocol>(&format!("{at}.protocol"), mapping.protocol, "tcp or udp")?;
    check_enum::<ApplicationProtocol>(
        &format!("{at}.appProtocol"),
        mapping.app_protocol,
        "http, http2 or grpc",
    )?;
    if let Some(name) = mapping
        .name
        .as_deref()
        .filter(|n| n.chars().count() > PORT_MAPPING_NAME_MAX)
    {
        return Err(DomainError::client_at(
            format!("{at}.name"),
            format!(
                "Port mapping names may be at most {PORT_MAPPING_NAME_MAX} characters; '{}' is longer.",
                printable(name)
            ),
        ));
    }
    let host_port = mapping.host_port.filter(|p| *p != 0);
    let mut echoed = PortMapping {
        protocol: Some(mapping.protocol.unwrap_or(TransportProtocol::Tcp as i32)),
        ..mapping.clone()
    };
    if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host) {
        if let (Some(host), Some(port)) = (host_port, mapping.container_port) {
            if host != port {
                return Err(DomainError::client_at(
                    format!("{at}.hostPort"),
                    format!(
                        "In networkMode '{}' a hostPort must be left out or equal the containerPort; \
                         container '{container}' maps container port {port} to host port {host}.",
                        network_mode_name(mode)
                    ),
                ));
            }
        }
        if host_port.is_none() {
            echoed.host_port = mapping.container_port;
        }
    }
    Ok(echoed)
}

/// Checks a health check and fills in ECS's defaults (interval 30, timeout 5, retries 3).
fn health_check(at: &str, hc: &HealthCheck) -> DomainResult<HealthCheck> {
    let starts_right = matches!(hc.command.first().map(String::as_str), Some("CMD" | "CMD-SHELL"));
    if !starts_right || hc.command.len() < 2 {
        return Err(DomainError::client_at(
            format!("{at}.command"),
            "healthCheck.command must start with \"CMD\" (followed by the program and its \
             arguments) or \"CMD-SHELL\" (followed by a shell command).",
        ));
    }
    let mut filled = hc.clone();
    let slots = [
        &mut filled.interval,
        &mut filled.timeout,
        &mut filled.retries,
        &mut filled.start_period,
    ];
    for ((member, range, default), slot) in HEALTH_CHECK_SETTINGS.into_iter().zip(slots) {
        match *slot {
            Some(value) if !range.contains(&value) => {
                return Err(DomainError::client_at(
                    format!("{at}.{member}"),
                    format!(
                        "healthCheck.{member} must be {} to {}; got {value}.",
                        range.start(),
                        range.end()
                    ),
                ))
            }
            Some(_) => {}
            None => *slot = default,
        }
    }
    Ok(filled)
}

/// Environment files: at most 10, each an S3 object ARN of type `s3`.
fn check_environment_files(at: &str, files: &[EnvironmentFile]) -> DomainResult<()> {
    if files.len() > ENVIRONMENT_FILES_MAX {
        return Err(DomainError::client_at(
            at,
            format!(
                "At most {ENVIRONMENT_FILES_MAX} environment files are allowed; got {}.",
                files.len()
            ),
        ));
    }
    for (k, file) in files.iter().enumerate() {
        if file.value.as_deref().unwrap_or("").is_empty() {
            return Err(DomainError::client_at(
                format!("{at}[{k}].value"),
                "Every environment file needs a value: the ARN of an S3 object.",
            ));
        }
        if file.r#type != Some(EnvironmentFileType::S3 as i32) {
            return Err(DomainError::client_at(
                format!("{at}[{k}].type"),
                "Environment files must have type 's3'.",
            ));
        }
    }
    Ok(())
}

/// Container cpu and memory against the task-level values, when those are set.
fn check_container_totals(
    containers: &[ContainerDefinition],
    task_cpu: Option<i32>,
    task_memory: Option<i32>,
) -> DomainResult<()> {
    if let Some(task_cpu) = task_cpu {
        let total = saturating_sum(containers.iter().map(|c| c.cpu.unwrap_or(0)));
        if total > task_cpu {
            return Err(DomainError::client_at(
                "cpu",
                format!(
                    "The containers reserve {total} CPU units in total, more than the task's \
                     {task_cpu}; lower the container cpu values or raise the task cpu."
                ),
            ));
        }
    }
    if let Some(task_memory) = task_memory {
        for (i, c) in containers.iter().enumerate() {
            if let Some(memory) = c.memory.filter(|m| *m > task_memory) {
                return Err(DomainError::client_at(
                    format!("containerDefinitions[{i}].memory"),
                    format!(
                        "The 'memory' setting for container '{}' ({memory} MiB) is greater than for \
                         the task ({task_memory} MiB).",
                        c.name.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        let total = saturating_sum(
            containers
                .iter()
                .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0)),
        );
        if total > task_memory {
            return Err(DomainError::client_at(
                "memory",
                format!(
                    "The containers reserve {total} MiB of memory in total, more than the task's \
                     {task_memory} MiB; lower memoryReservation/memory of the containers or raise \
                     the task memory."
                ),
            ));
        }
    }
    Ok(())
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

/// The first reason `td` cannot run with this launch type, as the ClientException to report.
fn launch_type_problem(td: &TaskDefinition, compatibility: Compatibility) -> Option<DomainError> {
    match compatibility {
        Compatibility::Ec2 => ec2_problem(td),
        Compatibility::Fargate => fargate_problem(td),
        Compatibility::External => external_problem(td),
        // taskledger does not model Managed Instances rules; a definition asking for them gets them.
        Compatibility::ManagedInstances | Compatibility::Unspecified => None,
    }
}

/// EC2 (and EXTERNAL) rules: task cpu within 128–196608 when set; memory at task level or on
/// every container.
fn ec2_problem(td: &TaskDefinition) -> Option<DomainError> {
    if let Some(cpu) = task_cpu(td).filter(|cpu| !EC2_CPU.contains(cpu)) {
        return Some(DomainError::client_at(
            "cpu",
            format!(
                "Invalid 'cpu' setting for task: on EC2 and EXTERNAL the task cpu must be {} to {} \
                 units (0.125 to 192 vCPU); got {cpu}.",
                EC2_CPU.start(),
                EC2_CPU.end()
            ),
        ));
    }
    if task_memory(td).is_some() {
        return None;
    }
    td.container_definitions.iter().enumerate().find_map(|(i, c)| {
        let has_memory = c.memory.is_some_and(|m| m > 0) || c.memory_reservation.is_some_and(|m| m > 0);
        (!has_memory).then(|| {
            DomainError::client_at(
                format!("containerDefinitions[{i}].memory"),
                format!(
                    "Invalid setting for container '{}'. At least one of 'memory' or \
                     'memoryReservation' must be specified. Alternatively, set the task-level memory.",
                    c.name.as_deref().unwrap_or("")
                ),
            )
        })
    })
}

/// EXTERNAL (ECS Anywhere) rules: the EC2 rules, and no awsvpc network mode, which ECS Anywhere
/// instances do not support.
fn external_problem(td: &TaskDefinition) -> Option<DomainError> {
    ec2_problem(td).or_else(|| {
        (task_network_mode(td) == NetworkMode::Awsvpc).then(|| {
            DomainError::client_at(
                "networkMode",
                "EXTERNAL (ECS Anywhere) instances do not support networkMode 'awsvpc'; use bridge, \
                 host or none, or drop EXTERNAL from requiresCompatibilities.",
            )
        })
    })
}

/// Fargate rules: awsvpc; a valid task cpu/memory size; pidMode only `task`; no ipcMode; no
/// host paths, Docker volumes or privileged containers; stopTimeout at most 120 s.
fn fargate_problem(td: &TaskDefinition) -> Option<DomainError> {
    let fail = |field: String, message: String| Some(DomainError::client_at(field, message));
    let mode = task_network_mode(td);
    if mode != NetworkMode::Awsvpc {
        return fail(
            "networkMode".into(),
            format!(
                "Fargate requires networkMode 'awsvpc'; this definition uses '{}'.",
                network_mode_name(mode)
            ),
        );
    }
    let cpus = FARGATE_SIZES.iter().map(|(cpu, _)| cpu.to_string()).collect::<Vec<_>>();
    let cpu_choices = one_of(&cpus);
    let Some(cpu) = task_cpu(td) else {
        return fail(
            "cpu".into(),
            format!("Fargate requires a task-level cpu: {cpu_choices} CPU units."),
        );
    };
    let Some((_, runs)) = FARGATE_SIZES.iter().find(|(size, _)| *size == cpu) else {
        return fail(
            "cpu".into(),
            format!("Invalid 'cpu' setting for task. Fargate supports {cpu_choices} CPU units; got {cpu}."),
        );
    };
    let allowed = describe_runs(runs);
    let Some(memory) = task_memory(td) else {
        return fail(
            "memory".into(),
            format!("Fargate requires a task-level memory: with cpu {cpu}, {allowed} MiB."),
        );
    };
    let fits = runs
        .iter()
        .any(|(first, last, step)| (*first..=*last).contains(&memory) && (memory - first) % step == 0);
    if !fits {
        return fail(
            "memory".into(),
            format!("Invalid 'memory' setting for task. With cpu {cpu} Fargate allows {allowed} MiB; got {memory}."),
        );
    }
    if td.pid_mode == Some(PidMode::Host as i32) {
        return fail(
            "pidMode".into(),
            "Fargate supports only pidMode 'task'; 'host' is not allowed.".into(),
        );
    }
    if td.ipc_mode.is_some() {
        return fail(
            "ipcMode".into(),
            "ipcMode is not supported on Fargate; remove it.".into(),
        );
    }
    for (i, volume) in td.volumes.iter().enumerate() {
        let source_path = volume
            .host
            .as_ref()
            .and_then(|h| h.source_path.as_deref())
            .unwrap_or("");
        if !source_path.is_empty() {
            return fail(
                format!("volumes[{i}].host.sourcePath"),
                "Fargate does not support host paths: leave host.sourcePath out (a task-scoped \
                 bind mount) or use an EFS volume."
                    .into(),
            );
        }
        if volume.docker_volume_configuration.is_some() {
            return fail(
                format!("volumes[{i}].dockerVolumeConfiguration"),
                "Fargate does not support Docker volumes; use a bind mount or an EFS volume.".into(),
            );
        }
    }
    for (i, c) in td.container_definitions.iter().enumerate() {
        let name = c.name.as_deref().unwrap_or("");
        if c.privileged == Some(true) {
            return fail(
                format!("containerDefinitions[{i}].privileged"),
                format!("Container '{name}' is privileged, which Fargate does not support."),
            );
        }
        if let Some(timeout) = c.stop_timeout.filter(|t| *t > FARGATE_STOP_TIMEOUT_MAX) {
            return fail(
                format!("containerDefinitions[{i}].stopTimeout"),
                format!(
                    "On Fargate stopTimeout may be at most {FARGATE_STOP_TIMEOUT_MAX} seconds; \
                     container '{name}' has {timeout}."
                ),
            );
        }
    }
    None
}

/// The launch types a validated definition is valid for, in enum order. EC2 and FARGATE when
/// their rules hold; EXTERNAL whenever EC2 does and the network mode is not awsvpc (ECS Anywhere
/// has no task ENIs); MANAGED_INSTANCES only when requested, as taskledger does not model its
/// rules.
fn compatibilities(td: &TaskDefinition, requested: &[Compatibility]) -> Vec<i32> {
    let mut valid = Vec::new();
    for compatibility in [Compatibility::Ec2, Compatibility::Fargate, Compatibility::External] {
        if launch_type_problem(td, compatibility).is_none() {
            valid.push(compatibility as i32);
        }
    }
    if requested.contains(&Compatibility::ManagedInstances) {
        valid.push(Compatibility::ManagedInstances as i32);
    }
    valid
}

/// The attributes an instance needs for `td`, sorted by name (see the `ATTRIBUTE_*` constants).
fn requires_attributes(td: &TaskDefinition) -> Vec<Attribute> {
    let awslogs = td
        .container_definitions
        .iter()
        .any(|c| c.log_configuration.as_ref().and_then(|l| l.log_driver) == Some(LogDriver::Awslogs as i32));
    let mut names = Vec::new();
    if task_network_mode(td) == NetworkMode::Awsvpc {
        names.push(ATTRIBUTE_TASK_ENI);
    }
    if awslogs {
        names.push(ATTRIBUTE_AWSLOGS);
        if td.execution_role_arn.as_deref().is_some_and(|arn| !arn.is_empty()) {
            names.push(ATTRIBUTE_EXECUTION_ROLE_AWSLOGS);
        }
    }
    if td.container_definitions.iter().any(|c| !c.depends_on.is_empty()) {
        names.push(ATTRIBUTE_CONTAINER_ORDERING);
    }
    names.sort_unstable();
    names
        .into_iter()
        .map(|name| Attribute {
            name: Some(name.to_string()),
            ..Default::default()
        })
        .collect()
}

fn task_cpu(td: &TaskDefinition) -> Option<i32> {
    td.cpu.as_deref().and_then(normalise_cpu)
}

fn task_memory(td: &TaskDefinition) -> Option<i32> {
    td.memory.as_deref().and_then(normalise_memory)
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

fn container_names(td: &TaskDefinition) -> String {
    let names = td
        .container_definitions
        .iter()
        .filter_map(|c| c.name.clone())
        .collect::<Vec<_>>();
    names.join(", ")
}

fn saturating_sum(values: impl Iterator<Item = i32>) -> i32 {
    let total: i64 = values.map(|v| i64::from(v.max(0))).sum();
    i32::try_from(total).unwrap_or(i32::MAX)
}

fn shown(value: Option<i32>) -> String {
    value.map_or_else(|| "nothing".to_string(), |v| v.to_string())
}

/// `"a, b or c"`.
fn one_of(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Fargate memory runs for messages: `"512, 1024 or 2048"`, `"2048 to 8192 in steps of 1024"`.
fn describe_runs(runs: &[(i32, i32, i32)]) -> String {
    let parts = runs
        .iter()
        .map(|(first, last, step)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first} to {last} in steps of {step}")
            }
        })
        .collect::<Vec<_>>();
    one_of(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{
        ContainerDependency, EphemeralStorage, HostVolumeProperties, LogConfiguration, MountPoint,
        TaskDefinitionPlacementConstraint, Volume, VolumeFrom,
    };

    fn container(name: &str) -> ContainerDefinition {
        ContainerDefinition {
            name: Some(name.into()),
            image: Some("public.ecr.aws/nginx/nginx:1.27".into()),
            memory: Some(256),
            ..Default::default()
        }
    }

    /// Given a valid bridge-mode request for family `web` with one container `app`
    /// (256 MiB), changed by `edit`.
    fn given(edit: impl FnOnce(&mut RegisterTaskDefinitionRequest)) -> RegisterTaskDefinitionRequest {
        let mut req = RegisterTaskDefinitionRequest {
            family: Some("web".into()),
            container_definitions: vec![container("app")],
            ..Default::default()
        };
        edit(&mut req);
        req
    }

    /// A Fargate-shaped change: awsvpc, the given task size, requiresCompatibilities FARGATE.
    fn fargate(cpu: &str, memory: &str) -> impl FnOnce(&mut RegisterTaskDefinitionRequest) {
        let (cpu, memory) = (cpu.to_string(), memory.to_string());
        move |r| {
            r.network_mode = Some(NetworkMode::Awsvpc as i32);
            r.requires_compatibilities = vec![Compatibility::Fargate as i32];
            r.cpu = Some(cpu);
            r.memory = Some(memory);
        }
    }

    fn registered(req: RegisterTaskDefinitionRequest) -> TaskDefinition {
        match validate_registration(&req) {
            Ok((td, _)) => td,
            Err(e) => panic!("expected the request to be accepted, got {e} at {:?}", e.field),
        }
    }

    fn rejected(req: RegisterTaskDefinitionRequest) -> DomainError {
        match validate_registration(&req) {
            Ok(_) => panic!("expected the request to be rejected"),
            Err(e) => e,
        }
    }

    fn assert_client(err: &DomainError, field: &str) {
        assert_eq!(err.exception, EcsException::ClientException, "{err}");
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
    }

    fn compat(values: &[Compatibility]) -> Vec<i32> {
        values.iter().map(|c| *c as i32).collect()
    }

    fn mapping(container_port: i32, host_port: Option<i32>, protocol: Option<TransportProtocol>) -> PortMapping {
        PortMapping {
            container_port: Some(container_port),
            host_port,
            protocol: protocol.map(|p| p as i32),
            ..Default::default()
        }
    }

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
    fn missing_container_name_is_a_client_exception_naming_the_field() {
        let err = rejected(given(|r| {
            r.container_definitions.push(ContainerDefinition {
                name: None,
                ..container("x")
            })
        }));
        assert_client(&err, "containerDefinitions[1].name");
        assert!(
            err.message.starts_with("Container.name should not be null or empty."),
            "{}",
            err.message
        );
    }

    #[test]
    fn invalid_or_duplicate_container_names_are_rejected() {
        assert_client(
            &rejected(given(|r| r.container_definitions[0].name = Some("a b".into()))),
            "containerDefinitions[0].name",
        );
        let err = rejected(given(|r| r.container_definitions.push(container("app"))));
        assert_client(&err, "containerDefinitions[1].name");
        assert!(err.message.contains("unique"), "{}", err.message);
    }

    #[test]
    fn missing_container_image_is_a_client_exception_naming_the_field() {
        let err = rejected(given(|r| {
            r.container_definitions.push(ContainerDefinition {
                image: None,
                ..container("side")
            })
        }));
        assert_client(&err, "containerDefinitions[1].image");
        assert!(
            err.message.starts_with("Container.image should not be null or empty."),
            "{}",
            err.message
        );
    }

    #[test]
    fn image_digest_must_be_sha256_with_64_hex_characters() {
        let digest = "a".repeat(64);
        registered(given(|r| {
            r.container_definitions[0].image = Some(format!("repo/img@sha256:{digest}"))
        }));
        for bad in [
            "repo/img@sha256:abc",
            "repo/img@md5:abc",
            &format!("repo/img@sha256:{}", "g".repeat(64)),
            "@sha256:x",
        ] {
            let err = rejected(given(|r| r.container_definitions[0].image = Some(bad.to_string())));
            assert_client(&err, "containerDefinitions[0].image");
        }
    }

    #[test]
    fn image_is_limited_to_255_characters_before_the_digest() {
        let long = "i".repeat(256);
        assert_client(
            &rejected(given(|r| r.container_definitions[0].image = Some(long))),
            "containerDefinitions[0].image",
        );
        let ok = format!("{}@sha256:{}", "i".repeat(255), "0".repeat(64));
        registered(given(|r| r.container_definitions[0].image = Some(ok)));
        assert_client(
            &rejected(given(|r| {
                r.container_definitions[0].image = Some("nginx latest".into())
            })),
            "containerDefinitions[0].image",
        );
    }

    #[test]
    fn essential_defaults_to_true_and_is_echoed() {
        let td = registered(given(|_| {}));
        assert_eq!(td.container_definitions[0].essential, Some(true));
        assert_eq!(td.container_definitions[0].cpu, Some(0));
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
    fn ec2_container_without_memory_is_rejected() {
        let err = rejected(given(|r| r.container_definitions[0].memory = None));
        assert_client(&err, "containerDefinitions[0].memory");
        assert!(
            err.message.starts_with(
                "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."
            ),
            "{}",
            err.message
        );
        registered(given(|r| {
            r.container_definitions[0].memory = None;
            r.container_definitions[0].memory_reservation = Some(128);
        }));
        registered(given(|r| {
            r.container_definitions[0].memory = None;
            r.memory = Some("512".into());
        }));
    }

    #[test]
    fn memory_must_not_be_below_memory_reservation() {
        let err = rejected(given(|r| r.container_definitions[0].memory_reservation = Some(512)));
        assert_client(&err, "containerDefinitions[0].memoryReservation");
        registered(given(|r| r.container_definitions[0].memory_reservation = Some(256)));
    }

    #[test]
    fn container_totals_must_fit_the_task_size() {
        let err = rejected(given(|r| {
            r.cpu = Some("256".into());
            r.container_definitions[0].cpu = Some(200);
            r.container_definitions.push(ContainerDefinition {
                cpu: Some(100),
                ..container("side")
            });
        }));
        assert_client(&err, "cpu");
        let err = rejected(given(|r| {
            r.memory = Some("512".into());
            r.container_definitions.push(ContainerDefinition {
                memory: Some(300),
                ..container("side")
            });
        }));
        assert_client(&err, "memory");
        let err = rejected(given(|r| {
            r.memory = Some("512".into());
            r.container_definitions[0].memory = Some(1024);
            r.container_definitions[0].memory_reservation = Some(128);
        }));
        assert_client(&err, "containerDefinitions[0].memory");
        assert!(err.message.contains("greater than for the task"), "{}", err.message);
    }

    #[test]
    fn vcpu_and_gb_strings_are_normalised() {
        assert_eq!(normalise_cpu("256"), Some(256));
        assert_eq!(normalise_cpu("1 vCPU"), Some(1024));
        assert_eq!(normalise_cpu("2vcpu"), Some(2048));
        assert_eq!(normalise_cpu("0.25 vCPU"), Some(256));
        assert_eq!(normalise_cpu(" .5 vCPU"), Some(512));
        assert_eq!(normalise_cpu("."), None);
        assert_eq!(normalise_memory("1024.0"), None);
        assert_eq!(normalise_cpu("0.1 vCPU"), None, "102.4 units is not a whole number");
        assert_eq!(normalise_cpu("1.5"), None);
        assert_eq!(normalise_cpu("-1"), None);
        assert_eq!(normalise_cpu("0"), None);
        assert_eq!(normalise_cpu("one"), None);
        assert_eq!(normalise_cpu("99999999999999999999"), None);
        assert_eq!(normalise_memory("512"), Some(512));
        assert_eq!(normalise_memory("2 GB"), Some(2048));
        assert_eq!(normalise_memory("0.5GB"), Some(512));
        assert_eq!(normalise_memory("1 gb"), Some(1024));
        assert_eq!(normalise_memory("1 GiB"), None);

        let td = registered(given(fargate("0.25 vCPU", "0.5 GB")));
        assert_eq!((td.cpu.as_deref(), td.memory.as_deref()), (Some("256"), Some("512")));
    }

    #[test]
    fn unparseable_task_cpu_or_memory_is_rejected() {
        assert_client(&rejected(given(|r| r.cpu = Some("lots".into()))), "cpu");
        assert_client(&rejected(given(|r| r.memory = Some("1 TB".into()))), "memory");
    }

    #[test]
    fn ec2_task_cpu_must_be_128_to_196608() {
        assert_client(&rejected(given(|r| r.cpu = Some("64".into()))), "cpu");
        assert_client(&rejected(given(|r| r.cpu = Some("197000".into()))), "cpu");
        assert_eq!(
            registered(given(|r| r.cpu = Some("128".into()))).cpu.as_deref(),
            Some("128")
        );
    }

    #[test]
    fn fargate_requires_awsvpc() {
        let err = rejected(given(|r| {
            fargate("256", "512")(r);
            r.network_mode = Some(NetworkMode::Bridge as i32);
        }));
        assert_client(&err, "networkMode");
        assert!(err.message.contains("awsvpc"), "{}", err.message);
    }

    #[test]
    fn fargate_requires_task_cpu_and_memory() {
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.cpu = None;
            })),
            "cpu",
        );
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.memory = None;
            })),
            "memory",
        );
    }

    #[test]
    fn fargate_rejects_invalid_cpu_memory_pair() {
        let err = rejected(given(fargate("300", "512")));
        assert_client(&err, "cpu");
        assert!(
            err.message.starts_with("Invalid 'cpu' setting for task."),
            "{}",
            err.message
        );
        for (cpu, memory) in [
            ("256", "1536"),
            ("512", "512"),
            ("1024", "9216"),
            ("8192", "18432"),
            ("16384", "36864"),
        ] {
            assert_client(&rejected(given(fargate(cpu, memory))), "memory");
        }
        for (cpu, memory) in [
            ("256", "2048"),
            ("512", "3072"),
            ("4096", "30720"),
            ("8192", "20480"),
            ("16384", "122880"),
        ] {
            registered(given(fargate(cpu, memory)));
        }
    }

    #[test]
    fn fargate_definition_is_compatible_with_ec2_and_fargate_but_not_external() {
        let td = registered(given(fargate("1 vCPU", "2 GB")));
        assert_eq!(
            td.compatibilities,
            compat(&[Compatibility::Ec2, Compatibility::Fargate])
        );
        assert_eq!(td.requires_compatibilities, compat(&[Compatibility::Fargate]));
        assert!(supports_launch_type(&td, LaunchType::Fargate));
        assert!(supports_launch_type(&td, LaunchType::Ec2));
        assert!(!supports_launch_type(&td, LaunchType::External));
        assert!(!supports_launch_type(&td, LaunchType::Unspecified));
    }

    #[test]
    fn awsvpc_definition_with_a_fargate_size_is_fargate_compatible_without_asking() {
        let td = registered(given(|r| {
            fargate("512", "1024")(r);
            r.requires_compatibilities.clear();
        }));
        assert!(td.requires_compatibilities.is_empty());
        assert_eq!(
            td.compatibilities,
            compat(&[Compatibility::Ec2, Compatibility::Fargate])
        );
        let bridge = registered(given(|_| {}));
        assert!(!supports_launch_type(&bridge, LaunchType::Fargate));
    }

    #[test]
    fn fargate_rejects_host_pid_mode_ipc_mode_and_host_paths() {
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.pid_mode = Some(PidMode::Host as i32);
            })),
            "pidMode",
        );
        registered(given(|r| {
            fargate("256", "512")(r);
            r.pid_mode = Some(PidMode::Task as i32);
        }));
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.ipc_mode = Some(IpcMode::Task as i32);
            })),
            "ipcMode",
        );
        let host_volume = |path: Option<&str>| Volume {
            name: Some("data".into()),
            host: Some(HostVolumeProperties {
                source_path: path.map(String::from),
            }),
            ..Default::default()
        };
        assert_client(
            &rejected(given(|r| {
                fargate("256", "512")(r);
                r.volumes.push(host_volume(Some("/var/data")));
            })),
            "volumes[0].host.sourcePath",
        );
        registered(given(|r| {
            fargate("256", "512")(r);
            r.volumes.push(host_volume(None));
        }));
    }

    #[test]
    fn fargate_stop_timeout_is_at_most_120_seconds() {
        let err = rejected(given(|r| {
            fargate("256", "512")(r);
            r.container_definitions[0].stop_timeout = Some(121);
        }));
        assert_client(&err, "containerDefinitions[0].stopTimeout");
        registered(given(|r| r.container_definitions[0].stop_timeout = Some(600)));
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
    fn required_compatibility_the_definition_fails_is_explained() {
        let err = rejected(given(|r| {
            r.network_mode = Some(NetworkMode::Awsvpc as i32);
            r.requires_compatibilities = compat(&[Compatibility::External]);
        }));
        assert_client(&err, "networkMode");
        assert!(err.message.contains("EXTERNAL"), "{}", err.message);
        let err = rejected(given(|r| r.requires_compatibilities = vec![0]));
        assert_client(&err, "requiresCompatibilities[0]");
    }

    #[test]
    fn managed_instances_is_listed_only_when_requested() {
        let td = registered(given(|r| {
            r.requires_compatibilities = compat(&[Compatibility::ManagedInstances])
        }));
        assert_eq!(
            td.compatibilities,
            compat(&[
                Compatibility::Ec2,
                Compatibility::External,
                Compatibility::ManagedInstances
            ])
        );
        assert!(supports_launch_type(&td, LaunchType::ManagedInstances));
    }

    #[test]
    fn awsvpc_and_host_host_port_must_equal_container_port() {
        for mode in [NetworkMode::Awsvpc, NetworkMode::Host] {
            let err = rejected(given(|r| {
                r.network_mode = Some(mode as i32);
                r.container_definitions[0]
                    .port_mappings
                    .push(mapping(80, Some(8080), None));
            }));
            assert_client(&err, "containerDefinitions[0].portMappings[0].hostPort");
            let td = registered(given(|r| {
                r.network_mode = Some(mode as i32);
                r.container_definitions[0].port_mappings.push(mapping(80, None, None));
            }));
            let echoed = &td.container_definitions[0].port_mappings[0];
            assert_eq!(echoed.host_port, Some(80));
            assert_eq!(echoed.protocol, Some(TransportProtocol::Tcp as i32));
        }
    }

    #[test]
    fn none_network_mode_allows_no_port_mappings() {
        let err = rejected(given(|r| {
            r.network_mode = Some(NetworkMode::None as i32);
            r.container_definitions[0].port_mappings.push(mapping(80, None, None));
        }));
        assert_client(&err, "containerDefinitions[0].portMappings[0]");
    }

    #[test]
    fn port_numbers_and_protocol_are_checked() {
        let field = "containerDefinitions[0].portMappings[0]";
        let with = |m: PortMapping| given(move |r| r.container_definitions[0].port_mappings.push(m));
        assert_client(
            &rejected(with(mapping(0, None, None))),
            &format!("{field}.containerPort"),
        );
        assert_client(
            &rejected(with(mapping(65_536, None, None))),
            &format!("{field}.containerPort"),
        );
        assert_client(
            &rejected(with(mapping(80, Some(-1), None))),
            &format!("{field}.hostPort"),
        );
        assert_client(
            &rejected(with(PortMapping {
                protocol: Some(9),
                ..mapping(80, None, None)
            })),
            &format!("{field}.protocol"),
        );
        assert_client(
            &rejected(with(PortMapping::default())),
            &format!("{field}.containerPort"),
        );
        let td = registered(with(mapping(53, Some(5353), Some(TransportProtocol::Udp))));
        assert_eq!(td.container_definitions[0].port_mappings[0].host_port, Some(5353));
    }

    #[test]
    fn mount_point_must_name_a_volume() {
        let mount = MountPoint {
            source_volume: Some("data".into()),
            container_path: Some("/data".into()),
            read_only: None,
        };
        let err = rejected(given(|r| r.container_definitions[0].mount_points.push(mount.clone())));
        assert_client(&err, "containerDefinitions[0].mountPoints[0].sourceVolume");
        registered(given(|r| {
            r.container_definitions[0].mount_points.push(mount);
            r.volumes.push(Volume {
                name: Some("data".into()),
                ..Default::default()
            });
        }));
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
    fn volumes_from_and_depends_on_must_name_another_container() {
        let from = |source: &str| VolumeFrom {
            source_container: Some(source.into()),
            read_only: None,
        };
        assert_client(
            &rejected(given(|r| r.container_definitions[0].volumes_from.push(from("app")))),
            "containerDefinitions[0].volumesFrom[0].sourceContainer",
        );
        let depends = |name: &str, condition: Option<ContainerCondition>| ContainerDependency {
            container_name: Some(name.into()),
            condition: condition.map(|c| c as i32),
        };
        assert_client(
            &rejected(given(|r| {
                r.container_definitions[0]
                    .depends_on
                    .push(depends("ghost", Some(ContainerCondition::Start)))
            })),
            "containerDefinitions[0].dependsOn[0].containerName",
        );
        assert_client(
            &rejected(given(|r| {
                r.container_definitions.push(container("init"));
                r.container_definitions[0].depends_on.push(depends("init", None));
            })),
            "containerDefinitions[0].dependsOn[0].condition",
        );
        let td = registered(given(|r| {
            r.container_definitions.push(container("init"));
            r.container_definitions[0]
                .depends_on
                .push(depends("init", Some(ContainerCondition::Success)));
            r.container_definitions[0].volumes_from.push(from("init"));
        }));
        let names: Vec<_> = td
            .requires_attributes
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect();
        assert_eq!(names, vec![ATTRIBUTE_CONTAINER_ORDERING]);
    }

    #[test]
    fn health_check_needs_cmd_and_gets_defaults() {
        let check = |command: &[&str]| HealthCheck {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let err = rejected(given(|r| {
            r.container_definitions[0].health_check = Some(check(&["curl", "localhost"]))
        }));
        assert_client(&err, "containerDefinitions[0].healthCheck.command");
        let td = registered(given(|r| {
            r.container_definitions[0].health_check = Some(check(&["CMD-SHELL", "curl -f localhost || exit 1"]));
        }));
        let hc = td.container_definitions[0].health_check.clone().unwrap_or_default();
        assert_eq!(
            (hc.interval, hc.timeout, hc.retries, hc.start_period),
            (Some(30), Some(5), Some(3), None)
        );
        for (edit, member) in [
            (
                HealthCheck {
                    interval: Some(4),
                    ..check(&["CMD", "true"])
                },
                "interval",
            ),
            (
                HealthCheck {
                    timeout: Some(61),
                    ..check(&["CMD", "true"])
                },
                "timeout",
            ),
            (
                HealthCheck {
                    retries: Some(0),
                    ..check(&["CMD", "true"])
                },
                "retries",
            ),
            (
                HealthCheck {
                    start_period: Some(301),
                    ..check(&["CMD", "true"])
                },
                "startPeriod",
            ),
        ] {
            let err = rejected(given(|r| r.container_definitions[0].health_check = Some(edit)));
            assert_client(&err, &format!("containerDefinitions[0].healthCheck.{member}"));
        }
    }

    #[test]
    fn log_configuration_needs_a_log_driver() {
        let log = |driver: Option<i32>| LogConfiguration {
            log_driver: driver,
            ..Default::default()
        };
        for driver in [None, Some(0), Some(99)] {
            let err = rejected(given(|r| {
                r.container_definitions[0].log_configuration = Some(log(driver))
            }));
            assert_client(&err, "containerDefinitions[0].logConfiguration.logDriver");
        }
    }

    #[test]
    fn requires_attributes_follow_network_mode_logging_and_execution_role() {
        let td = registered(given(|r| {
            fargate("256", "512")(r);
            r.execution_role_arn = Some("arn:aws:iam::123456789012:role/exec".into());
            r.container_definitions[0].log_configuration = Some(LogConfiguration {
                log_driver: Some(LogDriver::Awslogs as i32),
                ..Default::default()
            });
        }));
        let names: Vec<_> = td
            .requires_attributes
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect();
        assert_eq!(
            names,
            vec![ATTRIBUTE_AWSLOGS, ATTRIBUTE_EXECUTION_ROLE_AWSLOGS, ATTRIBUTE_TASK_ENI]
        );
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

    // --- resources (§11) ---

    fn definition(mode: Option<NetworkMode>, mappings: Vec<PortMapping>) -> TaskDefinition {
        registered(given(|r| {
            r.network_mode = mode.map(|m| m as i32);
            r.container_definitions[0].port_mappings = mappings;
        }))
    }

    #[test]
    fn bridge_dynamic_ports_reserve_nothing() {
        let td = definition(None, vec![mapping(80, None, None), mapping(81, Some(0), None)]);
        let reserved = resources(&td, None);
        assert!(
            reserved.tcp_ports.is_empty() && reserved.udp_ports.is_empty(),
            "{reserved:?}"
        );
    }

    #[test]
    fn bridge_explicit_host_ports_are_reserved_by_protocol_sorted_and_deduplicated() {
        let td = definition(
            Some(NetworkMode::Bridge),
            vec![
                mapping(80, Some(8080), None),
                mapping(443, Some(443), Some(TransportProtocol::Tcp)),
                mapping(53, Some(53), Some(TransportProtocol::Udp)),
                mapping(81, Some(8080), None),
            ],
        );
        let reserved = resources(&td, None);
        assert_eq!(reserved.tcp_ports, vec![443, 8080]);
        assert_eq!(reserved.udp_ports, vec![53]);
    }

    #[test]
    fn host_mode_reserves_container_port_when_host_port_is_absent() {
        let mut td = definition(Some(NetworkMode::Host), vec![mapping(9000, None, None)]);
        assert_eq!(resources(&td, None).tcp_ports, vec![9000]);
        // Also for a stored definition whose mapping was never filled in.
        td.container_definitions[0].port_mappings[0].host_port = None;
        assert_eq!(resources(&td, None).tcp_ports, vec![9000]);
    }

    #[test]
    fn awsvpc_tasks_reserve_no_host_ports() {
        let td = definition(Some(NetworkMode::Awsvpc), vec![mapping(80, Some(80), None)]);
        assert_eq!(
            resources(&td, None),
            TaskResources {
                cpu: 0,
                memory: 256,
                tcp_ports: vec![],
                udp_ports: vec![]
            }
        );
    }

    #[test]
    fn cpu_and_memory_come_from_the_task_or_the_sum_of_containers() {
        let td = registered(given(|r| {
            r.container_definitions[0].cpu = Some(100);
            r.container_definitions[0].memory_reservation = Some(128);
            r.container_definitions.push(ContainerDefinition {
                cpu: Some(50),
                ..container("side")
            });
        }));
        let reserved = resources(&td, None);
        assert_eq!((reserved.cpu, reserved.memory), (150, 128 + 256));
        let sized = registered(given(|r| {
            r.cpu = Some("1 vCPU".into());
            r.memory = Some("2GB".into());
        }));
        let reserved = resources(&sized, None);
        assert_eq!((reserved.cpu, reserved.memory), (1024, 2048));
    }

    #[test]
    fn container_and_task_overrides_change_the_reservation() {
        let td = registered(given(|r| r.container_definitions[0].cpu = Some(100)));
        let overrides = TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: Some("app".into()),
                cpu: Some(300),
                memory: Some(512),
                ..Default::default()
            }],
            ..Default::default()
        };
        let reserved = resources(&td, Some(&overrides));
        assert_eq!((reserved.cpu, reserved.memory), (300, 512));
        let task_level = TaskOverride {
            cpu: Some("0.5 vCPU".into()),
            memory: Some("1GB".into()),
            ..overrides
        };
        let reserved = resources(&td, Some(&task_level));
        assert_eq!((reserved.cpu, reserved.memory), (512, 1024));
    }

    // --- overrides ---

    fn override_named(name: Option<&str>) -> TaskOverride {
        TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: name.map(String::from),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn override_must_name_a_container() {
        let td = registered(given(|_| {}));
        for name in [None, Some(""), Some("ghost")] {
            let err = validate_overrides(&td, &override_named(name)).expect_err("override without a known container");
            assert_eq!(err.exception, EcsException::InvalidParameterException);
            assert_eq!(err.field.as_deref(), Some("overrides.containerOverrides[0].name"));
        }
        assert!(validate_overrides(&td, &override_named(Some("app"))).is_ok());
        assert!(validate_overrides(&td, &TaskOverride::default()).is_ok());
    }

    #[test]
    fn override_values_are_checked() {
        let td = registered(given(|_| {}));
        let mut negative = override_named(Some("app"));
        negative.container_overrides[0].memory = Some(-1);
        let err = validate_overrides(&td, &negative).expect_err("negative memory");
        assert_eq!(err.field.as_deref(), Some("overrides.containerOverrides[0].memory"));

        let mut files = override_named(Some("app"));
        files.container_overrides[0].environment_files = vec![EnvironmentFile {
            value: Some("arn:aws:s3:::bucket/app.env".into()),
            r#type: None,
        }];
        let err = validate_overrides(&td, &files).expect_err("environment file without type");
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert_eq!(
            err.field.as_deref(),
            Some("overrides.containerOverrides[0].environmentFiles[0].type")
        );

        let bad_cpu = TaskOverride {
            cpu: Some("fast".into()),
            ..Default::default()
        };
        assert_eq!(
            validate_overrides(&td, &bad_cpu).map_err(|e| e.field),
            Err(Some("overrides.cpu".into()))
        );

        let mut twice = override_named(Some("app"));
        twice.container_overrides.push(ContainerOverride {
            name: Some("app".into()),
            ..Default::default()
        });
        assert!(validate_overrides(&td, &twice).is_err());
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
        fn normalising_never_panics_and_integers_round_trip(text in ".{0,40}", n in 1..=i32::MAX) {
            let _ = (normalise_cpu(&text), normalise_memory(&text));
            proptest::prop_assert_eq!(normalise_cpu(&n.to_string()), Some(n));
            proptest::prop_assert_eq!(normalise_memory(&n.to_string()), Some(n));
        }

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
