//! Fixtures for the gRPC tests: a real server on 127.0.0.1:0 over a store in a temp dir, which
//! stops itself (shutdown future via oneshot) when the test stops it or drops it; a client; and
//! helpers to read the ECS exception out of a status and to poll without sleeping; and the real
//! `taskledger serve` binary in a child process, for the tests that kill or starve it.
//! Does not share anything with `support.rs` (library-level fixtures).

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use taskledger::api::{serve_with_listener, status, AgentOptions, ServeOptions, REGION_HEADER};
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use taskledger::store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub struct Server {
    pub store: Store,
    pub client: EcsClient<Channel>,
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), taskledger::api::server::ServeError>>>,
    dir: Option<tempfile::TempDir>,
    /// The engine under the store (`TASKLEDGER_TEST_ENGINE`).
    pub backend: crate::backend::Backend,
}

/// What is left of a server after it stopped: its store (still open) and directory.
pub struct Stopped {
    pub store: Store,
    pub dir: tempfile::TempDir,
    pub backend: crate::backend::Backend,
}

/// Default options: short agent steps when the agent is on.
pub fn options() -> ServeOptions {
    ServeOptions::default()
}

pub fn with_agent() -> ServeOptions {
    ServeOptions {
        simulate_agent: Some(AgentOptions {
            step_delay: Duration::from_millis(20),
        }),
        ..options()
    }
}

pub async fn start() -> Server {
    start_with(options()).await
}

pub async fn start_with(options: ServeOptions) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = crate::backend::Backend::from_env();
    let store = backend
        .open(dir.path(), taskledger::store::StoreOptions::default())
        .expect("open store");
    serve(store, dir, backend, options).await
}

/// Serves `store` (whose directory is `dir`) until stopped.
pub async fn serve(
    store: Store,
    dir: tempfile::TempDir,
    backend: crate::backend::Backend,
    options: ServeOptions,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with_listener(store.clone(), listener, options, async {
        let _ = stopped.await;
    }));
    let endpoint = format!("http://{address}");
    let client = EcsClient::connect(endpoint.clone())
        .await
        .expect("connect to the test server");
    Server {
        store,
        client,
        endpoint,
        stop: Some(stop),
        task: Some(task),
        backend,
        dir: Some(dir),
    }
}

impl Server {
    /// Stops the server gracefully and waits until it returned.
    pub async fn stop(mut self) -> Stopped {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("a server is stopped once");
        task.await
            .expect("the server task does not panic")
            .expect("the server stops cleanly");
        Stopped {
            store: self.store.clone(),
            dir: self.dir.take().expect("the dir lives until the server stops"),
            backend: self.backend.clone(),
        }
    }

    /// A new connection, for clients of the other services (health, reflection).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint.clone())
            .expect("valid endpoint")
            .connect()
            .await
            .expect("connect")
    }

    pub fn head(&self) -> u64 {
        self.store.head_seq()
    }

    pub async fn create_cluster(&mut self, name: &str) -> Cluster {
        let request = CreateClusterRequest {
            cluster_name: Some(name.into()),
            ..Default::default()
        };
        self.client
            .create_cluster(request)
            .await
            .expect("CreateCluster")
            .into_inner()
            .cluster
            .expect("cluster")
    }

    pub async fn register_fargate(&mut self, family: &str) -> TaskDefinition {
        self.client
            .register_task_definition(fargate_definition(family))
            .await
            .expect("RegisterTaskDefinition")
            .into_inner()
            .task_definition
            .expect("task definition")
    }

    pub async fn register_ec2(&mut self, family: &str) -> TaskDefinition {
        self.client
            .register_task_definition(ec2_definition(family))
            .await
            .expect("RegisterTaskDefinition")
            .into_inner()
            .task_definition
            .expect("task definition")
    }

    pub async fn run_fargate(&mut self, cluster: &str, family: &str, count: i32) -> Vec<Task> {
        let response = self
            .client
            .run_task(fargate_run(cluster, family, count))
            .await
            .expect("RunTask")
            .into_inner();
        assert!(response.failures.is_empty(), "{:?}", response.failures);
        response.tasks
    }

    pub async fn describe_task(&mut self, cluster: &str, task_arn: &str) -> Task {
        let request = DescribeTasksRequest {
            cluster: Some(cluster.into()),
            tasks: vec![task_arn.into()],
            include: vec![],
        };
        let response = self
            .client
            .describe_tasks(request)
            .await
            .expect("DescribeTasks")
            .into_inner();
        assert!(response.failures.is_empty(), "{:?}", response.failures);
        response.tasks.into_iter().next().expect("one task")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn fargate_definition(family: &str) -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: Some(family.into()),
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

pub fn ec2_definition(family: &str) -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: Some(family.into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            cpu: Some(128),
            memory: Some(128),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn fargate_run(cluster: &str, family: &str, count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some(cluster.into()),
        task_definition: Some(family.into()),
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

/// The ECS exception name of a failed call (from `ErrorInfo.reason`).
pub fn exception<T: std::fmt::Debug>(result: Result<T, Status>) -> String {
    let status = result.expect_err("the call should fail");
    status::exception_name(&status).unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
}

/// A request that names its region in metadata.
pub fn in_region<T>(region: &str, body: T) -> Request<T> {
    let mut request = Request::new(body);
    request
        .metadata_mut()
        .insert(REGION_HEADER, region.parse().expect("ASCII region"));
    request
}

/// Polls `check` every few milliseconds until it yields a value; fails after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let wait = async {
        loop {
            tick.tick().await;
            if let Some(value) = check().await {
                return value;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Starts `taskledger serve` on a free loopback port over `dir` (plus `extra` flags); returns the
/// child and the address it printed.
pub fn spawn_serve(dir: &Path, extra: &[&str]) -> (Child, String) {
    let (child, address, _) = spawn_serve_printing(dir, extra);
    (child, address)
}

/// `spawn_serve`, also giving the lines the server printed before its gRPC address (the AWS
/// and metrics endpoints' addresses).
pub fn spawn_serve_printing(dir: &Path, extra: &[&str]) -> (Child, String, Vec<String>) {
    let mut printed = Vec::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start taskledger serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(address) = line.strip_prefix("taskledger listening on ") {
                    break address.trim().to_string();
                }
                printed.push(line);
            }
            _ => panic!("the server exited without printing its address: {:?}", child.wait()),
        }
    };
    (child, address, printed)
}

/// A request carrying `request_id` in `x-request-id`, which the log records in its cause.
pub fn with_request_id<T>(request_id: &str, body: T) -> Request<T> {
    let mut request = Request::new(body);
    request.metadata_mut().insert(
        taskledger::api::REQUEST_ID_HEADER,
        request_id.parse().expect("ASCII request id"),
    );
    request
}

/// The first page of a server's log (ReadLog from seq 1) over `channel`.
pub async fn first_log_page(channel: Channel) -> Vec<LogEntry> {
    let request = ReadLogRequest {
        from_seq: 1,
        ..Default::default()
    };
    let mut ledger = taskledger::proto::v1::ledger_client::LedgerClient::new(channel);
    ledger.read_log(request).await.expect("ReadLog").into_inner().records
}
