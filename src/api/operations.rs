//! The 29 ECS operations as tonic-free async calls, the code path every front end shares (gRPC
//! now, an AWS JSON 1.1 endpoint later): commands go through the store's writer and return once
//! durable; queries read the views on tokio's blocking pool so a large page or a cold cache
//! never stalls an executor thread. Also names each request's operation and cluster for logs.
//! Does not know about transports, metadata, status codes or timeouts.

use super::auth::Reach;
use crate::domain::{Command, Reply};
use crate::proto::v1::*;
use crate::store::{Caller, Store, StoreError, StoreResult};

/// The ECS operations over one store. Cheap to clone.
#[derive(Clone)]
pub struct Operations {
    store: Store,
}

impl Operations {
    pub fn new(store: Store) -> Operations {
        Operations { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn command<R>(&self, caller: &Caller, command: Command, pick: fn(Reply) -> Option<R>) -> StoreResult<R> {
        let operation = command.operation();
        let executed = self.store.execute_async(caller, command).await?;
        pick(executed.reply).ok_or_else(|| StoreError::Storage {
            context: "answering a command",
            message: format!("{operation} was answered with the reply of another operation"),
        })
    }

    async fn query<Q, R>(
        &self,
        caller: &Caller,
        request: Q,
        run: fn(&Store, &Caller, &Q) -> StoreResult<R>,
    ) -> StoreResult<R>
    where
        Q: Send + 'static,
        R: Send + 'static,
    {
        let store = self.store.clone();
        let caller = caller.clone();
        tokio::task::spawn_blocking(move || run(&store, &caller, &request))
            .await
            .map_err(|error| StoreError::Storage {
                context: "running a query",
                message: format!("the query did not complete: {error}"),
            })?
    }
}

macro_rules! commands {
    ($($name:ident: $variant:ident($request:ty) -> $response:ty;)*) => {
        impl Operations {
            $(
                #[doc = concat!("ECS `", stringify!($variant), "`; returns once its events are durable.")]
                pub async fn $name(&self, caller: &Caller, request: $request) -> StoreResult<$response> {
                    self.command(caller, Command::$variant(request), |reply| match reply {
                        Reply::$variant(response) => Some(response),
                        _ => None,
                    })
                    .await
                }
            )*
        }
    };
}

macro_rules! queries {
    ($($name:ident: $operation:literal($request:ty) -> $response:ty;)*) => {
        impl Operations {
            $(
                #[doc = concat!("ECS `", $operation, "`, read from the views.")]
                pub async fn $name(&self, caller: &Caller, request: $request) -> StoreResult<$response> {
                    self.query(caller, request, |store, caller, request| store.$name(&caller.scope, request)).await
                }
            )*
        }
    };
}

commands! {
    run_task: RunTask(RunTaskRequest) -> RunTaskResponse;
    start_task: StartTask(StartTaskRequest) -> StartTaskResponse;
    stop_task: StopTask(StopTaskRequest) -> StopTaskResponse;
    submit_task_state_change: SubmitTaskStateChange(SubmitTaskStateChangeRequest) -> SubmitTaskStateChangeResponse;
    submit_container_state_change: SubmitContainerStateChange(SubmitContainerStateChangeRequest) -> SubmitContainerStateChangeResponse;
    submit_attachment_state_changes: SubmitAttachmentStateChanges(SubmitAttachmentStateChangesRequest) -> SubmitAttachmentStateChangesResponse;
    register_task_definition: RegisterTaskDefinition(RegisterTaskDefinitionRequest) -> RegisterTaskDefinitionResponse;
    deregister_task_definition: DeregisterTaskDefinition(DeregisterTaskDefinitionRequest) -> DeregisterTaskDefinitionResponse;
    create_cluster: CreateCluster(CreateClusterRequest) -> CreateClusterResponse;
    delete_cluster: DeleteCluster(DeleteClusterRequest) -> DeleteClusterResponse;
    register_container_instance: RegisterContainerInstance(RegisterContainerInstanceRequest) -> RegisterContainerInstanceResponse;
    deregister_container_instance: DeregisterContainerInstance(DeregisterContainerInstanceRequest) -> DeregisterContainerInstanceResponse;
    update_container_instances_state: UpdateContainerInstancesState(UpdateContainerInstancesStateRequest) -> UpdateContainerInstancesStateResponse;
    delete_task_definitions: DeleteTaskDefinitions(DeleteTaskDefinitionsRequest) -> DeleteTaskDefinitionsResponse;
    put_attributes: PutAttributes(PutAttributesRequest) -> PutAttributesResponse;
    delete_attributes: DeleteAttributes(DeleteAttributesRequest) -> DeleteAttributesResponse;
    tag_resource: TagResource(TagResourceRequest) -> TagResourceResponse;
    untag_resource: UntagResource(UntagResourceRequest) -> UntagResourceResponse;
}

queries! {
    describe_tasks: "DescribeTasks"(DescribeTasksRequest) -> DescribeTasksResponse;
    list_tasks: "ListTasks"(ListTasksRequest) -> ListTasksResponse;
    describe_task_definition: "DescribeTaskDefinition"(DescribeTaskDefinitionRequest) -> DescribeTaskDefinitionResponse;
    list_task_definitions: "ListTaskDefinitions"(ListTaskDefinitionsRequest) -> ListTaskDefinitionsResponse;
    list_task_definition_families: "ListTaskDefinitionFamilies"(ListTaskDefinitionFamiliesRequest) -> ListTaskDefinitionFamiliesResponse;
    describe_clusters: "DescribeClusters"(DescribeClustersRequest) -> DescribeClustersResponse;
    list_clusters: "ListClusters"(ListClustersRequest) -> ListClustersResponse;
    describe_container_instances: "DescribeContainerInstances"(DescribeContainerInstancesRequest) -> DescribeContainerInstancesResponse;
    list_container_instances: "ListContainerInstances"(ListContainerInstancesRequest) -> ListContainerInstancesResponse;
    list_attributes: "ListAttributes"(ListAttributesRequest) -> ListAttributesResponse;
    list_tags_for_resource: "ListTagsForResource"(ListTagsForResourceRequest) -> ListTagsForResourceResponse;
}

/// What every ECS request tells a front end before it runs: its operation, its cluster, and
/// what it acts on for a caller's cluster scope.
pub trait EcsRequest: Send + 'static {
    /// The ECS operation name, e.g. `"RunTask"`.
    const OPERATION: &'static str;
    /// The cluster the request names, as given (for logs).
    fn cluster(&self) -> Option<&str>;
    /// What the request acts on.
    fn reach(&self) -> Reach<'_>;
}

macro_rules! ecs_requests {
    (@cluster $request:ident cluster_of($field:ident)) => { $request.$field.as_deref() };
    (@cluster $request:ident $($other:tt)*) => { None };
    (@reach $request:ident cluster_of($field:ident)) => { Reach::Cluster($request.$field.as_deref()) };
    (@reach $request:ident clusters($field:ident)) => { Reach::Clusters(&$request.$field) };
    (@reach $request:ident resource($field:ident)) => { Reach::Resource($request.$field.as_deref().unwrap_or("")) };
    (@reach $request:ident region) => { Reach::Region };
    ($($request:ty: $operation:literal, $kind:ident $(($field:ident))?;)*) => {
        $(
            impl EcsRequest for $request {
                const OPERATION: &'static str = $operation;
                fn cluster(&self) -> Option<&str> {
                    ecs_requests!(@cluster self $kind $(($field))?)
                }
                fn reach(&self) -> Reach<'_> {
                    ecs_requests!(@reach self $kind $(($field))?)
                }
            }
        )*
    };
}

