//! Scenario 6, `footprint`: the RSS of a server holding N tasks (from /proc/<pid>/status, before
//! and after describing and listing every task once, with the peak) and its bytes on disk per
//! event.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use taskledger::proto::v1::DescribeTasksRequest;
use taskledger::store::Store;
use tokio::task::JoinSet;

use crate::list::walk_list;
use crate::server_process::server_binary;
use crate::session::Session;
use crate::target::{connect, Kind, Target};
use crate::workload::{load, Goal, Workload};
use crate::{Footprint, SPAWN_TIMEOUT};

pub(crate) async fn footprint(session: &Session, args: Footprint) -> anyhow::Result<Value> {
    let target = match (session.endpoint.as_deref(), args.in_process) {
        (Some(endpoint), _) => Target::start(Some(endpoint)).await?,
        (None, true) => Target::in_process().await?,
        (None, false) => Target::child(&server_binary(args.server_binary.as_deref())?).await?,
    };
    let (pid, whose) = match &target.kind {
        Kind::InProcess { .. } => (
            Some(std::process::id()),
            "this process (server and load generator together)",
        ),
        Kind::Child { process, .. } => (Some(process.child.id()), "the server process"),
        Kind::Remote => (args.server_pid, "the server process given by --server-pid"),
    };
    let arguments = format!(
        "footprint --tasks {}{}",
        args.tasks,
        if args.in_process { " --in-process" } else { "" }
    );
    let parameters = json!({"tasks": args.tasks, "load_path": target.load_path(), "rss_of": whose,
        "touch": "after loading, every task is described once (100 per call, 16 in flight) and listed once"});
    let title = "peak RSS of the server holding N tasks; bytes on disk per event";
    let mut report = session.report("footprint", title, arguments, parameters, &target);
    let workload = Workload::create(&target, "footprint").await?;
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let rss_before = pid.and_then(|pid| proc_status_kib(pid, "VmRSS"));
    let touched = touch_all(&target.endpoint, &workload.cluster, &loaded.ids).await?;
    let hwm = pid.and_then(|pid| proc_status_kib(pid, "VmHWM"));
    let rss = pid.and_then(|pid| proc_status_kib(pid, "VmRSS"));
    let measured = match target.store() {
        Some(store) => Some((store.size_on_disk()?, store.head_seq())),
        None => None,
    };
    let dir = target.close().await?;
    let disk = match (measured, &dir) {
        (Some(measured), _) => Some(measured),
        (None, Some(dir)) => {
            let path = dir.path().to_path_buf();
            let reopened = tokio::task::spawn_blocking(move || {
                let store = Store::open(&path)?;
                anyhow::Ok((store.size_on_disk()?, store.head_seq()))
            });
            Some(reopened.await.context("reopening the store panicked")??)
        }
        (None, None) => None,
    };
    let per_event = disk.map(|(bytes, head)| bytes as f64 / head.max(1) as f64);
    report.result(
        format!(
            "RSS of {whose}{}: {} after loading {} tasks; after describing and listing all {touched}: peak (VmHWM) {}, \
             now {}. On disk: {}",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            kib_text(rss_before),
            loaded.count(),
            kib_text(hwm),
            kib_text(rss),
            match disk {
                Some((bytes, head)) => format!(
                    "{bytes} bytes for {head} events = {:.0} bytes/event",
                    bytes as f64 / head.max(1) as f64
                ),
                None => "unknown (not our store)".to_string(),
            }
        ),
        json!({"tasks": loaded.count(), "tasks_touched": touched, "pid": pid, "rss_of": whose,
            "rss_after_load_kib": rss_before, "vm_hwm_kib": hwm, "vm_rss_kib": rss,
            "bytes_on_disk": disk.map(|d| d.0), "events": disk.map(|d| d.1), "bytes_per_event": per_event}),
    );
    Ok(report.finish())
}

/// Describes every task once (100 per call, 16 in flight), then lists them all; returns how
/// many tasks were described.
async fn touch_all(endpoint: &str, cluster: &str, ids: &[String]) -> anyhow::Result<u64> {
    let chunks: Arc<Vec<Vec<String>>> = Arc::new(ids.chunks(100).map(<[String]>::to_vec).collect());
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..16 {
        let (mut client, chunks, next, cluster) = (
            connect(endpoint).await?,
            Arc::clone(&chunks),
            Arc::clone(&next),
            cluster.to_string(),
        );
        workers.spawn(async move {
            let mut described = 0;
            while let Some(chunk) = chunks.get(next.fetch_add(1, Relaxed) as usize) {
                let request = DescribeTasksRequest {
                    cluster: Some(cluster.clone()),
                    tasks: chunk.clone(),
                    include: vec![],
                };
                described += client
                    .describe_tasks(request)
                    .await
                    .context("DescribeTasks")?
                    .into_inner()
                    .tasks
                    .len() as u64;
            }
            anyhow::Ok(described)
        });
    }
    let mut described = 0;
    while let Some(count) = workers.join_next().await {
        described += count.context("a describer panicked")??;
    }
    let mut client = connect(endpoint).await?;
    let walk = walk_list(&mut client, cluster, Instant::now() + SPAWN_TIMEOUT).await;
    ensure!(walk.tally.errors == 0, "ListTasks failed: {:?}", walk.tally.first_error);
    Ok(described)
}

/// A `Vm*` line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

fn kib_text(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
