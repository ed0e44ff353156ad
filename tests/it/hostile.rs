//! The hostile input table: for every one of the 29 ECS operations, through the shared
//! `Operations` layer every front end calls, requests with oversized strings, invalid enum
//! numbers, unicode and control characters in names, 0/negative/huge counts and maxResults,
//! 101-item lists, malformed ARNs and ARNs of another region or account. Each must get an ECS
//! exception other than `ServerException` with a short, printable message (or, where ECS reports
//! per item, only `failures`), never a panic, and the log head must not move.
//! Does not check the exact exception of each case (the `grpc` tests do for the common ones).

use std::future::Future;
use std::pin::Pin;

use taskledger::api::Operations;
use taskledger::domain::EcsException;
use taskledger::proto::v1::*;
use taskledger::store::{Caller, StoreError, StoreResult};

use crate::support::{fargate_run, fixture, scope};

/// What a request that was not refused outright produced.
#[derive(Debug)]
enum Outcome {
    /// Accepted: the request succeeded.
    Accepted,
    /// A Describe* answer with failures only (ECS reports bad identifiers per item).
    OnlyFailures,
    /// A List* answer with nothing in it.
    Empty,
}

/// What a row allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An ECS exception.
    Exception,
    /// An ECS exception, or an answer that carries only per-item failures.
    ExceptionOrFailures,
    /// An ECS exception, or an empty answer (a prefix filter that matches nothing).
    ExceptionOrEmpty,
}

type Call = Pin<Box<dyn Future<Output = StoreResult<Outcome>> + Send>>;

trait Judge {
    fn outcome(&self) -> Outcome {
        Outcome::Accepted
    }
}

macro_rules! accepted {
    ($($response:ty),*) => { $(impl Judge for $response {})* };
}

accepted!(
    SubmitAttachmentStateChangesResponse,
    PutAttributesResponse,
    DeleteAttributesResponse,
    ListAttributesResponse,
    RunTaskResponse,
    StartTaskResponse,
    StopTaskResponse,
    ListTasksResponse,
    SubmitTaskStateChangeResponse,
    SubmitContainerStateChangeResponse,
    RegisterTaskDefinitionResponse,
    DescribeTaskDefinitionResponse,
    DeregisterTaskDefinitionResponse,
    ListTaskDefinitionsResponse,
    CreateClusterResponse,
    ListClustersResponse,
    DeleteClusterResponse,
    RegisterContainerInstanceResponse,
    DeregisterContainerInstanceResponse,
    ListContainerInstancesResponse,
    TagResourceResponse,
    UntagResourceResponse,
    ListTagsForResourceResponse
);

macro_rules! per_item {
    ($($response:ty: $items:ident),*) => {
        $(impl Judge for $response {
            fn outcome(&self) -> Outcome {
                if self.$items.is_empty() && !self.failures.is_empty() {
                    Outcome::OnlyFailures
                } else {
                    Outcome::Accepted
                }
            }
        })*
    };
}

impl Judge for ListTaskDefinitionFamiliesResponse {
    fn outcome(&self) -> Outcome {
        if self.families.is_empty() {
            Outcome::Empty
        } else {
            Outcome::Accepted
        }
    }
}

per_item!(
    DescribeTasksResponse: tasks,
    DescribeClustersResponse: clusters,
    DescribeContainerInstancesResponse: container_instances,
    UpdateContainerInstancesStateResponse: container_instances,
    DeleteTaskDefinitionsResponse: task_definitions
);

/// One row: the operation, what is hostile about it, what is allowed, and the call.
struct Row {
    operation: &'static str,
    what: String,
    expect: Expect,
    call: Call,
}

macro_rules! row {
    ($rows:ident, $ops:expr, $caller:expr, $operation:literal, $what:expr, $expect:ident, $method:ident($request:expr)) => {{
        let (ops, caller, request) = ($ops.clone(), $caller.clone(), $request);
        $rows.push(Row {
            operation: $operation,
            what: $what.to_string(),
            expect: Expect::$expect,
            call: Box::pin(async move { ops.$method(&caller, request).await.map(|r| Judge::outcome(&r)) }),
        });
    }};
}

const OTHER_REGION: &str = "arn:aws:ecs:eu-west-3:123456789012";
const OTHER_ACCOUNT: &str = "arn:aws:ecs:us-east-1:999999999999";
const OTHER_PARTITION: &str = "arn:aws-cn:ecs:us-east-1:123456789012";
const HERE: &str = "arn:aws:ecs:us-east-1:123456789012";

