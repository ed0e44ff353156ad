//! Scenario 3, `describe`: DescribeTasks with 100 random ids (picked by splitmix64) against a
//! loaded store, one phase per in-flight count.

use std::sync::Arc;

use anyhow::ensure;
use serde_json::{json, Value};
use taskledger::proto::v1::DescribeTasksRequest;

use crate::measure::{closed_loop, Tally};
use crate::session::Session;
use crate::target::Target;
use crate::workload::{load, Goal, Workload};
use crate::{check_duration, check_in_flight, join, Describe};

pub(crate) async fn describe(session: &Session, args: Describe) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    ensure!(args.tasks >= 1, "--tasks must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "describe").await?;
    let arguments = format!(
        "describe --tasks {} --in-flight {} --duration-secs {} --max-requests {}",
        args.tasks,
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let parameters = json!({"tasks": args.tasks, "in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "ids_per_call": 100, "load_path": target.load_path()});
    let mut report = session.report(
        "describe",
        "DescribeTasks with 100 random ids via gRPC",
        arguments,
        parameters,
        &target,
    );
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let ids = Arc::new(loaded.ids);
    for &in_flight in &args.in_flight {
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |worker, mut client, limits| {
            let (ids, cluster) = (Arc::clone(&ids), cluster.clone());
            async move {
                let mut tally = Tally::new();
                let mut random = SplitMix(worker as u64 + 1);
                while limits.take() {
                    let request = DescribeTasksRequest {
                        cluster: Some(cluster.clone()),
                        tasks: random.pick(&ids, 100),
                        include: vec![],
                    };
                    if let Some(response) = tally.time(client.describe_tasks(request)).await {
                        tally.items += response.tasks.len() as u64;
                        if !response.failures.is_empty() {
                            tally.fail(format!("DescribeTasks failures: {:?}", response.failures.first()));
                        }
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("tasks described"), phase.json("tasks_described"));
    }
    target.close().await?;
    Ok(report.finish())
}

/// splitmix64: reproducible, good enough to pick ids.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` distinct items (all of them if there are fewer), in random order.
    fn pick(&mut self, items: &[String], n: usize) -> Vec<String> {
        if items.len() <= n {
            return items.to_vec();
        }
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        while chosen.len() < n {
            let index = (self.next() % items.len() as u64) as usize;
            if !chosen.contains(&index) {
                chosen.push(index);
            }
        }
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }
}
