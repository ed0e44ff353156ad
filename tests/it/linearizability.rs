//! A linearizability-style check of concurrent histories over real gRPC. Many clients race on
//! the same few tasks: RunTask with one shared clientToken (so one creates and the rest replay),
//! StopTask against agent reports of PENDING, RUNNING and STOPPED (often identical and
//! concurrent), and DescribeTasks. Every invocation gets its own `x-request-id`, which the writer
//! records in each log record's `Cause`, and the test records what each call was answered, the
//! durable head just before it was invoked (`lower`) and just after it was answered (`upper`).
//!
//! The checker then claims, and fails unless, all of the following hold:
//! 1. The log is dense: seq runs 1..=head and every task's version starts at 1 and grows by
//!    exactly one (`log_check`), so versions never repeat or skip.
//! 2. Exactly-once: the records written under a request id are consecutive and appear once; a
//!    refused request (any ECS exception) wrote none; no record names a request nobody sent.
//! 3. Real time: every write's records lie in `(lower, upper]` of its call, so the log's order
//!    agrees with the real-time order of calls that did not overlap (checked pairwise as well).
//! 4. The sequential model explains every write: folding the log's prefix before a write's first
//!    record with the pure `domain::evolve` into a `MemoryState` and deciding the same command
//!    there with the pure `domain::decide` (at the record's time) yields exactly the logged
//!    events and the very reply the client got (for RunTask, whose ids are drawn from a random
//!    seed, the same number and kinds of events, and the reply's tasks are the logged ones).
//! 5. The sequential model explains every answer that wrote nothing — a no-op, a clientToken
//!    replay, a refusal: there is a prefix `p` with `lower <= p <= upper` at which `decide`
//!    gives the same reply with no events, or the same ECS exception.
//! 6. Reads are explained by a prefix too: DescribeTasks equals the pure query on the state of
//!    some prefix `p >= lower`. Reads may see a group that is applied but not yet durable
//!    (ARCHITECTURE: "reads are not isolated from the in-flight group"), so their upper bound is
//!    the final head, not the durable head at their answer.
//!
//! With several servers on one etcd log, clients are spread over them; a command's lower bound
//! is the highest head any server knows, and reads are bounded by their own server's head.
//!
//! Does not check histories where the store fails (see `faults`), nor the AWS front end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use taskledger::domain::query::describe_tasks;
use taskledger::domain::{decide, evolve, Command, CommandContext, IdSeed, MemoryState, Reply};
use taskledger::proto::log::event::Kind;
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use taskledger::store::Store;
use tokio::sync::Barrier;
use tonic::transport::Channel;

use crate::grpc_support::{fargate_definition, fargate_run, start, with_request_id as with_id};
use crate::log_check::LogIndex;
use crate::support::scope;

const ROUNDS: usize = 10;
const CLIENTS: usize = 12;
const OPS_PER_CLIENT: usize = 16;
const TASKS_PER_ROUND: i32 = 3;

// Ops are recorded once and read once; boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Invocation {
    Command(Command),
    Describe(DescribeTasksRequest),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Response {
    Reply(Reply),
    Described(DescribeTasksResponse),
    /// The ECS exception name.
    Refused(String),
}

#[derive(Debug, Clone)]
struct Op {
    request_id: String,
    invocation: Invocation,
    response: Response,
    invoked_at: Instant,
    answered_at: Instant,
    /// Durable head read just before the call.
    lower: u64,
    /// Durable head read just after the answer.
    upper: u64,
}

fn refused(status: tonic::Status) -> Response {
    let name = taskledger::api::status::exception_name(&status)
        .unwrap_or_else(|| panic!("a status without an ECS exception: {status:?}"));
    assert_ne!(name, "ServerException", "no fault was injected: {status:?}");
    Response::Refused(name)
}

