//! Scenario `follow`: how soon a second server on the same shared log (etcd) shows a write that
//! the first one acknowledged. Durable SubmitTaskStateChange on `--endpoint` (a closed loop per
//! in-flight count), each with its own `x-request-id`; the follower (`--follower`) is subscribed
//! to its log (Ledger Subscribe from its head), and each record's request id is matched to the
//! write's acknowledgement. The lag is the follower's delivery minus the acknowledgement (0 when
//! the follower delivered first).
//! Needs two running servers on one log; does not start them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use taskledger::proto::v1::ledger_client::LedgerClient;
use taskledger::proto::v1::{subscribe_response::Item, SubscribeRequest};
use tokio::task::JoinSet;

use crate::requests::transition;
use crate::session::Session;
use crate::target::Target;
use crate::workload::{load, Goal, Workload};
use crate::{check_duration, check_in_flight, join, Follow, LIFECYCLE};

/// How long the follower may take to show the last writes of a phase before they count as unseen.
const SETTLE: Duration = Duration::from_secs(5);

/// When the follower delivered each request id, and a bell rung at each delivery.
#[derive(Default)]
struct Seen {
    at: Mutex<HashMap<String, Instant>>,
    delivered: tokio::sync::Notify,
}

pub(crate) async fn follow(session: &Session, args: Follow) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    ensure!(
        session.endpoint.is_some(),
        "follow measures two running servers on one log: give the writer with --endpoint and the other with --follower"
    );
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "follow").await?;
    let seen: Arc<Seen> = Arc::default();
    let mut follower = LedgerClient::connect(args.follower.clone())
        .await
        .with_context(|| format!("connecting to the follower at {}", args.follower))?;
    let mut stream = follower
        .subscribe(SubscribeRequest::default())
        .await
        .context("Subscribe on the follower")?
        .into_inner();
    let delivered = Arc::clone(&seen);
    let subscription = tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            if let Some(Item::Entry(entry)) = message.item {
                let id = entry.record.and_then(|r| r.cause).map(|c| c.request_id);
                if let Some(id) = id {
                    delivered
                        .at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, Instant::now());
                    delivered.delivered.notify_waiters();
                }
            }
        }
    });
    let arguments = format!(
        "follow --follower {} --in-flight {} --duration-secs {} --max-requests {}",
        args.follower,
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let parameters = json!({"follower": args.follower, "in_flight": args.in_flight,
        "duration_secs": args.bounds.duration_secs, "max_requests": args.bounds.max_requests});
    let mut report = session.report(
        "follow",
        "a write acknowledged by one server, as another server's Subscribe delivers it",
        arguments,
        parameters,
        &target,
    );
    for &in_flight in &args.in_flight {
        let tasks = args
            .bounds
            .max_requests
            .div_ceil(LIFECYCLE.len() as u64)
            .max(in_flight as u64);
        let loaded = load(&target, &workload, Goal::Tasks(tasks)).await?;
        report.note(loaded.line());
        let acked = writes(&target, &workload.cluster, loaded.ids, in_flight, &args).await?;
        let deadline = Instant::now() + SETTLE;
        let lags = loop {
            // Registered before looking, so a delivery in between is not missed.
            let next_delivery = seen.delivered.notified();
            let lags: Vec<Option<u64>> = {
                let seen = seen.at.lock().unwrap_or_else(|p| p.into_inner());
                acked
                    .iter()
                    .map(|(id, at)| {
                        seen.get(id).map(|shown| {
                            u64::try_from(shown.saturating_duration_since(*at).as_micros()).unwrap_or(u64::MAX)
                        })
                    })
                    .collect()
            };
            if lags.iter().all(Option::is_some) || Instant::now() >= deadline {
                break lags;
            }
            let _ = tokio::time::timeout_at(deadline.into(), next_delivery).await;
        };
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?;
        let mut unseen = 0;
        for lag in &lags {
            match lag {
                Some(micros) => histogram.saturating_record((*micros).max(1)),
                None => unseen += 1,
            }
        }
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        report.result(
            format_args!(
                "in flight {in_flight}: {} writes acknowledged; the follower showed them after p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {unseen} not within {} s",
                acked.len(),
                ms(0.5),
                ms(0.99),
                histogram.max() as f64 / 1000.0,
                SETTLE.as_secs()
            ),
            json!({"in_flight": in_flight, "writes": acked.len(), "lag_p50_ms": ms(0.5), "lag_p99_ms": ms(0.99),
                "lag_max_ms": histogram.max() as f64 / 1000.0, "unseen": unseen}),
        );
    }
    subscription.abort();
    target.close().await?;
    Ok(report.finish())
}

/// A closed loop of transitions on the writer; the request ids it got answers for, with when.
async fn writes(
    target: &Target,
    cluster: &str,
    tasks: Vec<String>,
    in_flight: usize,
    args: &Follow,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let tasks = Arc::new(tasks);
    let deadline = Instant::now() + Duration::from_secs_f64(args.bounds.duration_secs);
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(args.bounds.max_requests));
    let mut workers = JoinSet::new();
    for worker in 0..in_flight {
        let mut client = target.client().await?;
        let (tasks, cluster, budget) = (Arc::clone(&tasks), cluster.to_string(), Arc::clone(&budget));
        workers.spawn(async move {
            let mut acked = Vec::new();
            'tasks: for task in tasks.iter().skip(worker).step_by(in_flight) {
                for status in LIFECYCLE {
                    let taken = budget
                        .fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |left| left.checked_sub(1),
                        )
                        .is_ok();
                    if !taken || Instant::now() >= deadline {
                        break 'tasks;
                    }
                    let id = uuid::Uuid::new_v4().to_string();
                    let mut request = tonic::Request::new(transition(&cluster, task, status));
                    request
                        .metadata_mut()
                        .insert("x-request-id", id.parse().expect("a UUID is valid metadata"));
                    if client.submit_task_state_change(request).await.is_err() {
                        continue 'tasks;
                    }
                    acked.push((id, Instant::now()));
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = workers.join_next().await {
        acked.extend(done.context("a writer panicked")?);
    }
    ensure!(!acked.is_empty(), "no write was acknowledged");
    Ok(acked)
}
