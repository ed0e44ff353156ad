//! End to end over real gRPC on 127.0.0.1:0: every RPC's happy path and documented errors (the
//! ECS exception read from `ErrorInfo`), health, reflection, region metadata, request ids, bad
//! input that changes nothing, the simulated agent, graceful shutdown, and the CLI binary.
//! Does not test ECS rules in depth (the domain and store tests do); it tests that they reach a
//! gRPC client intact.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::grpc_support::*;
use taskledger::api::{ServeOptions, REQUEST_ID_HEADER};
use taskledger::proto::v1::*;
use tonic::codegen::tokio_stream::{self, StreamExt};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

// ---------------------------------------------------------------------------------------------
// Happy paths, resource by resource

#[tokio::test]
async fn cluster_rpcs_create_describe_list_and_delete() {
    let mut server = start().await;
    let created = server.create_cluster("prod").await;
    assert_eq!(
        created.cluster_arn.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:cluster/prod")
    );
    assert_eq!(created.status.as_deref(), Some("ACTIVE"));

    let described = server
        .client
        .describe_clusters(DescribeClustersRequest {
            clusters: vec!["prod".into(), "ghost".into()],
            include: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.clusters.len(), 1);
    assert_eq!(described.failures.len(), 1);
    assert_eq!(described.failures[0].reason.as_deref(), Some("MISSING"));
    assert_eq!(
        described.failures[0].arn.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:cluster/ghost")
    );

    let listed = server
        .client
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.cluster_arns, vec![created.cluster_arn.clone().unwrap()]);

    let deleted = server
        .client
        .delete_cluster(DeleteClusterRequest {
            cluster: Some("prod".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.cluster.unwrap().status.as_deref(), Some("INACTIVE"));
    let listed = server
        .client
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.cluster_arns.is_empty());
    let missing = server
        .client
        .delete_cluster(DeleteClusterRequest {
            cluster: Some("ghost".into()),
        })
        .await;
    let status = missing.as_ref().expect_err("the cluster is missing").clone();
    assert_eq!(exception(missing), "ClusterNotFoundException");
    // ECS's message; what to do about it in a LocalizedMessage beside ErrorInfo.
    assert_eq!(status.message(), "Cluster not found.");
    let hint = status
        .get_details_localized_message()
        .expect("a LocalizedMessage detail");
    assert_eq!(hint.locale, "en-US");
    assert!(hint.message.contains("'ghost' does not exist"), "{}", hint.message);
    server.stop().await;
}

#[tokio::test]
async fn task_definition_rpcs_register_describe_list_and_deregister() {
    let mut server = start().await;
    let first = server.register_fargate("web").await;
    let second = server.register_fargate("web").await;
    assert_eq!((first.revision, second.revision), (Some(1), Some(2)));

    let latest = server
        .client
        .describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some("web".into()),
            include: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.task_definition.unwrap().revision, Some(2));

    let listed = server
        .client
        .list_task_definitions(ListTaskDefinitionsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.task_definition_arns.len(), 2);
    let families = server
        .client
        .list_task_definition_families(ListTaskDefinitionFamiliesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(families.families, vec!["web".to_string()]);

    let deregistered = server
        .client
        .deregister_task_definition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web:2".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deregistered.task_definition.unwrap().status,
        Some(TaskDefinitionStatus::Inactive as i32)
    );
    let latest = server
        .client
        .describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some("web".into()),
            include: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        latest.task_definition.unwrap().revision,
        Some(1),
        "a bare family names the latest ACTIVE revision"
    );

    let unknown = server
        .client
        .describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some("nope".into()),
            include: vec![],
        })
        .await;
    assert_eq!(exception(unknown), "ClientException");
    server.stop().await;
}

