//! Measuring: a phase's bounds (a deadline and a request budget), tallies of latency (hdrhistogram,
//! microseconds) and counts per worker and per phase, the writer's counters over a phase, and the
//! closed loop that runs a phase's workers over a few connections.
//! Never judges a timing.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::target::{Client, Target};
use crate::Bounds;

/// A phase's bounds, shared by its workers: a deadline and a request budget.
#[derive(Clone)]
pub(crate) struct Limits {
    deadline: Instant,
    issued: Arc<AtomicU64>,
    max: u64,
}

impl Limits {
    /// Whether one more request may be sent.
    pub(crate) fn take(&self) -> bool {
        Instant::now() < self.deadline && self.issued.fetch_add(1, Relaxed) < self.max
    }
}

/// One worker's (or a merged phase's) latencies and counts.
pub(crate) struct Tally {
    latency: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// What the scenario counts: transitions, tasks launched, tasks described or listed.
    pub(crate) items: u64,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid"),
            requests: 0,
            errors: 0,
            first_error: None,
            items: 0,
        }
    }

    /// Times one call; records its latency in microseconds if it succeeded.
    pub(crate) async fn time<T>(
        &mut self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = call.await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(response) => {
                self.latency.saturating_record(micros.max(1));
                self.requests += 1;
                Some(response.into_inner())
            }
            Err(status) => {
                self.fail(format!("{:?}: {}", status.code(), status.message()));
                None
            }
        }
    }

    pub(crate) fn fail(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }

    fn merge(&mut self, other: Tally) {
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds add up");
        self.requests += other.requests;
        self.errors += other.errors;
        self.items += other.items;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub(crate) fn latency_text(&self) -> String {
        format!(
            "p50 {} us, p99 {} us, max {} us",
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.latency.max()
        )
    }

    pub(crate) fn latency_json(&self, value: &mut Value) {
        value["p50_us"] = json!(self.latency.value_at_quantile(0.5));
        value["p99_us"] = json!(self.latency.value_at_quantile(0.99));
        value["max_us"] = json!(self.latency.max());
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct WriterCounts {
    pub(crate) groups: u64,
    pub(crate) commands: u64,
    pub(crate) events: u64,
    pub(crate) syncs: u64,
}

pub(crate) struct Phase {
    in_flight: usize,
    connections: usize,
    tally: Tally,
    seconds: f64,
    /// The writer's counters over the phase (in-process only).
    writer: Option<WriterCounts>,
}

impl Phase {
    fn events_per_sync(&self) -> Option<f64> {
        self.writer
            .filter(|w| w.syncs > 0)
            .map(|w| w.events as f64 / w.syncs as f64)
    }

    pub(crate) fn line(&self, items: &str) -> String {
        let writer = match (self.writer, self.events_per_sync()) {
            (Some(w), Some(per_sync)) => format!(
                "; events/fdatasync {per_sync:.1} ({} events, {} syncs, {} groups)",
                w.events, w.syncs, w.groups
            ),
            _ => "; events/fdatasync unknown".to_string(),
        };
        let errors = match &self.tally.first_error {
            Some(first) => format!(", {} errors, first: {first}", self.tally.errors),
            None => ", 0 errors".to_string(),
        };
        format!(
            "in flight {:>3}: {:>8.0} calls/s, {:>8.0} {items}/s; {} ({} calls in {:.2} s over {} connections{errors}){writer}",
            self.in_flight,
            rate(self.tally.requests, self.seconds),
            rate(self.tally.items, self.seconds),
            self.tally.latency_text(),
            self.tally.requests,
            self.seconds,
            self.connections
        )
    }

    pub(crate) fn json(&self, items: &str) -> Value {
        let mut value = json!({"in_flight": self.in_flight, "connections": self.connections, "calls": self.tally.requests,
            "errors": self.tally.errors, "first_error": self.tally.first_error, "seconds": self.seconds,
            "calls_per_sec": rate(self.tally.requests, self.seconds), items: self.tally.items,
            format!("{items}_per_sec"): rate(self.tally.items, self.seconds),
            "events_per_fdatasync": self.events_per_sync(),
            "writer": self.writer.map(|w| json!({"groups": w.groups, "commands": w.commands, "events": w.events, "syncs": w.syncs}))});
        self.tally.latency_json(&mut value);
        value
    }
}

/// Runs `in_flight` workers, each sending one request at a time until the phase's bounds stop
/// it, over `ceil(in_flight / 32)` connections (at most 8); merges their tallies.
pub(crate) async fn closed_loop<F, W>(
    target: &Target,
    in_flight: usize,
    bounds: &Bounds,
    worker: W,
) -> anyhow::Result<Phase>
where
    W: Fn(usize, Client, Limits) -> F,
    F: Future<Output = Tally> + Send + 'static,
{
    let connections = in_flight.div_ceil(32).clamp(1, 8);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(target.client().await?);
    }
    let before = target.writer();
    let limits = Limits {
        deadline: Instant::now() + Duration::from_secs_f64(bounds.duration_secs),
        issued: Arc::new(AtomicU64::new(0)),
        max: bounds.max_requests,
    };
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for index in 0..in_flight {
        workers.spawn(worker(index, clients[index % connections].clone(), limits.clone()));
    }
    let mut tally = Tally::new();
    while let Some(done) = workers.join_next().await {
        tally.merge(done.context("a load worker panicked")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let writer = before.zip(target.writer()).map(|(before, after)| WriterCounts {
        groups: after.groups - before.groups,
        commands: after.commands - before.commands,
        events: after.events - before.events,
        syncs: after.syncs - before.syncs,
    });
    ensure!(
        tally.requests > 0,
        "in flight {in_flight}: no request succeeded; first error: {:?}",
        tally.first_error
    );
    Ok(Phase {
        in_flight,
        connections,
        tally,
        seconds,
        writer,
    })
}

pub(crate) fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}
