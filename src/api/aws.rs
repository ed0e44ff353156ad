//! The AWS-compatible endpoint: ECS's own wire protocol (AWS JSON 1.1), so boto3, the AWS CLI
//! and every AWS SDK work unmodified. `POST /` with `X-Amz-Target:
//! AmazonEC2ContainerServiceV20141113.<Operation>`; the body is ECS JSON, read and written by
//! `ecs_json`; every operation runs through the same [`Operations`] as gRPC. The region comes
//! from the SigV4 credential scope of the `Authorization` header. With `--auth-file`, a request
//! proves its caller by a SigV4 signature with a caller's access key (checked with its secret),
//! an `Authorization: Bearer <token>` header, or a client certificate, and is refused before it
//! is decoded otherwise; without one, signatures are not checked.
//! Does not hold ECS rules: decoding, dispatch, and errors in ECS's JSON shape only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use tracing::Instrument;

use super::auth::{bearer_token, Access, Auth, Refusal};
use super::operations::{EcsRequest, Operations};
use super::sigv4::{self, Authorization};
use super::tls::TlsIncoming;
use crate::domain::{EcsException, Scope};
use crate::ecs_json::{self, WriteOptions};
use crate::store::{Caller, StoreError};

/// `X-Amz-Target` prefix of the ECS API (its model's `targetPrefix`).
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// How the endpoint behaves.
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// The scope of requests whose `Authorization` header names no region.
    pub default_scope: Scope,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How long one request may take before it is answered with a `ServerException`
    /// (a command may still commit).
    pub request_timeout: Duration,
    /// Who may call (open: anyone).
    pub auth: Auth,
}

#[derive(Clone)]
struct App {
    operations: Operations,
    options: AwsOptions,
}

/// The endpoint as an axum router (serve it with connect info: `into_make_service_with_connect_info`).
pub fn router(operations: Operations, options: AwsOptions) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(App { operations, options })
}

/// Serves the endpoint on `listener` until `shutdown` completes, then lets in-flight requests end.
pub async fn serve_aws(
    listener: tokio::net::TcpListener,
    operations: Operations,
    options: AwsOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(operations, options).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// `serve_aws` over TLS (which requires client certificates when `tls` names a client CA).
pub async fn serve_aws_tls(
    listener: tokio::net::TcpListener,
    operations: Operations,
    options: AwsOptions,
    tls: super::tls::TlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(operations, options).into_make_service_with_connect_info::<Peer>();
    let incoming = super::tls::accept(listener, tls)?;
    axum::serve(incoming, app).with_graceful_shutdown(shutdown).await
}

/// Who is at the other end of a connection: its address, and its certificate chain under
/// mutual TLS.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer {
            addr: *stream.remote_addr(),
            certs: None,
        }
    }
}

impl Connected<IncomingStream<'_, TlsIncoming>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsIncoming>) -> Peer {
        Peer {
            addr: *stream.remote_addr(),
            certs: stream
                .io()
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| Arc::new(certs.to_vec())),
        }
    }
}

/// An error in ECS's JSON shape: HTTP status, `__type`, message, and for conflicts `resourceIds`.
#[derive(Debug)]
struct AwsError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    resource_ids: Vec<String>,
}

impl AwsError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
            resource_ids: Vec::new(),
        }
    }

    fn serialization(message: impl Into<String>) -> Self {
        AwsError::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }
}

