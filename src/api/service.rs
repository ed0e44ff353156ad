//! `EcsService`: the tonic adapter of the `taskledger.v1.Ecs` service. Per call it works out the
//! scope (metadata `x-taskledger-region`, else the server's region), the request id (metadata
//! `x-request-id` when sane, else a new UUID; echoed in the response), the caller name
//! (`grpc <peer>`), opens one span, runs the operation under the request timeout, and maps errors.
//! Does not run any ECS logic itself: every RPC is one call into [`Operations`].

use std::future::Future;
use std::time::Duration;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::auth::{Access, Auth, Reach, Refusal};
use super::operations::{EcsRequest, Operations};
use super::{status, REGION_HEADER, REQUEST_ID_HEADER};
use crate::domain::ids::printable;
use crate::domain::{DomainError, Scope};
use crate::proto::v1::ecs_server::Ecs;
use crate::proto::v1::*;
use crate::store::{Caller, Store, StoreError, StoreResult};

/// Longest client-chosen request id that is kept; longer or unprintable ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Longest cluster text copied into a log line.
const MAX_LOGGED_CLUSTER_LEN: usize = 256;

/// The `taskledger.v1.Ecs` service over one store.
#[derive(Clone)]
pub struct EcsService {
    operations: Operations,
    default_scope: Scope,
    request_timeout: Duration,
    auth: Auth,
}

impl EcsService {
    /// A service answering in `default_scope` unless a call names another region. Operations that
    /// take longer than `request_timeout` answer `DEADLINE_EXCEEDED` (a command may still commit).
    pub fn new(store: Store, default_scope: Scope, request_timeout: Duration) -> EcsService {
        EcsService {
            operations: Operations::new(store),
            default_scope,
            request_timeout,
            auth: Auth::open(),
        }
    }

    /// Only the callers of `auth` may call, each as its roles allow.
    pub fn with_auth(self, auth: Auth) -> EcsService {
        EcsService { auth, ..self }
    }

    /// The tonic-free operations behind the service.
    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// Runs one RPC: context from metadata, a span, the operation under the timeout, the outcome
    /// logged and mapped, the request id echoed either way.
    async fn call<Req, Resp, Run, Fut>(&self, request: Request<Req>, run: Run) -> Result<Response<Resp>, Status>
    where
        Req: EcsRequest,
        Resp: Send,
        Run: FnOnce(Operations, Caller, Req) -> Fut + Send,
        Fut: Future<Output = StoreResult<Resp>> + Send,
    {
        let request_id = request_id_of(request.metadata());
        let span = rpc_span(Req::OPERATION, request.get_ref().cluster(), &request_id);
        let trace_id = super::trace_context::continue_trace(&span, request.metadata());
        let started = std::time::Instant::now();
        let mut exception = "ok";
        let outcome = async {
            let scope = self.scope_of(request.metadata()).map_err(|e| {
                exception = e.exception().name();
                status::to_status(&e, &request_id)
            })?;
            let access = authenticate(&self.auth, &request, &scope, Req::OPERATION, request.get_ref().reach())
                .map_err(|refusal| {
                    exception = refusal.exception;
                    status::refused(&refusal, &request_id)
                })?;
            let (identity, principal) = access.identity();
            let name = match request.remote_addr() {
                Some(peer) => format!("grpc {peer}"),
                None => "grpc".to_string(),
            };
            let caller = Caller {
                scope,
                request_id: request_id.clone(),
                name,
                trace_id,
                identity,
                principal,
            };
            let work = run(self.operations.clone(), caller, request.into_inner());
            match tokio::time::timeout(self.request_timeout, work).await {
                Ok(Ok(response)) => {
                    tracing::debug!("ok");
                    Ok(response)
                }
                Ok(Err(error)) => {
                    exception = error.exception().name();
                    tracing::info!(exception, "failed: {error}");
                    Err(status::to_status(&error, &request_id))
                }
                Err(_) => {
                    exception = "DeadlineExceeded";
                    tracing::info!(timeout_ms = self.request_timeout.as_millis() as u64, "timed out");
                    Err(status::deadline_exceeded(
                        Req::OPERATION,
                        self.request_timeout,
                        &request_id,
                    ))
                }
            }
        }
        .instrument(span)
        .await;
        crate::metrics::request("grpc", Req::OPERATION, exception, started.elapsed());
        echo_request_id(outcome, &request_id)
    }

    /// The scope of a call: the region named in metadata, else the default, in the server's account.
    fn scope_of(&self, metadata: &MetadataMap) -> Result<Scope, StoreError> {
        scope_of(&self.default_scope, metadata)
    }
}

/// Who a gRPC call comes from (metadata, client certificate), and whether it may run `operation`
/// on `reach`: the one check both gRPC services make before anything runs. Refusals are logged.
pub(super) fn authenticate<T>(
    auth: &Auth,
    request: &Request<T>,
    scope: &Scope,
    operation: &str,
    reach: Reach<'_>,
) -> Result<Access, Refusal> {
    let certs = request.peer_certs();
    let outcome = auth
        .identify_grpc(request.metadata(), certs.as_deref().map(Vec::as_slice))
        .and_then(|access| access.authorize(operation, scope, reach).map(|()| access));
    if let Err(refusal) = &outcome {
        tracing::info!(exception = refusal.exception, "refused: {}", refusal.message);
    }
    outcome
}

