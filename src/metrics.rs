//! The metrics taskledger reports, in one catalogue: each one's name, kind, unit and help text,
//! and the calls that record them through the `metrics` facade. Without a recorder installed
//! (an embedder that wants none) every call costs an atomic load; `taskledger serve
//! --metrics-listen` installs a Prometheus one (`api::metrics_http`). Names follow Prometheus
//! conventions: `taskledger_` prefix, base units, `_total` on counters. Labels are bounded: an
//! operation is one of ECS's names or `unknown`, an outcome `ok` or an ECS exception name, an
//! event kind one of the log's.
//! Does not serve or render anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use metrics::{counter, gauge, histogram, Unit};

use crate::domain::lifecycle::DesiredStatus;

/// Requests answered, by `frontend` (`grpc`, `aws`), `operation` and `outcome`.
pub const REQUESTS: &str = "taskledger_requests_total";
/// How long requests took to answer, by `frontend` and `operation`.
pub const REQUEST_SECONDS: &str = "taskledger_request_duration_seconds";
/// Group commits made (each one durable append of one or more commands' events).
pub const GROUPS: &str = "taskledger_commit_groups_total";
/// Commands decided in group commits (refused ones included).
pub const COMMANDS: &str = "taskledger_commit_commands_total";
/// Commands in one group commit.
pub const GROUP_COMMANDS: &str = "taskledger_commit_group_commands";
/// How long a group's durable append took (the write and its fsync, or etcd's commit).
pub const APPEND_SECONDS: &str = "taskledger_log_append_duration_seconds";
/// Bytes of log values appended.
pub const APPENDED_BYTES: &str = "taskledger_log_appended_bytes_total";
/// Events made durable, by `kind`.
pub const EVENTS: &str = "taskledger_log_events_total";
/// Groups decided again because another server appended first (a shared log).
pub const CONFLICTS: &str = "taskledger_commit_conflicts_total";
/// The log's last durable seq as this server knows it.
pub const HEAD_SEQ: &str = "taskledger_log_head_seq";
/// The seq the history index has read the log up to.
pub const HISTORY_SEQ: &str = "taskledger_history_index_seq";
/// The seq of the last checkpoint written.
pub const CHECKPOINT_SEQ: &str = "taskledger_checkpoint_seq";
/// When the last checkpoint was written, in seconds since the Unix epoch.
pub const CHECKPOINT_TIME: &str = "taskledger_checkpoint_timestamp_seconds";
/// Tasks in the views (expired STOPPED tasks excluded).
pub const TASKS: &str = "taskledger_tasks";
/// 1 while writes cannot succeed (a failed write or fsync, the free-space reserve, an
/// unreachable etcd), else 0.
pub const WRITES_REFUSED: &str = "taskledger_writes_refused";
/// Open Ledger subscriptions (Subscribe streams).
pub const SUBSCRIBERS: &str = "taskledger_subscribers";
/// Bytes the log's engine holds on disk.
pub const DISK_BYTES: &str = "taskledger_store_disk_bytes";
/// Free bytes of the data directory's filesystem (the free-space reserve's basis).
pub const AVAILABLE_BYTES: &str = "taskledger_disk_available_bytes";
/// How far the furthest-behind open subscription is behind the head, in seqs.
pub const SUBSCRIBER_LAG: &str = "taskledger_subscriber_lag_seqs";
/// Tasks in the views by `region`, `cluster` and `desired_status`, for the `CLUSTERS_SHOWN`
/// clusters with the most tasks; the others summed under cluster `_other`.
pub const CLUSTER_TASKS: &str = "taskledger_cluster_tasks";
/// ACTIVE clusters' PENDING and RUNNING tasks (`last_status`), as DescribeClusters counts them,
/// by `region` and `cluster`; capped as `CLUSTER_TASKS` is.
pub const CLUSTER_ACTIVE_TASKS: &str = "taskledger_cluster_active_tasks";
/// How many clusters get series of their own in `CLUSTER_TASKS` and `CLUSTER_ACTIVE_TASKS`.
pub const CLUSTERS_SHOWN: usize = 100;

