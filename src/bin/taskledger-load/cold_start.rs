//! Scenario 5b, `cold-start`: spawns `taskledger serve` on a filled store and times it until it
//! listens and until the first DescribeTasks answers, after dropping the page cache unless told
//! not to (fills its own store; skipped with `--endpoint`).

use std::time::Instant;

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use taskledger::proto::v1::DescribeTasksRequest;

use crate::server_process::{server_binary, ServerProcess};
use crate::session::Session;
use crate::target::{connect, Target};
use crate::workload::{load, Goal, Workload};
use crate::ColdStart;

pub(crate) async fn cold_start(session: &Session, args: ColdStart) -> anyhow::Result<Value> {
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let binary = server_binary(args.server_binary.as_deref())?;
    let (goal, size) = Goal::of(args.events, args.tasks);
    let arguments = format!(
        "cold-start {size} --repeat {}{}",
        args.repeat,
        if args.keep_page_cache { " --keep-page-cache" } else { "" }
    );
    let parameters = json!({"events": args.events, "tasks": args.tasks, "repeat": args.repeat, "fill": goal.describe(),
        "drop_page_cache": !args.keep_page_cache,
        "server_binary": binary.display().to_string(),
        "measured": "from spawning `taskledger serve --listen 127.0.0.1:0` to the first answered DescribeTasks"});
    let title = "process start until the first DescribeTasks answers";
    let mut report = session.report("cold-start", title, arguments, parameters, &target);
    if target.store().is_none() {
        report.note("skipped: cold-start fills its own store and starts its own server (run without --endpoint)");
        return Ok(report.finish());
    }
    let workload = Workload::create(&target, "cold-start").await?;
    let loaded = load(&target, &workload, goal).await?;
    report.note(loaded.line());
    let probe = loaded.ids.first().cloned().context("the fill created no task")?;
    let dir = target.close().await?.context("an in-process target has a directory")?;
    for repetition in 1..=args.repeat {
        let page_cache = match args.keep_page_cache {
            true => "page cache kept: --keep-page-cache".to_string(),
            false => drop_page_cache(),
        };
        let started = Instant::now();
        let mut server = ServerProcess::spawn(&binary, dir.path()).await?;
        let listening = started.elapsed().as_secs_f64();
        let mut client = connect(&server.endpoint).await?;
        let request = DescribeTasksRequest {
            cluster: Some(workload.cluster.clone()),
            tasks: vec![probe.clone()],
            include: vec![],
        };
        let answer = client
            .describe_tasks(request)
            .await
            .context("the first DescribeTasks failed")?;
        let first_answer = started.elapsed().as_secs_f64();
        ensure!(
            answer.into_inner().tasks.len() == 1,
            "the first DescribeTasks did not find the task"
        );
        server.stop().await;
        report.result(
            format!(
                "start {repetition}: listening after {:.1} ms, first DescribeTasks answered after {:.1} ms ({page_cache})",
                listening * 1e3,
                first_answer * 1e3
            ),
            json!({"repetition": repetition, "events": loaded.head, "listening_ms": listening * 1e3,
                "first_answer_ms": first_answer * 1e3, "page_cache": page_cache}),
        );
    }
    Ok(report.finish())
}

/// `sync`, then ask the kernel to drop clean page-cache pages; says what happened.
fn drop_page_cache() -> String {
    let _ = std::process::Command::new("sync").status();
    match std::fs::write("/proc/sys/vm/drop_caches", "1") {
        Ok(()) => "page cache dropped".to_string(),
        Err(error) => format!("page cache not dropped: {error}"),
    }
}
