//! Kill -9 under load: the real `taskledger serve` binary driven by 64 concurrent gRPC clients
//! (RunTask and agent state changes), SIGKILLed at a random moment, restarted on the same
//! directory; every acknowledged task version must be there and `verify` must be clean.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use taskledger::store::Store;

use crate::grpc_support::{fargate_definition, fargate_run};
use crate::support::assert_acknowledged;

const KILLS: usize = 6;
const CLIENTS: usize = 64;

/// Starts the server on a free loopback port; returns it and the address it printed.
fn start_server(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start taskledger serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .expect("readable stdout");
        if let Some(address) = line.strip_prefix("taskledger listening on ") {
            break address.trim().to_string();
        }
    };
    (child, address)
}

/// A pseudo-random kill point per round (seeded from the clock; printed).
fn kill_points() -> Vec<usize> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill points seeded with {x}");
    (0..KILLS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            50 + (x % 600) as usize
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_of_the_server_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged: Arc<Mutex<BTreeMap<String, i64>>> = Arc::default();
    for (round, kill_after) in kill_points().into_iter().enumerate() {
        let (mut child, address) = start_server(dir.path());
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
        let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (enough, reached) = tokio::sync::watch::channel(false);
        let enough = Arc::new(enough);
        let mut workers = Vec::new();
        for _ in 0..CLIENTS {
            let (mut client, acknowledged, acks, enough) =
                (client.clone(), acknowledged.clone(), acks.clone(), enough.clone());
            workers.push(tokio::spawn(async move {
                let ack = |arn: &str, version: i64| {
                    let mut map = acknowledged.lock().unwrap();
                    let entry = map.entry(arn.to_string()).or_default();
                    *entry = (*entry).max(version);
                    if acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= kill_after {
                        let _ = enough.send(true);
                    }
                };
                loop {
                    let Ok(run) = client.run_task(fargate_run("prod", "web", 1)).await else {
                        return;
                    };
                    let arn = run.into_inner().tasks[0].task_arn.clone().unwrap();
                    ack(&arn, 1);
                    for (version, status) in [(2, "PENDING"), (3, "RUNNING"), (4, "STOPPED")] {
                        let report = SubmitTaskStateChangeRequest {
                            cluster: Some("prod".into()),
                            task: Some(arn.clone()),
                            status: Some(status.into()),
                            ..Default::default()
                        };
                        if client.submit_task_state_change(report).await.is_err() {
                            return;
                        }
                        ack(&arn, version);
                    }
                }
            }));
        }
        let mut reached = reached;
        let _ = reached.wait_for(|done| *done).await;
        child.kill().unwrap(); // SIGKILL, mid-load
        child.wait().unwrap();
        for worker in workers {
            let _ = worker.await;
        }

        let store = Store::open(dir.path()).unwrap();
        let expected = acknowledged.lock().unwrap().clone();
        assert_acknowledged(&store, "prod", &expected, round);
    }
    println!(
        "{KILLS} kills survived, {} acknowledged tasks checked",
        acknowledged.lock().unwrap().len()
    );
}