/// Every metric above with its unit and help text: what the exporter describes and the README's
/// table lists.
pub const CATALOGUE: &[(&str, Kind, &str)] = &[
    (
        REQUESTS,
        Kind::Counter,
        "Requests answered, by frontend (grpc, aws), operation and outcome (ok or the ECS exception name).",
    ),
    (
        REQUEST_SECONDS,
        Kind::Histogram,
        "Time to answer a request, by frontend and operation.",
    ),
    (GROUPS, Kind::Counter, "Group commits made."),
    (
        COMMANDS,
        Kind::Counter,
        "Commands decided in group commits, refused ones included.",
    ),
    (GROUP_COMMANDS, Kind::Histogram, "Commands in one group commit."),
    (
        APPEND_SECONDS,
        Kind::Histogram,
        "Time of one group's durable log append (write and fsync, or etcd's commit).",
    ),
    (APPENDED_BYTES, Kind::Counter, "Bytes of log values appended."),
    (EVENTS, Kind::Counter, "Events made durable, by kind."),
    (
        CONFLICTS,
        Kind::Counter,
        "Groups decided again because another server appended to the shared log first.",
    ),
    (
        HEAD_SEQ,
        Kind::Gauge,
        "The log's last durable seq as this server knows it.",
    ),
    (
        HISTORY_SEQ,
        Kind::Gauge,
        "The seq the history index has read the log up to.",
    ),
    (
        CHECKPOINT_SEQ,
        Kind::Gauge,
        "The seq of the last checkpoint this server wrote.",
    ),
    (
        CHECKPOINT_TIME,
        Kind::Gauge,
        "When the last checkpoint was written, in seconds since the Unix epoch.",
    ),
    (
        TASKS,
        Kind::Gauge,
        "Tasks in the views (expired STOPPED tasks excluded).",
    ),
    (
        WRITES_REFUSED,
        Kind::Gauge,
        "1 while writes cannot succeed (failed write or fsync, free-space reserve, etcd unreachable).",
    ),
    (SUBSCRIBERS, Kind::Gauge, "Open Ledger Subscribe streams."),
    (DISK_BYTES, Kind::Gauge, "Bytes the store holds on disk: sled's files, or on etcd the local files and etcd's database."),
    (AVAILABLE_BYTES, Kind::Gauge, "Free bytes of the data directory's filesystem; writes are refused below --min-free-mib."),
    (SUBSCRIBER_LAG, Kind::Gauge, "How far the furthest-behind open subscription is behind the log's head, in seqs."),
    (CLUSTER_ACTIVE_TASKS, Kind::Gauge, "PENDING and RUNNING tasks of ACTIVE clusters by region, cluster and last_status, as DescribeClusters counts them (capped like taskledger_cluster_tasks)."),
    (CLUSTER_TASKS, Kind::Gauge, "Tasks in the views by region, cluster and desired_status (the 100 clusters with the most tasks; the rest under cluster _other)."),
];

/// A metric's kind, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Registers every metric's help text and unit with the installed recorder.
pub fn describe() {
    for &(name, kind, help) in CATALOGUE {
        let unit = if name.ends_with("_seconds") {
            Unit::Seconds
        } else if name.ends_with("_bytes_total") {
            Unit::Bytes
        } else {
            Unit::Count
        };
        match kind {
            Kind::Counter => metrics::describe_counter!(name, unit, help),
            Kind::Gauge => metrics::describe_gauge!(name, unit, help),
            Kind::Histogram => metrics::describe_histogram!(name, unit, help),
        }
    }
}

/// One request answered.
pub fn request(frontend: &'static str, operation: &'static str, outcome: &'static str, took: Duration) {
    counter!(REQUESTS, "frontend" => frontend, "operation" => operation, "outcome" => outcome).increment(1);
    histogram!(REQUEST_SECONDS, "frontend" => frontend, "operation" => operation).record(took.as_secs_f64());
}

/// One group decided: its commands.
pub(crate) fn group_decided(commands: usize) {
    counter!(GROUPS).increment(1);
    counter!(COMMANDS).increment(commands as u64);
    histogram!(GROUP_COMMANDS).record(commands as f64);
}

