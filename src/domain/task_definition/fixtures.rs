//! Test fixtures shared by the task-definition unit tests: a valid request to change, a
//! Fargate-shaped change, and the accepted/rejected helpers.

use super::validate_registration;
use crate::domain::error::{DomainError, EcsException};
use crate::proto::v1::{
    Compatibility, ContainerDefinition, NetworkMode, PortMapping, RegisterTaskDefinitionRequest, TaskDefinition,
    TransportProtocol,
};

pub(super) fn container(name: &str) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some("public.ecr.aws/nginx/nginx:1.27".into()),
        memory: Some(256),
        ..Default::default()
    }
}

/// Given a valid bridge-mode request for family `web` with one container `app`
/// (256 MiB), changed by `edit`.
pub(super) fn given(edit: impl FnOnce(&mut RegisterTaskDefinitionRequest)) -> RegisterTaskDefinitionRequest {
    let mut req = RegisterTaskDefinitionRequest {
        family: Some("web".into()),
        container_definitions: vec![container("app")],
        ..Default::default()
    };
    edit(&mut req);
    req
}

/// A Fargate-shaped change: awsvpc, the given task size, requiresCompatibilities FARGATE.
pub(super) fn fargate(cpu: &str, memory: &str) -> impl FnOnce(&mut RegisterTaskDefinitionRequest) {
    let (cpu, memory) = (cpu.to_string(), memory.to_string());
    move |r| {
        r.network_mode = Some(NetworkMode::Awsvpc as i32);
        r.requires_compatibilities = vec![Compatibility::Fargate as i32];
        r.cpu = Some(cpu);
        r.memory = Some(memory);
    }
}

pub(super) fn registered(req: RegisterTaskDefinitionRequest) -> TaskDefinition {
    match validate_registration(&req) {
        Ok((td, _)) => td,
        Err(e) => panic!("expected the request to be accepted, got {e} at {:?}", e.field),
    }
}

pub(super) fn rejected(req: RegisterTaskDefinitionRequest) -> DomainError {
    match validate_registration(&req) {
        Ok(_) => panic!("expected the request to be rejected"),
        Err(e) => e,
    }
}

pub(super) fn assert_client(err: &DomainError, field: &str) {
    assert_eq!(err.exception, EcsException::ClientException, "{err}");
    assert_eq!(err.field.as_deref(), Some(field), "{err}");
}

pub(super) fn compat(values: &[Compatibility]) -> Vec<i32> {
    values.iter().map(|c| *c as i32).collect()
}

pub(super) fn mapping(container_port: i32, host_port: Option<i32>, protocol: Option<TransportProtocol>) -> PortMapping {
    PortMapping {
        container_port: Some(container_port),
        host_port,
        protocol: protocol.map(|p| p as i32),
        ..Default::default()
    }
}