/// Sends one invocation and records it with its answer and head bounds.
/// With several servers on one log, a command's lower bound is the highest head any of them
/// knows (each is at most the log's real head), while a read is bounded below only by what its
/// own server knew: reads on a server may lag another server's writes (README).
async fn invoke(
    client: &mut taskledger::proto::v1::ecs_client::EcsClient<tonic::transport::Channel>,
    store: &taskledger::store::Store,
    all: &[taskledger::store::Store],
    request_id: String,
    invocation: Invocation,
) -> Op {
    let lower = match invocation {
        Invocation::Describe(_) => store.head_seq(),
        Invocation::Command(_) => all.iter().map(|s| s.head_seq()).max().unwrap_or_default(),
    };
    let invoked_at = Instant::now();
    let response = match &invocation {
        Invocation::Command(Command::RunTask(r)) => match client.run_task(with_id(&request_id, r.clone())).await {
            Ok(ok) => Response::Reply(Reply::RunTask(ok.into_inner())),
            Err(status) => refused(status),
        },
        Invocation::Command(Command::StopTask(r)) => match client.stop_task(with_id(&request_id, r.clone())).await {
            Ok(ok) => Response::Reply(Reply::StopTask(ok.into_inner())),
            Err(status) => refused(status),
        },
        Invocation::Command(Command::SubmitTaskStateChange(r)) => {
            match client.submit_task_state_change(with_id(&request_id, r.clone())).await {
                Ok(ok) => Response::Reply(Reply::SubmitTaskStateChange(ok.into_inner())),
                Err(status) => refused(status),
            }
        }
        Invocation::Command(other) => unreachable!("the workload does not send {}", other.operation()),
        Invocation::Describe(r) => match client.describe_tasks(with_id(&request_id, r.clone())).await {
            Ok(ok) => Response::Described(ok.into_inner()),
            Err(status) => refused(status),
        },
    };
    let answered_at = Instant::now();
    let upper = store.head_seq();
    Op {
        request_id,
        invocation,
        response,
        invoked_at,
        answered_at,
        lower,
        upper,
    }
}

fn token_run(round: usize) -> RunTaskRequest {
    RunTaskRequest {
        client_token: Some(format!("race-{round}")),
        ..fargate_run("race", "web", TASKS_PER_ROUND)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_histories_are_explained_by_one_sequential_order() {
    let mut server = start().await;
    server.create_cluster("race").await;
    server
        .client
        .register_task_definition(fargate_definition("web"))
        .await
        .unwrap();
    let history = race(&[(server.client.clone(), server.store.clone())]).await;
    let stopped = server.stop().await;
    let summary = check_history(&stopped.store, &history);
    println!("{summary}");
    assert!(stopped.store.verify(|_, _| {}).unwrap().is_clean());

    // The checker has teeth: doctored histories are refused.
    let rejects = |what: &str, doctored: Vec<Op>| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_history(&stopped.store, &doctored)
        }));
        assert!(outcome.is_err(), "the checker accepted a history with {what}");
    };
    let stop_write = history
        .iter()
        .position(|op| {
            matches!(op.response, Response::Reply(Reply::StopTask(_)))
                && !LogIndex::read(&stopped.store, "doctoring")
                    .seqs_of(&op.request_id)
                    .is_empty()
        })
        .expect("some StopTask wrote");
    let mut doctored = history.clone();
    if let Response::Reply(Reply::StopTask(reply)) = &mut doctored[stop_write].response {
        let task = reply.task.as_mut().unwrap();
        task.version = Some(task.version.unwrap() + 1);
    }
    rejects("a StopTask answered with a version it never wrote", doctored);
    let mut doctored = history.clone();
    let refusal = doctored
        .iter()
        .position(|op| matches!(op.response, Response::Refused(_)))
        .expect("some call was refused");
    doctored[refusal].response = Response::Refused("ConflictException".into());
    rejects("a refusal the model never gives", doctored);
    let mut doctored = history.clone();
    doctored[stop_write].lower = stopped.store.head_seq();
    rejects("a write logged before it was invoked", doctored);
}

