//! The fuzz targets' bodies, shared by the coverage-guided cargo-fuzz targets in
//! `fuzz/fuzz_targets/` and the randomized fallback harness that `cargo test` runs
//! (`tests/it/fuzz_smoke.rs` includes this file by path). Each takes arbitrary bytes and panics
//! only on a broken promise: log record decoding, export-file check and import, AWS-JSON request
//! bodies through `Operations`, and protobuf requests through the gRPC service layer. Also the
//! valid seed inputs each target starts from.
//! Does not mutate inputs or drive the loop (libFuzzer or the fallback harness does).

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use prost::Message;
use taskledger::api::{EcsService, Operations};
use taskledger::audit::export;
use taskledger::domain::{evolve, EcsException, MemoryState, Scope};
use taskledger::ecs_json::{self, WriteOptions};
use taskledger::proto::export::{export_entry, ExportEntry, Header, Record, Trailer};
use taskledger::proto::log::LogRecord;
use taskledger::proto::v1::ecs_server::Ecs;
use taskledger::proto::v1::*;
use taskledger::store::codec::{frame_log_record, log_frames, unframe_log_record, LogChunk};
use taskledger::store::{Caller, ManualClock, Store, StoreError, StoreOptions};

/// How far an input got, for a harness's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reached {
    /// Not even decodable as the target's input type.
    Undecodable,
    /// Decoded, then refused (an ECS exception, a damaged record, an event that does not apply).
    Refused,
    /// Decoded and accepted.
    Accepted,
}

/// (a) Log value decoding: the first 8 bytes are the seq the value is stored under, the rest the
/// stored bytes (one frame, a chunk of frames, or either compressed). Decoding never panics; what decodes re-frames
/// to the same record; what is refused names its seq.
pub fn log_record(data: &[u8]) -> Reached {
    if data.len() < 8 {
        return Reached::Undecodable;
    }
    let first = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let mut reached = Reached::Undecodable;
    for frame in log_frames(first, &data[8..]).list() {
        reached = match frame.and_then(|(seq, frame)| unframe_log_record(seq, frame)) {
            Ok(record) => {
                assert!(record.seq >= first);
                let again =
                    unframe_log_record(record.seq, &frame_log_record(&record)).expect("a framed record reads back");
                assert_eq!(again, record);
                Reached::Accepted
            }
            Err(refused) => {
                assert!(refused.seq >= first);
                assert!(!refused.problem.is_empty());
                assert!(refused.to_string().contains(&format!("log record {}", refused.seq)));
                return Reached::Refused;
            }
        };
    }
    reached
}

