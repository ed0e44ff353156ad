//! The AWS JSON 1.1 endpoint over a real socket: the same request through gRPC and through
//! AWS-JSON gives the same task state; ECS JSON shapes and error bodies; malformed bodies, wrong
//! content types, huge bodies and unknown operations get the right error and change nothing.
//! (boto3 and the AWS CLI themselves run in `.ci/run`, see tests/clients/aws_sdk.py.)

use std::time::Duration;

use serde_json::{json, Value};
use taskledger::api::aws::{serve_aws, AwsOptions, TARGET_PREFIX};
use taskledger::api::Operations;
use taskledger::domain::Scope;
use taskledger::proto::v1::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::grpc_support::*;

const MAX_BODY: usize = 64 * 1024;

/// What a malformed-request case sends and expects: name, headers, body, status, `__type`.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);

/// The AWS endpoint beside a gRPC server, on the same store.
async fn aws_beside(server: &Server) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = AwsOptions {
        default_scope: Scope::new("us-east-1", "123456789012").unwrap(),
        max_body_bytes: MAX_BODY,
        request_timeout: Duration::from_secs(10),
        auth: taskledger::api::auth::Auth::open(),
    };
    tokio::spawn(serve_aws(
        listener,
        Operations::new(server.store.clone()),
        options,
        async {
            let _ = stopped.await;
        },
    ));
    (address, stop)
}

