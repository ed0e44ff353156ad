//! The metrics taskledger reports, in one catalogue: each one's name, kind, unit and help text,
//! and the calls that record them through the `metrics` facade. Without a recorder installed
//! (an embedder that wants none) every call costs an atomic load; `taskledger serve
//! --metrics-listen` installs a Prometheus one (`api::metrics_http`). Names follow Prometheus
//! conventions: `taskledger_` prefix, base units, `_total` on counters. Labels are bounded: an
//! operation is one of ECS's names or `unknown`, an outcome `ok` or an ECS exception name, an
//! event kind one of the log's.
//! Does not serve or render anything.

use std::time::Duration;

use metrics::{counter, gauge, histogram, Unit};

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

/// One group made durable: how long the append took, its bytes and its events by kind.
pub(crate) fn group_durable(took: Duration, bytes: usize, kinds: &[(&'static str, u64)], head: u64) {
    histogram!(APPEND_SECONDS).record(took.as_secs_f64());
    counter!(APPENDED_BYTES).increment(bytes as u64);
    for &(kind, count) in kinds {
        counter!(EVENTS, "kind" => kind).increment(count);
    }
    gauge!(HEAD_SEQ).set(head as f64);
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

/// Figures read from the store when metrics are rendered rather than on every change.
pub fn store_figures(head: u64, history: u64, tasks: usize, writes_refused: bool) {
    gauge!(HEAD_SEQ).set(head as f64);
    gauge!(HISTORY_SEQ).set(history as f64);
    gauge!(TASKS).set(tasks as f64);
    gauge!(WRITES_REFUSED).set(if writes_refused { 1.0 } else { 0.0 });
}

/// Counts one open subscription for as long as it lives.
pub struct Subscriber(());

impl Subscriber {
    pub fn opened() -> Subscriber {
        gauge!(SUBSCRIBERS).increment(1.0);
        Subscriber(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        gauge!(SUBSCRIBERS).decrement(1.0);
    }
}