/// Hostile values for an identifier field whose ARN resource part is `resource` (e.g.
/// `cluster/prod`): oversized, unicode, control characters, malformed ARNs, and well-formed
/// ARNs of another region, account or partition.
fn hostile_identifiers(resource: &str) -> Vec<(String, String)> {
    vec![
        ("a 100,000-character value".into(), "x".repeat(100_000)),
        ("a 256-character value".into(), "x".repeat(256)),
        ("unicode".into(), "prød-集群-🚀".into()),
        ("control characters".into(), "prod\u{0}\r\n\u{1b}[31m".into()),
        ("only whitespace".into(), " \t ".into()),
        ("a truncated ARN".into(), "arn:aws:ecs:us-east-1".into()),
        (
            "an ARN of another service".into(),
            format!("arn:aws:s3:us-east-1:123456789012:{resource}"),
        ),
        ("an ARN with an empty resource".into(), format!("{HERE}:")),
        (
            "an ARN of an unknown resource type".into(),
            format!("{HERE}:widget/prod"),
        ),
        ("an ARN in another region".into(), format!("{OTHER_REGION}:{resource}")),
        (
            "an ARN of another account".into(),
            format!("{OTHER_ACCOUNT}:{resource}"),
        ),
        (
            "an ARN of another partition".into(),
            format!("{OTHER_PARTITION}:{resource}"),
        ),
        ("an ARN with a unicode resource".into(), format!("{HERE}:{resource}ø")),
    ]
}

const HUGE_AND_SMALL: [(&str, i32); 5] = [
    ("0", 0),
    ("-1", -1),
    ("101", 101),
    ("i32::MAX", i32::MAX),
    ("i32::MIN", i32::MIN),
];

/// A custom attribute on a container instance, named by id (with its target type) or ARN.
fn attribute(name: &str, target: &str) -> Attribute {
    Attribute {
        name: Some(name.into()),
        value: Some("prod".into()),
        target_type: Some(TargetType::ContainerInstance as i32),
        target_id: Some(target.into()),
    }
}

