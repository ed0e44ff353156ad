//! Criterion benches of the store: group commit throughput (durable transitions per second by
//! number of concurrent submitters, which sets the group size, with and without fdatasync) and
//! the pure decide/evolve step and log codec it is built from, and the floor set by the storage
//! engine alone: sled fed batches of the size and shape a group of transitions writes.
//! Does not test correctness; see tests/it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use taskledger::domain::{decide, evolve, Command, CommandContext, IdSeed, MemoryState, Scope};
use taskledger::proto::log::{event::Kind, Cause, Event, LogRecord, TaskChanged};
use taskledger::proto::v1::*;
use taskledger::store::codec::{frame_log_record, unframe_log_record, LOG_CHUNK_BYTES};
use taskledger::store::engine::WriteBatch;
use taskledger::store::{Caller, Engine, SledEngine, SledOptions, Store, StoreOptions};

const STATUSES: [&str; 7] = [
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012").unwrap()
}

fn fargate_definition() -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: Some("web".into()),
        network_mode: Some(NetworkMode::Awsvpc as i32),
        requires_compatibilities: vec![Compatibility::Fargate as i32],
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("nginx".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn run_request(count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some("bench".into()),
        task_definition: Some("web".into()),
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

fn open(dir: &std::path::Path, sync: bool) -> (Store, Caller) {
    let store = Store::open_with(
        dir,
        StoreOptions {
            sync,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let caller = Caller::library(scope());
    store
        .create_cluster(
            &caller,
            CreateClusterRequest {
                cluster_name: Some("bench".into()),
                ..Default::default()
            },
        )
        .unwrap();
    store.register_task_definition(&caller, fargate_definition()).unwrap();
    (store, caller)
}

/// `iters` rounds of one state change from each of `submitters` threads (so one iteration is
/// `submitters` transitions), each thread walking its own tasks through the lifecycle; only the
/// transitions are timed.
fn transitions(store: &Store, caller: &Caller, submitters: usize, iters: u64) -> Duration {
    let per_thread = iters as usize;
    let tasks_per_thread = per_thread.div_ceil(STATUSES.len());
    let mut plans: Vec<Vec<String>> = Vec::new();
    for _ in 0..submitters {
        let mut arns = Vec::new();
        while arns.len() < tasks_per_thread {
            let n = (tasks_per_thread - arns.len()).min(10) as i32;
            arns.extend(
                store
                    .run_task(caller, run_request(n))
                    .unwrap()
                    .tasks
                    .into_iter()
                    .map(|t| t.task_arn.unwrap()),
            );
        }
        plans.push(arns);
    }
    let start = Instant::now();
    std::thread::scope(|threads| {
        for arns in &plans {
            threads.spawn(move || {
                let mut done = 0;
                'outer: for arn in arns {
                    for status in STATUSES {
                        if done == per_thread {
                            break 'outer;
                        }
                        let request = SubmitTaskStateChangeRequest {
                            cluster: Some("bench".into()),
                            task: Some(arn.clone()),
                            status: Some(status.into()),
                            ..Default::default()
                        };
                        store.execute(caller, Command::SubmitTaskStateChange(request)).unwrap();
                        done += 1;
                    }
                }
            });
        }
    });
    start.elapsed()
}

fn group_commit(c: &mut Criterion) {
    for sync in [true, false] {
        let mut group = c.benchmark_group(if sync {
            "transitions_fdatasync"
        } else {
            "transitions_no_sync"
        });
        group.sample_size(10).measurement_time(Duration::from_secs(4));
        for submitters in [1usize, 16, 64, 256] {
            let dir = tempfile::tempdir().unwrap();
            let (store, caller) = open(dir.path(), sync);
            group.throughput(Throughput::Elements(submitters as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(submitters),
                &submitters,
                |b, &submitters| b.iter_custom(|iters| transitions(&store, &caller, submitters, iters)),
            );
            let stats = store.stats();
            let groups = stats.groups.load(std::sync::atomic::Ordering::Relaxed).max(1);
            let events = stats.events.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "  {submitters} submitters: {:.1} events per group commit (setup included)",
                events as f64 / groups as f64
            );
        }
        group.finish();
    }
}

fn decide_evolve(c: &mut Criterion) {
    let scope = scope();
    let now = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    };
    let mut state = MemoryState::default();
    let mut n = 0u64;
    let mut apply = |state: &mut MemoryState, command: Command| {
        n += 1;
        let ctx = CommandContext {
            scope: scope.clone(),
            now,
            seed: IdSeed(n as u128),
        };
        let decision = decide(state, &ctx, &command).unwrap();
        for (i, event) in decision.events.iter().enumerate() {
            evolve(state, n * 100 + i as u64, &now, event).unwrap();
        }
        decision
    };
    apply(
        &mut state,
        Command::CreateCluster(CreateClusterRequest {
            cluster_name: Some("bench".into()),
            ..Default::default()
        }),
    );
    apply(&mut state, Command::RegisterTaskDefinition(fargate_definition()));
    let decision = apply(&mut state, Command::RunTask(run_request(1)));
    let taskledger::domain::Reply::RunTask(run) = decision.reply else {
        unreachable!()
    };
    let arn = run.tasks[0].task_arn.clone().unwrap();
    let ctx = CommandContext {
        scope: scope.clone(),
        now,
        seed: IdSeed(7),
    };

    let mut group = c.benchmark_group("domain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decide_evolve_transition", |b| {
        b.iter_batched(
            || state.clone(),
            |mut state| {
                let command = Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
                    cluster: Some("bench".into()),
                    task: Some(arn.clone()),
                    status: Some("RUNNING".into()),
                    ..Default::default()
                });
                let decision = decide(&state, &ctx, &command).unwrap();
                evolve(&mut state, 1_000_000, &now, &decision.events[0]).unwrap();
                state
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("decide_run_task_count_10", |b| {
        b.iter(|| decide(&state, &ctx, &Command::RunTask(run_request(10))).unwrap())
    });
    let record = LogRecord {
        seq: 42,
        time: Some(now),
        cause: Some(Cause {
            request_id: "6f1c2d8e-0000-4000-8000-000000000000".into(),
            operation: "SubmitTaskStateChange".into(),
            caller: "grpc 127.0.0.1:50000".into(),
            client_token: String::new(),
            group_commit: 40,
            trace_id: String::new(),
            // As the loopback default writes them (no --auth-file), so the figures stay comparable.
            identity: String::new(),
            principal: String::new(),
        }),
        event: Some(Event {
            kind: Some(Kind::TaskChanged(TaskChanged {
                task_arn: arn.clone(),
                version: 3,
                last_status: Some("RUNNING".into()),
                started_at: Some(now),
                ..Default::default()
            })),
        }),
    };
    group.bench_function("frame_and_unframe_log_record", |b| {
        b.iter(|| unframe_log_record(42, &frame_log_record(&record)).unwrap())
    });
    group.finish();
    let _ = Arc::new(());
}

/// What sled alone costs per transition: each iteration applies one batch shaped like a group of
/// `GROUP` transitions on distinct tasks, plus the cluster record and the head, with and without
/// the flush + fdatasync that acknowledges it. Two layouts: `records`, as schema 1 wrote it (a
/// ~190-byte log value per transition and a ~660-byte task record), and `chunk`, as the writer
/// writes now (the group's log records in values of `LOG_CHUNK_BYTES`, ~400-byte compact task
/// records). Nothing is
/// decided, encoded or cached: this is the ceiling the writer cannot pass through sled.
fn sled_floor(c: &mut Criterion) {
    const GROUP: u64 = 25;
    const TASKS: u64 = 30_000;
    let mut group = c.benchmark_group("sled_floor");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(GROUP));
    for (layout, chunked, task_bytes) in [("records", false, 660), ("chunk", true, 400)] {
        let dir = tempfile::tempdir().unwrap();
        let engine = SledEngine::open(dir.path(), &SledOptions::default()).unwrap();
        let task_key = |n: u64| format!("T{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128).into_bytes();
        let mut fill = WriteBatch::default();
        for n in 0..TASKS {
            fill.put(task_key(n), vec![7; task_bytes]);
        }
        engine.apply(fill).unwrap();
        let (mut seq, mut next_task) = (0u64, 0u64);
        for sync in [false, true] {
            let name = format!("{layout}_group_of_25_{}", if sync { "fdatasync" } else { "no_sync" });
            group.bench_function(name, |b| {
                b.iter(|| {
                    let mut batch = WriteBatch::default();
                    let log_key = |seq: u64| [&[b'L'][..], &seq.to_be_bytes()].concat();
                    if chunked {
                        let per_chunk = LOG_CHUNK_BYTES / 194 + 1;
                        for first in (0..GROUP as usize).step_by(per_chunk) {
                            let records = per_chunk.min(GROUP as usize - first);
                            batch.put(log_key(seq + 1 + first as u64), vec![1; 194 * records + 1]);
                        }
                    }
                    for _ in 0..GROUP {
                        seq += 1;
                        next_task = (next_task + 1) % TASKS;
                        if !chunked {
                            batch.put(log_key(seq), vec![1; 190]);
                        }
                        batch.put(task_key(next_task), vec![(seq % 251) as u8; task_bytes]);
                    }
                    batch.put(b"Cus-east-1\x00123456789012\x00bench".to_vec(), vec![3; 150]);
                    batch.put(b"Mhead_seq".to_vec(), seq.to_be_bytes().to_vec());
                    engine.apply(batch).unwrap();
                    if sync {
                        engine.sync().unwrap();
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decide_evolve, group_commit, sled_floor);
criterion_main!(benches);
