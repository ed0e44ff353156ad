//! Container definitions: each container of a RegisterTaskDefinition request validated (name,
//! image, cpu/memory, mount points, `volumesFrom`, `dependsOn`, environment files, health check,
//! log driver) and returned as ECS echoes it. Port mappings are `ports`'s.

use std::ops::RangeInclusive;

use super::ports::port_mapping;
use super::{as_client, check_enum, known};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{printable, validate_name};
use crate::proto::v1::{
    ContainerCondition, ContainerDefinition, EnvironmentFile, EnvironmentFileType, HealthCheck, LogDriver, NetworkMode,
    RegisterTaskDefinitionRequest, VersionConsistency,
};

/// `environmentFiles` per container (definition or override).
const ENVIRONMENT_FILES_MAX: usize = 10;
/// Image reference length, before any `@digest`.
const IMAGE_MAX: usize = 255;

/// Health-check settings: (member, allowed seconds or count, default ECS echoes when absent).
const HEALTH_CHECK_SETTINGS: [(&str, RangeInclusive<i32>, Option<i32>); 4] = [
    ("interval", 5..=300, Some(30)),
    ("timeout", 2..=60, Some(5)),
    ("retries", 1..=10, Some(3)),
    ("startPeriod", 0..=300, None),
];

/// Validates container `i` and returns it as ECS echoes it: `essential` and `cpu` filled in,
/// health-check defaults filled in, port mappings with their protocol (and, in awsvpc/host mode,
/// their host port).
pub(super) fn container(
    i: usize,
    c: &ContainerDefinition,
    req: &RegisterTaskDefinitionRequest,
    mode: NetworkMode,
) -> DomainResult<ContainerDefinition> {
    let at = format!("containerDefinitions[{i}]");
    let name = c.name.as_deref().unwrap_or("");
    if name.is_empty() {
        return Err(
            DomainError::client_at(format!("{at}.name"), "Container.name should not be null or empty.")
                .hint("Name every container with 1 to 255 letters, digits, hyphens and underscores."),
        );
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
        return Err(
            DomainError::client_at(format!("{at}.image"), "Container.image should not be null or empty.").hint(
                format!("Give container '{name}' an image such as 'repository/image:tag' or 'repository/image@sha256:<digest>'."),
            ),
        );
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
pub(super) fn check_environment_files(at: &str, files: &[EnvironmentFile]) -> DomainResult<()> {
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

#[cfg(test)]
mod tests {
    use super::super::compatibility::ATTRIBUTE_CONTAINER_ORDERING;
    use super::super::fixtures::{assert_client, container, given, registered, rejected};
    use super::*;
    use crate::proto::v1::{ContainerDependency, LogConfiguration, MountPoint, Volume, VolumeFrom};

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
    fn memory_must_not_be_below_memory_reservation() {
        let err = rejected(given(|r| r.container_definitions[0].memory_reservation = Some(512)));
        assert_client(&err, "containerDefinitions[0].memoryReservation");
        registered(given(|r| r.container_definitions[0].memory_reservation = Some(256)));
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
}