/// Three servers on one etcd log, the clients spread over them: every write and every answer
/// that wrote nothing is explained by one order of the log, with the real-time bounds taken
/// from all servers (no split brain: each seq written once, versions dense).
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_histories_over_three_servers_on_one_etcd_log_are_explained_by_one_order() {
    use crate::grpc_support::{options, serve};

    let backend = crate::backend::Backend::etcd();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let store = backend.open(dir.path(), Default::default()).unwrap();
        servers.push(serve(store, dir, backend.clone(), options()).await);
    }
    servers[0].create_cluster("race").await;
    servers[1]
        .client
        .register_task_definition(fargate_definition("web"))
        .await
        .unwrap();
    let clients: Vec<_> = servers.iter().map(|s| (s.client.clone(), s.store.clone())).collect();
    let history = race(&clients).await;
    drop(clients);
    let mut stopped = Vec::new();
    for server in servers {
        stopped.push(server.stop().await);
    }
    let head = stopped.iter().map(|s| s.store.head_seq()).max().unwrap();
    for server in &stopped {
        let reached = server.store.wait_for_head(head - 1, std::time::Duration::from_secs(30));
        assert_eq!(reached, head, "every server follows the log to its end");
    }
    let summary = check_history(&stopped[0].store, &history);
    println!("{summary}");
    let views = stopped[0].store.view_entries().unwrap();
    for server in &stopped {
        assert!(server.store.verify(|_, _| {}).unwrap().is_clean());
        assert_eq!(server.store.view_entries().unwrap(), views, "the servers agree");
    }
    let conflicts: u64 = stopped
        .iter()
        .map(|s| s.store.stats().conflicts.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    println!("{conflicts} groups decided again after another server appended first");
    assert!(conflicts > 0, "the servers never raced: the test proves nothing");
}

/// Every round, `CLIENTS` clients (spread over the servers) race on the round's tasks.
async fn race(servers: &[(EcsClient<Channel>, Store)]) -> Vec<Op> {
    let all: Arc<Vec<Store>> = Arc::new(servers.iter().map(|(_, store)| store.clone()).collect());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("workload seeded with {seed}");
    let mut history: Vec<Op> = Vec::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (client, store) = &servers[c % servers.len()];
            let (mut client, store, all, barrier) = (client.clone(), store.clone(), all.clone(), barrier.clone());
            let mut random = seed.wrapping_mul(31 + c as u64 * 7 + round as u64 * 1009) | 1;
            clients.push(tokio::spawn(async move {
                let mut below = |n: u64| {
                    random ^= random << 13;
                    random ^= random >> 7;
                    random ^= random << 17;
                    random % n
                };
                let mut ops = Vec::new();
                // Everyone races to launch the round's tasks with the same clientToken.
                barrier.wait().await;
                let id = |n: usize| format!("r{round}-c{c}-{n}");
                let launch = invoke(
                    &mut client,
                    &store,
                    &all,
                    id(0),
                    Invocation::Command(Command::RunTask(token_run(round))),
                )
                .await;
                let Response::Reply(Reply::RunTask(launched)) = &launch.response else {
                    panic!("the racing RunTask failed: {:?}", launch.response)
                };
                let tasks: Vec<String> = launched.tasks.iter().map(|t| t.task_arn.clone().unwrap()).collect();
                assert_eq!(tasks.len(), TASKS_PER_ROUND as usize, "{:?}", launched.failures);
                ops.push(launch);
                for n in 1..=OPS_PER_CLIENT {
                    let task = tasks[below(tasks.len() as u64) as usize].clone();
                    let invocation = match below(10) {
                        0..=2 => Invocation::Command(Command::StopTask(StopTaskRequest {
                            cluster: Some("race".into()),
                            task: Some(task),
                            reason: Some(format!("stopped by client {c}")),
                        })),
                        3..=6 => Invocation::Command(Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
                            cluster: Some("race".into()),
                            task: Some(task),
                            status: Some(["PENDING", "RUNNING", "STOPPED"][below(3) as usize].into()),
                            ..Default::default()
                        })),
                        7 => Invocation::Command(Command::RunTask(token_run(round))),
                        _ => Invocation::Describe(DescribeTasksRequest {
                            cluster: Some("race".into()),
                            tasks: vec![task],
                            include: vec![],
                        }),
                    };
                    ops.push(invoke(&mut client, &store, &all, id(n), invocation).await);
                }
                ops
            }));
        }
        for client in clients {
            history.extend(client.await.expect("a client panicked"));
        }
    }
    history
}

