//! Port mappings of a container definition: checked against the network mode and returned as
//! ECS echoes them (protocol filled in; in awsvpc and host mode the host port too).

use std::ops::RangeInclusive;

use super::{check_enum, network_mode_name};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::printable;
use crate::proto::v1::{ApplicationProtocol, NetworkMode, PortMapping, TransportProtocol};

/// Length of a port mapping's `name`.
const PORT_MAPPING_NAME_MAX: usize = 64;
/// Port numbers.
pub(super) const PORTS: RangeInclusive<i32> = 0..=65_535;

/// Checks one port mapping and returns it as ECS echoes it (protocol `tcp` when absent; in
/// awsvpc and host mode a missing host port is the container port).
pub(super) fn port_mapping(
    at: &str,
    container: &str,
    mapping: &PortMapping,
    mode: NetworkMode,
) -> DomainResult<PortMapping> {
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{assert_client, given, mapping, registered, rejected};
    use super::*;

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
}