impl From<StoreError> for AwsError {
    fn from(error: StoreError) -> Self {
        let kind = error.exception();
        let status = match kind {
            EcsException::ServerException => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if kind == EcsException::ServerException {
            tracing::error!(%error, "internal fault");
        }
        // ECS's JSON has no place for the hint: the message alone, as ECS sends it.
        let (message, resource_ids) = match &error {
            StoreError::Rejected(e) => {
                if let Some(hint) = &e.hint {
                    tracing::debug!(exception = kind.name(), message = %e.message, hint, "request rejected");
                }
                (e.message.clone(), e.resource_ids.clone())
            }
            _ => (error.to_string(), Vec::new()),
        };
        AwsError {
            status,
            kind: kind.name(),
            message,
            resource_ids,
        }
    }
}

fn respond(request_id: &str, result: Result<Vec<u8>, AwsError>) -> Response {
    let (status, body, error_type) = match result {
        Ok(body) => (StatusCode::OK, body, None),
        Err(e) => {
            let mut body = json!({ "__type": e.kind, "message": e.message });
            if !e.resource_ids.is_empty() {
                body["resourceIds"] = json!(e.resource_ids);
            }
            (e.status, body.to_string().into_bytes(), Some(e.kind))
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", value);
    }
    if let Some(kind) = error_type {
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    }
    response
}

async fn handle(State(app): State<App>, ConnectInfo(peer): ConnectInfo<Peer>, request: Request<Body>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let operation = target(&parts.headers).unwrap_or("").to_string();
    let span = tracing::info_span!(
        "aws_json",
        operation = %operation,
        request_id = %request_id,
        peer = %peer,
        trace_id = tracing::field::Empty
    );
    let trace_id = super::trace_context::continue_trace(&span, &parts.headers);
    let started = std::time::Instant::now();
    let result = async {
        if parts.method != axum::http::Method::POST || parts.uri.path() != "/" {
            return Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "The ECS JSON API is served as POST / with an X-Amz-Target header.",
            ));
        }
        let operation = target(&parts.headers).ok_or_else(|| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("Missing or foreign X-Amz-Target: expected {TARGET_PREFIX}<Operation>."),
            )
        })?;
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with(CONTENT_TYPE) {
            return Err(AwsError::serialization(format!(
                "Content-Type must be {CONTENT_TYPE}; got '{}'.",
                crate::domain::ids::printable(content_type)
            )));
        }
        let bytes: Bytes = axum::body::to_bytes(body, app.options.max_body_bytes)
            .await
            .map_err(|_| {
                AwsError::serialization(format!(
                    "The request body exceeds {} bytes.",
                    app.options.max_body_bytes
                ))
            })?;
        let scope = scope_of(&parts.headers, &app.options.default_scope)?;
        let access = identify(&app.options.auth, &parts, &bytes, &peer)?;
        let document: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| AwsError::serialization(format!("The body is not valid JSON: {e}.")))?
        };
        if !document.is_object() {
            return Err(AwsError::serialization("The body must be a JSON object."));
        }
        let (identity, principal) = access.identity();
        let caller = Caller {
            scope,
            request_id: request_id.clone(),
            name: format!("aws-json {peer}"),
            trace_id,
            identity,
            principal,
        };
        match tokio::time::timeout(
            app.options.request_timeout,
            dispatch(&app.operations, operation, &caller, &access, &document),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServerException",
                format!(
                    "The request did not finish within {:?}; it may still take effect.",
                    app.options.request_timeout
                ),
            )),
        }
    }
    .instrument(span.clone())
    .await;
    let _entered = span.enter();
    let outcome = match &result {
        Ok(_) => {
            tracing::debug!("ok");
            "ok"
        }
        Err(e) => {
            tracing::info!(exception = e.kind, message = %e.message, "refused");
            e.kind
        }
    };
    // Only operations taskledger serves become labels, so callers cannot grow the metrics.
    let known = OPERATIONS.iter().find(|known| **known == operation).copied();
    crate::metrics::request("aws", known.unwrap_or("unknown"), outcome, started.elapsed());
    respond(&request_id, result)
}

/// The operation named by `X-Amz-Target`, if it is an ECS one.
fn target(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
}

/// The region of a SigV4 `Authorization` header's credential scope
/// (`Credential=<key>/<date>/<region>/ecs/aws4_request`), else the default.
fn scope_of(headers: &HeaderMap, default: &Scope) -> Result<Scope, AwsError> {
    let region = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| credential.split([',', ' ']).next())
        .and_then(|credential| credential.split('/').nth(2));
    match region {
        None => Ok(default.clone()),
        Some(region) => Scope::new(region, default.account()).map_err(|e| {
            AwsError::new(
                StatusCode::BAD_REQUEST,
                "InvalidParameterException",
                format!("Authorization: {}", e.message),
            )
        }),
    }
}