/// Checks `history` against the log of `store` (claims 1–6 of the module doc); returns a summary.
fn check_history(store: &taskledger::store::Store, history: &[Op]) -> String {
    let log = LogIndex::read(store, "linearizability");
    let head = log.records.len() as u64;
    let by_id: HashMap<&str, &Op> = history.iter().map(|op| (op.request_id.as_str(), op)).collect();
    assert_eq!(by_id.len(), history.len(), "request ids are unique");

    // Claim 2: exactly once, and only for requests that were answered with success.
    let mut writes: Vec<(&Op, u64, u64)> = Vec::new();
    for (request_id, seqs) in &log.by_request {
        let Some(op) = by_id.get(request_id.as_str()) else {
            // Setup (CreateCluster, RegisterTaskDefinition) ran with generated ids.
            assert!(
                seqs.iter().all(|s| *s <= 2),
                "seqs {seqs:?} name request {request_id}, which nobody sent"
            );
            continue;
        };
        let (first, last) = (seqs[0], *seqs.last().unwrap());
        assert_eq!(
            last - first + 1,
            seqs.len() as u64,
            "{request_id}: its records are not consecutive"
        );
        assert!(
            matches!(op.response, Response::Reply(_)),
            "{request_id} was answered {:?} but wrote seqs {seqs:?}",
            op.response
        );
        // Claim 3: within the call's real-time window.
        assert!(
            op.lower < first && last <= op.upper,
            "{request_id}: seqs {first}..={last} outside its window ({}, {}]",
            op.lower,
            op.upper
        );
        writes.push((op, first, last));
    }
    // Claim 3, pairwise: a write answered before another was invoked comes first in the log.
    for (a, _, a_last) in &writes {
        for (b, b_first, _) in &writes {
            if a.answered_at < b.invoked_at {
                assert!(
                    a_last < b_first,
                    "{} was answered before {} was invoked, but the log orders them the other way",
                    a.request_id,
                    b.request_id
                );
            }
        }
    }

    // Claims 4–6: walk the log, deciding each operation on the prefix that explains it.
    let first_seq_of: HashMap<&str, u64> = writes
        .iter()
        .map(|(op, first, _)| (op.request_id.as_str(), *first))
        .collect();
    let mut at_prefix: BTreeMap<u64, Vec<&Op>> = BTreeMap::new();
    let mut unexplained: Vec<&Op> = Vec::new();
    for op in history {
        match first_seq_of.get(op.request_id.as_str()) {
            Some(first) => at_prefix.entry(first - 1).or_default().push(op),
            None => unexplained.push(op),
        }
    }
    let mut state = MemoryState::default();
    let (mut no_ops, mut refusals, mut reads) = (0usize, 0usize, 0usize);
    for p in 0..=head {
        let now = if p == 0 {
            prost_types::Timestamp::default()
        } else {
            log.records[p as usize - 1].time.unwrap_or_default()
        };
        for op in at_prefix.remove(&p).unwrap_or_default() {
            explain_write(&state, &log, op, p);
        }
        unexplained.retain(|op| {
            let upper = if matches!(op.invocation, Invocation::Describe(_)) {
                head
            } else {
                op.upper
            };
            if p < op.lower || p > upper {
                return true;
            }
            if explains(&state, op, now) {
                match (&op.invocation, &op.response) {
                    (Invocation::Describe(_), _) => reads += 1,
                    (_, Response::Refused(_)) => refusals += 1,
                    _ => no_ops += 1,
                }
                false
            } else {
                true
            }
        });
        if p < head {
            let record = &log.records[p as usize];
            evolve(
                &mut state,
                record.seq,
                &record.time.unwrap_or_default(),
                record.event.as_ref().unwrap(),
            )
            .expect("the log folds");
        }
    }
    let described: Vec<String> = unexplained
        .iter()
        .take(5)
        .map(|op| {
            format!(
                "{} {:?} answered {:?} in ({}, {}]",
                op.request_id, op.invocation, op.response, op.lower, op.upper
            )
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} answers no prefix of the log explains, e.g.:\n{}",
        unexplained.len(),
        described.join("\n")
    );
    format!(
        "{} operations checked: {} writes at their log position, {no_ops} no-ops or replays, \
         {refusals} refusals, {reads} reads; {head} log records",
        history.len(),
        writes.len()
    )
}