/// One HTTP/1.1 exchange: (status, headers in lower case, body).
pub(crate) async fn post(
    address: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

async fn call(address: &str, operation: &str, body: Value) -> (u16, Value) {
    let target = format!("{TARGET_PREFIX}{operation}");
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
    ];
    let (status, response_headers, body) = post(address, &headers, body.to_string().as_bytes()).await;
    assert!(
        response_headers.iter().any(|(k, _)| k == "x-amzn-requestid"),
        "every reply carries x-amzn-RequestId"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn grpc_and_aws_json_give_the_same_task_state() {
    let mut server = start().await;
    let (aws, _stop) = aws_beside(&server).await;
    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let (status, ran) = call(
        &aws,
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "web", "count": 2, "launchType": "FARGATE",
               "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}),
    )
    .await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["failures"], json!([]));
    let arn = ran["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert!(ran["tasks"][0]["createdAt"].is_number(), "times are epoch seconds");
    assert_eq!(ran["tasks"][0]["launchType"], "FARGATE");

    // A change through gRPC shows through AWS JSON, and the other way round.
    let report = SubmitTaskStateChangeRequest {
        cluster: Some("prod".into()),
        task: Some(arn.clone()),
        status: Some("RUNNING".into()),
        ..Default::default()
    };
    server.client.submit_task_state_change(report).await.unwrap();
    let (_, stopped) = call(
        &aws,
        "StopTask",
        json!({"cluster": "prod", "task": arn, "reason": "both"}),
    )
    .await;
    assert_eq!(stopped["task"]["version"], 3);
    let via_grpc = server.describe_task("prod", &arn).await;
    let (_, via_aws) = call(&aws, "DescribeTasks", json!({"cluster": "prod", "tasks": [arn]})).await;
    let task = &via_aws["tasks"][0];
    assert_eq!(task["version"], json!(via_grpc.version.unwrap()));
    assert_eq!(task["lastStatus"], json!(via_grpc.last_status.unwrap()));
    assert_eq!(task["desiredStatus"], "STOPPED");
    assert_eq!(task["stopCode"], "UserInitiated");
    assert_eq!(task["stoppedReason"], "both");
    let mut expected = taskledger::ecs_json::to_value(
        &server
            .store
            .describe_tasks(
                &Scope::new("us-east-1", "123456789012").unwrap(),
                &DescribeTasksRequest {
                    cluster: Some("prod".into()),
                    tasks: vec![arn.clone()],
                    include: vec![],
                },
            )
            .unwrap(),
        &taskledger::ecs_json::WriteOptions {
            emit_empty_lists: true,
            ..Default::default()
        },
    );
    // ECS leaves `tags` out unless asked for (include=TAGS).
    assert_eq!(expected["tasks"][0]["tags"], json!([]));
    expected["tasks"][0].as_object_mut().unwrap().remove("tags");
    assert_eq!(via_aws, expected, "the AWS answer is the store's answer in ECS JSON");
    let (_, tagged) = call(
        &aws,
        "DescribeTasks",
        json!({"cluster": "prod", "tasks": [arn], "include": ["TAGS"]}),
    )
    .await;
    assert_eq!(
        tagged["tasks"][0]["tags"],
        json!([]),
        "asked for, an untagged task has tags: []"
    );
}

#[tokio::test]
async fn errors_have_the_ecs_json_shape_and_region_comes_from_sigv4() {
    let mut server = start().await;
    let (aws, _stop) = aws_beside(&server).await;
    let (status, body) = call(&aws, "RunTask", json!({"cluster": "missing", "taskDefinition": "web"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "ClusterNotFoundException");
    // ECS's own text, never prefixed with the exception's name.
    assert_eq!(body["message"], "Cluster not found.");
    let (status, body) = call(
        &aws,
        "DescribeContainerInstances",
        json!({"cluster": "missing", "containerInstances": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["__type"], "ClientException",
        "the request is checked before the cluster"
    );
    assert_eq!(body["message"], "Container Instances cannot be empty.");

    server.create_cluster("prod").await;
    server.register_fargate("web").await;
    let run = json!({"cluster": "prod", "taskDefinition": "web", "launchType": "FARGATE", "clientToken": "t-1",
                     "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}});
    let (_, first) = call(&aws, "RunTask", run.clone()).await;
    let mut other = run.clone();
    other["count"] = json!(2);
    let (status, conflict) = call(&aws, "RunTask", other).await;
    assert_eq!((status, conflict["__type"].as_str()), (400, Some("ConflictException")));
    assert_eq!(conflict["resourceIds"], json!([first["tasks"][0]["taskArn"]]));

    // A signed request for eu-west-1 lands in eu-west-1.
    let target = format!("{TARGET_PREFIX}CreateCluster");
    let auth =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
        ("Authorization", auth),
    ];
    let (status, _, body) = post(&aws, &headers, br#"{"clusterName":"eu"}"#).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body["cluster"]["clusterArn"],
        "arn:aws:ecs:eu-west-1:123456789012:cluster/eu"
    );
}

#[tokio::test]
async fn malformed_requests_get_the_right_error_and_change_nothing() {
    let mut server = start().await;
    let (aws, _stop) = aws_beside(&server).await;
    server.create_cluster("prod").await;
    let head = server.head();
    let target = format!("{TARGET_PREFIX}CreateCluster");
    let json_type = ("Content-Type", "application/x-amz-json-1.1");
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            vec![json_type, ("X-Amz-Target", &target)],
            b"{\"clusterName\":".to_vec(),
            400,
            "SerializationException",
        ),
        (
            "not an object",
            vec![json_type, ("X-Amz-Target", &target)],
            b"[1,2]".to_vec(),
            400,
            "SerializationException",
        ),
        (
            "a wrong type",
            vec![json_type, ("X-Amz-Target", &target)],
            br#"{"clusterName": 7}"#.to_vec(),
            400,
            "SerializationException",
        ),
        (
            "wrong content type",
            vec![("Content-Type", "text/plain"), ("X-Amz-Target", &target)],
            br#"{"clusterName":"x"}"#.to_vec(),
            400,
            "SerializationException",
        ),
        (
            "a huge body",
            vec![json_type, ("X-Amz-Target", &target)],
            format!("{{\"clusterName\":\"{}\"}}", "x".repeat(MAX_BODY)).into_bytes(),
            400,
            "SerializationException",
        ),
        (
            "an unknown operation",
            vec![
                json_type,
                ("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.LaunchRocket"),
            ],
            b"{}".to_vec(),
            400,
            "UnknownOperationException",
        ),
        (
            "no target",
            vec![json_type],
            b"{}".to_vec(),
            400,
            "UnknownOperationException",
        ),
        (
            "an invalid parameter",
            vec![json_type, ("X-Amz-Target", &target)],
            br#"{"clusterName":"bad name!"}"#.to_vec(),
            400,
            "InvalidParameterException",
        ),
    ];
    for (what, headers, body, status, kind) in cases {
        let (got_status, response_headers, response) = post(&aws, &headers, &body).await;
        let response: Value = serde_json::from_slice(&response).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            (got_status, response["__type"].as_str()),
            (status, Some(kind)),
            "{what}: {response}"
        );
        assert!(
            response_headers
                .iter()
                .any(|(k, v)| k == "x-amzn-errortype" && v == kind),
            "{what}: x-amzn-ErrorType"
        );
        assert_eq!(server.head(), head, "{what} changed the log");
    }
}
