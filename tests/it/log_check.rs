//! Reading a store's whole log back for checkers: asserts that seq is dense from 1 to the head
//! and that every task's version starts at 1 and grows by exactly one, and indexes the log by
//! task version and by the request id in each record's `Cause`.
//! Does not judge what the records mean for a workload (see `crash_loop`, `linearizability`).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use taskledger::proto::log::event::Kind;
use taskledger::proto::log::LogRecord;
use taskledger::store::Store;

/// One task version as the log wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionAt {
    pub seq: u64,
    pub request_id: String,
    /// The task's lastStatus after this event.
    pub last_status: String,
}

/// The whole durable log, checked for density and indexed.
pub struct LogIndex {
    pub records: Vec<LogRecord>,
    /// Task ARN → version → where it was written.
    pub versions: BTreeMap<String, BTreeMap<i64, VersionAt>>,
    /// Request id → the seqs written under it, ascending.
    pub by_request: HashMap<String, Vec<u64>>,
}

impl LogIndex {
    /// Reads and checks the log of `store`; `context` prefixes every failure.
    pub fn read(store: &Store, context: &str) -> LogIndex {
        let head = store.head_seq();
        let records = store.read_log(1, usize::MAX).expect("the log reads back");
        assert_eq!(
            records.len() as u64,
            head,
            "{context}: the log holds {} records, the head is {head}",
            records.len()
        );
        let mut versions: BTreeMap<String, BTreeMap<i64, VersionAt>> = BTreeMap::new();
        let mut by_request: HashMap<String, Vec<u64>> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.seq, i as u64 + 1, "{context}: seq is not dense at {}", i + 1);
            let request_id = record.cause.as_ref().map(|c| c.request_id.clone()).unwrap_or_default();
            by_request.entry(request_id.clone()).or_default().push(record.seq);
            let kind = record
                .event
                .as_ref()
                .and_then(|e| e.kind.as_ref())
                .expect("a known event");
            let (arn, version, last_status) = match kind {
                Kind::TaskCreated(created) => {
                    let task = created.task.as_ref().expect("TaskCreated carries its task");
                    (
                        task.task_arn.clone().unwrap_or_default(),
                        task.version.unwrap_or_default(),
                        task.last_status.clone(),
                    )
                }
                Kind::TaskChanged(changed) => (changed.task_arn.clone(), changed.version, changed.last_status.clone()),
                _ => continue,
            };
            let task_versions = versions.entry(arn.clone()).or_default();
            let previous = task_versions
                .last_key_value()
                .map(|(v, at)| (*v, at.last_status.clone()));
            let expected = previous.as_ref().map_or(1, |(v, _)| v + 1);
            assert_eq!(
                version, expected,
                "{context}: seq {} gives {arn} version {version}, expected {expected}",
                record.seq
            );
            let last_status = last_status
                .or_else(|| previous.map(|(_, status)| status))
                .unwrap_or_default();
            task_versions.insert(
                version,
                VersionAt {
                    seq: record.seq,
                    request_id,
                    last_status,
                },
            );
        }
        LogIndex {
            records,
            versions,
            by_request,
        }
    }

    /// The seqs written under `request_id` (empty if none).
    pub fn seqs_of(&self, request_id: &str) -> &[u64] {
        self.by_request.get(request_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Where `arn` reached `version`, if the log has it.
    pub fn version(&self, arn: &str, version: i64) -> Option<&VersionAt> {
        self.versions.get(arn).and_then(|v| v.get(&version))
    }
}
