//! The crash loop: the real `taskledger serve` binary under mixed load from many gRPC clients
//! (RunTask, with and without a clientToken and its retry; the agent's PENDING/RUNNING/STOPPED
//! reports; StopTask of other clients' tasks), SIGKILLed after a random number of
//! acknowledgements, restarted on the same directory, again and again. After each kill it reads
//! the whole log and checks that every acknowledged write is there with its exact version and
//! request id, that seq and every task's versions are dense, that no refused request wrote
//! anything, and that `verify` is clean. On etcd, a second loop runs two servers on one log and
//! kills one mid-load while the other must keep acknowledging writes.
//!
//! CI runs `DEFAULT_KILLS`; the long mode takes the count from `TASKLEDGER_CRASH_KILLS`:
//! `TASKLEDGER_CRASH_KILLS=100 cargo test --release --test it crash_loop -- --nocapture`.
//! Does not kill the library in a child process (see `crash`) or inject storage faults (see
//! `faults`).

use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use taskledger::store::Store;
use tonic::transport::Channel;

use crate::backend::Backend;
use crate::grpc_support::{fargate_definition, fargate_run, spawn_serve, with_request_id as with_id};
use crate::log_check::LogIndex;

const DEFAULT_KILLS: usize = 12;
const CLIENTS: usize = 32;

/// Everything the clients were told, across every round.
#[derive(Default)]
struct Acknowledged {
    /// (request id, task ARN, version) from replies that carry a task: RunTask (new or replayed)
    /// and StopTask. The version must be in the log; if the request itself wrote records, the
    /// record of that version must carry its request id.
    versions: Vec<(String, String, i64)>,
    /// (request id, task ARN, status) of agent reports that moved the task forward (the agent
    /// is the only one moving its task's lastStatus): exactly one record, with that status.
    changes: Vec<(String, String, String)>,
    /// Request ids refused with an ECS exception: they must have written nothing.
    refused: Vec<String>,
    /// Problems a client saw that are not about durability (e.g. a replay with other tasks).
    violations: Vec<String>,
    /// Tasks launched so far, for StopTask to pick from.
    tasks: Vec<String>,
}