/// One group made durable: how long the append took, its bytes and its events by kind. (The
/// head is read from the store when metrics are rendered, not set here on the commit path.)
pub(crate) fn group_durable(took: Duration, bytes: usize, kinds: &[(&'static str, u64)]) {
    histogram!(APPEND_SECONDS).record(took.as_secs_f64());
    counter!(APPENDED_BYTES).increment(bytes as u64);
    for &(kind, count) in kinds {
        counter!(EVENTS, "kind" => kind).increment(count);
    }
}

/// A group decided again after another server's append.
pub(crate) fn conflict() {
    counter!(CONFLICTS).increment(1);
}

/// A checkpoint written at `seq`.
pub(crate) fn checkpoint_written(seq: u64) {
    gauge!(CHECKPOINT_SEQ).set(seq as f64);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(CHECKPOINT_TIME).set(now.as_secs_f64());
}

/// Counts `kind` once more in a group's tally of events by kind (a handful of kinds: a list).
pub(crate) fn tally(kinds: &mut Vec<(&'static str, u64)>, kind: &'static str) {
    match kinds.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, count)) => *count += 1,
        None => kinds.push((kind, 1)),
    }
}

/// What the store says when metrics are rendered (rather than on every change).
pub struct StoreFigures {
    pub head: u64,
    pub history: u64,
    pub tasks: usize,
    pub by_cluster: Vec<(String, String, DesiredStatus, usize)>,
    /// ACTIVE clusters' (region, cluster, pending, running).
    pub active_by_cluster: Vec<(String, String, usize, usize)>,
    pub writes_refused: bool,
    /// Bytes on disk and free, where they could be read.
    pub disk_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
}

/// Sets the gauges read from the store when metrics are rendered.
pub fn store_figures(figures: StoreFigures) {
    gauge!(HEAD_SEQ).set(figures.head as f64);
    gauge!(HISTORY_SEQ).set(figures.history as f64);
    gauge!(TASKS).set(figures.tasks as f64);
    gauge!(WRITES_REFUSED).set(if figures.writes_refused { 1.0 } else { 0.0 });
    gauge!(SUBSCRIBER_LAG).set(subscriber_lag(figures.head) as f64);
    if let Some(bytes) = figures.disk_bytes {
        gauge!(DISK_BYTES).set(bytes as f64);
    }
    if let Some(bytes) = figures.available_bytes {
        gauge!(AVAILABLE_BYTES).set(bytes as f64);
    }
    let by_desired = figures
        .by_cluster
        .into_iter()
        .map(|(region, cluster, desired, tasks)| (region, cluster, desired.as_str(), tasks))
        .collect();
    per_cluster(CLUSTER_TASKS, "desired_status", &CLUSTER_TASKS_SHOWN, by_desired);
    let by_status = figures
        .active_by_cluster
        .into_iter()
        .flat_map(|(region, cluster, pending, running)| {
            [
                (region.clone(), cluster.clone(), "PENDING", pending),
                (region, cluster, "RUNNING", running),
            ]
        })
        .collect();
    per_cluster(
        CLUSTER_ACTIVE_TASKS,
        "last_status",
        &CLUSTER_ACTIVE_TASKS_SHOWN,
        by_status,
    );
}

/// The open subscriptions' positions (the last seq each has delivered or passed over).
static POSITIONS: Mutex<Vec<Weak<AtomicU64>>> = Mutex::new(Vec::new());

/// Counts one open subscription, and where it is in the log, for as long as it lives.
pub struct Subscriber(Arc<AtomicU64>);

impl Subscriber {
    /// A subscription that has delivered everything up to `position`.
    pub fn opened(position: u64) -> Subscriber {
        gauge!(SUBSCRIBERS).increment(1.0);
        let at = Arc::new(AtomicU64::new(position));
        let mut positions = POSITIONS.lock().unwrap_or_else(|p| p.into_inner());
        positions.retain(|p| p.strong_count() > 0);
        positions.push(Arc::downgrade(&at));
        Subscriber(at)
    }

    /// It has delivered (or passed over) everything up to `position`.
    pub fn at(&self, position: u64) {
        self.0.store(position, Ordering::Relaxed);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        gauge!(SUBSCRIBERS).decrement(1.0);
    }
}

/// The furthest any open subscription is behind `head`, in seqs.
fn subscriber_lag(head: u64) -> u64 {
    let positions = POSITIONS.lock().unwrap_or_else(|p| p.into_inner());
    positions
        .iter()
        .filter_map(Weak::upgrade)
        .map(|at| head.saturating_sub(at.load(Ordering::Relaxed)))
        .max()
        .unwrap_or(0)
}

