//! The log on etcd (`--features etcd`), against a real etcd: a store is its log alone (a new
//! server with an empty data directory folds the same views), groups larger than one etcd
//! request are split into several appends, and several servers on one prefix follow each other
//! and write one dense log (an append decided on a stale head is fenced and decided again). The rest of the suite runs on etcd with `TASKLEDGER_TEST_ENGINE=etcd`.

use taskledger::domain::Command;
use taskledger::proto::v1::*;
use taskledger::store::Store;

use crate::backend::test_etcd::EtcdProcess;
use crate::backend::Backend;
use crate::log_check::LogIndex;
use crate::support::{fargate_run, fixture_on, options, varied_workload};

#[test]
fn a_store_on_etcd_is_its_log_a_new_server_folds_the_same_views() {
    let f = fixture_on(Backend::etcd());
    varied_workload(&f);
    let entries = f.store.view_entries().unwrap();
    let head = f.store.head_seq();
    assert!(head > 10, "the workload wrote {head} records");
    let elsewhere = tempfile::tempdir().unwrap();
    let backend = f.backend.clone();
    let clock = f.clock.clone();
    drop(f.store);
    // Another machine: nothing on its disk, everything from etcd.
    let store = backend.open(elsewhere.path(), options(&clock)).unwrap();
    assert_eq!(store.head_seq(), head);
    assert_eq!(store.view_entries().unwrap(), entries);
    // A read from any seq, at the start of a stored value or inside one, starts right there.
    let whole = store.read_log(1, usize::MAX).unwrap();
    for seq in 1..=head {
        assert_eq!(store.read_log(seq, usize::MAX).unwrap(), whole[seq as usize - 1..]);
    }
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    LogIndex::read(&store, "etcd");
}

#[test]
fn groups_larger_than_one_etcd_request_are_split_and_every_command_lands() {
    let f = fixture_on(Backend::etcd());
    f.cluster("big");
    f.fargate_definition("web");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // 400 RunTasks of 10 in flight at once: ~4,000 records, several MiB, queued together so
    // the writer's groups would pass etcd's 1.5 MiB request limit if they were not split.
    let launched: usize = runtime.block_on(async {
        let calls = (0..400).map(|_| {
            let store = f.store.clone();
            let caller = f.caller.clone();
            tokio::spawn(async move {
                store
                    .execute_async(&caller, Command::RunTask(fargate_run("big", "web", 10)))
                    .await
            })
        });
        let mut launched = 0;
        for call in calls.collect::<Vec<_>>() {
            let executed = call.await.unwrap().expect("every RunTask is committed");
            launched += executed.seqs.map_or(0, |seqs| seqs.count());
        }
        launched
    });
    assert_eq!(launched, 4_000);
    let stats = f.store.stats();
    let groups = stats.groups.load(std::sync::atomic::Ordering::Relaxed);
    assert!(groups > 1, "{groups} groups");
    let report = f.store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    LogIndex::read(&f.store, "etcd");
}

/// Waits until `store` has folded the log up to `head` (it follows other servers by itself).
fn caught_up(store: &Store, head: u64) {
    let reached = store.wait_for_head(head - 1, std::time::Duration::from_secs(30));
    assert!(
        reached >= head,
        "the server follows the log only to {reached}, not {head}"
    );
}

#[test]
fn a_second_server_sees_the_first_ones_writes_and_writes_after_them() {
    let first = fixture_on(Backend::etcd());
    first.cluster("shared");
    let elsewhere = tempfile::tempdir().unwrap();
    let second: Store = first.backend.open(elsewhere.path(), options(&first.clock)).unwrap();
    // The first server writes after the second has read the log: the second follows ...
    first.cluster("from-first");
    caught_up(&second, first.store.head_seq());
    assert_eq!(second.view_entries().unwrap(), first.store.view_entries().unwrap());
    // ... and a write on it lands after the first's, and the first follows in turn.
    first.cluster("again-from-first");
    second
        .create_cluster(
            &first.caller,
            CreateClusterRequest {
                cluster_name: Some("from-second".into()),
                ..Default::default()
            },
        )
        .expect("the second server decides again after the first's append, and commits");
    caught_up(&first.store, second.head_seq());
    assert_eq!(second.view_entries().unwrap(), first.store.view_entries().unwrap());
    let names: Vec<String> = LogIndex::read(&second, "two servers")
        .records
        .iter()
        .filter_map(|record| match record.event.as_ref()?.kind.as_ref()? {
            taskledger::proto::log::event::Kind::ClusterCreated(created) => {
                created.cluster.as_ref()?.cluster_name.clone()
            }
            _ => None,
        })
        .collect();
    assert_eq!(names, ["shared", "from-first", "again-from-first", "from-second"]);
}