/// Claim 4: deciding the write's command on the prefix before its first record gives the logged
/// events and the reply the client got.
fn explain_write(state: &MemoryState, log: &LogIndex, op: &Op, p: u64) {
    let Invocation::Command(command) = &op.invocation else {
        panic!("{} is a read but wrote records", op.request_id)
    };
    let Response::Reply(reply) = &op.response else {
        unreachable!("checked in claim 2")
    };
    let seqs = log.seqs_of(&op.request_id);
    let records = &log.records[p as usize..p as usize + seqs.len()];
    let ctx = CommandContext {
        scope: scope(),
        now: records[0].time.unwrap_or_default(),
        seed: IdSeed(0),
    };
    let decision = decide(state, &ctx, command)
        .unwrap_or_else(|e| panic!("{}: the model refuses what the store wrote: {e}", op.request_id));
    let logged: Vec<_> = records.iter().map(|r| r.event.clone().unwrap()).collect();
    match command {
        Command::RunTask(_) => {
            let kinds = |events: &[taskledger::proto::log::Event]| {
                events
                    .iter()
                    .map(taskledger::domain::command::event_kind_name)
                    .collect::<Vec<_>>()
            };
            assert_eq!(kinds(&decision.events), kinds(&logged), "{}", op.request_id);
            let Reply::RunTask(answer) = reply else { unreachable!() };
            let created: Vec<Task> = logged
                .iter()
                .filter_map(|e| match &e.kind {
                    Some(Kind::TaskCreated(c)) => c.task.clone(),
                    _ => None,
                })
                .collect();
            assert_eq!(
                answer.tasks, created,
                "{}: the reply is not the logged tasks",
                op.request_id
            );
        }
        _ => {
            assert_eq!(
                decision.events, logged,
                "{}: the model decides other events",
                op.request_id
            );
            if &decision.reply != reply {
                // Name every version of the tasks involved, with the request that wrote it.
                let versions: Vec<_> = log
                    .versions
                    .iter()
                    .filter(|(arn, _)| format!("{reply:?}").contains(arn.as_str()))
                    .collect();
                panic!(
                    "{}: the model answers otherwise\nmodel: {:?}\nstore: {reply:?}\nlog of the task: {versions:#?}",
                    op.request_id, decision.reply
                );
            }
        }
    }
}

/// Claims 5 and 6: the operation's answer is what the model gives on this prefix, with no events.
fn explains(state: &MemoryState, op: &Op, now: prost_types::Timestamp) -> bool {
    match (&op.invocation, &op.response) {
        (Invocation::Describe(request), Response::Described(answer)) => {
            describe_tasks(state, &scope(), request).is_ok_and(|model| &model == answer)
        }
        (Invocation::Describe(request), Response::Refused(name)) => {
            describe_tasks(state, &scope(), request).is_err_and(|e| e.exception.name() == name)
        }
        (Invocation::Command(command), response) => {
            let ctx = CommandContext {
                scope: scope(),
                now,
                seed: IdSeed(0),
            };
            match (decide(state, &ctx, command), response) {
                (Ok(decision), Response::Reply(reply)) => decision.events.is_empty() && &decision.reply == reply,
                (Err(error), Response::Refused(name)) => error.exception.name() == name,
                _ => false,
            }
        }
        (Invocation::Describe(_), Response::Reply(_)) => unreachable!("a read answered with a command reply"),
    }
}