/// The series set at the last rendering, by metric, so one that is gone is set to 0.
type Shown = BTreeSet<(String, String, &'static str)>;
static CLUSTER_TASKS_SHOWN: Mutex<Shown> = Mutex::new(BTreeSet::new());
static CLUSTER_ACTIVE_TASKS_SHOWN: Mutex<Shown> = Mutex::new(BTreeSet::new());

/// Sets `metric` (labels `region`, `cluster` and `label`) from per-cluster counts: the
/// `CLUSTERS_SHOWN` clusters with the most tasks each, the rest summed under cluster `_other`.
fn per_cluster(
    metric: &'static str,
    label: &'static str,
    shown_last: &Mutex<Shown>,
    mut counts: Vec<(String, String, &'static str, usize)>,
) {
    let mut totals: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (region, cluster, _, tasks) in &counts {
        *totals.entry((region.clone(), cluster.clone())).or_default() += tasks;
    }
    let mut ranked: Vec<((String, String), usize)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown: BTreeSet<(String, String)> = ranked.into_iter().take(CLUSTERS_SHOWN).map(|(k, _)| k).collect();
    let mut series: BTreeMap<(String, String, &'static str), usize> = BTreeMap::new();
    for (region, cluster, value, tasks) in counts.drain(..) {
        let key = if shown.contains(&(region.clone(), cluster.clone())) {
            (region, cluster)
        } else {
            (String::new(), "_other".to_string())
        };
        *series.entry((key.0, key.1, value)).or_default() += tasks;
    }
    let mut last = shown_last.lock().unwrap_or_else(|p| p.into_inner());
    for gone in last.iter().filter(|key| !series.contains_key(*key)) {
        let (region, cluster, value) = gone.clone();
        gauge!(metric, "region" => region, "cluster" => cluster, label => value).set(0.0);
    }
    last.clear();
    for ((region, cluster, value), tasks) in series {
        last.insert((region.clone(), cluster.clone(), value));
        gauge!(metric, "region" => region, "cluster" => cluster, label => value).set(tasks as f64);
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    fn figures(by_cluster: Vec<(String, String, DesiredStatus, usize)>) -> StoreFigures {
        StoreFigures {
            head: 10,
            history: 10,
            tasks: 0,
            by_cluster,
            active_by_cluster: Vec::new(),
            writes_refused: false,
            disk_bytes: None,
            available_bytes: None,
        }
    }

    fn line<'a>(text: &'a str, cluster: &str) -> Option<&'a str> {
        let needle = format!("cluster=\"{cluster}\"");
        text.lines()
            .find(|l| l.starts_with(CLUSTER_TASKS) && l.contains(&needle))
    }

    #[test]
    fn the_clusters_with_the_most_tasks_get_series_of_their_own_and_a_gone_one_drops_to_zero() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let cluster = |i: usize| {
            (
                "us-east-1".to_string(),
                format!("c{i:03}"),
                DesiredStatus::Running,
                i + 1,
            )
        };
        metrics::with_local_recorder(&recorder, || {
            store_figures(figures((0..CLUSTERS_SHOWN + 5).map(cluster).collect()));
        });
        let text = handle.render();
        // c000…c004 hold the fewest tasks (1…5): summed under _other.
        assert!(line(&text, "_other").is_some_and(|l| l.ends_with(" 15")), "{text}");
        assert!(line(&text, "c004").is_none(), "{text}");
        assert!(line(&text, "c005").is_some_and(|l| l.ends_with(" 6")), "{text}");
        let series = text.lines().filter(|l| l.starts_with(CLUSTER_TASKS)).count();
        assert_eq!(series, CLUSTERS_SHOWN + 1);

        // The biggest cluster is deleted: its series says 0, and c004 now has one of its own.
        metrics::with_local_recorder(&recorder, || {
            store_figures(figures((0..CLUSTERS_SHOWN + 4).map(cluster).collect()));
        });
        let text = handle.render();
        assert!(
            line(&text, &format!("c{:03}", CLUSTERS_SHOWN + 4)).is_some_and(|l| l.ends_with(" 0")),
            "{text}"
        );
        assert!(line(&text, "c004").is_some_and(|l| l.ends_with(" 5")), "{text}");
        assert!(line(&text, "_other").is_some_and(|l| l.ends_with(" 10")), "{text}");
    }
}
