//! Scenario 2, `run-task`: RunTask count=10 on Fargate, one phase per in-flight count.

use serde_json::{json, Value};

use crate::measure::{closed_loop, Tally};
use crate::requests::run_request;
use crate::session::Session;
use crate::target::Target;
use crate::workload::Workload;
use crate::{check_duration, check_in_flight, join, RunTasks};

pub(crate) async fn run_task(session: &Session, args: RunTasks) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "run-task").await?;
    let arguments = format!(
        "run-task --in-flight {} --duration-secs {} --max-requests {}",
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let parameters = json!({"in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "count_per_call": 10, "launch_type": "FARGATE"});
    let mut report = session.report("run-task", "RunTask count=10 via gRPC", arguments, parameters, &target);
    for &in_flight in &args.in_flight {
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |_, mut client, limits| {
            let cluster = cluster.clone();
            async move {
                let mut tally = Tally::new();
                while limits.take() {
                    if let Some(response) = tally.time(client.run_task(run_request(&cluster, 10))).await {
                        tally.items += response.tasks.len() as u64;
                        if !response.failures.is_empty() {
                            tally.fail(format!("RunTask failures: {:?}", response.failures));
                        }
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("tasks"), phase.json("tasks"));
    }
    target.close().await?;
    Ok(report.finish())
}
