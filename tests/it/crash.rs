//! Crash safety with real processes (DESIGN invariants 1 and 3): a child process appends through
//! the library from many threads and prints every acknowledged (task, version); the test kills it
//! with SIGKILL at random moments, reopens the store, and checks that every acknowledged version
//! is there and that the views agree with the log.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use taskledger::proto::v1::*;
use taskledger::store::{Caller, Store};

use crate::support::{assert_acknowledged, fargate_run, scope};

const CHILD_DIR: &str = "TASKLEDGER_CRASH_CHILD_DIR";
const KILLS: usize = 12;
const WRITERS: usize = 8;

/// Not a test of its own: the entry point of the child process that `acknowledged_writes_survive_sigkill`
/// starts (it re-runs this test binary with the environment variable set). Without it, returns.
#[test]
fn crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let store = Store::open(&dir).expect("child opens the store");
    let caller = Caller::library(scope());
    store
        .create_cluster(
            &caller,
            CreateClusterRequest {
                cluster_name: Some("crash".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let known = store.describe_task_definition(
        &scope(),
        &DescribeTaskDefinitionRequest {
            task_definition: Some("app".into()),
            include: vec![],
        },
    );
    if known.is_err() {
        store
            .register_task_definition(
                &caller,
                RegisterTaskDefinitionRequest {
                    family: Some("app".into()),
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
                },
            )
            .unwrap();
    }
    let out = Mutex::new(std::io::stdout());
    let ack = |task: &str, version: i64| {
        let mut out = out.lock().unwrap();
        writeln!(out, "ack {task} {version}").unwrap();
        out.flush().unwrap();
    };
    std::thread::scope(|threads| {
        for writer in 0..WRITERS {
            let (store, caller, ack) = (&store, &caller, &ack);
            threads.spawn(move || loop {
                let created = store
                    .run_task(caller, fargate_run("crash", "app", 1 + (writer % 3) as i32))
                    .unwrap();
                for task in &created.tasks {
                    let arn = task.task_arn.clone().unwrap();
                    ack(&arn, 1);
                    let mut version = 1;
                    for status in ["PENDING", "RUNNING", "STOPPED"] {
                        let executed = store
                            .execute(
                                caller,
                                taskledger::domain::Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
                                    cluster: Some("crash".into()),
                                    task: Some(arn.clone()),
                                    status: Some(status.into()),
                                    ..Default::default()
                                }),
                            )
                            .unwrap();
                        if executed.seqs.is_some() {
                            version += 1;
                            ack(&arn, version);
                        }
                    }
                }
            });
        }
    });
}

/// A small xorshift generator: the kill points only need to vary, and the seed is printed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill points seeded with {seed}");
    let mut random = Random(seed);
    let mut acknowledged: BTreeMap<String, i64> = BTreeMap::new();
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child_entry_point",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 1 + random.below(400);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("ack ") {
                let (task, version) = rest.split_once(' ').unwrap();
                let version: i64 = version.parse().unwrap();
                let entry = acknowledged.entry(task.to_string()).or_default();
                *entry = (*entry).max(version);
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            seen > 0,
            "round {round}: the child acknowledged nothing before it was killed"
        );

        let store = Store::open(dir.path()).unwrap();
        assert_acknowledged(&store, "crash", &acknowledged, round);
    }
    println!(
        "{KILLS} kills survived, {} acknowledged tasks checked",
        acknowledged.len()
    );
}

/// The log position covered by the newest recovery snapshot sled has written in `dir` (its file
/// is `snap.<position in hex>`), or 0 when there is none.
fn newest_snapshot(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().ok()?;
            u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

/// A clean close leaves sled nothing to replay on the next open: the store is settled (sled
/// writes its recovery snapshot only while opening), unless `settle_on_close` is off.
#[test]
fn a_clean_close_brings_sleds_recovery_snapshot_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let session = |settle_on_close: bool, cluster: &str| {
        let options = taskledger::store::StoreOptions {
            settle_on_close,
            ..Default::default()
        };
        let store = Store::open_with(dir.path(), options).unwrap();
        let opened = newest_snapshot(dir.path());
        let caller = Caller::library(scope());
        for n in 0..50 {
            let request = CreateClusterRequest {
                cluster_name: Some(format!("{cluster}-{n}")),
                ..Default::default()
            };
            store.create_cluster(&caller, request).unwrap();
        }
        drop(store);
        (opened, newest_snapshot(dir.path()))
    };
    let (opened, closed) = session(false, "unsettled");
    assert_eq!(closed, opened, "without settling, closing writes no snapshot");
    let (opened, closed) = session(true, "settled");
    assert!(
        closed > opened,
        "closing settled the store: the snapshot moved from {opened:x} to {closed:x}"
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.head_seq(), 100);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}