/// (b) Export-file check and import: `check` never panics; a file it accepts from seq 1 imports
/// into an empty directory (or is refused with an error), and an imported store opens and
/// verifies clean.
pub fn export_file(data: &[u8]) -> Reached {
    let Ok(summary) = export::check(data, &|_, _| {}) else {
        return Reached::Refused;
    };
    if summary.first_seq > 1 {
        return Reached::Accepted;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    if export::import(dir.path(), data, &|_, _| {}).is_ok() {
        let store = Store::open(dir.path()).expect("an imported store opens");
        assert_eq!(store.head_seq(), summary.last_seq);
        let report = store.verify(|_, _| {}).expect("an imported store verifies");
        assert!(report.is_clean(), "{report:?}");
    }
    Reached::Accepted
}

/// (b, deeper) The events of an import, past the CRCs random bytes rarely get right: `data` is a
/// sequence of length-delimited `LogRecord`s, given seqs 1, 2, …, re-wrapped into a valid export
/// file, checked, and folded with `evolve` as import's rebuild does. Nothing panics; events that
/// do not apply are refused.
pub fn export_events(data: &[u8]) -> Reached {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && records.len() < 64 {
        let Ok(mut record) = LogRecord::decode_length_delimited(&mut rest) else {
            break;
        };
        record.seq = records.len() as u64 + 1;
        records.push(record);
    }
    if records.is_empty() {
        return Reached::Undecodable;
    }
    let file = export_file_of(&records);
    let Ok(summary) = export::check(file.as_slice(), &|_, _| {}) else {
        return Reached::Refused;
    };
    assert_eq!(summary.count, records.len() as u64);
    let mut state = MemoryState::default();
    for record in &records {
        let Some(event) = &record.event else {
            return Reached::Refused;
        };
        if evolve(&mut state, record.seq, &record.time.unwrap_or_default(), event).is_err() {
            return Reached::Refused;
        }
    }
    Reached::Accepted
}

/// A well-formed export file holding `records`.
pub fn export_file_of(records: &[LogRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |kind| out.extend(ExportEntry { kind: Some(kind) }.encode_length_delimited_to_vec());
    let (first_seq, last_seq) = match (records.first(), records.last()) {
        (Some(first), Some(last)) => (first.seq, last.seq),
        _ => (0, 0),
    };
    push(export_entry::Kind::Header(Header {
        magic: "taskledger-export".into(),
        format_version: 1,
        log_format_version: 1,
        first_seq,
        last_seq,
        source_head: last_seq,
    }));
    for record in records {
        let bytes = record.encode_to_vec();
        push(export_entry::Kind::Record(Record {
            seq: record.seq,
            crc32c: crc32c(&bytes),
            log_record: bytes,
        }));
    }
    push(export_entry::Kind::Trailer(Trailer {
        count: records.len() as u64,
        last_seq,
    }));
    out
}

/// CRC32C (Castagnoli), bit by bit: the fuzz crate needs no checksum dependency of its own.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A store with a little of everything for requests to hit: cluster `prod`, Fargate family
/// `web`, EC2 family `worker`, an instance, and a task. Not fsynced (fuzzing checks decisions,
/// not durability).
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub store: Store,
    pub operations: Operations,
    pub service: EcsService,
    pub caller: Caller,
    pub task_arn: String,
    pub instance_arn: String,
    _dir: tempfile::TempDir,
}

pub fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012").expect("a valid scope")
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StoreOptions {
            sync: false,
            clock: std::sync::Arc::new(ManualClock::new(1_700_000_000_000)),
            id_seed: Some(7),
            ..StoreOptions::default()
        };
        let store = Store::open_with(dir.path(), options).expect("open the store");
        let caller = Caller::library(scope());
        store
            .create_cluster(
                &caller,
                CreateClusterRequest {
                    cluster_name: Some("prod".into()),
                    ..Default::default()
                },
            )
            .expect("create cluster");
        for (family, fargate) in [("web", true), ("worker", false)] {
            let request = RegisterTaskDefinitionRequest {
                family: Some(family.into()),
                network_mode: fargate.then_some(NetworkMode::Awsvpc as i32),
                requires_compatibilities: if fargate {
                    vec![Compatibility::Fargate as i32]
                } else {
                    vec![]
                },
                cpu: fargate.then(|| "256".into()),
                memory: fargate.then(|| "512".into()),
                container_definitions: vec![ContainerDefinition {
                    name: Some("app".into()),
                    image: Some("nginx:1.25".into()),
                    memory: (!fargate).then_some(128),
                    ..Default::default()
                }],
                ..Default::default()
            };
            store.register_task_definition(&caller, request).expect("register");
        }
        let instance_arn = store
            .register_container_instance(
                &caller,
                RegisterContainerInstanceRequest {
                    cluster: Some("prod".into()),
                    ..Default::default()
                },
            )
            .expect("register instance")
            .container_instance
            .and_then(|ci| ci.container_instance_arn)
            .expect("an instance ARN");
        let task_arn = store
            .run_task(&caller, fargate_run())
            .expect("run task")
            .tasks
            .remove(0)
            .task_arn
            .expect("a task ARN");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        World {
            runtime,
            operations: Operations::new(store.clone()),
            service: EcsService::new(store.clone(), scope(), Duration::from_secs(30)),
            store,
            caller,
            task_arn,
            instance_arn,
            _dir: dir,
        }
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

fn fargate_run() -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some("prod".into()),
        task_definition: Some("web".into()),
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

type Run<T> = Pin<Box<dyn Future<Output = T>>>;

/// Runs one decoded request and checks the promise: a refusal is an ECS exception other than
/// ServerException, and it leaves the head where it was.
fn run_checked(world: &World, what: &str, run: Run<Result<(), (EcsException, String)>>) -> Reached {
    let head = world.store.head_seq();
    match world.runtime.block_on(run) {
        Ok(()) => Reached::Accepted,
        Err((exception, message)) => {
            assert_ne!(exception, EcsException::ServerException, "{what}: {message}");
            assert!(!message.is_empty(), "{what}: an empty message");
            assert_eq!(world.store.head_seq(), head, "{what}: a refused request moved the head");
            Reached::Refused
        }
    }
}

fn store_refusal(error: StoreError) -> (EcsException, String) {
    (error.exception(), error.to_string())
}

fn status_refusal(status: tonic::Status) -> (EcsException, String) {
    let name = taskledger::api::status::exception_name(&status);
    let exception = match name.as_deref() {
        Some("ServerException") | None => EcsException::ServerException,
        Some(_) => EcsException::InvalidParameterException,
    };
    (exception, format!("{:?}: {}", status.code(), status.message()))
}

/// (c) An AWS-JSON body for one operation: decoding never panics, what decodes re-encodes to
/// the same message, and the operation through `Operations` keeps the promise of `run_checked`.
fn json_case<M>(
    world: &World,
    body: &[u8],
    run: impl FnOnce(Operations, Caller, M) -> Run<Result<(), StoreError>>,
) -> Reached
where
    M: Message + prost::Name + Default + PartialEq + Clone + 'static,
{
    let Ok(request) = ecs_json::from_slice::<M>(body) else {
        return Reached::Undecodable;
    };
    let written = ecs_json::to_value(&request, &WriteOptions::default());
    let again: M = ecs_json::from_value(&written).expect("ecs_json reads what it writes");
    assert!(again == request, "ecs_json round trip changed {}: {written}", M::NAME);
    let future = run(world.operations.clone(), world.caller.clone(), request);
    run_checked(
        world,
        M::NAME,
        Box::pin(async move { future.await.map_err(store_refusal) }),
    )
}

/// (d) Protobuf bytes for one operation: decoding never panics, and the request through the
/// tonic service layer keeps the promise of `run_checked`.
fn protobuf_case<M>(
    world: &World,
    bytes: &[u8],
    run: impl FnOnce(EcsService, M) -> Run<Result<(), tonic::Status>>,
) -> Reached
where
    M: Message + prost::Name + Default + 'static,
{
    let Ok(request) = M::decode(bytes) else {
        return Reached::Undecodable;
    };
    let future = run(world.service.clone(), request);
    run_checked(
        world,
        M::NAME,
        Box::pin(async move { future.await.map_err(status_refusal) }),
    )
}

macro_rules! operations {
    ($($index:literal => $request:ident . $method:ident;)*) => {
        /// How many operations the first input byte chooses from.
        pub const OPERATIONS: usize = [$($index),*].len();

        /// (c) The first byte picks one of the 23 operations, the rest is its AWS-JSON body.
        pub fn aws_json(world: &World, data: &[u8]) -> Reached {
            let Some((choice, body)) = data.split_first() else { return Reached::Undecodable };
            match *choice as usize % OPERATIONS {
                $($index => json_case::<$request>(world, body, |operations, caller, request| {
                    Box::pin(async move { operations.$method(&caller, request).await.map(|_| ()) })
                }),)*
                _ => unreachable!("the choice is reduced modulo OPERATIONS"),
            }
        }

        /// (d) The first byte picks one of the 23 operations, the rest is its protobuf request.
        pub fn protobuf(world: &World, data: &[u8]) -> Reached {
            let Some((choice, bytes)) = data.split_first() else { return Reached::Undecodable };
            match *choice as usize % OPERATIONS {
                $($index => protobuf_case::<$request>(world, bytes, |service, request| {
                    Box::pin(async move { service.$method(tonic::Request::new(request)).await.map(|_| ()) })
                }),)*
                _ => unreachable!("the choice is reduced modulo OPERATIONS"),
            }
        }

        /// Valid requests, one or more per operation, as (operation index, request) pairs
        /// rendered by `render`.
        fn seed_requests(world: &World, render: &mut dyn FnMut(u8, &dyn Renderable)) {
            $(for request in <$request as Sample>::samples(world) {
                render($index, &request);
            })*
        }
    };
}

operations! {
    0 => RunTaskRequest.run_task;
    1 => StartTaskRequest.start_task;
    2 => DescribeTasksRequest.describe_tasks;
    3 => StopTaskRequest.stop_task;
    4 => ListTasksRequest.list_tasks;
    5 => SubmitTaskStateChangeRequest.submit_task_state_change;
    6 => SubmitContainerStateChangeRequest.submit_container_state_change;
    7 => RegisterTaskDefinitionRequest.register_task_definition;
    8 => DescribeTaskDefinitionRequest.describe_task_definition;
    9 => DeregisterTaskDefinitionRequest.deregister_task_definition;
    10 => ListTaskDefinitionsRequest.list_task_definitions;
    11 => ListTaskDefinitionFamiliesRequest.list_task_definition_families;
    12 => CreateClusterRequest.create_cluster;
    13 => DescribeClustersRequest.describe_clusters;
    14 => ListClustersRequest.list_clusters;
    15 => DeleteClusterRequest.delete_cluster;
    16 => RegisterContainerInstanceRequest.register_container_instance;
    17 => DeregisterContainerInstanceRequest.deregister_container_instance;
    18 => DescribeContainerInstancesRequest.describe_container_instances;
    19 => ListContainerInstancesRequest.list_container_instances;
    20 => TagResourceRequest.tag_resource;
    21 => UntagResourceRequest.untag_resource;
    22 => ListTagsForResourceRequest.list_tags_for_resource;
}

/// A request that can be written as ECS JSON or protobuf.
pub trait Renderable {
    fn json(&self) -> Vec<u8>;
    fn protobuf(&self) -> Vec<u8>;
}

impl<M: Message + prost::Name> Renderable for M {
    fn json(&self) -> Vec<u8> {
        ecs_json::to_string(self).into_bytes()
    }
    fn protobuf(&self) -> Vec<u8> {
        self.encode_to_vec()
    }
}

/// Valid requests of one type against a `World`.
trait Sample: Sized {
    fn samples(world: &World) -> Vec<Self>;
}

macro_rules! samples {
    ($($request:ident => |$world:ident| $body:expr;)*) => {
        $(impl Sample for $request {
            fn samples($world: &World) -> Vec<Self> {
                $body
            }
        })*
    };
}

samples! {
    RunTaskRequest => |_w| vec![
        fargate_run(),
        RunTaskRequest { client_token: Some("token-1".into()), count: Some(2), tags: vec![tag("team", "blue")], ..fargate_run() },
        RunTaskRequest { cluster: Some("prod".into()), task_definition: Some("worker:1".into()), placement_strategy: vec![PlacementStrategy { r#type: Some(PlacementStrategyType::Binpack as i32), field: Some("memory".into()) }], ..Default::default() },
    ];
    StartTaskRequest => |w| vec![StartTaskRequest { cluster: Some("prod".into()), task_definition: Some("worker".into()), container_instances: vec![w.instance_arn.clone()], started_by: Some("fuzz".into()), ..Default::default() }];
    DescribeTasksRequest => |w| vec![DescribeTasksRequest { cluster: Some("prod".into()), tasks: vec![w.task_arn.clone(), "0123456789abcdef0123456789abcdef".into()], include: vec![TaskField::Tags as i32] }];
    StopTaskRequest => |w| vec![StopTaskRequest { cluster: Some("prod".into()), task: Some(w.task_arn.clone()), reason: Some("done".into()) }];
    ListTasksRequest => |w| vec![
        ListTasksRequest { cluster: Some("prod".into()), family: Some("web".into()), max_results: Some(10), ..Default::default() },
        ListTasksRequest { cluster: Some("prod".into()), container_instance: Some(w.instance_arn.clone()), desired_status: Some(DesiredStatus::Stopped as i32), ..Default::default() },
    ];
    SubmitTaskStateChangeRequest => |w| vec![SubmitTaskStateChangeRequest {
        cluster: Some("prod".into()),
        task: Some(w.task_arn.clone()),
        status: Some("RUNNING".into()),
        containers: vec![ContainerStateChange { container_name: Some("app".into()), status: Some("RUNNING".into()), exit_code: Some(0), ..Default::default() }],
        pull_started_at: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 500_000_000 }),
        ..Default::default()
    }];
    SubmitContainerStateChangeRequest => |w| vec![SubmitContainerStateChangeRequest {
        cluster: Some("prod".into()),
        task: Some(w.task_arn.clone()),
        container_name: Some("app".into()),
        status: Some("STOPPED".into()),
        exit_code: Some(137),
        network_bindings: vec![NetworkBinding { container_port: Some(80), host_port: Some(8080), ..Default::default() }],
        ..Default::default()
    }];
    RegisterTaskDefinitionRequest => |_w| vec![RegisterTaskDefinitionRequest {
        family: Some("fuzzed".into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            memory: Some(64),
            port_mappings: vec![PortMapping { container_port: Some(80), host_port: Some(0), ..Default::default() }],
            environment: vec![KeyValuePair { name: Some("A".into()), value: Some("b".into()) }],
            ..Default::default()
        }],
        tags: vec![tag("k", "v")],
        ..Default::default()
    }];
    DescribeTaskDefinitionRequest => |_w| vec![DescribeTaskDefinitionRequest { task_definition: Some("web:1".into()), include: vec![TaskDefinitionField::Tags as i32] }];
    DeregisterTaskDefinitionRequest => |_w| vec![DeregisterTaskDefinitionRequest { task_definition: Some("worker:1".into()) }];
    ListTaskDefinitionsRequest => |_w| vec![ListTaskDefinitionsRequest { family_prefix: Some("web".into()), sort: Some(SortOrder::Desc as i32), max_results: Some(1), ..Default::default() }];
    ListTaskDefinitionFamiliesRequest => |_w| vec![ListTaskDefinitionFamiliesRequest { family_prefix: Some("w".into()), status: Some(TaskDefinitionFamilyStatus::All as i32), ..Default::default() }];
    CreateClusterRequest => |_w| vec![CreateClusterRequest { cluster_name: Some("fuzz".into()), tags: vec![tag("a", "b")], settings: vec![ClusterSetting { name: Some(ClusterSettingName::ContainerInsights as i32), value: Some("enabled".into()) }], ..Default::default() }];
    DescribeClustersRequest => |_w| vec![DescribeClustersRequest { clusters: vec!["prod".into(), "ghost".into()], include: vec![ClusterField::Tags as i32, ClusterField::Statistics as i32] }];
    ListClustersRequest => |_w| vec![ListClustersRequest { max_results: Some(5), ..Default::default() }];
    DeleteClusterRequest => |_w| vec![DeleteClusterRequest { cluster: Some("fuzz".into()) }];
    RegisterContainerInstanceRequest => |_w| vec![RegisterContainerInstanceRequest {
        cluster: Some("prod".into()),
        attributes: vec![Attribute { name: Some("ecs.os-type".into()), value: Some("linux".into()), ..Default::default() }],
        total_resources: vec![Resource { name: Some("CPU".into()), r#type: Some("INTEGER".into()), integer_value: Some(2048), ..Default::default() }],
        ..Default::default()
    }];
    DeregisterContainerInstanceRequest => |w| vec![DeregisterContainerInstanceRequest { cluster: Some("prod".into()), container_instance: Some(w.instance_arn.clone()), force: Some(true) }];
    DescribeContainerInstancesRequest => |w| vec![DescribeContainerInstancesRequest { cluster: Some("prod".into()), container_instances: vec![w.instance_arn.clone()], include: vec![ContainerInstanceField::Tags as i32] }];
    ListContainerInstancesRequest => |_w| vec![ListContainerInstancesRequest { cluster: Some("prod".into()), filter: Some("attribute:ecs.os-type == linux".into()), ..Default::default() }];
    TagResourceRequest => |w| vec![TagResourceRequest { resource_arn: Some(w.task_arn.clone()), tags: vec![tag("k", "v")] }];
    UntagResourceRequest => |w| vec![UntagResourceRequest { resource_arn: Some(w.task_arn.clone()), tag_keys: vec!["k".into()] }];
    ListTagsForResourceRequest => |_w| vec![ListTagsForResourceRequest { resource_arn: Some(scope().cluster_arn("prod")) }];
}

fn tag(key: &str, value: &str) -> Tag {
    Tag {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

/// The fuzz targets by name.
pub const TARGETS: [&str; 5] = ["log_record", "export_file", "export_events", "aws_json", "protobuf"];

/// Valid inputs for `target` (a name of `TARGETS`), built from a real store's log and requests.
pub fn seeds(world: &World, target: &str) -> Vec<Vec<u8>> {
    let log = world.store.read_log(1, usize::MAX).expect("the world's log reads");
    match target {
        "log_record" => {
            let mut inputs: Vec<Vec<u8>> = log
                .iter()
                .map(|record| {
                    let mut input = record.seq.to_le_bytes().to_vec();
                    input.extend(frame_log_record(record));
                    input
                })
                .collect();
            // A chunk of the first three records, as a group commit stores them.
            let mut chunk = LogChunk::default();
            log.iter().take(3).for_each(|record| chunk.push(record));
            let mut input = log[0].seq.to_le_bytes().to_vec();
            input.extend(chunk.finish());
            inputs.push(input);
            inputs
        }
        "export_file" => vec![export_file_of(&log), export_file_of(&log[..2]), export_file_of(&[])],
        "export_events" => vec![
            log.iter().flat_map(|r| r.encode_length_delimited_to_vec()).collect(),
            log[..3]
                .iter()
                .flat_map(|r| r.encode_length_delimited_to_vec())
                .collect(),
        ],
        "aws_json" | "protobuf" => {
            let mut seeds = Vec::new();
            seed_requests(world, &mut |index, request| {
                let mut input = vec![index];
                input.extend(if target == "aws_json" {
                    request.json()
                } else {
                    request.protobuf()
                });
                seeds.push(input);
            });
            seeds
        }
        other => panic!("no fuzz target named {other}"),
    }
}

/// Runs `target` on one input (creating nothing: `world` is shared).
pub fn run(world: &World, target: &str, data: &[u8]) -> Reached {
    match target {
        "log_record" => log_record(data),
        "export_file" => export_file(data),
        "export_events" => export_events(data),
        "aws_json" => aws_json(world, data),
        "protobuf" => protobuf(world, data),
        other => panic!("no fuzz target named {other}"),
    }
}
