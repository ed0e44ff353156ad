//! The operator's HTTP port of the real `taskledger serve --metrics-listen`: `/metrics` parses as
//! Prometheus text and its counters match a known sequence of calls over gRPC and AWS JSON (per
//! front end, operation and outcome), the log's figures agree with each other, every metric is
//! one of the catalogue's (or the process's) with help text; `/healthz` and `/readyz` answer, and
//! readiness turns false while the free-space reserve refuses writes (and back, as space is
//! freed, in `disk_full`). And `--log-format json`: one object a line, a request's lines carrying
//! its operation, request id and trace id.

use std::collections::HashMap;

use prometheus_parse::{Sample, Scrape, Value};
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::ledger_client::LedgerClient;
use taskledger::proto::v1::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::grpc_support::{exception, fargate_definition, fargate_run, spawn_serve_printing};

/// One HTTP/1.1 exchange: (status, body).
pub async fn http(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).expect("a text response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The address a server printed for one of its endpoints (`taskledger metrics on http://…`).
pub fn printed_address(printed: &[String], prefix: &str) -> String {
    printed
        .iter()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("the server did not print {prefix:?}: {printed:?}"))
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string()
}

/// `/metrics`, parsed.
pub async fn scrape(address: &str) -> Scrape {
    let (status, body) = http(address, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text format")
}

/// The value of the one sample of `metric` with these labels (0 when there is none).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(
        matching.len() <= 1,
        "several samples of {metric} {labels:?}: {matching:?}"
    );
    match matching.first().map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{metric} is not a single value: {other:?}"),
    }
}

/// Sum of every sample of `metric` (over all its labels).
fn total(scrape: &Scrape, metric: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// The `taskledger_…` and `process_…` metric names in a text (a PromQL expression, the README).
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = ["taskledger_", "process_"].iter().filter_map(|p| rest.find(p)).min() {
        let preceded = rest[..at].chars().next_back();
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        // Only whole names: not `my_taskledger_x`, not the crate path `taskledger::…`.
        if preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') || !name[..name.len() - 1].contains('_') {
            continue;
        }
        names.push(name.trim_end_matches('_').to_string());
    }
    names
}

