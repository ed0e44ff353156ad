//! Callers and roles of the real `taskledger serve --auth-file`: over gRPC, no token or a wrong
//! one is UNAUTHENTICATED, a reader that runs a task and an agent that deletes a cluster are
//! PERMISSION_DENIED with the action named, a cluster scope and a rate limit hold; over AWS JSON,
//! a SigV4 signature is checked with the caller's secret (a wrong secret, a tampered body, a stale
//! date, an unknown key and no signature are refused with AWS's exceptions); under mutual TLS a
//! certificate's subject names its caller. Nothing refused is logged, and every logged event
//! names its caller and how it proved it.

use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use taskledger::api::auth::token_hash;
use taskledger::api::aws::TARGET_PREFIX;
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::ledger_client::LedgerClient;
use taskledger::proto::v1::*;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::aws::post;
use crate::grpc_support::{exception, spawn_serve_printing};
use crate::metrics::printed_address;
use crate::tls::{grpc_channel, write, Ca};

const OPS: &str = "ops-token-0123456789";
const READER: &str = "reader-token-0123456789";
const AGENT: &str = "agent-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";
const PROD_ONLY: &str = "prod-token-0123456789";
const SLOW: &str = "slow-token-0123456789";
const KEY_ID: &str = "AKIATASKLEDGERTEST";
const SECRET: &str = "aws-secret-for-the-test";

fn auth_file() -> String {
    let caller = |name: &str, token: &str, roles: &str, extra: &str| {
        format!(
            "[[caller]]\nname = \"{name}\"\nroles = {roles}\ntoken_sha256 = \"{}\"\n{extra}\n",
            hex::encode(token_hash(token))
        )
    };
    [
        caller("ops", OPS, "[\"operator\"]", ""),
        caller("reader", READER, "[\"reader\"]", ""),
        caller("agent", AGENT, "[\"agent\"]", "cert_subject = \"CN=agent-1\""),
        caller("admin", ADMIN, "[\"admin\"]", ""),
        caller("prod-only", PROD_ONLY, "[\"operator\"]", "clusters = [\"prod\"]"),
        caller("slow", SLOW, "[\"reader\"]", "requests_per_second = 1\nburst = 1"),
        format!(
            "[[caller]]\nname = \"aws-ops\"\nroles = [\"operator\"]\naws_access_key_id = \"{KEY_ID}\"\n\
             aws_secret_access_key = \"{SECRET}\"\n"
        ),
    ]
    .concat()
}

fn bearer<T>(token: &str, body: T) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn cluster(name: &str) -> CreateClusterRequest {
    CreateClusterRequest {
        cluster_name: Some(name.into()),
        ..Default::default()
    }
}

/// The log's causes as (operation, identity, principal).
async fn causes(channel: Channel, token: &str) -> Vec<(String, String, String)> {
    let request = ReadLogRequest {
        from_seq: 1,
        ..Default::default()
    };
    let records = LedgerClient::new(channel)
        .read_log(bearer(token, request))
        .await
        .expect("ReadLog")
        .into_inner()
        .records;
    records
        .into_iter()
        .map(|entry| {
            let cause = entry.record.unwrap().cause.unwrap();
            (cause.operation, cause.identity, cause.principal)
        })
        .collect()
}