#[tokio::test]
async fn container_instance_rpcs_register_describe_list_and_deregister() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    let registered = server
        .client
        .register_container_instance(RegisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .container_instance
        .unwrap();
    let arn = registered.container_instance_arn.clone().unwrap();

    let listed = server
        .client
        .list_container_instances(ListContainerInstancesRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.container_instance_arns, vec![arn.clone()]);

    let ghost = "0123456789abcdef0123456789abcdef".to_string();
    let described = server
        .client
        .describe_container_instances(DescribeContainerInstancesRequest {
            cluster: Some("prod".into()),
            container_instances: vec![arn.clone(), ghost],
            include: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.container_instances.len(), 1);
    assert_eq!(described.failures[0].reason.as_deref(), Some("MISSING"));

    let deregistered = server
        .client
        .deregister_container_instance(DeregisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            container_instance: Some(arn),
            force: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deregistered.container_instance.unwrap().status.as_deref(),
        Some("INACTIVE")
    );
    server.stop().await;
}

#[tokio::test]
async fn task_rpcs_run_start_describe_list_stop_and_take_state_changes() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    server.register_ec2("batch").await;

    let tasks = server.run_fargate("prod", "web", 3).await;
    assert_eq!(tasks.len(), 3);
    assert!(tasks
        .iter()
        .all(|t| t.last_status.as_deref() == Some("PROVISIONING") && t.version == Some(1)));
    let arn = tasks[0].task_arn.clone().unwrap();

    let instance = server
        .client
        .register_container_instance(RegisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .container_instance
        .unwrap();
    let started = server
        .client
        .start_task(StartTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("batch".into()),
            container_instances: vec![instance.container_instance_arn.clone().unwrap()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.tasks.len(), 1, "{:?}", started.failures);
    assert_eq!(started.tasks[0].container_instance_arn, instance.container_instance_arn);

    let report = SubmitTaskStateChangeRequest {
        cluster: Some("prod".into()),
        task: Some(arn.clone()),
        status: Some("RUNNING".into()),
        ..Default::default()
    };
    let ack = server
        .client
        .submit_task_state_change(report)
        .await
        .unwrap()
        .into_inner();
    assert!(ack.acknowledgment.is_some());
    let container_report = SubmitContainerStateChangeRequest {
        cluster: Some("prod".into()),
        task: Some(arn.clone()),
        container_name: Some("app".into()),
        status: Some("RUNNING".into()),
        ..Default::default()
    };
    server
        .client
        .submit_container_state_change(container_report)
        .await
        .unwrap();
    let running = server.describe_task("prod", &arn).await;
    assert_eq!(running.last_status.as_deref(), Some("RUNNING"));
    assert_eq!(running.containers[0].last_status.as_deref(), Some("RUNNING"));
    assert_eq!(running.version, Some(3));

    let listed = server
        .client
        .list_tasks(ListTasksRequest {
            cluster: Some("prod".into()),
            family: Some("web".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.task_arns.len(), 3);

    let stopped = server
        .client
        .stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some(arn.clone()),
            reason: Some("done".into()),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(stopped.desired_status.as_deref(), Some("STOPPED"));
    assert_eq!(stopped.stop_code, Some(TaskStopCode::UserInitiated as i32));
    let unknown = server
        .client
        .stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some("0123456789abcdef0123456789abcdef".into()),
            reason: None,
        })
        .await;
    assert_eq!(exception(unknown), "InvalidParameterException");
    server.stop().await;
}

#[tokio::test]
async fn tag_rpcs_tag_untag_and_list_tags() {
    let mut server = start().await;
    let cluster = server.create_cluster("prod").await.cluster_arn.unwrap();
    let tags = vec![
        Tag {
            key: Some("team".into()),
            value: Some("core".into()),
        },
        Tag {
            key: Some("env".into()),
            value: Some("dev".into()),
        },
    ];
    server
        .client
        .tag_resource(TagResourceRequest {
            resource_arn: Some(cluster.clone()),
            tags,
        })
        .await
        .unwrap();
    server
        .client
        .untag_resource(UntagResourceRequest {
            resource_arn: Some(cluster.clone()),
            tag_keys: vec!["env".into()],
        })
        .await
        .unwrap();
    let listed = server
        .client
        .list_tags_for_resource(ListTagsForResourceRequest {
            resource_arn: Some(cluster),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.tags,
        vec![Tag {
            key: Some("team".into()),
            value: Some("core".into())
        }]
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Documented errors

#[tokio::test]
async fn run_task_in_a_missing_cluster_is_cluster_not_found() {
    let mut server = start().await;
    server.register_fargate("web").await;
    let result = server.client.run_task(fargate_run("ghost", "web", 1)).await;
    assert_eq!(exception(result), "ClusterNotFoundException");
    server.stop().await;
}

#[tokio::test]
async fn run_task_with_count_eleven_is_invalid_parameter_naming_the_field() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let status = server
        .client
        .run_task(fargate_run("prod", "web", 11))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "InvalidParameterException");
    assert_eq!(info.domain, "ecs.taskledger");
    assert_eq!(info.metadata.get("field").map(String::as_str), Some("count"));
    let bad_request = status.get_details_bad_request().expect("BadRequest");
    assert_eq!(bad_request.field_violations[0].field, "count");
    server.stop().await;
}

#[tokio::test]
async fn run_task_with_an_unknown_task_definition_is_a_client_exception() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    let result = server.client.run_task(fargate_run("prod", "nope", 1)).await;
    assert_eq!(exception(result), "ClientException");
    server.stop().await;
}

#[tokio::test]
async fn describe_tasks_with_an_empty_list_is_invalid_parameter() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    let request = DescribeTasksRequest {
        cluster: Some("prod".into()),
        tasks: vec![],
        include: vec![],
    };
    assert_eq!(
        exception(server.client.describe_tasks(request).await),
        "InvalidParameterException"
    );
    server.stop().await;
}

#[tokio::test]
async fn describe_tasks_reports_unknown_tasks_as_missing_failures() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let arn = server.run_fargate("prod", "web", 1).await[0].task_arn.clone().unwrap();
    let ghost = "0123456789abcdef0123456789abcdef";
    let request = DescribeTasksRequest {
        cluster: Some("prod".into()),
        tasks: vec![arn.clone(), ghost.into()],
        include: vec![],
    };
    let response = server.client.describe_tasks(request).await.unwrap().into_inner();
    assert_eq!(response.tasks.len(), 1);
    assert_eq!(response.tasks[0].task_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(response.failures.len(), 1);
    assert_eq!(response.failures[0].reason.as_deref(), Some("MISSING"));
    assert!(response.failures[0].arn.as_deref().unwrap_or_default().ends_with(ghost));
    server.stop().await;
}

#[tokio::test]
async fn describe_tasks_in_a_missing_cluster_is_cluster_not_found() {
    let mut server = start().await;
    let request = DescribeTasksRequest {
        cluster: Some("ghost".into()),
        tasks: vec!["0123456789abcdef0123456789abcdef".into()],
        include: vec![],
    };
    assert_eq!(
        exception(server.client.describe_tasks(request).await),
        "ClusterNotFoundException"
    );
    server.stop().await;
}

#[tokio::test]
async fn reused_client_token_with_other_parameters_is_a_conflict_naming_the_first_tasks() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let first = RunTaskRequest {
        client_token: Some("token-1".into()),
        ..fargate_run("prod", "web", 2)
    };
    let original = server.client.run_task(first.clone()).await.unwrap().into_inner();
    let head = server.head();

    let retry = server.client.run_task(first).await.unwrap().into_inner();
    let arns = |tasks: &[Task]| tasks.iter().map(|t| t.task_arn.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(
        arns(&retry.tasks),
        arns(&original.tasks),
        "a retry returns the original tasks"
    );
    assert_eq!(server.head(), head, "a retry appends nothing");

    let other = RunTaskRequest {
        client_token: Some("token-1".into()),
        ..fargate_run("prod", "web", 1)
    };
    let status = server.client.run_task(other).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "ConflictException");
    let mut reported: Vec<String> = info.metadata["resourceIds"].split(',').map(str::to_string).collect();
    let mut expected = arns(&original.tasks);
    reported.sort();
    expected.sort();
    assert_eq!(reported, expected);
    assert_eq!(server.head(), head);
    server.stop().await;
}