async fn aws_call(address: &str, operation: &str, body: &str) -> u16 {
    let target = format!("{}{operation}", taskledger::api::aws::TARGET_PREFIX);
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
    ];
    http(address, "POST", "/", &headers, body).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_called_and_the_log_figures_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, grpc, printed) = spawn_serve_printing(
        dir.path(),
        &["--metrics-listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"],
    );
    let metrics = printed_address(&printed, "taskledger metrics on ");
    let aws = printed_address(&printed, "taskledger AWS JSON endpoint on ");
    let mut client = EcsClient::connect(format!("http://{grpc}")).await.unwrap();

    // gRPC: four commands that write, one refused, one read.
    let create = CreateClusterRequest {
        cluster_name: Some("m".into()),
        ..Default::default()
    };
    client.create_cluster(create).await.unwrap();
    client
        .register_task_definition(fargate_definition("web"))
        .await
        .unwrap();
    let ran = client.run_task(fargate_run("m", "web", 2)).await.unwrap().into_inner();
    assert_eq!(ran.tasks.len(), 2);
    let running = SubmitTaskStateChangeRequest {
        cluster: Some("m".into()),
        task: ran.tasks[0].task_arn.clone(),
        status: Some("RUNNING".into()),
        ..Default::default()
    };
    client.submit_task_state_change(running).await.unwrap();
    let refused = client.run_task(fargate_run("nowhere", "web", 1)).await;
    assert_eq!(exception(refused), "ClusterNotFoundException");
    let described = DescribeTasksRequest {
        cluster: Some("m".into()),
        tasks: ran.tasks.iter().filter_map(|t| t.task_arn.clone()).collect(),
        ..Default::default()
    };
    client.describe_tasks(described).await.unwrap();
    // AWS JSON: one read, one operation taskledger does not serve (its name is no label).
    assert_eq!(aws_call(&aws, "ListClusters", "{}").await, 200);
    assert_eq!(aws_call(&aws, "MadeUpOperation12345", "{}").await, 400);
    // One subscription, held open while scraping.
    let mut ledger = LedgerClient::connect(format!("http://{grpc}")).await.unwrap();
    let mut subscription = ledger
        .subscribe(SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    subscription
        .message()
        .await
        .unwrap()
        .expect("the subscription delivers");

    let scrape = scrape(&metrics).await;
    let requests = |frontend, operation, outcome| {
        value(
            &scrape,
            "taskledger_requests_total",
            &[("frontend", frontend), ("operation", operation), ("outcome", outcome)],
        )
    };
    assert_eq!(requests("grpc", "CreateCluster", "ok"), 1.0);
    assert_eq!(requests("grpc", "RegisterTaskDefinition", "ok"), 1.0);
    assert_eq!(requests("grpc", "RunTask", "ok"), 1.0);
    assert_eq!(requests("grpc", "RunTask", "ClusterNotFoundException"), 1.0);
    assert_eq!(requests("grpc", "DescribeTasks", "ok"), 1.0);
    assert_eq!(requests("aws", "ListClusters", "ok"), 1.0);
    assert_eq!(requests("aws", "unknown", "UnknownOperationException"), 1.0);
    assert_eq!(
        total(&scrape, "taskledger_requests_total"),
        8.0,
        "nothing else was counted"
    );
    assert_eq!(requests("grpc", "SubmitTaskStateChange", "ok"), 1.0);
    let timed = value(
        &scrape,
        "taskledger_request_duration_seconds_count",
        &[("frontend", "grpc"), ("operation", "RunTask")],
    );
    assert_eq!(timed, 2.0, "both RunTask calls are timed");

    // The log: two tasks created, one cluster; every event counted once, and the head agrees.
    let events = |kind| value(&scrape, "taskledger_log_events_total", &[("kind", kind)]);
    assert_eq!(events("TaskCreated"), 2.0);
    assert_eq!(events("ClusterCreated"), 1.0);
    let head = value(&scrape, "taskledger_log_head_seq", &[]);
    assert!(head >= 4.0, "head {head}");
    assert_eq!(
        total(&scrape, "taskledger_log_events_total"),
        head,
        "every event is counted once"
    );
    assert_eq!(value(&scrape, "taskledger_tasks", &[]), 2.0);
    assert_eq!(value(&scrape, "taskledger_subscribers", &[]), 1.0);
    let lag = value(&scrape, "taskledger_subscriber_lag_seqs", &[]);
    assert!((0.0..=head).contains(&lag), "lag {lag}, head {head}");
    let in_cluster = |desired| {
        value(
            &scrape,
            "taskledger_cluster_tasks",
            &[("region", "us-east-1"), ("cluster", "m"), ("desired_status", desired)],
        )
    };
    assert_eq!(in_cluster("RUNNING"), 2.0);
    assert_eq!(
        total(&scrape, "taskledger_cluster_tasks"),
        2.0,
        "no other cluster has tasks"
    );
    let active = |status| {
        value(
            &scrape,
            "taskledger_cluster_active_tasks",
            &[("region", "us-east-1"), ("cluster", "m"), ("last_status", status)],
        )
    };
    assert_eq!(active("RUNNING"), 1.0, "as DescribeClusters counts runningTasksCount");
    assert_eq!(total(&scrape, "taskledger_cluster_active_tasks"), 1.0);
    assert_eq!(value(&scrape, "taskledger_writes_refused", &[]), 0.0);
    assert!(value(&scrape, "taskledger_commit_groups_total", &[]) >= 3.0);
    assert!(value(&scrape, "taskledger_log_appended_bytes_total", &[]) > 0.0);
    assert!(value(&scrape, "taskledger_log_append_duration_seconds_count", &[]) >= 3.0);
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&scrape, "taskledger_store_disk_bytes", &[]) > 0.0);
    assert!(value(&scrape, "taskledger_disk_available_bytes", &[]) > 0.0);

    // Every metric is the catalogue's or the process's, and says what it is.
    let catalogue: HashMap<&str, &str> = taskledger::metrics::CATALOGUE
        .iter()
        .map(|(name, _, help)| (*name, *help))
        .collect();
    for sample in &scrape.samples {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| sample.metric.strip_suffix(suffix))
            .filter(|base| catalogue.contains_key(base))
            .unwrap_or(&sample.metric);
        assert!(
            catalogue.contains_key(base) || base.starts_with("process_"),
            "{base} is not in the catalogue"
        );
        assert!(scrape.docs.contains_key(base), "{base} has no help text");
    }

    // The dashboard and the README name only metrics that exist, and the README all of them.
    let rendered: Vec<&str> = scrape.docs.keys().map(String::as_str).collect();
    let exists = |name: &str| {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        catalogue.contains_key(base) || rendered.contains(&base)
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let dashboard = std::fs::read_to_string(format!("{root}/tools/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let mut named = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(
                    exists(&name),
                    "the dashboard's panel {} names {name}, which does not exist",
                    panel["title"]
                );
                named += 1;
            }
        }
    }
    assert!(named >= catalogue.len(), "the dashboard names {named} metrics");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for name in catalogue.keys() {
        assert!(readme.contains(&format!("| `{name}` |")), "README's table lacks {name}");
    }
    for name in metric_names(&readme) {
        assert!(exists(&name), "README names {name}, which does not exist");
    }

    drop(subscription);
    assert_eq!(http(&metrics, "GET", "/healthz", &[], "").await.0, 200);
    assert_eq!(http(&metrics, "GET", "/readyz", &[], "").await.0, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_while_the_free_space_reserve_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    // A reserve no disk here has: every write is refused.
    let (mut child, grpc, printed) = spawn_serve_printing(
        dir.path(),
        &["--metrics-listen", "127.0.0.1:0", "--min-free-mib", "1000000000"],
    );
    let metrics = printed_address(&printed, "taskledger metrics on ");
    let mut client = EcsClient::connect(format!("http://{grpc}")).await.unwrap();
    let create = CreateClusterRequest {
        cluster_name: Some("m".into()),
        ..Default::default()
    };
    assert_eq!(exception(client.create_cluster(create).await), "ServerException");

    let (status, body) = http(&metrics, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("reserve"), "{body}");
    assert_eq!(
        http(&metrics, "GET", "/healthz", &[], "").await.0,
        200,
        "the process is alive"
    );
    let scrape = scrape(&metrics).await;
    assert_eq!(value(&scrape, "taskledger_writes_refused", &[]), 1.0);
    assert_eq!(
        value(
            &scrape,
            "taskledger_requests_total",
            &[
                ("frontend", "grpc"),
                ("operation", "CreateCluster"),
                ("outcome", "ServerException")
            ]
        ),
        1.0
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_the_requests_operation_request_id_and_trace_id() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the server printed its address").unwrap();
        if let Some(address) = line.strip_prefix("taskledger listening on ") {
            break address.to_string();
        }
    };
    let mut client = EcsClient::connect(format!("http://{address}")).await.unwrap();
    let mut request = crate::grpc_support::with_request_id("json-logs-1", fargate_run("nowhere", "web", 1));
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let refused = client.run_task(request).await;
    assert_eq!(exception(refused), "ClusterNotFoundException");
    // SIGTERM: the server logs its shutdown and exits, so the file holds every line.
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(stderr.path()).unwrap();
    let logged: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(logged
        .iter()
        .all(|l| l["level"].is_string() && l["fields"]["message"].is_string()));
    let refusal = logged
        .iter()
        .find(|l| l["fields"]["exception"] == "ClusterNotFoundException")
        .unwrap_or_else(|| panic!("the refusal was not logged: {text}"));
    assert_eq!(refusal["span"]["request_id"], "json-logs-1", "{refusal}");
    assert_eq!(refusal["span"]["operation"], "RunTask", "{refusal}");
    #[cfg(feature = "otel")]
    assert_eq!(
        refusal["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{refusal}"
    );
    assert!(
        logged.iter().any(|l| l["fields"]["message"] == "store closed"),
        "{text}"
    );
}