#[test]
fn two_servers_writing_one_log_at_once_lose_nothing_and_agree() {
    let first = fixture_on(Backend::etcd());
    first.cluster("shared");
    first.fargate_definition("web");
    let elsewhere = tempfile::tempdir().unwrap();
    let second: Store = first.backend.open(elsewhere.path(), options(&first.clock)).unwrap();
    caught_up(&second, first.store.head_seq());
    // Four clients, two on each server, each launching tasks (with a client token, so a
    // decision made again after a conflict is checked against the other server's tasks too)
    // and stopping the tasks it launched.
    let launched: Vec<(String, i64)> = std::thread::scope(|threads| {
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let store = if client % 2 == 0 {
                    first.store.clone()
                } else {
                    second.clone()
                };
                let caller = first.caller.clone();
                threads.spawn(move || {
                    let mut acknowledged = Vec::new();
                    for i in 0..20 {
                        let request = RunTaskRequest {
                            client_token: Some(format!("client-{client}-{i}")),
                            ..fargate_run("shared", "web", 2)
                        };
                        let tasks = store.run_task(&caller, request).expect("RunTask commits").tasks;
                        assert_eq!(tasks.len(), 2);
                        for task in tasks {
                            let stopped = store
                                .stop_task(
                                    &caller,
                                    StopTaskRequest {
                                        cluster: Some("shared".into()),
                                        task: task.task_arn.clone(),
                                        reason: Some("done".into()),
                                    },
                                )
                                .expect("StopTask commits")
                                .task
                                .expect("StopTask answers the task");
                            acknowledged.push((stopped.task_arn.unwrap(), stopped.version.unwrap()));
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        // Verified while both write: each server's views against the log up to its own head.
        let report = second.verify(|_, _| {}).unwrap();
        assert!(report.is_clean(), "verify while the other server writes: {report:?}");
        clients.into_iter().flat_map(|client| client.join().unwrap()).collect()
    });
    assert_eq!(launched.len(), 160);
    let conflicts = |store: &Store| store.stats().conflicts.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "groups decided again after a conflict: {} on the first server, {} on the second",
        conflicts(&first.store),
        conflicts(&second)
    );
    let head = first.store.head_seq().max(second.head_seq());
    caught_up(&first.store, head);
    caught_up(&second, head);
    assert_eq!(second.view_entries().unwrap(), first.store.view_entries().unwrap());
    // Every acknowledged version is in the one log, written once: seqs and versions dense.
    let log = LogIndex::read(&first.store, "two servers at once");
    for (arn, version) in &launched {
        assert!(
            log.version(arn, *version).is_some(),
            "{arn} version {version} is not in the log"
        );
    }
    for store in [&first.store, &second] {
        let report = store.verify(|_, _| {}).unwrap();
        assert!(report.is_clean(), "{report:?}");
    }
}

#[test]
fn with_etcd_gone_writes_fail_with_server_exception_reads_keep_serving_and_writes_resume_when_it_is_back() {
    use taskledger::domain::EcsException;
    use taskledger::store::etcd::EtcdOptions;

    let dir = tempfile::tempdir().unwrap();
    let mut etcd = EtcdProcess::start(&dir.path().join("etcd"));
    let options_for = |etcd: &EtcdProcess| EtcdOptions {
        endpoints: vec![etcd.endpoint.clone()],
        prefix: "/unreachable".into(),
        timeout: std::time::Duration::from_millis(500),
    };
    let f = fixture_on(Backend::Sled);
    let store = Store::open_etcd(dir.path().join("node"), &options_for(&etcd), options(&f.clock)).unwrap();
    let create = |store: &Store, name: &str| {
        store.create_cluster(
            &f.caller,
            CreateClusterRequest {
                cluster_name: Some(name.into()),
                ..Default::default()
            },
        )
    };
    create(&store, "before").unwrap();
    let head = store.head_seq();

    etcd.stop();
    // Not acknowledged: a ServerException once the request times out, for every write while
    // etcd is gone ...
    let failed = create(&store, "while-gone").unwrap_err();
    assert_eq!(failed.exception(), EcsException::ServerException, "{failed:?}");
    assert!(store.writable().is_err());
    let failed = create(&store, "still-gone").unwrap_err();
    assert_eq!(failed.exception(), EcsException::ServerException, "{failed:?}");
    // Reads keep serving what was durable.
    let described = store
        .describe_clusters(
            &crate::support::scope(),
            &DescribeClustersRequest {
                clusters: vec!["before".into()],
                include: vec![],
            },
        )
        .unwrap();
    assert_eq!(described.clusters.len(), 1);

    // etcd back: the same server writes again, after exactly what was acknowledged ...
    etcd.start_again();
    assert_eq!(store.writable(), Ok(()));
    create(&store, "back").unwrap();
    assert_eq!(store.head_seq(), head + 1, "nothing unacknowledged was written");
    drop(store);
    // ... and a new server folds the same log.
    let store = Store::open_etcd(dir.path().join("node-2"), &options_for(&etcd), options(&f.clock)).unwrap();
    assert_eq!(store.head_seq(), head + 1);
    create(&store, "again").unwrap();
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn members_of_a_3_member_etcd_and_its_leader_killed_and_restarted_under_load_lose_nothing_and_writes_go_on() {
    use taskledger::store::etcd::EtcdOptions;

    let dir = tempfile::tempdir().unwrap();
    let mut members = EtcdProcess::cluster(&dir.path().join("etcd"), 3);
    let etcd = EtcdOptions {
        endpoints: members.iter().map(|m| m.endpoint.clone()).collect(),
        prefix: "/members".into(),
        timeout: std::time::Duration::from_secs(2),
    };
    let clock = taskledger::store::ManualClock::new(1_700_000_000_000);
    let f = &crate::support::Fixture {
        store: Store::open_etcd(dir.path().join("node"), &etcd, options(&clock)).unwrap(),
        clock,
        caller: taskledger::store::Caller::library(crate::support::scope()),
        dir: tempfile::tempdir().unwrap(),
        backend: Backend::Sled,
    };
    f.cluster("c");
    f.fargate_definition("web");
    // One client launches tasks all along; members die and come back while its calls are in
    // flight, each step after a number of acknowledgements.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (acks, acked) = std::sync::mpsc::channel::<(String, i64)>();
    let acknowledged: Vec<(String, i64)> = std::thread::scope(|threads| {
        let client = threads.spawn(|| {
            for i in 0.. {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let request = RunTaskRequest {
                    client_token: Some(format!("token-{i}")),
                    ..fargate_run("c", "web", 2)
                };
                let tasks = f
                    .store
                    .run_task(&f.caller, request)
                    .unwrap_or_else(|e| panic!("launch {i}: {e:?}"))
                    .tasks;
                for task in tasks {
                    let _ = acks.send((task.task_arn.unwrap(), task.version.unwrap()));
                }
            }
            drop(acks);
        });
        let mut acknowledged = Vec::new();
        let wait_for = |more: usize, acknowledged: &mut Vec<(String, i64)>| {
            for _ in 0..more {
                acknowledged.push(acked.recv().expect("the client is launching"));
            }
        };
        for member in [0, 1, 2] {
            wait_for(20, &mut acknowledged);
            members[member].stop();
            wait_for(20, &mut acknowledged);
            members[member].start_again();
        }
        // And the leader, while it leads.
        wait_for(20, &mut acknowledged);
        let leader = leader_of(&members);
        members[leader].stop();
        wait_for(20, &mut acknowledged);
        members[leader].start_again();
        wait_for(20, &mut acknowledged);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        client.join().expect("every launch was acknowledged");
        acknowledged.extend(acked.iter());
        acknowledged
    });
    assert!(acknowledged.len() >= 140, "{} acknowledged", acknowledged.len());

    // A new server, from the log alone: every acknowledged version is there, once.
    let reader = tempfile::tempdir().unwrap();
    let store = Store::open_etcd(reader.path(), &etcd, options(&f.clock)).unwrap();
    assert_eq!(store.head_seq(), f.store.head_seq());
    let log = LogIndex::read(&store, "members killed");
    for (arn, version) in &acknowledged {
        assert!(log.version(arn, *version).is_some(), "{arn} version {version} is lost");
    }
    let report = store.verify(|_, _| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// Which member leads, as the members say.
fn leader_of(members: &[EtcdProcess]) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (i, member) in members.iter().enumerate() {
            let mut client = etcd_client::Client::connect([member.endpoint.clone()], None)
                .await
                .unwrap();
            let status = client.status().await.unwrap();
            if status.header().is_some_and(|h| h.member_id() == status.leader()) {
                return i;
            }
        }
        panic!("no member says it leads")
    })
}

/// The next status a health watch reports, within 30 s.
async fn next(
    statuses: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> tonic_health::pb::health_check_response::ServingStatus {
    let message = tokio::time::timeout(std::time::Duration::from_secs(30), statuses.message())
        .await
        .expect("the health status changes within 30 s");
    tonic_health::pb::health_check_response::ServingStatus::try_from(message.unwrap().unwrap().status).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_not_serving_while_etcd_is_gone_and_serving_once_it_is_back() {
    use taskledger::store::etcd::EtcdOptions;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let dir = tempfile::tempdir().unwrap();
    let mut etcd = EtcdProcess::start(&dir.path().join("etcd"));
    let etcd_options = EtcdOptions {
        endpoints: vec![etcd.endpoint.clone()],
        prefix: "/health".into(),
        timeout: std::time::Duration::from_millis(500),
    };
    let node = tempfile::tempdir().unwrap();
    let store = Store::open_etcd(node.path(), &etcd_options, Default::default()).unwrap();
    let mut server = crate::grpc_support::serve(store, node, Backend::Sled, crate::grpc_support::options()).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut statuses = health
        .watch(HealthCheckRequest {
            service: "taskledger.v1.Ecs".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut statuses).await, ServingStatus::Serving);
    server.create_cluster("before").await;

    etcd.stop();
    assert_eq!(next(&mut statuses).await, ServingStatus::NotServing);
    let refused = server
        .client
        .create_cluster(CreateClusterRequest {
            cluster_name: Some("while-gone".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(crate::grpc_support::exception(refused), "ServerException");

    etcd.start_again();
    assert_eq!(next(&mut statuses).await, ServingStatus::Serving);
    server.create_cluster("after").await;
    server.stop().await;
}

#[test]
fn the_load_generators_follow_scenario_sees_every_write_on_the_other_server() {
    use crate::grpc_support::spawn_serve;

    let backend = Backend::etcd();
    let args = backend.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, address_a) = spawn_serve(dir_a.path(), &args);
    let (mut b, address_b) = spawn_serve(dir_b.path(), &args);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger-load"))
        .args([
            "--json",
            "--endpoint",
            &format!("http://{address_a}"),
            "follow",
            "--follower",
        ])
        .arg(format!("http://{address_b}"))
        .args(["--in-flight", "1,8", "--duration-secs", "2", "--max-requests", "80"])
        .output()
        .unwrap();
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = (a.wait(), b.wait());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{report}");
    for result in results {
        assert!(result["writes"].as_u64().unwrap() > 0, "{result}");
        assert_eq!(result["unseen"], 0, "the follower missed writes: {result}");
    }
}