/// Who a request comes from: the caller of its SigV4 access key (signature checked), of its
/// bearer token, or of its client certificate; anyone when the server authenticates no one.
fn identify(auth: &Auth, parts: &Parts, body: &[u8], peer: &Peer) -> Result<Access, AwsError> {
    let Some(callers) = auth.callers() else {
        return Ok(Access::Open);
    };
    let header = parts
        .headers
        .get("authorization")
        .map(|value| value.to_str().unwrap_or(""));
    let refusal = |exception: &'static str, message: &str| Refusal {
        code: tonic::Code::Unauthenticated,
        exception,
        message: message.to_string(),
    };
    let outcome = match header.and_then(Authorization::parse) {
        Some(signed) => signed.and_then(|signed| {
            let (secret, caller) = callers.by_access_key(signed.access_key_id).ok_or_else(|| {
                refusal(
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                )
            })?;
            let now = SystemTime::now();
            sigv4::verify(&signed, secret, &parts.method, &parts.uri, &parts.headers, body, now)?;
            Ok(Access::caller(caller, format!("sigv4 {}", signed.access_key_id)))
        }),
        None if header.is_some_and(|h| bearer_token(h).is_none()) => Err(refusal(
            "IncompleteSignatureException",
            "Authorization header requires 'AWS4-HMAC-SHA256' signing or 'Bearer <token>'.",
        )),
        None => {
            let leaf = peer.certs.as_ref().and_then(|certs| certs.first());
            callers
                .identify(header, leaf.map(|leaf| leaf.as_ref()))
                .unwrap_or_else(|| {
                    Err(refusal(
                        "MissingAuthenticationTokenException",
                        "Missing Authentication Token",
                    ))
                })
        }
    };
    Ok(outcome?)
}

impl From<Refusal> for AwsError {
    fn from(refusal: Refusal) -> Self {
        let status = match refusal.exception {
            "MissingAuthenticationTokenException" => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        AwsError::new(status, refusal.exception, refusal.message)
    }
}

/// Decodes a request and checks that its caller may run it.
fn decode<M: prost::Message + prost::Name + Default + EcsRequest>(
    document: &Value,
    access: &Access,
    scope: &Scope,
) -> Result<M, AwsError> {
    let request: M = ecs_json::from_value(document).map_err(|e| AwsError::serialization(e.to_string()))?;
    access.authorize(M::OPERATION, scope, request.reach())?;
    Ok(request)
}

fn encode<M: prost::Message + prost::Name>(operation: &str, request: &Value, message: &M) -> Vec<u8> {
    // ECS answers with empty lists rather than leaving them out (`"failures": []`)…
    let options = WriteOptions {
        emit_empty_lists: true,
        ..WriteOptions::default()
    };
    let Some(place) = tags_place(operation) else {
        return ecs_json::to_vec(message, &options);
    };
    // … except a resource's `tags`.
    let mut reply = ecs_json::to_value(message, &options);
    omit_tags(place, asked_for_tags(request), &mut reply);
    serde_json::to_vec(&reply).expect("a JSON value serializes")
}

/// Where an operation's reply carries tags that ECS leaves out unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagsPlace {
    /// In each resource of this list member; present (`[]` when untagged) only with
    /// `include: ["TAGS"]`.
    Described(&'static str),
    /// Beside the resource, at the top (DescribeTaskDefinition); the same rule.
    Beside,
    /// In this one resource (CreateCluster), only when it has some.
    Created(&'static str),
}

fn tags_place(operation: &str) -> Option<TagsPlace> {
    Some(match operation {
        "DescribeClusters" => TagsPlace::Described("clusters"),
        "DescribeTasks" => TagsPlace::Described("tasks"),
        "DescribeContainerInstances" => TagsPlace::Described("containerInstances"),
        "UpdateContainerInstancesState" => TagsPlace::Described("containerInstances"),
        "DescribeTaskDefinition" => TagsPlace::Beside,
        "CreateCluster" => TagsPlace::Created("cluster"),
        _ => return None,
    })
}

fn asked_for_tags(request: &Value) -> bool {
    request
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|include| include.iter().any(|i| i == "TAGS"))
}

/// Sends `tags` where ECS does: with `include: ["TAGS"]` every described resource has them
/// (`[]` when untagged), without it none does; a created cluster has them only when tagged.
fn omit_tags(place: TagsPlace, asked: bool, reply: &mut Value) {
    let untagged = |resource: &Value| resource.get("tags").and_then(Value::as_array).is_none_or(Vec::is_empty);
    match place {
        TagsPlace::Described(list) => {
            if let (false, Some(resources)) = (asked, reply.get_mut(list).and_then(Value::as_array_mut)) {
                for resource in resources.iter_mut().filter_map(Value::as_object_mut) {
                    resource.remove("tags");
                }
            }
        }
        TagsPlace::Beside => {
            if let (false, Some(reply)) = (asked, reply.as_object_mut()) {
                reply.remove("tags");
            }
        }
        TagsPlace::Created(member) => {
            if let Some(resource) = reply.get_mut(member).filter(|r| untagged(r)) {
                if let Some(resource) = resource.as_object_mut() {
                    resource.remove("tags");
                }
            }
        }
    }
}

macro_rules! dispatch_table {
    ($($operation:literal => $method:ident;)*) => {
        /// The operations served.
        const OPERATIONS: &[&str] = &[$($operation),*];

        /// Decodes, runs and encodes one operation.
        async fn dispatch(operations: &Operations, operation: &str, caller: &Caller, access: &Access, document: &Value) -> Result<Vec<u8>, AwsError> {
            match operation {
                $($operation => Ok(encode(operation, document, &operations.$method(caller, decode(document, access, &caller.scope)?).await?)),)*
                other => Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "UnknownOperationException",
                    format!("Operation '{}' is not one taskledger serves.", crate::domain::ids::printable(other)),
                )),
            }
        }
    };
}

