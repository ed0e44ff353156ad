//! A scenario's workload and loading it: the scenario's own cluster and Fargate task definition, a
//! fill goal (tasks, or events as whole task lifecycles), and loading a store up to it (threads
//! through `Store` in-process, RunTask over gRPC otherwise). Loading is setup, never a result.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use taskledger::domain::Scope;
use taskledger::proto::v1::CreateClusterRequest;
use taskledger::store::{Caller, Store};
use tokio::task::JoinSet;

use crate::measure::rate;
use crate::requests::{fargate_definition, run_request, task_id, transition};
use crate::target::{connect, Target};
use crate::{LIFECYCLE, LOAD_CONCURRENCY};

/// The scenario's own cluster (a unique name, so runs against a shared server do not mix) and a
/// Fargate task definition.
pub(crate) struct Workload {
    pub(crate) cluster: String,
}

impl Workload {
    pub(crate) async fn create(target: &Target, scenario: &str) -> anyhow::Result<Workload> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let cluster = format!("load-{scenario}-{}", &suffix[..8]);
        let mut client = target.client().await?;
        client
            .create_cluster(CreateClusterRequest {
                cluster_name: Some(cluster.clone()),
                ..Default::default()
            })
            .await
            .context("CreateCluster")?;
        client
            .register_task_definition(fargate_definition())
            .await
            .context("RegisterTaskDefinition")?;
        Ok(Workload { cluster })
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// This many tasks, created by RunTask count=10.
    Tasks(u64),
    /// This many events (rounded up to whole tasks): tasks created by RunTask count=10, each then
    /// walked through the whole lifecycle (in-process only).
    Events(u64),
}

impl Goal {
    /// `--tasks` if given, else `--events`; and the option as given.
    pub(crate) fn of(events: u64, tasks: Option<u64>) -> (Goal, String) {
        match tasks {
            Some(tasks) => (Goal::Tasks(tasks), format!("--tasks {tasks}")),
            None => (Goal::Events(events), format!("--events {events}")),
        }
    }

    /// Tasks to create: an event goal gets whole lifecycles (RunTask's event, then one per status).
    fn tasks(self) -> u64 {
        match self {
            Goal::Tasks(n) => n,
            Goal::Events(n) => n.div_ceil(1 + LIFECYCLE.len() as u64),
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Goal::Tasks(n) => format!("{n} tasks by RunTask count=10"),
            Goal::Events(n) => format!(
                "{n} events: {} tasks by RunTask count=10, each then walked {} by SubmitTaskStateChange (8 events \
                 a task), from {LOAD_CONCURRENCY} threads through Store (no gRPC)",
                self.tasks(),
                LIFECYCLE.join("→")
            ),
        }
    }
}

pub(crate) struct Loaded {
    pub(crate) ids: Vec<String>,
    how: String,
    seconds: f64,
    pub(crate) head: Option<u64>,
}

impl Loaded {
    pub(crate) fn count(&self) -> u64 {
        self.ids.len() as u64
    }

    pub(crate) fn line(&self) -> String {
        let head = self
            .head
            .map(|h| format!(", store head {h} events"))
            .unwrap_or_default();
        format!(
            "loaded {} tasks in {:.1} s ({:.0} tasks/s) via {}{head} [setup, not a result]",
            self.count(),
            self.seconds,
            rate(self.count(), self.seconds),
            self.how
        )
    }
}

pub(crate) async fn load(target: &Target, workload: &Workload, goal: Goal) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let ids = match (target.store(), goal) {
        (Some(store), _) => {
            let (store, cluster) = (store.clone(), workload.cluster.clone());
            tokio::task::spawn_blocking(move || load_in_process(&store, &cluster, goal))
                .await
                .context("the loader panicked")??
        }
        (None, Goal::Tasks(tasks)) => load_grpc(&target.endpoint, &workload.cluster, tasks).await?,
        (None, Goal::Events(_)) => bail!("filling a store up to a number of events needs the in-process store"),
    };
    Ok(Loaded {
        ids,
        how: target.load_path(),
        seconds: started.elapsed().as_secs_f64(),
        head: target.store().map(Store::head_seq),
    })
}

fn load_in_process(store: &Store, cluster: &str, goal: Goal) -> anyhow::Result<Vec<String>> {
    let scope = Scope::new("us-east-1", "123456789012").context("the default scope is valid")?;
    let claimed = AtomicU64::new(0);
    let batches: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|threads| {
        let workers: Vec<_> = (0..LOAD_CONCURRENCY)
            .map(|_| {
                threads.spawn(|| {
                    let caller = Caller {
                        name: "taskledger-load".to_string(),
                        ..Caller::library(scope.clone())
                    };
                    let mut ids = Vec::new();
                    loop {
                        let first = claimed.fetch_add(10, Relaxed);
                        if first >= goal.tasks() {
                            break;
                        }
                        let count = (goal.tasks() - first).min(10);
                        let response = store.run_task(&caller, run_request(cluster, count as i32))?;
                        ensure!(response.failures.is_empty(), "RunTask failed: {:?}", response.failures);
                        let new: Vec<String> = response
                            .tasks
                            .iter()
                            .filter_map(|t| t.task_arn.as_deref())
                            .map(task_id)
                            .collect();
                        if let Goal::Events(_) = goal {
                            for task in &new {
                                for status in LIFECYCLE {
                                    store.submit_task_state_change(&caller, transition(cluster, task, status))?;
                                }
                            }
                        }
                        ids.extend(new);
                    }
                    Ok(ids)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("loader threads do not panic"))
            .collect()
    });
    let mut ids = Vec::new();
    for batch in batches {
        ids.extend(batch?);
    }
    Ok(ids)
}

async fn load_grpc(endpoint: &str, cluster: &str, tasks: u64) -> anyhow::Result<Vec<String>> {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..LOAD_CONCURRENCY {
        let (mut client, claimed, cluster) = (connect(endpoint).await?, Arc::clone(&claimed), cluster.to_string());
        workers.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let first = claimed.fetch_add(10, Relaxed);
                if first >= tasks {
                    return anyhow::Ok(ids);
                }
                let request = run_request(&cluster, (tasks - first).min(10) as i32);
                let response = client
                    .run_task(request)
                    .await
                    .context("RunTask while loading")?
                    .into_inner();
                ensure!(response.failures.is_empty(), "RunTask failed: {:?}", response.failures);
                ids.extend(response.tasks.iter().filter_map(|t| t.task_arn.as_deref()).map(task_id));
            }
        });
    }
    let mut ids = Vec::new();
    while let Some(batch) = workers.join_next().await {
        ids.extend(batch.context("a loader panicked")??);
    }
    Ok(ids)
}
