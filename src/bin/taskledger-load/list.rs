//! Scenario 4, `list`: ListTasks paging (maxResults 100) through every task of one cluster; and
//! that walk through a cluster's pages, which `footprint` also uses to touch every task.

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::{json, Value};
use taskledger::proto::v1::ListTasksRequest;

use crate::check_duration;
use crate::measure::{rate, Tally};
use crate::session::Session;
use crate::target::{Client, Target};
use crate::workload::{load, Goal, Workload};
use crate::List;

pub(crate) async fn list(session: &Session, args: List) -> anyhow::Result<Value> {
    check_duration(args.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "list").await?;
    let arguments = format!("list --tasks {} --duration-secs {}", args.tasks, args.duration_secs);
    let parameters = json!({"tasks": args.tasks, "max_results": 100, "duration_secs": args.duration_secs,
        "load_path": target.load_path()});
    let mut report = session.report(
        "list",
        "ListTasks paging through one cluster via gRPC",
        arguments,
        parameters,
        &target,
    );
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let mut client = target.client().await?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration_secs);
    let walk = walk_list(&mut client, &workload.cluster, deadline).await;
    ensure!(
        walk.tally.requests > 0,
        "no ListTasks page was answered: {:?}",
        walk.tally.first_error
    );
    let seconds = walk.seconds;
    let line = format!(
        "listed {} of {} tasks in {} pages, {:.3} s{}: {:.0} pages/s, {:.0} tasks/s; per page {}",
        walk.tally.items,
        loaded.count(),
        walk.tally.requests,
        seconds,
        if walk.complete {
            ""
        } else {
            " (CUT SHORT by --duration-secs)"
        },
        rate(walk.tally.requests, seconds),
        rate(walk.tally.items, seconds),
        walk.tally.latency_text()
    );
    let mut value = json!({"tasks_listed": walk.tally.items, "tasks_loaded": loaded.count(), "pages": walk.tally.requests,
        "seconds": seconds, "pages_per_sec": rate(walk.tally.requests, seconds), "tasks_per_sec": rate(walk.tally.items, seconds),
        "complete": walk.complete, "errors": walk.tally.errors, "first_error": walk.tally.first_error});
    walk.tally.latency_json(&mut value);
    report.result(line, value);
    target.close().await?;
    Ok(report.finish())
}

pub(crate) struct Walk {
    pub(crate) tally: Tally,
    seconds: f64,
    complete: bool,
}

/// Pages through ListTasks of one cluster (maxResults 100) until the end or the deadline.
pub(crate) async fn walk_list(client: &mut Client, cluster: &str, deadline: Instant) -> Walk {
    let mut tally = Tally::new();
    let mut next_token = None;
    let started = Instant::now();
    let complete = loop {
        if Instant::now() >= deadline {
            break false;
        }
        let request = ListTasksRequest {
            cluster: Some(cluster.to_string()),
            next_token: next_token.take(),
            max_results: Some(100),
            ..Default::default()
        };
        let Some(page) = tally.time(client.list_tasks(request)).await else {
            break false;
        };
        tally.items += page.task_arns.len() as u64;
        match page.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => break true,
        }
    };
    Walk {
        tally,
        seconds: started.elapsed().as_secs_f64(),
        complete,
    }
}