/// The scope of a call: the region named in metadata, else `default_scope`, in its account.
pub(super) fn scope_of(default_scope: &Scope, metadata: &MetadataMap) -> Result<Scope, StoreError> {
    let Some(value) = metadata.get(REGION_HEADER) else {
        return Ok(default_scope.clone());
    };
    let invalid = |detail: String| {
        StoreError::Rejected(DomainError::invalid_parameter(
            REGION_HEADER,
            format!("Metadata {REGION_HEADER} is invalid: {detail} Name a region such as us-east-1 or omit it."),
        ))
    };
    let region = value
        .to_str()
        .map_err(|_| invalid("it is not printable ASCII.".to_string()))?;
    Scope::new(region, default_scope.account())
        .map_err(|_| invalid(format!("'{}' is not a region name.", printable(region))))
}

/// The client's `x-request-id` when it is 1–128 printable ASCII characters, else a new UUID v4.
pub(super) fn request_id_of(metadata: &MetadataMap) -> String {
    metadata
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The span of one RPC: its operation, cluster (when the request names one) and request id.
pub(super) fn rpc_span(operation: &'static str, cluster: Option<&str>, request_id: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        operation,
        cluster = tracing::field::Empty,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    if let Some(cluster) = cluster {
        span.record("cluster", tracing::field::debug(loggable(cluster)));
    }
    span
}

/// The reply of one RPC, with its request id echoed in the metadata either way.
pub(super) fn echo_request_id<T>(outcome: Result<T, Status>, request_id: &str) -> Result<Response<T>, Status> {
    let echo = MetadataValue::try_from(request_id).ok();
    match outcome {
        Ok(body) => {
            let mut response = Response::new(body);
            if let Some(echo) = echo {
                response.metadata_mut().insert(REQUEST_ID_HEADER, echo);
            }
            Ok(response)
        }
        Err(mut status) => {
            if let Some(echo) = echo {
                status.metadata_mut().insert(REQUEST_ID_HEADER, echo);
            }
            Err(status)
        }
    }
}

/// At most `MAX_LOGGED_CLUSTER_LEN` bytes of caller-supplied text, cut at a character boundary.
pub(super) fn loggable(text: &str) -> &str {
    let mut end = text.len().min(MAX_LOGGED_CLUSTER_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Every RPC is the same one line: the operation of the same name, through `call`.
macro_rules! rpcs {
    ($($name:ident($request:ty) -> $response:ty;)*) => {
        #[tonic::async_trait]
        impl Ecs for EcsService {
            $(
                async fn $name(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    self.call(request, |operations, caller, request| async move {
                        operations.$name(&caller, request).await
                    })
                    .await
                }
            )*
        }
    };
}

rpcs! {
    run_task(RunTaskRequest) -> RunTaskResponse;
    start_task(StartTaskRequest) -> StartTaskResponse;
    describe_tasks(DescribeTasksRequest) -> DescribeTasksResponse;
    stop_task(StopTaskRequest) -> StopTaskResponse;
    list_tasks(ListTasksRequest) -> ListTasksResponse;
    submit_task_state_change(SubmitTaskStateChangeRequest) -> SubmitTaskStateChangeResponse;
    submit_container_state_change(SubmitContainerStateChangeRequest) -> SubmitContainerStateChangeResponse;
    submit_attachment_state_changes(SubmitAttachmentStateChangesRequest) -> SubmitAttachmentStateChangesResponse;
    register_task_definition(RegisterTaskDefinitionRequest) -> RegisterTaskDefinitionResponse;
    describe_task_definition(DescribeTaskDefinitionRequest) -> DescribeTaskDefinitionResponse;
    deregister_task_definition(DeregisterTaskDefinitionRequest) -> DeregisterTaskDefinitionResponse;
    list_task_definitions(ListTaskDefinitionsRequest) -> ListTaskDefinitionsResponse;
    list_task_definition_families(ListTaskDefinitionFamiliesRequest) -> ListTaskDefinitionFamiliesResponse;
    create_cluster(CreateClusterRequest) -> CreateClusterResponse;
    describe_clusters(DescribeClustersRequest) -> DescribeClustersResponse;
    list_clusters(ListClustersRequest) -> ListClustersResponse;
    delete_cluster(DeleteClusterRequest) -> DeleteClusterResponse;
    register_container_instance(RegisterContainerInstanceRequest) -> RegisterContainerInstanceResponse;
    deregister_container_instance(DeregisterContainerInstanceRequest) -> DeregisterContainerInstanceResponse;
    update_container_instances_state(UpdateContainerInstancesStateRequest) -> UpdateContainerInstancesStateResponse;
    delete_task_definitions(DeleteTaskDefinitionsRequest) -> DeleteTaskDefinitionsResponse;
    put_attributes(PutAttributesRequest) -> PutAttributesResponse;
    delete_attributes(DeleteAttributesRequest) -> DeleteAttributesResponse;
    list_attributes(ListAttributesRequest) -> ListAttributesResponse;
    describe_container_instances(DescribeContainerInstancesRequest) -> DescribeContainerInstancesResponse;
    list_container_instances(ListContainerInstancesRequest) -> ListContainerInstancesResponse;
    tag_resource(TagResourceRequest) -> TagResourceResponse;
    untag_resource(UntagResourceRequest) -> UntagResourceResponse;
    list_tags_for_resource(ListTagsForResourceRequest) -> ListTagsForResourceResponse;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut metadata = MetadataMap::new();
        metadata.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        assert_eq!(request_id_of(&metadata), "abc-123");
        metadata.insert(REQUEST_ID_HEADER, "x".repeat(129).parse().unwrap());
        assert_eq!(request_id_of(&metadata).len(), 36);
        metadata.insert(REQUEST_ID_HEADER, "has space".parse().unwrap());
        assert_ne!(request_id_of(&metadata), "has space");
    }

    #[test]
    fn loggable_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(200);
        assert!(loggable(&text).len() <= MAX_LOGGED_CLUSTER_LEN);
        assert!(loggable("prod") == "prod");
    }
}