fn tags(prefix: &str, n: usize) -> Vec<Tag> {
    (0..n)
        .map(|i| Tag {
            key: Some(format!("{prefix}{i}")),
            value: Some("v".into()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_to_every_operation_gets_an_ecs_exception_and_changes_nothing() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    f.ec2_definition("worker", 128, 128, None);
    f.cluster("spare");
    let instance = f.instance("prod");
    let instance_id = instance
        .container_instance_arn
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let task_arn = f.run_fargate("prod", "web", 1).tasks[0].task_arn.clone().unwrap();
    let task_id = task_arn.rsplit('/').next().unwrap().to_string();
    let attachment_arn = format!(
        "{HERE}:attachment/{}",
        f.store
            .describe_tasks(
                &scope(),
                &DescribeTasksRequest {
                    cluster: Some("prod".into()),
                    tasks: vec![task_id.clone()],
                    include: vec![]
                }
            )
            .unwrap()
            .tasks[0]
            .attachments[0]
            .id
            .clone()
            .unwrap()
    );
    let report = |arn: &str, status: &str| AttachmentStateChange {
        attachment_arn: Some(arn.into()),
        status: Some(status.into()),
    };
    let ops = Operations::new(f.store.clone());
    let caller: Caller = f.caller.clone();
    let head = f.store.head_seq();
    let views = f.store.view_entries().unwrap();
    let mut rows: Vec<Row> = Vec::new();

    // --- Identifier fields of every operation, each with every hostile value -----------------
    for (what, value) in hostile_identifiers("cluster/prod") {
        let what = format!("cluster: {what}");
        let cluster = Some(value.clone());
        row!(
            rows,
            ops,
            caller,
            "RunTask",
            what,
            Exception,
            run_task(RunTaskRequest {
                cluster: cluster.clone(),
                ..fargate_run("prod", "web", 1)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "StartTask",
            what,
            Exception,
            start_task(StartTaskRequest {
                cluster: cluster.clone(),
                task_definition: Some("worker".into()),
                container_instances: vec![instance_id.clone()],
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DescribeTasks",
            what,
            Exception,
            describe_tasks(DescribeTasksRequest {
                cluster: cluster.clone(),
                tasks: vec![task_id.clone()],
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "StopTask",
            what,
            Exception,
            stop_task(StopTaskRequest {
                cluster: cluster.clone(),
                task: Some(task_id.clone()),
                reason: None
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTasks",
            what,
            Exception,
            list_tasks(ListTasksRequest {
                cluster: cluster.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "SubmitTaskStateChange",
            what,
            Exception,
            submit_task_state_change(SubmitTaskStateChangeRequest {
                cluster: cluster.clone(),
                task: Some(task_id.clone()),
                status: Some("RUNNING".into()),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "SubmitContainerStateChange",
            what,
            Exception,
            submit_container_state_change(SubmitContainerStateChangeRequest {
                cluster: cluster.clone(),
                task: Some(task_id.clone()),
                container_name: Some("app".into()),
                status: Some("RUNNING".into()),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "SubmitAttachmentStateChanges",
            what,
            Exception,
            submit_attachment_state_changes(SubmitAttachmentStateChangesRequest {
                cluster: cluster.clone(),
                attachments: vec![report(&attachment_arn, "ATTACHED")]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "CreateCluster",
            what,
            Exception,
            create_cluster(CreateClusterRequest {
                cluster_name: cluster.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DescribeClusters",
            what,
            ExceptionOrFailures,
            describe_clusters(DescribeClustersRequest {
                clusters: vec![value.clone()],
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeleteCluster",
            what,
            Exception,
            delete_cluster(DeleteClusterRequest {
                cluster: cluster.clone()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "RegisterContainerInstance",
            what,
            Exception,
            register_container_instance(RegisterContainerInstanceRequest {
                cluster: cluster.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeregisterContainerInstance",
            what,
            Exception,
            deregister_container_instance(DeregisterContainerInstanceRequest {
                cluster: cluster.clone(),
                container_instance: Some(instance_id.clone()),
                force: Some(true)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "UpdateContainerInstancesState",
            what,
            Exception,
            update_container_instances_state(UpdateContainerInstancesStateRequest {
                cluster: cluster.clone(),
                container_instances: vec![instance_id.clone()],
                status: Some(ContainerInstanceStatus::Draining as i32)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "PutAttributes",
            what,
            Exception,
            put_attributes(PutAttributesRequest {
                cluster: cluster.clone(),
                attributes: vec![attribute("stack", &instance_id)]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeleteAttributes",
            what,
            Exception,
            delete_attributes(DeleteAttributesRequest {
                cluster: cluster.clone(),
                attributes: vec![attribute("stack", &instance_id)]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListAttributes",
            what,
            Exception,
            list_attributes(ListAttributesRequest {
                cluster: cluster.clone(),
                target_type: Some(TargetType::ContainerInstance as i32),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DescribeContainerInstances",
            what,
            Exception,
            describe_container_instances(DescribeContainerInstancesRequest {
                cluster: cluster.clone(),
                container_instances: vec![instance_id.clone()],
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListContainerInstances",
            what,
            Exception,
            list_container_instances(ListContainerInstancesRequest {
                cluster: cluster.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "TagResource",
            what,
            Exception,
            tag_resource(TagResourceRequest {
                resource_arn: cluster.clone(),
                tags: tags("k", 1)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "UntagResource",
            what,
            Exception,
            untag_resource(UntagResourceRequest {
                resource_arn: cluster.clone(),
                tag_keys: vec!["k0".into()]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTagsForResource",
            what,
            Exception,
            list_tags_for_resource(ListTagsForResourceRequest {
                resource_arn: cluster.clone()
            })
        );
    }
    for (what, value) in hostile_identifiers(&format!("task/prod/{task_id}")) {
        let what = format!("task: {what}");
        let task = Some(value.clone());
        row!(
            rows,
            ops,
            caller,
            "DescribeTasks",
            what,
            ExceptionOrFailures,
            describe_tasks(DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: vec![value.clone()],
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "StopTask",
            what,
            Exception,
            stop_task(StopTaskRequest {
                cluster: Some("prod".into()),
                task: task.clone(),
                reason: None
            })
        );
        row!(
            rows,
            ops,
            caller,
            "SubmitTaskStateChange",
            what,
            Exception,
            submit_task_state_change(SubmitTaskStateChangeRequest {
                cluster: Some("prod".into()),
                task: task.clone(),
                status: Some("RUNNING".into()),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "SubmitContainerStateChange",
            what,
            Exception,
            submit_container_state_change(SubmitContainerStateChangeRequest {
                cluster: Some("prod".into()),
                task: task.clone(),
                container_name: Some("app".into()),
                status: Some("RUNNING".into()),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "TagResource",
            what,
            Exception,
            tag_resource(TagResourceRequest {
                resource_arn: task.clone(),
                tags: tags("k", 1)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "UntagResource",
            what,
            Exception,
            untag_resource(UntagResourceRequest {
                resource_arn: task.clone(),
                tag_keys: vec!["k0".into()]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTagsForResource",
            what,
            Exception,
            list_tags_for_resource(ListTagsForResourceRequest {
                resource_arn: task.clone()
            })
        );
    }
    for (what, value) in hostile_identifiers(&format!("container-instance/prod/{instance_id}")) {
        let what = format!("containerInstance: {what}");
        let instance = Some(value.clone());
        row!(
            rows,
            ops,
            caller,
            "StartTask",
            what,
            Exception,
            start_task(StartTaskRequest {
                cluster: Some("prod".into()),
                task_definition: Some("worker".into()),
                container_instances: vec![value.clone()],
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeregisterContainerInstance",
            what,
            Exception,
            deregister_container_instance(DeregisterContainerInstanceRequest {
                cluster: Some("prod".into()),
                container_instance: instance.clone(),
                force: Some(true)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "UpdateContainerInstancesState",
            what,
            ExceptionOrFailures,
            update_container_instances_state(UpdateContainerInstancesStateRequest {
                cluster: Some("prod".into()),
                container_instances: vec![value.clone()],
                status: Some(ContainerInstanceStatus::Draining as i32)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "PutAttributes",
            what,
            Exception,
            put_attributes(PutAttributesRequest {
                cluster: Some("prod".into()),
                attributes: vec![attribute("stack", &value)]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeleteAttributes",
            what,
            Exception,
            delete_attributes(DeleteAttributesRequest {
                cluster: Some("prod".into()),
                attributes: vec![attribute("stack", &value)]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DescribeContainerInstances",
            what,
            ExceptionOrFailures,
            describe_container_instances(DescribeContainerInstancesRequest {
                cluster: Some("prod".into()),
                container_instances: vec![value.clone()],
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "TagResource",
            what,
            Exception,
            tag_resource(TagResourceRequest {
                resource_arn: instance.clone(),
                tags: tags("k", 1)
            })
        );
    }
    for (what, value) in hostile_identifiers("task-definition/web:1") {
        let what = format!("taskDefinition: {what}");
        let definition = Some(value.clone());
        row!(
            rows,
            ops,
            caller,
            "RunTask",
            what,
            Exception,
            run_task(RunTaskRequest {
                task_definition: definition.clone(),
                ..fargate_run("prod", "web", 1)
            })
        );
        row!(
            rows,
            ops,
            caller,
            "StartTask",
            what,
            Exception,
            start_task(StartTaskRequest {
                cluster: Some("prod".into()),
                task_definition: definition.clone(),
                container_instances: vec![instance_id.clone()],
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "RegisterTaskDefinition",
            what,
            Exception,
            register_task_definition(RegisterTaskDefinitionRequest {
                family: definition.clone(),
                ..crate::grpc_support::fargate_definition("web")
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DescribeTaskDefinition",
            what,
            Exception,
            describe_task_definition(DescribeTaskDefinitionRequest {
                task_definition: definition.clone(),
                include: vec![]
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeregisterTaskDefinition",
            what,
            Exception,
            deregister_task_definition(DeregisterTaskDefinitionRequest {
                task_definition: definition.clone()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeleteTaskDefinitions",
            what,
            ExceptionOrFailures,
            delete_task_definitions(DeleteTaskDefinitionsRequest {
                task_definitions: definition.clone().into_iter().collect()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitions",
            what,
            Exception,
            list_task_definitions(ListTaskDefinitionsRequest {
                family_prefix: definition.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitionFamilies",
            what,
            ExceptionOrEmpty,
            list_task_definition_families(ListTaskDefinitionFamiliesRequest {
                family_prefix: definition.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "TagResource",
            what,
            Exception,
            tag_resource(TagResourceRequest {
                resource_arn: definition.clone(),
                tags: tags("k", 1)
            })
        );
    }

    // --- Counts and maxResults -----------------------------------------------------------------
    for (what, n) in HUGE_AND_SMALL.into_iter().chain([("11", 11)]) {
        if n == 101 {
            continue;
        }
        row!(
            rows,
            ops,
            caller,
            "RunTask",
            format!("count {what}"),
            Exception,
            run_task(fargate_run("prod", "web", n))
        );
    }
    for (what, n) in HUGE_AND_SMALL {
        let what = format!("maxResults {what}");
        let max_results = Some(n);
        row!(
            rows,
            ops,
            caller,
            "ListTasks",
            what,
            Exception,
            list_tasks(ListTasksRequest {
                cluster: Some("prod".into()),
                max_results,
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitions",
            what,
            Exception,
            list_task_definitions(ListTaskDefinitionsRequest {
                max_results,
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitionFamilies",
            what,
            Exception,
            list_task_definition_families(ListTaskDefinitionFamiliesRequest {
                max_results,
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListClusters",
            what,
            Exception,
            list_clusters(ListClustersRequest {
                max_results,
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListContainerInstances",
            what,
            Exception,
            list_container_instances(ListContainerInstancesRequest {
                cluster: Some("prod".into()),
                max_results,
                ..Default::default()
            })
        );
    }
    for (what, token) in [
        ("a garbled nextToken", "%%%not-a-token%%%".to_string()),
        ("a 100,000-character nextToken", "A".repeat(100_000)),
        ("a nextToken with control characters", "\u{0}\u{7}".to_string()),
    ] {
        let next_token = Some(token);
        row!(
            rows,
            ops,
            caller,
            "ListTasks",
            what,
            Exception,
            list_tasks(ListTasksRequest {
                cluster: Some("prod".into()),
                next_token: next_token.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitions",
            what,
            Exception,
            list_task_definitions(ListTaskDefinitionsRequest {
                next_token: next_token.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListTaskDefinitionFamilies",
            what,
            Exception,
            list_task_definition_families(ListTaskDefinitionFamiliesRequest {
                next_token: next_token.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListClusters",
            what,
            Exception,
            list_clusters(ListClustersRequest {
                next_token: next_token.clone(),
                ..Default::default()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "ListContainerInstances",
            what,
            Exception,
            list_container_instances(ListContainerInstancesRequest {
                cluster: Some("prod".into()),
                next_token: next_token.clone(),
                ..Default::default()
            })
        );
    }

    // --- 101-item lists ------------------------------------------------------------------------
    let ids = |n: usize| (0..n).map(|i| format!("{i:032x}")).collect::<Vec<_>>();
    row!(
        rows,
        ops,
        caller,
        "DescribeTasks",
        "101 tasks",
        Exception,
        describe_tasks(DescribeTasksRequest {
            cluster: Some("prod".into()),
            tasks: ids(101),
            include: vec![]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeClusters",
        "101 clusters",
        Exception,
        describe_clusters(DescribeClustersRequest {
            clusters: vec!["prod".into(); 101],
            include: vec![]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeContainerInstances",
        "101 instances",
        Exception,
        describe_container_instances(DescribeContainerInstancesRequest {
            cluster: Some("prod".into()),
            container_instances: ids(101),
            include: vec![]
        })
    );
    for (what, n) in [("no task definitions", 0), ("11 task definitions", 11)] {
        row!(
            rows,
            ops,
            caller,
            "DeleteTaskDefinitions",
            what,
            Exception,
            delete_task_definitions(DeleteTaskDefinitionsRequest {
                task_definitions: vec!["web:1".into(); n]
            })
        );
    }
    let attachment_id = attachment_arn.rsplit('/').next().unwrap().to_string();
    let long_status = "S".repeat(65);
    for (what, attachments) in [
        ("no attachments", vec![]),
        ("101 attachments", vec![report(&attachment_arn, "ATTACHED"); 101]),
        (
            "no attachmentArn",
            vec![AttachmentStateChange {
                attachment_arn: None,
                status: Some("ATTACHED".into()),
            }],
        ),
        (
            "no status",
            vec![AttachmentStateChange {
                attachment_arn: Some(attachment_arn.clone()),
                status: None,
            }],
        ),
        ("a 65-character status", vec![report(&attachment_arn, &long_status)]),
        (
            "an attachment id that is not an id",
            vec![report("eni-1234", "ATTACHED")],
        ),
        ("a task ARN", vec![report(&task_arn, "ATTACHED")]),
        (
            "an attachment of another region",
            vec![report(
                &format!("{OTHER_REGION}:attachment/{attachment_id}"),
                "ATTACHED",
            )],
        ),
        (
            "an attachment of another account",
            vec![report(
                &format!("{OTHER_ACCOUNT}:attachment/{attachment_id}"),
                "ATTACHED",
            )],
        ),
        (
            "an unknown attachment",
            vec![report(
                &format!("{HERE}:attachment/01234567-89ab-cdef-0123-456789abcdef"),
                "ATTACHED",
            )],
        ),
        ("a unicode attachment id", vec![report("äöü", "ATTACHED")]),
    ] {
        row!(
            rows,
            ops,
            caller,
            "SubmitAttachmentStateChanges",
            what,
            Exception,
            submit_attachment_state_changes(SubmitAttachmentStateChangesRequest {
                cluster: Some("prod".into()),
                attachments
            })
        );
    }
    let eleven: Vec<Attribute> = (0..11).map(|i| attribute(&format!("a{i}"), &instance_id)).collect();
    let long = "n".repeat(129);
    for (what, attributes) in [
        ("no attributes", vec![]),
        ("11 attributes", eleven),
        ("a 129-character name", vec![attribute(&long, &instance_id)]),
        ("a reserved ecs. name", vec![attribute("ecs.os-type", &instance_id)]),
        ("a name with a space", vec![attribute("a b", &instance_id)]),
        (
            "a value with a space at the end",
            vec![Attribute {
                value: Some("v ".into()),
                ..attribute("a", &instance_id)
            }],
        ),
        (
            "targetType 7",
            vec![Attribute {
                target_type: Some(7),
                ..attribute("a", &instance_id)
            }],
        ),
        (
            "a short id without targetType",
            vec![Attribute {
                target_type: None,
                ..attribute("a", &instance_id)
            }],
        ),
        (
            "no targetId",
            vec![Attribute {
                target_id: None,
                ..attribute("a", &instance_id)
            }],
        ),
    ] {
        row!(
            rows,
            ops,
            caller,
            "PutAttributes",
            what,
            Exception,
            put_attributes(PutAttributesRequest {
                cluster: Some("prod".into()),
                attributes: attributes.clone()
            })
        );
        row!(
            rows,
            ops,
            caller,
            "DeleteAttributes",
            what,
            Exception,
            delete_attributes(DeleteAttributesRequest {
                cluster: Some("prod".into()),
                attributes
            })
        );
    }
    for (what, request) in [
        ("no targetType", ListAttributesRequest::default()),
        (
            "targetType 7",
            ListAttributesRequest {
                target_type: Some(7),
                ..Default::default()
            },
        ),
        (
            "a value without a name",
            ListAttributesRequest {
                target_type: Some(TargetType::ContainerInstance as i32),
                attribute_value: Some("v".into()),
                ..Default::default()
            },
        ),
        (
            "a garbled token",
            ListAttributesRequest {
                target_type: Some(TargetType::ContainerInstance as i32),
                next_token: Some("zz".into()),
                ..Default::default()
            },
        ),
        (
            "maxResults 0",
            ListAttributesRequest {
                target_type: Some(TargetType::ContainerInstance as i32),
                max_results: Some(0),
                ..Default::default()
            },
        ),
    ] {
        row!(
            rows,
            ops,
            caller,
            "ListAttributes",
            what,
            Exception,
            list_attributes(ListAttributesRequest {
                cluster: Some("prod".into()),
                ..request
            })
        );
    }
    row!(
        rows,
        ops,
        caller,
        "UpdateContainerInstancesState",
        "11 instances",
        Exception,
        update_container_instances_state(UpdateContainerInstancesStateRequest {
            cluster: Some("prod".into()),
            container_instances: ids(11),
            status: Some(ContainerInstanceStatus::Draining as i32)
        })
    );
    for status in [
        None,
        Some(-1),
        Some(ContainerInstanceStatus::Registering as i32),
        Some(99),
    ] {
        row!(
            rows,
            ops,
            caller,
            "UpdateContainerInstancesState",
            format!("status {status:?}"),
            Exception,
            update_container_instances_state(UpdateContainerInstancesStateRequest {
                cluster: Some("prod".into()),
                container_instances: vec![instance_id.clone()],
                status
            })
        );
    }
    row!(
        rows,
        ops,
        caller,
        "StartTask",
        "101 instances",
        Exception,
        start_task(StartTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("worker".into()),
            container_instances: vec![instance_id.clone(); 101],
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "101 tags",
        Exception,
        run_task(RunTaskRequest {
            tags: tags("k", 101),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "101 subnets",
        Exception,
        run_task(RunTaskRequest {
            network_configuration: Some(NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    subnets: vec!["subnet-1".into(); 101],
                    ..Default::default()
                })
            }),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "CreateCluster",
        "101 tags",
        Exception,
        create_cluster(CreateClusterRequest {
            cluster_name: Some("tagged".into()),
            tags: tags("k", 101),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "TagResource",
        "101 tags",
        Exception,
        tag_resource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tags: tags("k", 101)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "UntagResource",
        "101 keys, one of them aws:",
        Exception,
        untag_resource(UntagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tag_keys: (0..101)
                .map(|i| if i == 100 { "aws:x".to_string() } else { format!("k{i}") })
                .collect()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterTaskDefinition",
        "101 containers",
        Exception,
        register_task_definition(RegisterTaskDefinitionRequest {
            container_definitions: (0..101)
                .map(|i| ContainerDefinition {
                    name: Some(format!("c{i}")),
                    image: Some("nginx".into()),
                    memory: Some(64),
                    ..Default::default()
                })
                .collect(),
            ..crate::grpc_support::ec2_definition("big")
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterContainerInstance",
        "101 attributes, one with a control character",
        Exception,
        register_container_instance(RegisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            attributes: (0..101)
                .map(|i| Attribute {
                    name: Some(if i == 100 { "bad\u{0}".into() } else { format!("a{i}") }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "SubmitTaskStateChange",
        "101 containers the task lacks",
        Exception,
        submit_task_state_change(SubmitTaskStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            containers: (0..101)
                .map(|i| ContainerStateChange {
                    container_name: Some(format!("ghost{i}")),
                    status: Some("RUNNING".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "SubmitContainerStateChange",
        "101 network bindings with port 0..-100",
        Exception,
        submit_container_state_change(SubmitContainerStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            container_name: Some("ghost".into()),
            network_bindings: (0..101)
                .map(|i| NetworkBinding {
                    host_port: Some(-i),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    );

    // --- Invalid enum numbers ------------------------------------------------------------------
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "launchType 999",
        Exception,
        run_task(RunTaskRequest {
            launch_type: Some(999),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "propagateTags -5",
        Exception,
        run_task(RunTaskRequest {
            propagate_tags: Some(-5),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "StartTask",
        "propagateTags 999",
        Exception,
        start_task(StartTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("worker".into()),
            container_instances: vec![instance_id.clone()],
            propagate_tags: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeTasks",
        "include 999",
        Exception,
        describe_tasks(DescribeTasksRequest {
            cluster: Some("prod".into()),
            tasks: vec![task_id.clone()],
            include: vec![999]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListTasks",
        "desiredStatus 999",
        Exception,
        list_tasks(ListTasksRequest {
            cluster: Some("prod".into()),
            desired_status: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListTasks",
        "launchType -1",
        Exception,
        list_tasks(ListTasksRequest {
            cluster: Some("prod".into()),
            launch_type: Some(-1),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterTaskDefinition",
        "networkMode 999",
        Exception,
        register_task_definition(RegisterTaskDefinitionRequest {
            network_mode: Some(999),
            ..crate::grpc_support::fargate_definition("web")
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterTaskDefinition",
        "requiresCompatibilities [999]",
        Exception,
        register_task_definition(RegisterTaskDefinitionRequest {
            requires_compatibilities: vec![999],
            ..crate::grpc_support::fargate_definition("web")
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeTaskDefinition",
        "include 999",
        Exception,
        describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some("web".into()),
            include: vec![999]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListTaskDefinitions",
        "status 999",
        Exception,
        list_task_definitions(ListTaskDefinitionsRequest {
            status: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListTaskDefinitions",
        "sort 999",
        Exception,
        list_task_definitions(ListTaskDefinitionsRequest {
            sort: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListTaskDefinitionFamilies",
        "status 999",
        Exception,
        list_task_definition_families(ListTaskDefinitionFamiliesRequest {
            status: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeClusters",
        "include 999",
        Exception,
        describe_clusters(DescribeClustersRequest {
            clusters: vec!["prod".into()],
            include: vec![999]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "DescribeContainerInstances",
        "include 999",
        Exception,
        describe_container_instances(DescribeContainerInstancesRequest {
            cluster: Some("prod".into()),
            container_instances: vec![instance_id.clone()],
            include: vec![999]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "ListContainerInstances",
        "status 999",
        Exception,
        list_container_instances(ListContainerInstancesRequest {
            cluster: Some("prod".into()),
            status: Some(999),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "CreateCluster",
        "setting name 999",
        Exception,
        create_cluster(CreateClusterRequest {
            cluster_name: Some("set".into()),
            settings: vec![ClusterSetting {
                name: Some(999),
                value: Some("enabled".into())
            }],
            ..Default::default()
        })
    );

    // --- Other text that must be refused -------------------------------------------------------
    row!(
        rows,
        ops,
        caller,
        "StopTask",
        "a 100,000-character reason",
        Exception,
        stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            reason: Some("r".repeat(100_000))
        })
    );
    row!(
        rows,
        ops,
        caller,
        "SubmitTaskStateChange",
        "a status with control characters",
        Exception,
        submit_task_state_change(SubmitTaskStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            status: Some("RUNNING\u{0}".into()),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "SubmitTaskStateChange",
        "a unicode status",
        Exception,
        submit_task_state_change(SubmitTaskStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            status: Some("RÜNNING".into()),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "SubmitContainerStateChange",
        "a 100,000-character container name",
        Exception,
        submit_container_state_change(SubmitContainerStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            container_name: Some("c".repeat(100_000)),
            status: Some("RUNNING".into()),
            ..Default::default()
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "a clientToken with unicode",
        Exception,
        run_task(RunTaskRequest {
            client_token: Some("tøken".into()),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "a startedBy with control characters",
        Exception,
        run_task(RunTaskRequest {
            started_by: Some("me\u{7}".into()),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RunTask",
        "a 100,000-character group",
        Exception,
        run_task(RunTaskRequest {
            group: Some("g".repeat(100_000)),
            ..fargate_run("prod", "web", 1)
        })
    );
    row!(
        rows,
        ops,
        caller,
        "TagResource",
        "a tag key with control characters",
        Exception,
        tag_resource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tags: vec![Tag {
                key: Some("k\u{0}".into()),
                value: Some("v".into())
            }]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "TagResource",
        "a 100,000-character tag value",
        Exception,
        tag_resource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tags: vec![Tag {
                key: Some("k".into()),
                value: Some("v".repeat(100_000))
            }]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "UntagResource",
        "a 100,000-character key",
        Exception,
        untag_resource(UntagResourceRequest {
            resource_arn: Some(scope().cluster_arn("prod")),
            tag_keys: vec!["k".repeat(100_000)]
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterTaskDefinition",
        "a container image with control characters",
        Exception,
        register_task_definition(RegisterTaskDefinitionRequest {
            container_definitions: vec![ContainerDefinition {
                name: Some("app".into()),
                image: Some("nginx\u{0}\n".into()),
                memory: Some(64),
                ..Default::default()
            }],
            ..crate::grpc_support::ec2_definition("ctl")
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterTaskDefinition",
        "a container named in unicode",
        Exception,
        register_task_definition(RegisterTaskDefinitionRequest {
            container_definitions: vec![ContainerDefinition {
                name: Some("äpp".into()),
                image: Some("nginx".into()),
                memory: Some(64),
                ..Default::default()
            }],
            ..crate::grpc_support::ec2_definition("uni")
        })
    );
    row!(
        rows,
        ops,
        caller,
        "RegisterContainerInstance",
        "a 100,000-character instance identity document",
        Exception,
        register_container_instance(RegisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            instance_identity_document: Some("d".repeat(100_000)),
            ..Default::default()
        })
    );

    let operations: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.operation).collect();
    assert_eq!(operations.len(), 29, "every ECS operation has rows: {operations:?}");
    let cases = rows.len();
    let mut wrong = Vec::new();
    for row in rows {
        let label = format!("{} with {}", row.operation, row.what);
        match (row.call.await, row.expect) {
            (Ok(Outcome::OnlyFailures), Expect::ExceptionOrFailures) => {}
            (Ok(Outcome::Empty), Expect::ExceptionOrEmpty) => {}
            (Ok(outcome), _) => wrong.push(format!("{label}: not refused ({outcome:?})")),
            (Err(error), _) => {
                if let Some(problem) = unhelpful(&error) {
                    wrong.push(format!("{label}: {problem}: {error}"));
                }
            }
        }
    }
    println!("{cases} hostile cases over 29 operations");
    assert!(
        wrong.is_empty(),
        "{} of {cases} cases went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(f.store.head_seq(), head, "refused requests appended events");
    assert_eq!(f.store.view_entries().unwrap(), views, "refused requests changed views");
    f.verify_clean();

    // Each row above differs from one of these requests only in what it names as hostile, and
    // these succeed: the rows were refused for their hostile part, not for something else.
    let mut baselines: Vec<Row> = Vec::new();
    let cluster_arn = Some(scope().cluster_arn("prod"));
    row!(
        baselines,
        ops,
        caller,
        "DescribeTasks",
        "",
        Exception,
        describe_tasks(DescribeTasksRequest {
            cluster: Some("prod".into()),
            tasks: vec![task_id.clone()],
            include: vec![]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListTasks",
        "",
        Exception,
        list_tasks(ListTasksRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DescribeTaskDefinition",
        "",
        Exception,
        describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some("web".into()),
            include: vec![]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListTaskDefinitions",
        "",
        Exception,
        list_task_definitions(ListTaskDefinitionsRequest {
            family_prefix: Some("web".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListTaskDefinitionFamilies",
        "",
        Exception,
        list_task_definition_families(ListTaskDefinitionFamiliesRequest {
            family_prefix: Some("w".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DescribeClusters",
        "",
        Exception,
        describe_clusters(DescribeClustersRequest {
            clusters: vec!["prod".into()],
            include: vec![]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListClusters",
        "",
        Exception,
        list_clusters(ListClustersRequest::default())
    );
    row!(
        baselines,
        ops,
        caller,
        "DescribeContainerInstances",
        "",
        Exception,
        describe_container_instances(DescribeContainerInstancesRequest {
            cluster: Some("prod".into()),
            container_instances: vec![instance_id.clone()],
            include: vec![]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListContainerInstances",
        "",
        Exception,
        list_container_instances(ListContainerInstancesRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListTagsForResource",
        "",
        Exception,
        list_tags_for_resource(ListTagsForResourceRequest {
            resource_arn: cluster_arn.clone()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "RunTask",
        "",
        Exception,
        run_task(fargate_run("prod", "web", 1))
    );
    row!(
        baselines,
        ops,
        caller,
        "StartTask",
        "",
        Exception,
        start_task(StartTaskRequest {
            cluster: Some("prod".into()),
            task_definition: Some("worker".into()),
            container_instances: vec![instance_id.clone()],
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "SubmitAttachmentStateChanges",
        "",
        Exception,
        submit_attachment_state_changes(SubmitAttachmentStateChangesRequest {
            cluster: Some("prod".into()),
            attachments: vec![report(&attachment_arn, "ATTACHED")]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "SubmitContainerStateChange",
        "",
        Exception,
        submit_container_state_change(SubmitContainerStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            container_name: Some("app".into()),
            status: Some("RUNNING".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "SubmitTaskStateChange",
        "",
        Exception,
        submit_task_state_change(SubmitTaskStateChangeRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            status: Some("RUNNING".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "StopTask",
        "",
        Exception,
        stop_task(StopTaskRequest {
            cluster: Some("prod".into()),
            task: Some(task_id.clone()),
            reason: None
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "RegisterTaskDefinition",
        "",
        Exception,
        register_task_definition(crate::grpc_support::fargate_definition("web"))
    );
    row!(
        baselines,
        ops,
        caller,
        "CreateCluster",
        "",
        Exception,
        create_cluster(CreateClusterRequest {
            cluster_name: Some("set".into()),
            settings: vec![ClusterSetting {
                name: Some(ClusterSettingName::ContainerInsights as i32),
                value: Some("enabled".into())
            }],
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "RegisterContainerInstance",
        "",
        Exception,
        register_container_instance(RegisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "TagResource",
        "",
        Exception,
        tag_resource(TagResourceRequest {
            resource_arn: cluster_arn.clone(),
            tags: tags("k", 1)
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "UntagResource",
        "",
        Exception,
        untag_resource(UntagResourceRequest {
            resource_arn: cluster_arn.clone(),
            tag_keys: vec!["k0".into()]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "TagResource",
        "",
        Exception,
        tag_resource(TagResourceRequest {
            resource_arn: Some(task_arn.clone()),
            tags: tags("k", 1)
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DeleteCluster",
        "",
        Exception,
        delete_cluster(DeleteClusterRequest {
            cluster: Some("spare".into())
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DeregisterTaskDefinition",
        "",
        Exception,
        deregister_task_definition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web:1".into())
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DeleteTaskDefinitions",
        "",
        Exception,
        delete_task_definitions(DeleteTaskDefinitionsRequest {
            task_definitions: vec!["web:1".into()]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "PutAttributes",
        "",
        Exception,
        put_attributes(PutAttributesRequest {
            cluster: Some("prod".into()),
            attributes: vec![attribute("stack", &instance_id)]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "ListAttributes",
        "",
        Exception,
        list_attributes(ListAttributesRequest {
            cluster: Some("prod".into()),
            target_type: Some(TargetType::ContainerInstance as i32),
            ..Default::default()
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DeleteAttributes",
        "",
        Exception,
        delete_attributes(DeleteAttributesRequest {
            cluster: Some("prod".into()),
            attributes: vec![attribute("stack", &instance_id)]
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "UpdateContainerInstancesState",
        "",
        Exception,
        update_container_instances_state(UpdateContainerInstancesStateRequest {
            cluster: Some("prod".into()),
            container_instances: vec![instance_id.clone()],
            status: Some(ContainerInstanceStatus::Draining as i32)
        })
    );
    row!(
        baselines,
        ops,
        caller,
        "DeregisterContainerInstance",
        "",
        Exception,
        deregister_container_instance(DeregisterContainerInstanceRequest {
            cluster: Some("prod".into()),
            container_instance: Some(instance_id.clone()),
            force: Some(true)
        })
    );
    for baseline in baselines {
        if let Err(error) = baseline.call.await {
            panic!("the baseline {} failed: {error}", baseline.operation);
        }
    }
    f.verify_clean();
}

/// Why an error is not the helpful ECS exception a hostile request deserves, if it is not.
fn unhelpful(error: &StoreError) -> Option<&'static str> {
    let StoreError::Rejected(rejection) = error else {
        return Some("a fault of the store, not a refusal");
    };
    if rejection.exception == EcsException::ServerException {
        return Some("ServerException");
    }
    let message = &rejection.message;
    if message.trim().is_empty() {
        return Some("an empty message");
    }
    if message.chars().any(char::is_control) {
        return Some("a message that echoes control characters");
    }
    if message.len() > 2048 {
        return Some("a message that echoes the whole oversized input");
    }
    None
}
