//! Launch-type compatibility: the EC2, EXTERNAL and Fargate rules a definition must meet (task
//! cpu ranges, Fargate cpu/memory combinations, what Fargate forbids), the `compatibilities` ECS
//! computes from them, whether a definition supports a launch type, and the `requiresAttributes`
//! an instance needs.

use std::ops::RangeInclusive;

use super::{network_mode_name, normalise_cpu, normalise_memory, task_network_mode};
use crate::domain::error::DomainError;
use crate::proto::v1::{Attribute, Compatibility, LaunchType, LogDriver, NetworkMode, PidMode, TaskDefinition};

/// Task cpu range on EC2 and EXTERNAL (0.125 to 192 vCPU).
const EC2_CPU: RangeInclusive<i32> = 128..=196_608;
/// Longest container `stopTimeout` Fargate allows, in seconds.
const FARGATE_STOP_TIMEOUT_MAX: i32 = 120;

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
pub(super) const ATTRIBUTE_CONTAINER_ORDERING: &str = "ecs.capability.container-ordering";

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

/// The first reason `td` cannot run with this launch type, as the ClientException to report.
pub(super) fn launch_type_problem(td: &TaskDefinition, compatibility: Compatibility) -> Option<DomainError> {
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
                     'memoryReservation' must be specified.",
                    c.name.as_deref().unwrap_or("")
                ),
            )
            .hint("Alternatively, set the task-level memory.")
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
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for \
             pidMode is 'task'."
                .into(),
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
pub(super) fn compatibilities(td: &TaskDefinition, requested: &[Compatibility]) -> Vec<i32> {
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
pub(super) fn requires_attributes(td: &TaskDefinition) -> Vec<Attribute> {
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
    use super::super::fixtures::{assert_client, compat, fargate, given, registered, rejected};
    use super::*;
    use crate::proto::v1::{HostVolumeProperties, IpcMode, LogConfiguration, Volume};

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
}
