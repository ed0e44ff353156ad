//! Reserved resources: what a task of a definition, after its overrides, reserves on a container
//! instance (ECS_SEMANTICS §11): CPU units, MiB of memory, host ports.

use super::ports::PORTS;
use super::{normalise_cpu, normalise_memory, saturating_sum, task_network_mode};
use crate::proto::v1::{
    ContainerDefinition, ContainerOverride, NetworkMode, TaskDefinition, TaskOverride, TransportProtocol,
};

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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{container, given, mapping, registered};
    use super::*;
    use crate::proto::v1::PortMapping;

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
}
