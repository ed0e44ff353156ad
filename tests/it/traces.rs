//! Traces of the real `taskledger serve --otlp-endpoint`: a stand-in OTLP collector (the OTLP
//! trace service on tonic) receives the spans of requests that carried a W3C `traceparent`, over
//! gRPC and over AWS JSON, each a child of the caller's span in the caller's trace; and the log
//! records those requests wrote carry the trace id in their cause.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use tokio::sync::mpsc;

use crate::grpc_support::{first_log_page, spawn_serve_printing};
use crate::metrics::{http, printed_address};

/// Hands every span it receives to the test.
struct Collector(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(span);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_a_traceparent_are_exported_as_children_of_the_callers_span_and_logged_with_its_trace() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_address = listener.local_addr().unwrap();
    let (spans, mut received) = mpsc::unbounded_channel();
    let (stop_collector, collector_stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(spans)))
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), async {
                let _ = collector_stopped.await;
            }),
    );

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector_address}");
    let (mut child, grpc, printed) = spawn_serve_printing(
        dir.path(),
        &["--otlp-endpoint", &endpoint, "--aws-listen", "127.0.0.1:0"],
    );
    let aws = printed_address(&printed, "taskledger AWS JSON endpoint on ");

    // Over gRPC: the caller's trace and span in `traceparent` metadata.
    let (grpc_trace, grpc_parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut client = EcsClient::connect(format!("http://{grpc}")).await.unwrap();
    let mut request = tonic::Request::new(CreateClusterRequest {
        cluster_name: Some("traced".into()),
        ..Default::default()
    });
    let traceparent = format!("00-{grpc_trace}-{grpc_parent}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    client.create_cluster(request).await.unwrap();
    // Over AWS JSON: the same in an HTTP header.
    let (aws_trace, aws_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let traceparent = format!("00-{aws_trace}-{aws_parent}-01");
    let target = format!("{}CreateCluster", taskledger::api::aws::TARGET_PREFIX);
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
        ("traceparent", traceparent.as_str()),
    ];
    let (status, body) = http(&aws, "POST", "/", &headers, r#"{"clusterName": "traced-aws"}"#).await;
    assert_eq!(status, 200, "{body}");
    // And one call with no trace.
    let untraced = CreateClusterRequest {
        cluster_name: Some("untraced".into()),
        ..Default::default()
    };
    client.create_cluster(untraced).await.unwrap();

    // The log records the trace ids in the causes.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}")).unwrap();
    let records = first_log_page(channel.connect().await.unwrap()).await;
    let traces: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let cause = r.record.as_ref().and_then(|r| r.cause.clone()).unwrap_or_default();
            (cause.operation, cause.trace_id)
        })
        .collect();
    assert_eq!(traces.len(), 3, "{traces:?}");
    assert_eq!(traces[0].1, grpc_trace, "{traces:?}");
    assert_eq!(traces[1].1, aws_trace, "{traces:?}");
    // With traces exported, every request is in a trace: one of its own when it came without.
    assert_eq!(traces[2].1.len(), 32, "{traces:?}");
    assert_ne!(traces[2].1, grpc_trace);

    // SIGTERM: the server exports what it has batched before it exits.
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(child.wait().unwrap().success());
    let mut found = Vec::new();
    // A bound on a hang, not a timing assertion: the spans were sent before the server exited.
    while let Ok(Some(span)) = tokio::time::timeout(Duration::from_secs(30), received.recv()).await {
        found.push(span);
        let child_of = |trace: &str, parent: &str| {
            found
                .iter()
                .any(|s| hex(&s.trace_id) == trace && hex(&s.parent_span_id) == parent)
        };
        if child_of(grpc_trace, grpc_parent) && child_of(aws_trace, aws_parent) {
            break;
        }
    }
    let named = |trace: &str, parent: &str| {
        found
            .iter()
            .find(|s| hex(&s.trace_id) == trace && hex(&s.parent_span_id) == parent)
            .map(|s| s.name.clone())
    };
    assert_eq!(named(grpc_trace, grpc_parent).as_deref(), Some("rpc"), "{found:#?}");
    assert_eq!(named(aws_trace, aws_parent).as_deref(), Some("aws_json"), "{found:#?}");
    let _ = stop_collector.send(());
    collector.await.unwrap().unwrap();
}