/// An AWS JSON request signed as a client would (aws-sigv4): (status, `__type` or "").
async fn signed_call(
    address: &str,
    operation: &str,
    body: &str,
    sent_body: &str,
    key_id: &str,
    secret: &str,
    time: SystemTime,
) -> (u16, String) {
    let target = format!("{TARGET_PREFIX}{operation}");
    let headers = [
        ("host", address),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let identity = aws_credential_types::Credentials::new(key_id, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecs")
        .time(time)
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "POST",
        "/",
        headers.iter().copied(),
        aws_sigv4::http_request::SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params.into())
        .unwrap()
        .into_parts();
    let mut sent: Vec<(&str, &str)> = headers[1..].to_vec();
    sent.extend(instructions.headers());
    aws_answer(post(address, &sent, sent_body.as_bytes()).await)
}

fn aws_answer((status, _, body): (u16, Vec<(String, String)>, Vec<u8>)) -> (u16, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, body["__type"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_prove_who_they_are_and_do_only_what_their_roles_allow() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "callers.toml", &auth_file());
    let (mut child, grpc, printed) = spawn_serve_printing(
        &dir.path().join("data"),
        &["--auth-file", &file, "--aws-listen", "127.0.0.1:0"],
    );
    let aws = printed_address(&printed, "taskledger AWS JSON endpoint on http://");
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut ecs = EcsClient::new(channel.clone());

    // Not authenticated.
    let none = ecs.create_cluster(cluster("never")).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let wrong = ecs.create_cluster(bearer("not-a-token", cluster("never"))).await;
    assert_eq!(exception(wrong), "UnrecognizedClientException");

    // Authenticated, and held to the roles.
    ecs.create_cluster(bearer(OPS, cluster("default"))).await.unwrap();
    ecs.create_cluster(bearer(PROD_ONLY, cluster("prod"))).await.unwrap();
    let run = RunTaskRequest {
        task_definition: Some("web".into()),
        ..Default::default()
    };
    let denied = ecs.run_task(bearer(READER, run)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(exception::<()>(Err(denied.clone())), "AccessDeniedException");
    assert!(denied.message().contains("ecs:RunTask"), "{}", denied.message());
    let delete = DeleteClusterRequest {
        cluster: Some("default".into()),
    };
    let denied = ecs.delete_cluster(bearer(AGENT, delete)).await;
    assert_eq!(exception(denied), "AccessDeniedException");
    ecs.list_clusters(bearer(READER, ListClustersRequest::default()))
        .await
        .unwrap();
    let elsewhere = ecs.create_cluster(bearer(PROD_ONLY, cluster("staging"))).await;
    assert_eq!(exception(elsewhere), "AccessDeniedException");
    let mut ledger = LedgerClient::new(channel.clone());
    let verify = ledger.verify(bearer(OPS, VerifyRequest::default())).await;
    assert_eq!(exception(verify), "AccessDeniedException");
    ledger.verify(bearer(ADMIN, VerifyRequest::default())).await.unwrap();
    let whole_log = ledger
        .read_log(bearer(
            PROD_ONLY,
            ReadLogRequest {
                from_seq: 1,
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(exception(whole_log), "AccessDeniedException");

    // A rate of one a second with a burst of one: calls in a row are throttled.
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(ecs.list_clusters(bearer(SLOW, ListClustersRequest::default())).await);
    }
    let throttled = outcomes.into_iter().find(Result::is_err).expect("a call over the rate");
    assert_eq!(throttled.as_ref().unwrap_err().code(), Code::ResourceExhausted);
    assert_eq!(exception(throttled), "ThrottlingException");

    // AWS JSON: SigV4 with the caller's secret.
    let now = SystemTime::now();
    let body = r#"{"clusterName": "signed"}"#;
    let call = |body: &'static str, sent: &'static str, key: &'static str, secret: &'static str, time| {
        let aws = aws.clone();
        async move { signed_call(&aws, "CreateCluster", body, sent, key, secret, time).await }
    };
    assert_eq!(call(body, body, KEY_ID, SECRET, now).await, (200, String::new()));
    let refused = [
        ("a wrong secret", call(body, body, KEY_ID, "not-the-secret", now).await),
        (
            "a tampered body",
            call(body, r#"{"clusterName": "tampered"}"#, KEY_ID, SECRET, now).await,
        ),
        (
            "a stale date",
            call(body, body, KEY_ID, SECRET, now - Duration::from_secs(20 * 60)).await,
        ),
    ];
    for (what, answer) in refused {
        assert_eq!(answer, (400, "InvalidSignatureException".to_string()), "{what}");
    }
    assert_eq!(
        call(body, body, "AKIAUNKNOWN", SECRET, now).await,
        (400, "UnrecognizedClientException".to_string())
    );
    let target = format!("{TARGET_PREFIX}CreateCluster");
    let plain = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    assert_eq!(
        aws_answer(post(&aws, &plain, b"{\"clusterName\": \"unsigned\"}").await),
        (403, "MissingAuthenticationTokenException".to_string())
    );
    let as_reader = format!("Bearer {READER}");
    let with_token = [plain[0], plain[1], ("authorization", as_reader.as_str())];
    assert_eq!(
        aws_answer(post(&aws, &with_token, b"{\"clusterName\": \"by-reader\"}").await),
        (400, "AccessDeniedException".to_string())
    );

    // The CLI with --token.
    let endpoint = format!("http://{grpc}");
    let listed = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["clusters", "list", "--endpoint", &endpoint, "--token", READER])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("signed"));
    let without = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["clusters", "list", "--endpoint", &endpoint])
        .output()
        .unwrap();
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("UnrecognizedClientException"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );

    // Only what was allowed is in the log, each with its caller.
    let logged = causes(channel, READER).await;
    let expected = [
        ("CreateCluster", "ops", "token sha256:"),
        ("CreateCluster", "prod-only", "token sha256:"),
        ("CreateCluster", "aws-ops", "sigv4 AKIATASKLEDGERTEST"),
    ];
    assert_eq!(logged.len(), expected.len(), "{logged:?}");
    for ((operation, identity, principal), (want_op, want_identity, want_principal)) in logged.iter().zip(expected) {
        assert_eq!((operation.as_str(), identity.as_str()), (want_op, want_identity));
        assert!(principal.starts_with(want_principal), "{principal}");
    }
    assert_eq!(
        logged[0].2,
        format!("token sha256:{}", &hex::encode(token_hash(OPS))[..12])
    );

    // SIGHUP reads the file again: a caller taken out of it is refused from then on, and a
    // file that does not parse leaves the callers as they are.
    std::fs::write(
        &file,
        auth_file().replace("name = \"reader\"", "name = \"reader\"\nregions = [\"eu-west-1\"]"),
    )
    .unwrap();
    let hup = |pid: u32| {
        let sent = Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        assert!(sent.success());
    };
    hup(child.id());
    // The reload is asynchronous: a bound on a hang, not a timing assertion.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ecs
        .list_clusters(bearer(READER, ListClustersRequest::default()))
        .await
        .is_ok()
    {
        assert!(std::time::Instant::now() < deadline, "the new auth file was never read");
        tokio::task::yield_now().await;
    }
    let moved = ecs.list_clusters(bearer(READER, ListClustersRequest::default())).await;
    assert_eq!(exception(moved), "AccessDeniedException");
    std::fs::write(&file, "[[caller]]\nname = ").unwrap();
    hup(child.id());
    for _ in 0..20 {
        ecs.list_clusters(bearer(OPS, ListClustersRequest::default()))
            .await
            .unwrap();
    }
    assert!(child.try_wait().unwrap().is_none(), "a bad reload stopped the server");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mutual_tls_a_certificate_subject_names_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let server = server_ca.sign(&["localhost", "127.0.0.1"], false, false);
    let agent = client_ca.sign(&["agent-1"], true, false);
    let nobody = client_ca.sign(&["nobody"], true, false);
    let args = [
        ("--tls-cert", write(dir.path(), "server.pem", &server.cert)),
        ("--tls-key", write(dir.path(), "server.key", &server.key)),
        ("--tls-client-ca", write(dir.path(), "clients.pem", &client_ca.pem())),
        ("--auth-file", write(dir.path(), "callers.toml", &auth_file())),
    ];
    let flags: Vec<&str> = args.iter().flat_map(|(flag, value)| [*flag, value.as_str()]).collect();
    let (mut child, grpc, _) = spawn_serve_printing(&dir.path().join("data"), &flags);
    let ca = server_ca.pem();

    let mut as_nobody = EcsClient::new(grpc_channel(&grpc, &ca, Some(&nobody)).await.unwrap());
    let unknown = as_nobody.create_cluster(cluster("default")).await;
    assert_eq!(exception(unknown), "UnrecognizedClientException");
    // A token says who the caller is, whatever the certificate.
    as_nobody.create_cluster(bearer(OPS, cluster("default"))).await.unwrap();

    let mut as_agent = EcsClient::new(grpc_channel(&grpc, &ca, Some(&agent)).await.unwrap());
    let denied = as_agent
        .delete_cluster(DeleteClusterRequest {
            cluster: Some("default".into()),
        })
        .await;
    assert_eq!(exception(denied), "AccessDeniedException");
    as_agent
        .register_container_instance(RegisterContainerInstanceRequest::default())
        .await
        .unwrap();

    let channel = grpc_channel(&grpc, &ca, Some(&nobody)).await.unwrap();
    let logged = causes(channel, READER).await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(logged[1].0, "RegisterContainerInstance");
    assert_eq!(
        (logged[1].1.as_str(), logged[1].2.as_str()),
        ("agent", "cert CN=agent-1")
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
