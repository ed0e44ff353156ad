//! Disk full: the real `taskledger serve` binary with its data directory on a 12 MiB tmpfs that
//! the test mounts (it needs root; otherwise it prints why and returns). Clients write until the
//! disk is full; then writes must fail with `ServerException` and a message that says what
//! happened, reads must keep working and nothing acknowledged may be lost. Once the tmpfs is
//! grown, the server is restarted (a store refuses writes after a failed write until it is
//! reopened), writes resume, and `taskledger verify` is clean. The tmpfs is always unmounted.
//! Does not simulate other I/O errors (see `faults`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::*;
use taskledger::store::Store;
use tonic::transport::Channel;
use tonic::Code;

use crate::grpc_support::{fargate_definition, fargate_run};
use crate::log_check::LogIndex;

/// Unmounts the tmpfs when dropped, even when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.0).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Something still holds it open: detach it now, the kernel frees it when released.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Kills the server when dropped, so a failing test leaves no process holding the mount.
struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
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
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(address) = line.strip_prefix("taskledger listening on ") {
                        break address.trim().to_string();
                    }
                }
                _ => panic!("the server exited without printing its address: {:?}", child.wait()),
            }
        };
        Server { child, address }
    }

    async fn client(&self) -> EcsClient<Channel> {
        EcsClient::connect(format!("http://{}", self.address))
            .await
            .expect("connect to the server")
    }

    /// SIGTERM, then waits: the server shuts down gracefully and exits 0.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(signalled.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server exited with {status}");
    }
}

/// Why the test cannot run here, if it cannot.
fn mount_small_tmpfs(at: &Path) -> Result<Mounted, String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("`id -u` failed: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not running as root, so no tmpfs can be mounted".into());
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("mount could not run: {e}"))?;
    if !mounted.status.success() {
        return Err(format!(
            "mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&mounted.stderr).trim()
        ));
    }
    Ok(Mounted(at.to_path_buf()))
}

/// A task definition of about 60 KiB (ECS allows 64 KiB), so the disk fills in a few hundred writes.
fn bulky_definition(family: &str, n: usize) -> RegisterTaskDefinitionRequest {
    let mut request = fargate_definition(family);
    request.container_definitions[0].environment = (0..200)
        .map(|i| KeyValuePair {
            name: Some(format!("VAR_{n}_{i}")),
            value: Some(format!("{n:08}-{}", "x".repeat(260))),
        })
        .collect();
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_with_server_exception_and_loses_nothing_acknowledged() {
    let mount_point = tempfile::tempdir().unwrap();
    let mounted = match mount_small_tmpfs(mount_point.path()) {
        Ok(mounted) => mounted,
        Err(reason) => {
            println!("disk_full skipped: {reason}");
            return;
        }
    };
    let data = mounted.0.join("data");
    let server = Server::start(&data);
    let mut client = server.client().await;
    client
        .create_cluster(CreateClusterRequest {
            cluster_name: Some("prod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .register_task_definition(fargate_definition("web"))
        .await
        .unwrap();

    // Fill the disk: bulky task definitions and tasks until a write fails.
    let mut revisions = 0u32;
    let mut tasks: Vec<(String, i64)> = Vec::new();
    let mut failure = None;
    for n in 0..5_000 {
        let outcome = if n % 4 == 3 {
            client
                .run_task(fargate_run("prod", "web", 1))
                .await
                .map(|r| tasks.push((r.into_inner().tasks[0].task_arn.clone().unwrap(), 1)))
        } else {
            client
                .register_task_definition(bulky_definition("bulky", n))
                .await
                .map(|_| revisions += 1)
        };
        if let Err(status) = outcome {
            failure = Some(status);
            break;
        }
    }
    let status = failure.expect("a 12 MiB disk fills up within 5,000 writes of ~60 KiB");
    println!(
        "disk full after {revisions} task definitions and {} tasks: {:?} {}",
        tasks.len(),
        status.code(),
        status.message()
    );
    assert!(
        matches!(status.code(), Code::Internal | Code::Unavailable),
        "{status:?}"
    );
    assert_eq!(
        taskledger::api::status::exception_name(&status).as_deref(),
        Some("ServerException")
    );
    assert!(
        status.message().contains("storage failure") && status.message().contains("No space left on device"),
        "the message says what went wrong: {}",
        status.message()
    );
    // Later writes fail too (the store refuses writes until reopened), as ServerException.
    let again = client.run_task(fargate_run("prod", "web", 1)).await.unwrap_err();
    assert_eq!(
        taskledger::api::status::exception_name(&again).as_deref(),
        Some("ServerException"),
        "{again:?}"
    );
    // Reads keep working, and show every acknowledged write.
    let described = client
        .describe_task_definition(DescribeTaskDefinitionRequest {
            task_definition: Some(format!("bulky:{revisions}")),
            include: vec![],
        })
        .await
        .expect("reads work on a full disk");
    assert_eq!(
        described.into_inner().task_definition.unwrap().revision,
        Some(revisions as i32)
    );
    for chunk in tasks.chunks(100) {
        let described = client
            .describe_tasks(DescribeTasksRequest {
                cluster: Some("prod".into()),
                tasks: chunk.iter().map(|(arn, _)| arn.clone()).collect(),
                include: vec![],
            })
            .await
            .expect("reads work on a full disk")
            .into_inner();
        assert_eq!(described.tasks.len(), chunk.len(), "{:?}", described.failures);
    }

    // Free space, then restart: a store that failed a write takes writes only once reopened.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mounted.0)
        .status()
        .unwrap();
    assert!(grown.success(), "remount with more space");
    server.stop();
    {
        let store = Store::open(&data).expect("the store opens after the disk was full");
        let log = LogIndex::read(&store, "after the disk was full");
        for (arn, version) in &tasks {
            assert!(log.version(arn, *version).is_some(), "acknowledged task {arn} is lost");
        }
        let described = store
            .describe_task_definition(
                &crate::support::scope(),
                &DescribeTaskDefinitionRequest {
                    task_definition: Some(format!("bulky:{revisions}")),
                    include: vec![],
                },
            )
            .expect("every acknowledged revision is there");
        assert!(described.task_definition.is_some());
        assert!(store.verify(|_, _| {}).unwrap().is_clean());
    }
    let server = Server::start(&data);
    let mut client = server.client().await;
    for _ in 0..20 {
        client
            .run_task(fargate_run("prod", "web", 1))
            .await
            .expect("writes resume once there is space");
    }
    client
        .register_task_definition(bulky_definition("bulky", 99_999))
        .await
        .expect("writes resume once there is space");
    server.stop();
    let verify = Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "taskledger verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    drop(mounted);
}
