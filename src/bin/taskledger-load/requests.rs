//! The requests the scenarios and the loaders send: the Fargate task definition, RunTask,
//! SubmitTaskStateChange; and a task's id from its ARN.

use taskledger::proto::v1::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration, NetworkMode,
    RegisterTaskDefinitionRequest, RunTaskRequest, SubmitTaskStateChangeRequest,
};

pub(crate) fn fargate_definition() -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: Some("load".into()),
        network_mode: Some(NetworkMode::Awsvpc as i32),
        requires_compatibilities: vec![Compatibility::Fargate as i32],
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("nginx:1.25".into()),
            essential: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(crate) fn run_request(cluster: &str, count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some(cluster.into()),
        task_definition: Some("load".into()),
        count: Some(count),
        launch_type: Some(LaunchType::Fargate as i32),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-1".into()],
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

pub(crate) fn transition(cluster: &str, task: &str, status: &str) -> SubmitTaskStateChangeRequest {
    SubmitTaskStateChangeRequest {
        cluster: Some(cluster.into()),
        task: Some(task.into()),
        status: Some(status.into()),
        ..Default::default()
    }
}

/// The id at the end of a task ARN (`arn:…:task/<cluster>/<id>`).
pub(crate) fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}