#[tokio::test]
async fn delete_cluster_with_tasks_not_stopped_is_cluster_contains_tasks() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    server.run_fargate("prod", "web", 1).await;
    let result = server
        .client
        .delete_cluster(DeleteClusterRequest {
            cluster: Some("prod".into()),
        })
        .await;
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(exception::<()>(Err(status)), "ClusterContainsTasksException");
    server.stop().await;
}

#[tokio::test]
async fn tagging_a_missing_resource_is_resource_not_found() {
    let mut server = start().await;
    let request = TagResourceRequest {
        resource_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/ghost".into()),
        tags: vec![Tag {
            key: Some("team".into()),
            value: Some("core".into()),
        }],
    };
    let status = server.client.tag_resource(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(exception::<()>(Err(status)), "ResourceNotFoundException");
    server.stop().await;
}

#[tokio::test]
async fn describe_tasks_returns_tags_only_when_include_names_tags() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let request = RunTaskRequest {
        tags: vec![Tag {
            key: Some("team".into()),
            value: Some("core".into()),
        }],
        ..fargate_run("prod", "web", 1)
    };
    let arn = server.client.run_task(request).await.unwrap().into_inner().tasks[0]
        .task_arn
        .clone()
        .unwrap();
    let describe = |include: Vec<i32>| DescribeTasksRequest {
        cluster: Some("prod".into()),
        tasks: vec![arn.clone()],
        include,
    };
    let without = server
        .client
        .describe_tasks(describe(vec![]))
        .await
        .unwrap()
        .into_inner();
    assert!(without.tasks[0].tags.is_empty());
    let with = server
        .client
        .describe_tasks(describe(vec![TaskField::Tags as i32]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        with.tasks[0].tags,
        vec![Tag {
            key: Some("team".into()),
            value: Some("core".into())
        }]
    );
    server.stop().await;
}

#[tokio::test]
async fn list_tasks_defaults_to_running_and_pages_with_next_token() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let mut all: Vec<String> = server
        .run_fargate("prod", "web", 5)
        .await
        .into_iter()
        .map(|t| t.task_arn.unwrap())
        .collect();
    let stopped = all.pop().unwrap();
    server
        .client
        .stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some(stopped.clone()),
            reason: None,
        })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut next_token = None;
    let mut pages = 0;
    loop {
        let request = ListTasksRequest {
            cluster: Some("prod".into()),
            max_results: Some(2),
            next_token,
            ..Default::default()
        };
        let page = server.client.list_tasks(request).await.unwrap().into_inner();
        assert!(page.task_arns.len() <= 2);
        seen.extend(page.task_arns);
        pages += 1;
        next_token = page.next_token;
        if next_token.is_none() || pages > 10 {
            break;
        }
    }
    seen.sort();
    all.sort();
    assert_eq!(
        seen, all,
        "the default desiredStatus RUNNING leaves out the stopped task"
    );

    let request = ListTasksRequest {
        cluster: Some("prod".into()),
        desired_status: Some(DesiredStatus::Stopped as i32),
        ..Default::default()
    };
    assert_eq!(
        server.client.list_tasks(request).await.unwrap().into_inner().task_arns,
        vec![stopped]
    );

    let garbled = ListTasksRequest {
        cluster: Some("prod".into()),
        next_token: Some("garbage!".into()),
        ..Default::default()
    };
    assert_eq!(
        exception(server.client.list_tasks(garbled).await),
        "InvalidParameterException"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Health, reflection, metadata

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_ecs_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let server = start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "taskledger.v1.Ecs"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "service '{service}'");
    }
    server.stop().await;
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_ecs_service() {
    let server = start().await;

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut v1 = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("v1 reflection did not list services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"taskledger.v1.Ecs".to_string()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_string()), "{names:?}");

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
    let mut v1alpha = AlphaClient::new(server.channel().await);
    let requests = [
        AlphaReflectionRequest {
            host: String::new(),
            message_request: Some(AlphaRequest::ListServices(String::new())),
        },
        // grpcurl needs the error-detail types to decode ErrorInfo.
        AlphaReflectionRequest {
            host: String::new(),
            message_request: Some(AlphaRequest::FileContainingSymbol("google.rpc.ErrorInfo".into())),
        },
    ];
    let mut responses = v1alpha
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(AlphaResponse::ListServicesResponse(list)) = responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha reflection did not list services");
    };
    assert!(list.service.iter().any(|s| s.name == "taskledger.v1.Ecs"));
    let Some(AlphaResponse::FileDescriptorResponse(files)) = responses.next().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha reflection does not know google.rpc.ErrorInfo");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn region_metadata_scopes_resources_to_that_region() {
    let mut server = start().await;
    let request = CreateClusterRequest {
        cluster_name: Some("eu".into()),
        ..Default::default()
    };
    let cluster = server
        .client
        .create_cluster(in_region("eu-west-1", request))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(
        cluster.cluster_arn.as_deref(),
        Some("arn:aws:ecs:eu-west-1:123456789012:cluster/eu")
    );

    let in_default = server
        .client
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        in_default.cluster_arns.is_empty(),
        "a cluster of eu-west-1 is not visible in us-east-1"
    );
    let in_eu = server
        .client
        .list_clusters(in_region("eu-west-1", ListClustersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(in_eu.cluster_arns, vec![cluster.cluster_arn.unwrap()]);
    let describe = DescribeClustersRequest {
        clusters: vec!["eu".into()],
        include: vec![],
    };
    let from_default = server.client.describe_clusters(describe).await.unwrap().into_inner();
    assert_eq!(from_default.failures[0].reason.as_deref(), Some("MISSING"));
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_region_in_metadata_is_invalid_parameter_and_appends_nothing() {
    let mut server = start().await;
    let head = server.head();
    for region in ["EU-WEST-1", "nowhere", ""] {
        let request = CreateClusterRequest {
            cluster_name: Some("x".into()),
            ..Default::default()
        };
        let status = server
            .client
            .create_cluster(in_region(region, request))
            .await
            .unwrap_err();
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "InvalidParameterException", "region '{region}'");
        assert_eq!(
            info.metadata.get("field").map(String::as_str),
            Some("x-taskledger-region")
        );
    }
    assert_eq!(server.head(), head);
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_and_generated_when_absent_or_unusable() {
    let mut server = start().await;
    let mut request = Request::new(ListClustersRequest::default());
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "my-request-42".parse().unwrap());
    let response = server.client.list_clusters(request).await.unwrap();
    assert_eq!(response.metadata().get(REQUEST_ID_HEADER).unwrap(), "my-request-42");

    let response = server
        .client
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap();
    let generated = response
        .metadata()
        .get(REQUEST_ID_HEADER)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let mut request = Request::new(DeleteClusterRequest {
        cluster: Some("ghost".into()),
    });
    request
        .metadata_mut()
        .insert(REQUEST_ID_HEADER, "x".repeat(200).parse().unwrap());
    let status = server.client.delete_cluster(request).await.unwrap_err();
    let echoed = status.metadata().get(REQUEST_ID_HEADER).unwrap().to_str().unwrap();
    assert!(
        uuid::Uuid::parse_str(echoed).is_ok(),
        "an over-long id is replaced, also on errors: {echoed}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input changes nothing

type Call = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// One bad request: what it is, the exception it must get, and the call.
macro_rules! bad {
    ($client:expr, $what:literal, $exception:literal, $method:ident($request:expr)) => {{
        let mut client = $client.clone();
        let request = $request;
        let call: Call = Box::pin(async move { client.$method(request).await.map(|_| ()) });
        ($what, $exception, call)
    }};
}

#[tokio::test]
async fn bad_input_over_every_kind_of_rpc_gets_its_exception_and_appends_nothing() {
    let mut server = start().await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let task_arn = server.run_fargate("prod", "web", 1).await[0].task_arn.clone().unwrap();
    let tags = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| Tag {
                key: Some(format!("{prefix}{i}")),
                value: Some("v".into()),
            })
            .collect::<Vec<_>>()
    };
    let cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod".to_string();
    let thirty = TagResourceRequest {
        resource_arn: Some(cluster_arn.clone()),
        tags: tags("a", 30),
    };
    server.client.tag_resource(thirty).await.unwrap();
    let head = server.head();
    let client = server.client.clone();
    let long = "x".repeat(100_000);
    let ghost = "0123456789abcdef0123456789abcdef".to_string();
    let cases = vec![
        bad!(
            client,
            "RunTask count 0",
            "InvalidParameterException",
            run_task(fargate_run("prod", "web", 0))
        ),
        bad!(
            client,
            "RunTask without taskDefinition",
            "InvalidParameterException",
            run_task(RunTaskRequest {
                task_definition: None,
                ..fargate_run("prod", "web", 1)
            })
        ),
        bad!(
            client,
            "RunTask with a bad cluster name",
            "InvalidParameterException",
            run_task(fargate_run("no such/name", "web", 1))
        ),
        bad!(
            client,
            "RunTask with a 65-char clientToken",
            "InvalidParameterException",
            run_task(RunTaskRequest {
                client_token: Some("t".repeat(65)),
                ..fargate_run("prod", "web", 1)
            })
        ),
        bad!(
            client,
            "RunTask with an aws: tag",
            "InvalidParameterException",
            run_task(RunTaskRequest {
                tags: vec![Tag {
                    key: Some("aws:owner".into()),
                    value: Some("me".into())
                }],
                ..fargate_run("prod", "web", 1)
            })
        ),
        bad!(
            client,
            "RunTask with 51 tags",
            "InvalidParameterException",
            run_task(RunTaskRequest {
                tags: tags("k", 51),
                ..fargate_run("prod", "web", 1)
            })
        ),
        bad!(
            client,
            "RunTask with a huge startedBy",
            "InvalidParameterException",
            run_task(RunTaskRequest {
                started_by: Some(long.clone()),
                ..fargate_run("prod", "web", 1)
            })
        ),
        bad!(
            client,
            "StartTask without instances",
            "InvalidParameterException",
            start_task(StartTaskRequest {
                cluster: Some("prod".into()),
                task_definition: Some("web".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "DescribeTasks with 101 ids",
            "InvalidParameterException",
            describe_tasks(DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: vec![ghost.clone(); 101],
                include: vec![],
            })
        ),
        bad!(
            client,
            "StopTask with a malformed id",
            "InvalidParameterException",
            stop_task(StopTaskRequest {
                cluster: Some("prod".into()),
                task: Some("not-a-task".into()),
                reason: None,
            })
        ),
        bad!(
            client,
            "StopTask without a task",
            "InvalidParameterException",
            stop_task(StopTaskRequest {
                cluster: Some("prod".into()),
                task: None,
                reason: None,
            })
        ),
        bad!(
            client,
            "ListTasks maxResults 0",
            "InvalidParameterException",
            list_tasks(ListTasksRequest {
                cluster: Some("prod".into()),
                max_results: Some(0),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "SubmitTaskStateChange to an unknown status",
            "InvalidParameterException",
            submit_task_state_change(SubmitTaskStateChangeRequest {
                cluster: Some("prod".into()),
                task: Some(task_arn.clone()),
                status: Some("FLYING".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "SubmitTaskStateChange about a container the task lacks",
            "InvalidParameterException",
            submit_task_state_change(SubmitTaskStateChangeRequest {
                cluster: Some("prod".into()),
                task: Some(task_arn.clone()),
                status: Some("PENDING".into()),
                containers: vec![ContainerStateChange {
                    container_name: Some("sidecar".into()),
                    status: Some("RUNNING".into()),
                    ..Default::default()
                }],
                ..Default::default()
            })
        ),
        bad!(
            client,
            "SubmitContainerStateChange without a container",
            "InvalidParameterException",
            submit_container_state_change(SubmitContainerStateChangeRequest {
                cluster: Some("prod".into()),
                task: Some(task_arn.clone()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "RegisterTaskDefinition without containers",
            "ClientException",
            register_task_definition(RegisterTaskDefinitionRequest {
                family: Some("web".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "RegisterTaskDefinition with a bad family",
            "InvalidParameterException",
            register_task_definition(RegisterTaskDefinitionRequest {
                family: Some("no spaces allowed".into()),
                ..fargate_definition("web")
            })
        ),
        bad!(
            client,
            "DescribeTaskDefinition of revision 0",
            "ClientException",
            describe_task_definition(DescribeTaskDefinitionRequest {
                task_definition: Some("web:0".into()),
                include: vec![]
            })
        ),
        bad!(
            client,
            "DeregisterTaskDefinition of a missing revision",
            "ClientException",
            deregister_task_definition(DeregisterTaskDefinitionRequest {
                task_definition: Some("web:99".into())
            })
        ),
        bad!(
            client,
            "ListTaskDefinitions maxResults 101",
            "InvalidParameterException",
            list_task_definitions(ListTaskDefinitionsRequest {
                max_results: Some(101),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "ListTaskDefinitionFamilies with a garbled token",
            "InvalidParameterException",
            list_task_definition_families(ListTaskDefinitionFamiliesRequest {
                next_token: Some("%%%".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "CreateCluster with a 256-char name",
            "InvalidParameterException",
            create_cluster(CreateClusterRequest {
                cluster_name: Some("c".repeat(256)),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "ListClusters maxResults -1",
            "InvalidParameterException",
            list_clusters(ListClustersRequest {
                max_results: Some(-1),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "DeleteCluster of a missing cluster",
            "ClusterNotFoundException",
            delete_cluster(DeleteClusterRequest {
                cluster: Some("ghost".into())
            })
        ),
        bad!(
            client,
            "RegisterContainerInstance in a missing cluster",
            "ClusterNotFoundException",
            register_container_instance(RegisterContainerInstanceRequest {
                cluster: Some("ghost".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "DeregisterContainerInstance of a missing instance",
            "InvalidParameterException",
            deregister_container_instance(DeregisterContainerInstanceRequest {
                cluster: Some("prod".into()),
                container_instance: Some(ghost.clone()),
                force: None
            })
        ),
        bad!(
            client,
            "PutAttributes on a missing instance",
            "TargetNotFoundException",
            put_attributes(PutAttributesRequest {
                cluster: Some("prod".into()),
                attributes: vec![Attribute {
                    name: Some("stack".into()),
                    value: Some("prod".into()),
                    target_type: Some(TargetType::ContainerInstance as i32),
                    target_id: Some(ghost.clone()),
                }]
            })
        ),
        bad!(
            client,
            "ListAttributes without a target type",
            "InvalidParameterException",
            list_attributes(ListAttributesRequest {
                cluster: Some("prod".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "UpdateContainerInstancesState to a status only ECS sets",
            "InvalidParameterException",
            update_container_instances_state(UpdateContainerInstancesStateRequest {
                cluster: Some("prod".into()),
                container_instances: vec![ghost.clone()],
                status: Some(ContainerInstanceStatus::Deregistering as i32)
            })
        ),
        bad!(
            client,
            "UpdateContainerInstancesState in a missing cluster",
            "ClusterNotFoundException",
            update_container_instances_state(UpdateContainerInstancesStateRequest {
                cluster: Some("ghost".into()),
                container_instances: vec![ghost.clone()],
                status: Some(ContainerInstanceStatus::Draining as i32)
            })
        ),
        bad!(
            client,
            "DescribeContainerInstances with no ids",
            "ClientException",
            describe_container_instances(DescribeContainerInstancesRequest {
                cluster: Some("prod".into()),
                container_instances: vec![],
                include: vec![]
            })
        ),
        bad!(
            client,
            "ListContainerInstances with a garbled token",
            "InvalidParameterException",
            list_container_instances(ListContainerInstancesRequest {
                cluster: Some("prod".into()),
                next_token: Some("garbage".into()),
                ..Default::default()
            })
        ),
        bad!(
            client,
            "TagResource on something that is not an ARN",
            "InvalidParameterException",
            tag_resource(TagResourceRequest {
                resource_arn: Some("prod".into()),
                tags: tags("k", 1),
            })
        ),
        bad!(
            client,
            "TagResource with 51 tags",
            "InvalidParameterException",
            tag_resource(TagResourceRequest {
                resource_arn: Some(cluster_arn.clone()),
                tags: tags("k", 51),
            })
        ),
        bad!(
            client,
            "TagResource past 50 tags on the resource",
            "LimitExceededException",
            tag_resource(TagResourceRequest {
                resource_arn: Some(cluster_arn.clone()),
                tags: tags("b", 30),
            })
        ),
        bad!(
            client,
            "UntagResource of a missing resource",
            "ResourceNotFoundException",
            untag_resource(UntagResourceRequest {
                resource_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/ghost".into()),
                tag_keys: vec!["k".into()],
            })
        ),
        bad!(
            client,
            "ListTagsForResource of another account",
            "InvalidParameterException",
            list_tags_for_resource(ListTagsForResourceRequest {
                resource_arn: Some("arn:aws:ecs:us-east-1:999999999999:cluster/prod".into())
            })
        ),
    ];
    let mut wrong = Vec::new();
    for (what, expected, call) in cases {
        match call.await {
            Ok(()) => wrong.push(format!("{what}: expected {expected}, but it succeeded")),
            Err(status) => {
                let got = taskledger::api::status::exception_name(&status);
                if got.as_deref() != Some(expected) {
                    wrong.push(format!(
                        "{what}: expected {expected}, got {got:?}: {}",
                        status.message()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(server.head(), head, "rejected requests appended events");
    assert!(server.store.verify(|_, _| {}).unwrap().is_clean());
    server.stop().await;
}

#[tokio::test]
async fn a_request_larger_than_the_limit_is_refused_and_appends_nothing() {
    let mut server = start_with(ServeOptions {
        max_request_bytes: 1024,
        ..options()
    })
    .await;
    let head = server.head();
    let request = CreateClusterRequest {
        cluster_name: Some("c".repeat(4096)),
        ..Default::default()
    };
    let status = server.client.create_cluster(request).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(server.head(), head);
    server.create_cluster("small").await;
    server.stop().await;
}

#[tokio::test]
async fn a_call_past_the_request_timeout_is_deadline_exceeded_though_its_command_may_commit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};
    let mut server = start_with(ServeOptions {
        request_timeout: Duration::from_millis(200),
        ..options()
    })
    .await;
    let head = server.head();
    // Hold the writer: verify runs on the writer thread and calls `progress` there.
    let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let first_call = Arc::new(AtomicBool::new(true));
    let store = server.store.clone();
    let (writer_entered, writer_release) = (Arc::clone(&entered), Arc::clone(&release));
    let verify = tokio::task::spawn_blocking(move || {
        store.verify(move |_, _| {
            if first_call.swap(false, Ordering::SeqCst) {
                writer_entered.wait();
                writer_release.wait();
            }
        })
    });
    tokio::task::spawn_blocking(move || entered.wait()).await.unwrap();

    let request = CreateClusterRequest {
        cluster_name: Some("late".into()),
        ..Default::default()
    };
    let status = server.client.create_cluster(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("may still have been committed"),
        "{}",
        status.message()
    );
    assert_eq!(server.head(), head);

    // Once the writer moves on it commits what was queued, though the caller gave up.
    tokio::task::spawn_blocking(move || release.wait()).await.unwrap();
    assert!(verify.await.unwrap().unwrap().is_clean());
    let store = server.store.clone();
    let committed = tokio::task::spawn_blocking(move || store.wait_for_head(head, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(committed, head + 1);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The simulated agent, shutdown, the binary

#[tokio::test]
async fn simulated_agent_moves_a_task_to_running_and_after_stop_task_to_stopped() {
    let mut server = start_with(with_agent()).await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let arn = server.run_fargate("prod", "web", 1).await[0].task_arn.clone().unwrap();

    let client = server.client.clone();
    let status_of = |arn: String| {
        let mut client = client.clone();
        async move {
            let request = DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: vec![arn],
                include: vec![],
            };
            let task = client
                .describe_tasks(request)
                .await
                .ok()?
                .into_inner()
                .tasks
                .into_iter()
                .next()?;
            Some(task)
        }
    };
    let running = eventually("RUNNING", || {
        let arn = arn.clone();
        async move {
            status_of(arn)
                .await
                .filter(|t| t.last_status.as_deref() == Some("RUNNING"))
        }
    })
    .await;
    assert_eq!(running.version, Some(3), "PROVISIONING → PENDING → RUNNING");
    assert!(running
        .containers
        .iter()
        .all(|c| c.last_status.as_deref() == Some("RUNNING")));

    server
        .client
        .stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some(arn.clone()),
            reason: Some("done".into()),
        })
        .await
        .unwrap();
    let stopped = eventually("STOPPED", || {
        let arn = arn.clone();
        async move {
            status_of(arn)
                .await
                .filter(|t| t.last_status.as_deref() == Some("STOPPED"))
        }
    })
    .await;
    assert_eq!(
        stopped.version,
        Some(8),
        "StopTask, then DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED"
    );
    assert_eq!(stopped.stopped_reason.as_deref(), Some("done"));

    // Once stopped, the agent has been answered for every step: all of them are durable.
    let stopped_server = server.stop().await;
    let task_id = arn.rsplit('/').next().unwrap();
    let history = stopped_server.store.task_history(task_id, None, 100).unwrap();
    let agent_steps = history
        .iter()
        .filter(|r| r.cause.as_ref().is_some_and(|c| c.caller == "agent-simulator"))
        .count();
    assert_eq!(agent_steps, 6, "every step is an ordinary event from the agent");
    assert!(stopped_server.store.verify(|_, _| {}).unwrap().is_clean());
}

#[tokio::test]
async fn after_graceful_shutdown_the_store_reopens_with_every_acknowledged_task() {
    let mut server = start_with(with_agent()).await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let arns: Vec<String> = server
        .run_fargate("prod", "web", 10)
        .await
        .into_iter()
        .map(|t| t.task_arn.unwrap())
        .collect();
    let stopped = server.stop().await;
    let head = stopped.store.head_seq();
    drop(stopped.store);

    // Opening waits for sled to release the directory lock of the dropped store.
    let store = stopped.backend.open(stopped.dir.path(), Default::default()).unwrap();
    assert_eq!(store.head_seq(), head);
    let scope = taskledger::domain::Scope::new("us-east-1", "123456789012").unwrap();
    let described = store
        .describe_tasks(
            &scope,
            &DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: arns.clone(),
                include: vec![],
            },
        )
        .unwrap();
    assert_eq!(described.tasks.len(), arns.len());
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}

#[test]
fn serve_binary_prints_its_address_answers_the_cli_and_exits_zero_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let binary = env!("CARGO_BIN_EXE_taskledger");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let address = line
        .trim()
        .strip_prefix("taskledger listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let endpoint = format!("http://{address}");

    let cli = |args: &[&str]| {
        Command::new(binary)
            .args(args)
            .env("TASKLEDGER_ENDPOINT", &endpoint)
            .output()
            .unwrap()
    };
    let created = cli(&["clusters", "create", "prod"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(
        json["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
    );

    let td = dir.path().join("td.json");
    std::fs::write(
        &td,
        r#"{"family": "web", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256",
            "memory": "512", "containerDefinitions": [{"name": "app", "image": "nginx:1.25"}]}"#,
    )
    .unwrap();
    let registered = cli(&["task-definitions", "register", "--file", td.to_str().unwrap()]);
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let run = cli(&[
        "tasks",
        "run",
        "--cluster",
        "prod",
        "--task-definition",
        "web",
        "--launch-type",
        "FARGATE",
        "--subnets",
        "subnet-1",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["tasks"][0]["lastStatus"], "PROVISIONING");

    let failed = cli(&["tasks", "run", "--cluster", "ghost", "--task-definition", "web"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("ClusterNotFoundException"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exits 0 after SIGTERM, got {status}");
    let verify = Command::new(binary)
        .args(["verify", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
