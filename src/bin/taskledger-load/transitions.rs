//! Scenario 1, `transitions`: durable SubmitTaskStateChange PENDING → … → STOPPED on existing
//! Fargate tasks (created untimed before each phase), one phase per in-flight count.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::measure::{closed_loop, Tally};
use crate::requests::transition;
use crate::session::Session;
use crate::target::Target;
use crate::workload::{load, Goal, Workload};
use crate::{check_duration, check_in_flight, join, Transitions, LIFECYCLE};

pub(crate) async fn transitions(session: &Session, args: Transitions) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "transitions").await?;
    let arguments = format!(
        "transitions --in-flight {} --duration-secs {} --max-requests {}",
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let tasks_per_phase = |in_flight: usize| {
        args.bounds
            .max_requests
            .div_ceil(LIFECYCLE.len() as u64)
            .max(in_flight as u64)
    };
    let parameters = json!({"in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "statuses": LIFECYCLE,
        "tasks_created_per_phase": "max(ceil(max_requests / 7), in_flight), by RunTask count=10 before the phase (untimed)"});
    let mut report = session.report(
        "transitions",
        "durable SubmitTaskStateChange via gRPC",
        arguments,
        parameters,
        &target,
    );
    for &in_flight in &args.in_flight {
        let loaded = load(&target, &workload, Goal::Tasks(tasks_per_phase(in_flight))).await?;
        let tasks = Arc::new(loaded.ids);
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |worker, mut client, limits| {
            let (tasks, cluster) = (Arc::clone(&tasks), cluster.clone());
            async move {
                let mut tally = Tally::new();
                'tasks: for task in tasks.iter().skip(worker).step_by(in_flight) {
                    for status in LIFECYCLE {
                        if !limits.take() {
                            break 'tasks;
                        }
                        if tally
                            .time(client.submit_task_state_change(transition(&cluster, task, status)))
                            .await
                            .is_none()
                        {
                            continue 'tasks;
                        }
                        tally.items += 1;
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("transitions"), phase.json("transitions"));
    }
    target.close().await?;
    Ok(report.finish())
}