ecs_requests! {
    RunTaskRequest: "RunTask", cluster_of(cluster);
    StartTaskRequest: "StartTask", cluster_of(cluster);
    DescribeTasksRequest: "DescribeTasks", cluster_of(cluster);
    StopTaskRequest: "StopTask", cluster_of(cluster);
    ListTasksRequest: "ListTasks", cluster_of(cluster);
    SubmitTaskStateChangeRequest: "SubmitTaskStateChange", cluster_of(cluster);
    SubmitContainerStateChangeRequest: "SubmitContainerStateChange", cluster_of(cluster);
    SubmitAttachmentStateChangesRequest: "SubmitAttachmentStateChanges", cluster_of(cluster);
    RegisterTaskDefinitionRequest: "RegisterTaskDefinition", region;
    DescribeTaskDefinitionRequest: "DescribeTaskDefinition", region;
    DeregisterTaskDefinitionRequest: "DeregisterTaskDefinition", region;
    ListTaskDefinitionsRequest: "ListTaskDefinitions", region;
    ListTaskDefinitionFamiliesRequest: "ListTaskDefinitionFamilies", region;
    CreateClusterRequest: "CreateCluster", cluster_of(cluster_name);
    DescribeClustersRequest: "DescribeClusters", clusters(clusters);
    ListClustersRequest: "ListClusters", region;
    DeleteClusterRequest: "DeleteCluster", cluster_of(cluster);
    RegisterContainerInstanceRequest: "RegisterContainerInstance", cluster_of(cluster);
    DeregisterContainerInstanceRequest: "DeregisterContainerInstance", cluster_of(cluster);
    UpdateContainerInstancesStateRequest: "UpdateContainerInstancesState", cluster_of(cluster);
    DeleteTaskDefinitionsRequest: "DeleteTaskDefinitions", region;
    PutAttributesRequest: "PutAttributes", cluster_of(cluster);
    DeleteAttributesRequest: "DeleteAttributes", cluster_of(cluster);
    ListAttributesRequest: "ListAttributes", cluster_of(cluster);
    DescribeContainerInstancesRequest: "DescribeContainerInstances", cluster_of(cluster);
    ListContainerInstancesRequest: "ListContainerInstances", cluster_of(cluster);
    TagResourceRequest: "TagResource", resource(resource_arn);
    UntagResourceRequest: "UntagResource", resource(resource_arn);
    ListTagsForResourceRequest: "ListTagsForResource", resource(resource_arn);
}