/// Starts the server on a free loopback port; returns it and the address it printed. It
/// checkpoints every 200 events, so kills also land while a checkpoint is being written and
/// restarts open from checkpoints.
fn start_server(backend: &Backend, dir: &std::path::Path) -> (Child, String) {
    let mut args = vec![
        "--checkpoint-events".to_string(),
        "200".into(),
        "--checkpoint-secs".into(),
        "1".into(),
    ];
    args.extend(backend.serve_args());
    spawn_serve(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// How a call ended: answered, refused with an ECS exception, or cut off by the kill.
enum Ended<T> {
    Ok(T),
    Refused,
    Gone,
}

fn ended<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Ended<T> {
    match result {
        Ok(response) => Ended::Ok(response.into_inner()),
        Err(status) => match taskledger::api::status::exception_name(&status).as_deref() {
            Some("ServerException") | None => Ended::Gone,
            Some(_) => Ended::Refused,
        },
    }
}

struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One client's loop until the server goes away. Roles by `client % 4`: 0 and 1 launch a task
/// and report its lifecycle, 2 stops tasks, 3 runs with a clientToken and retries it.
async fn client_loop(
    mut client: EcsClient<Channel>,
    client_number: usize,
    round: usize,
    seed: u64,
    shared: Arc<Mutex<Acknowledged>>,
    on_ack: impl Fn(usize),
) {
    let mut random = Xorshift(seed.wrapping_add(client_number as u64 * 0x9e37_79b9) | 1);
    let mut n = 0usize;
    let mut next_id = || {
        n += 1;
        format!("k{round}-c{client_number}-{n}")
    };
    loop {
        match client_number % 4 {
            0 | 1 => {
                let id = next_id();
                let run = match ended(client.run_task(with_id(&id, fargate_run("prod", "web", 1))).await) {
                    Ended::Ok(run) => run,
                    Ended::Refused => return shared.lock().unwrap().violations.push(format!("{id}: RunTask refused")),
                    Ended::Gone => return,
                };
                let arn = run.tasks[0].task_arn.clone().unwrap();
                {
                    let mut shared = shared.lock().unwrap();
                    shared.versions.push((id, arn.clone(), 1));
                    shared.tasks.push(arn.clone());
                }
                on_ack(1);
                for status in ["PENDING", "RUNNING", "STOPPED"] {
                    let id = next_id();
                    let report = SubmitTaskStateChangeRequest {
                        cluster: Some("prod".into()),
                        task: Some(arn.clone()),
                        status: Some(status.into()),
                        ..Default::default()
                    };
                    match ended(client.submit_task_state_change(with_id(&id, report)).await) {
                        Ended::Ok(_) => {
                            let change = (id, arn.clone(), status.to_string());
                            shared.lock().unwrap().changes.push(change);
                            on_ack(1);
                        }
                        // RUNNING after someone's StopTask is refused: the task must stop.
                        Ended::Refused => shared.lock().unwrap().refused.push(id),
                        Ended::Gone => return,
                    }
                }
            }
            2 => {
                let target = {
                    let shared = shared.lock().unwrap();
                    (!shared.tasks.is_empty())
                        .then(|| shared.tasks[random.below(shared.tasks.len() as u64) as usize].clone())
                };
                let Some(arn) = target else {
                    // Nothing to stop yet: wait for the launchers' first answer.
                    let id = next_id();
                    let probe = ListTasksRequest {
                        cluster: Some("prod".into()),
                        ..Default::default()
                    };
                    if let Ended::Gone = ended(client.list_tasks(with_id(&id, probe)).await) {
                        return;
                    }
                    continue;
                };
                let id = next_id();
                let stop = StopTaskRequest {
                    cluster: Some("prod".into()),
                    task: Some(arn.clone()),
                    reason: Some(format!("crash loop client {client_number}")),
                };
                match ended(client.stop_task(with_id(&id, stop)).await) {
                    Ended::Ok(stopped) => {
                        let version = stopped.task.and_then(|t| t.version).unwrap_or_default();
                        shared.lock().unwrap().versions.push((id, arn, version));
                        on_ack(1);
                    }
                    Ended::Refused => shared.lock().unwrap().refused.push(id),
                    Ended::Gone => return,
                }
            }
            _ => {
                let token = next_id();
                let request = RunTaskRequest {
                    client_token: Some(token.clone()),
                    ..fargate_run("prod", "web", 2)
                };
                let mut first: Option<Vec<String>> = None;
                for attempt in 0..2 {
                    let id = format!("{token}-try{attempt}");
                    match ended(client.run_task(with_id(&id, request.clone())).await) {
                        Ended::Ok(run) => {
                            let arns: Vec<String> = run.tasks.iter().map(|t| t.task_arn.clone().unwrap()).collect();
                            let mut shared = shared.lock().unwrap();
                            for task in &run.tasks {
                                let arn = task.task_arn.clone().unwrap();
                                shared
                                    .versions
                                    .push((id.clone(), arn, task.version.unwrap_or_default()));
                            }
                            if let Some(first) = &first {
                                if first != &arns {
                                    shared
                                        .violations
                                        .push(format!("{id}: the retry returned {arns:?}, not {first:?}"));
                                }
                            } else {
                                shared.tasks.extend(arns.iter().cloned());
                                first = Some(arns);
                            }
                            drop(shared);
                            on_ack(1);
                        }
                        Ended::Refused => {
                            return shared.lock().unwrap().violations.push(format!("{id}: RunTask refused"))
                        }
                        Ended::Gone => return,
                    }
                }
            }
        }
    }
}

/// Checks the restarted store against everything acknowledged so far.
fn check_after_restart(store: &Store, acknowledged: &Acknowledged, round: usize) -> usize {
    let context = format!("after kill {round}");
    assert!(
        acknowledged.violations.is_empty(),
        "{context}: {:#?}",
        acknowledged.violations
    );
    let log = LogIndex::read(store, &context);
    for (request_id, arn, version) in &acknowledged.versions {
        let at = log.version(arn, *version).unwrap_or_else(|| {
            panic!("{context}: {request_id} acknowledged {arn} at version {version}, which is lost")
        });
        if !log.seqs_of(request_id).is_empty() {
            assert_eq!(
                &at.request_id, request_id,
                "{context}: {arn} v{version} was written by another request than the one that wrote and acknowledged it"
            );
        }
    }
    for (request_id, arn, status) in &acknowledged.changes {
        let seqs = log.seqs_of(request_id);
        assert_eq!(
            seqs.len(),
            1,
            "{context}: the acknowledged report {request_id} ({arn} → {status}) wrote {seqs:?}"
        );
        let written = log.versions[arn]
            .values()
            .find(|at| at.seq == seqs[0])
            .unwrap_or_else(|| panic!("{context}: {request_id} wrote seq {} about another task", seqs[0]));
        assert_eq!(&written.last_status, status, "{context}: {request_id}");
    }
    for request_id in &acknowledged.refused {
        assert!(
            log.seqs_of(request_id).is_empty(),
            "{context}: the refused {request_id} wrote {:?}",
            log.seqs_of(request_id)
        );
    }
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{context}: views disagree with the log: {report:?}");
    log.records.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_every_acknowledged_write_survives_sigkill_under_mixed_load() {
    let kills: usize = std::env::var("TASKLEDGER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash loop: {kills} kills, {CLIENTS} clients, seeded with {seed}");
    let mut random = Xorshift(seed);
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::from_env();
    let shared: Arc<Mutex<Acknowledged>> = Arc::default();
    let mut records = 0;
    for round in 0..kills {
        let (mut child, address) = start_server(&backend, dir.path());
        let mut client = EcsClient::connect(format!("http://{address}")).await.unwrap();
        client
            .create_cluster(CreateClusterRequest {
                cluster_name: Some("prod".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if round == 0 {
            client
                .register_task_definition(fargate_definition("web"))
                .await
                .unwrap();
        }
        let kill_after = 20 + random.below(400) as usize;
        let acks = Arc::new(AtomicUsize::new(0));
        let (enough, mut reached) = tokio::sync::watch::channel(false);
        let enough = Arc::new(enough);
        let mut workers = Vec::new();
        for number in 0..CLIENTS {
            let (client, shared, acks, enough) = (client.clone(), shared.clone(), acks.clone(), enough.clone());
            workers.push(tokio::spawn(client_loop(
                client,
                number,
                round,
                seed,
                shared,
                move |n| {
                    if acks.fetch_add(n, Ordering::SeqCst) + n >= kill_after {
                        let _ = enough.send(true);
                    }
                },
            )));
        }
        let _ = reached.wait_for(|done| *done).await;
        child.kill().unwrap(); // SIGKILL, mid-load
        child.wait().unwrap();
        for worker in workers {
            worker.await.expect("a client panicked");
        }

        let store = backend.open(dir.path(), Default::default()).unwrap();
        records = check_after_restart(&store, &shared.lock().unwrap(), round);
    }
    let shared = shared.lock().unwrap();
    println!(
        "{kills} kills survived: {} acknowledged versions, {} acknowledged reports, {} refusals checked; \
         {records} log records",
        shared.versions.len(),
        shared.changes.len(),
        shared.refused.len()
    );
}

/// Two real servers on one etcd log under the same mixed load, half the clients on each: one is
/// SIGKILLed mid-load while the other keeps writing (it must make progress on its own), then
/// that one is killed too; a new server then finds every write either acknowledged, and the
/// next round restarts both on their own directories.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_servers_sigkilled_mid_load_the_other_writes_on_and_nothing_acknowledged_is_lost() {
    const ROUNDS: usize = 4;
    const AFTER_KILL: usize = 40;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("two servers, one killed: {ROUNDS} rounds, {CLIENTS} clients, seeded with {seed}");
    let mut random = Xorshift(seed);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let backend = Backend::etcd();
    let shared: Arc<Mutex<Acknowledged>> = Arc::default();
    for round in 0..ROUNDS {
        let mut servers = Vec::new();
        for dir in &dirs {
            let (child, address) = start_server(&backend, dir.path());
            servers.push((child, EcsClient::connect(format!("http://{address}")).await.unwrap()));
        }
        let mut client = servers[0].1.clone();
        client
            .create_cluster(CreateClusterRequest {
                cluster_name: Some("prod".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if round == 0 {
            client
                .register_task_definition(fargate_definition("web"))
                .await
                .unwrap();
        }
        // Acknowledgements per server, and when each side has had enough.
        let acks = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
        let limits = [
            Arc::new(AtomicUsize::new(20 + random.below(300) as usize)),
            Arc::new(AtomicUsize::new(usize::MAX)),
        ];
        let (enough_a, mut reached_a) = tokio::sync::watch::channel(false);
        let (enough_b, mut reached_b) = tokio::sync::watch::channel(false);
        let enough = [Arc::new(enough_a), Arc::new(enough_b)];
        let mut workers = Vec::new();
        for number in 0..CLIENTS {
            let side = (number / 4) % 2;
            let (acks, limit, enough) = (acks[side].clone(), limits[side].clone(), enough[side].clone());
            workers.push(tokio::spawn(client_loop(
                servers[side].1.clone(),
                number,
                round,
                seed,
                shared.clone(),
                move |n| {
                    if acks.fetch_add(n, Ordering::SeqCst) + n >= limit.load(Ordering::SeqCst) {
                        let _ = enough.send(true);
                    }
                },
            )));
        }
        let _ = reached_a.wait_for(|done| *done).await;
        servers[0].0.kill().unwrap(); // SIGKILL, mid-load
        servers[0].0.wait().unwrap();
        // The other server must go on writing on its own.
        let target = acks[1].load(Ordering::SeqCst) + AFTER_KILL;
        limits[1].store(target, Ordering::SeqCst);
        if acks[1].load(Ordering::SeqCst) >= target {
            let _ = enough[1].send(true);
        }
        tokio::time::timeout(std::time::Duration::from_secs(60), reached_b.wait_for(|done| *done))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the surviving server stopped acknowledging writes"))
            .unwrap();
        servers[1].0.kill().unwrap();
        servers[1].0.wait().unwrap();
        for worker in workers {
            worker.await.expect("a client panicked");
        }
        let elsewhere = tempfile::tempdir().unwrap();
        let store = backend.open(elsewhere.path(), Default::default()).unwrap();
        check_after_restart(&store, &shared.lock().unwrap(), round);
    }
    let shared = shared.lock().unwrap();
    println!(
        "{ROUNDS} rounds: {} acknowledged versions, {} acknowledged reports, {} refusals checked",
        shared.versions.len(),
        shared.changes.len(),
        shared.refused.len()
    );
}