dispatch_table! {
    "RunTask" => run_task;
    "StartTask" => start_task;
    "DescribeTasks" => describe_tasks;
    "StopTask" => stop_task;
    "ListTasks" => list_tasks;
    "SubmitTaskStateChange" => submit_task_state_change;
    "SubmitContainerStateChange" => submit_container_state_change;
    "SubmitAttachmentStateChanges" => submit_attachment_state_changes;
    "RegisterTaskDefinition" => register_task_definition;
    "DescribeTaskDefinition" => describe_task_definition;
    "DeregisterTaskDefinition" => deregister_task_definition;
    "ListTaskDefinitions" => list_task_definitions;
    "ListTaskDefinitionFamilies" => list_task_definition_families;
    "CreateCluster" => create_cluster;
    "DescribeClusters" => describe_clusters;
    "ListClusters" => list_clusters;
    "DeleteCluster" => delete_cluster;
    "RegisterContainerInstance" => register_container_instance;
    "DeregisterContainerInstance" => deregister_container_instance;
    "UpdateContainerInstancesState" => update_container_instances_state;
    "DeleteTaskDefinitions" => delete_task_definitions;
    "PutAttributes" => put_attributes;
    "DeleteAttributes" => delete_attributes;
    "ListAttributes" => list_attributes;
    "DescribeContainerInstances" => describe_container_instances;
    "ListContainerInstances" => list_container_instances;
    "TagResource" => tag_resource;
    "UntagResource" => untag_resource;
    "ListTagsForResource" => list_tags_for_resource;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn tags_are_sent_where_ecs_sends_them() {
        let described = || json!({"clusters": [{"clusterName": "a", "tags": []}], "failures": []});
        let mut reply = described();
        omit_tags(TagsPlace::Described("clusters"), false, &mut reply);
        assert_eq!(reply, json!({"clusters": [{"clusterName": "a"}], "failures": []}));
        let mut reply = described();
        omit_tags(TagsPlace::Described("clusters"), true, &mut reply);
        assert_eq!(reply, described(), "asked for: [] stays");

        let mut reply = json!({"taskDefinition": {"family": "web"}, "tags": []});
        omit_tags(TagsPlace::Beside, false, &mut reply);
        assert_eq!(reply, json!({"taskDefinition": {"family": "web"}}));

        let mut reply = json!({"cluster": {"clusterName": "a", "tags": []}});
        omit_tags(TagsPlace::Created("cluster"), false, &mut reply);
        assert_eq!(reply, json!({"cluster": {"clusterName": "a"}}));
        let tagged = json!({"cluster": {"clusterName": "a", "tags": [{"key": "k", "value": "v"}]}});
        let mut reply = tagged.clone();
        omit_tags(TagsPlace::Created("cluster"), false, &mut reply);
        assert_eq!(reply, tagged);

        assert!(asked_for_tags(&json!({"include": ["SETTINGS", "TAGS"]})));
        assert!(!asked_for_tags(&json!({"include": ["SETTINGS"]})));
        assert_eq!(tags_place("ListTasks"), None);
    }

    #[test]
    fn region_comes_from_the_sigv4_credential_scope() {
        let default = Scope::new("us-east-1", "123456789012").unwrap();
        let auth =
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-3/ecs/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(
            scope_of(&headers(&[("authorization", auth)]), &default)
                .unwrap()
                .region(),
            "eu-west-3"
        );
        assert_eq!(scope_of(&headers(&[]), &default).unwrap().region(), "us-east-1");
        let bad = "AWS4-HMAC-SHA256 Credential=AKID/20240101/NOT A REGION/ecs/aws4_request";
        assert!(scope_of(&headers(&[("authorization", bad)]), &default).is_err());
    }

    #[test]
    fn the_target_names_an_ecs_operation() {
        assert_eq!(
            target(&headers(&[(
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.RunTask"
            )])),
            Some("RunTask")
        );
        assert_eq!(target(&headers(&[("x-amz-target", "DynamoDB_20120810.GetItem")])), None);
    }
}
