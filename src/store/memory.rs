//! The views in memory: every record the fold of the log yields, and the indexes the queries
//! walk, held compactly (task records in their compact encoded form, task ids as 128-bit
//! numbers, each listing's ids in one ordered set). Queries and the writer read them through
//! `StateView`/`StateIndex`; only the writer changes them, by applying a group's `ViewBatch`
//! after the group is durable in the log. Their entries (`entries`) are the same key/value pairs
//! the first version stored in sled, so `verify` compares them byte for byte with a fold.
//! Does not read the log or decide anything.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::compact;
use super::compress::{self, RecordDictionary};
use super::engine::{Engine, EngineError, EngineResult, Entries, WriteBatch};
use super::keys;
use super::reader::SledState;
use super::views::{self, Entry};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::Scope;
use crate::domain::lifecycle::DesiredStatus;
use crate::domain::state::{task_is_stopped, StateIndex, StateView, TaskListing};
use crate::domain::MemoryState;
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};
use crate::proto::v1::TaskDefinitionStatus;

/// A task id as a map key: the 32 lowercase hex digits taskledger gives every task, as a
/// number; any other id kept as text. Ordered as the ids' text is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKey {
    /// The number's high and low 64 bits (two words rather than a `u128`, which would align the
    /// key, and every listing entry, to 32 bytes instead of 24).
    Hex([u64; 2]),
    Text(Box<str>),
}

impl TaskKey {
    pub fn of(id: &str) -> TaskKey {
        let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        match hex.then(|| u128::from_str_radix(id, 16).ok()).flatten() {
            Some(n) => TaskKey::Hex([(n >> 64) as u64, n as u64]),
            None => TaskKey::Text(id.into()),
        }
    }

    pub fn id(&self) -> String {
        match self {
            TaskKey::Hex([high, low]) => format!("{high:016x}{low:016x}"),
            TaskKey::Text(text) => text.to_string(),
        }
    }
}

impl Ord for TaskKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            // 32 hex digits compare as their numbers do.
            (TaskKey::Hex(a), TaskKey::Hex(b)) => a.cmp(b),
            (TaskKey::Text(a), TaskKey::Text(b)) => a.cmp(b),
            _ => self.id().cmp(&other.id()),
        }
    }
}

impl PartialOrd for TaskKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A task record changed by a group: its stored bytes (`None`: removed) and the listings it
/// left and joined (prefixes of `keys::task_listing`).
#[derive(Debug, Clone, Default)]
pub struct TaskWrite {
    pub id: String,
    pub record: Option<Vec<u8>>,
    pub left: Vec<Vec<u8>>,
    pub joined: Vec<Vec<u8>>,
    /// When the task stopped (seconds), before and after, if it was and is STOPPED.
    pub stopped: (Option<i64>, Option<i64>),
}

/// When a task record stopped (its `stoppedAt`, in seconds), if it is STOPPED.
pub fn stopped_at(record: &TaskRecord) -> Option<i64> {
    let task = record.task.as_ref()?;
    task_is_stopped(record).then(|| task.stopped_at.map_or(0, |t| t.seconds))
}

/// What one group (or one stretch of a fold) changes in the views.
#[derive(Debug, Clone, Default)]
pub struct ViewBatch {
    pub tasks: Vec<TaskWrite>,
    /// Every other record and index entry, keyed as in `keys`.
    pub other: WriteBatch,
}

impl ViewBatch {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.other.is_empty()
    }
}

/// The records other than tasks and their index entries, keyed as in `keys`: few next to the
/// tasks, so an ordered map of bytes, read through the same code that once read them from sled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OtherEntries(pub OrdMap<Vec<u8>, Vec<u8>>);

/// A task record's stored bytes (compressed once the views have a dictionary); shared, so a
/// snapshot of the views for a checkpoint copies no record. Serialized as one byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record(Arc<[u8]>);

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(deserializer)?;
        Ok(Record(Arc::from(bytes.into_vec())))
    }
}

/// `start..end` as the map's key type.
fn bounds(start: &[u8], end: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (Bound::Included(start.to_vec()), Bound::Excluded(end.to_vec()))
}

fn range_of<'a>(iter: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a) -> Entries<'a> {
    Box::new(iter.map(|(k, v)| Ok((k.clone(), v.clone()))))
}

impl Engine for OtherEntries {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }

    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        if start >= end {
            return Box::new(std::iter::empty());
        }
        range_of(self.0.range(bounds(start, end)))
    }

    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        if start >= end {
            return Box::new(std::iter::empty());
        }
        range_of(self.0.range(bounds(start, end)).rev())
    }

    fn apply(&self, _: WriteBatch) -> EngineResult<()> {
        Err(EngineError(
            "the in-memory views change only through Views::apply".into(),
        ))
    }

    fn sync(&self) -> EngineResult<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        Ok(0)
    }
}

/// The views at one head of the log. Cloning shares the task records (a snapshot to checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Views {
    /// The seq of the last event applied.
    pub head: u64,
    /// Task id → the task record in its compact stored form (`compact`).
    tasks: OrdMap<TaskKey, Record>,
    /// Listing prefix (`keys::task_listing`) → the ids of the tasks in it.
    listings: OrdMap<Box<[u8]>, OrdSet<TaskKey>>,
    other: OtherEntries,
    /// STOPPED tasks by when they stopped (seconds), for the retention of stopped tasks.
    stopped: OrdSet<(i64, TaskKey)>,
    /// Once trained, every task record is held compressed with it.
    #[serde(with = "compress::serde_option")]
    dictionary: Option<Arc<RecordDictionary>>,
    /// How many tasks the views held when training last found nothing to train on.
    #[serde(skip)]
    untrained_at: usize,
}

impl Views {
    /// How many task records the views hold.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// How many tasks each cluster holds, by desired status: (region, cluster, desired, count).
    /// Reads the sizes of the clusters' listings, so it costs in proportion to the clusters.
    pub fn tasks_by_cluster(&self) -> Vec<(String, String, DesiredStatus, usize)> {
        let (from, to): (&[u8], &[u8]) = (&[keys::TASK_BY_CLUSTER], &[keys::TASK_BY_CLUSTER + 1]);
        self.listings
            .range::<_, [u8]>((Bound::Included(from), Bound::Excluded(to)))
            .filter_map(|(listing, ids)| {
                let (region, cluster, desired) = keys::parse_cluster_listing(listing)?;
                Some((region, cluster, desired, ids.len()))
            })
            .collect()
    }

    /// Each ACTIVE cluster's PENDING and RUNNING tasks, as DescribeClusters counts them:
    /// (region, cluster, pending, running). Costs in proportion to the clusters.
    pub fn cluster_task_counts(&self) -> Vec<(String, String, usize, usize)> {
        let (from, to) = (vec![keys::CLUSTER], vec![keys::CLUSTER + 1]);
        self.other
            .0
            .range(from..to)
            .filter_map(|(key, bytes)| {
                let (region, name) = keys::parse_cluster(key)?;
                let record: ClusterRecord = super::codec::decode_view(key, bytes).ok()?;
                let cluster = record.cluster?;
                (cluster.status.as_deref() == Some("ACTIVE")).then_some(())?;
                let count = |n: Option<i32>| usize::try_from(n.unwrap_or(0)).unwrap_or(0);
                Some((
                    region,
                    name,
                    count(cluster.pending_tasks_count),
                    count(cluster.running_tasks_count),
                ))
            })
            .collect()
    }

    /// Applies a group's changes; the writer calls it only after the group is durable.
    pub fn apply(&mut self, batch: ViewBatch, head: u64) {
        for write in batch.tasks {
            let key = TaskKey::of(&write.id);
            for listing in write.left {
                if let Some(ids) = self.listings.get_mut(listing.as_slice()) {
                    ids.remove(&key);
                    if ids.is_empty() {
                        self.listings.remove(listing.as_slice());
                    }
                }
            }
            if let Some(at) = write.stopped.0 {
                self.stopped.remove(&(at, key.clone()));
            }
            if let Some(at) = write.stopped.1 {
                self.stopped.insert((at, key.clone()));
            }
            for listing in write.joined {
                self.listings
                    .entry(listing.into_boxed_slice())
                    .or_default()
                    .insert(key.clone());
            }
            match write.record {
                Some(bytes) => {
                    let record = self.squeeze(&bytes);
                    self.tasks.insert(key, record);
                    if self.dictionary.is_none() && self.tasks.len() >= compress::TRAIN_AT.max(2 * self.untrained_at) {
                        self.train();
                    }
                }
                None => {
                    self.tasks.remove(&key);
                }
            }
        }
        for (key, value) in batch.other.writes {
            match value {
                Some(value) => {
                    self.other.0.insert(key, value);
                }
                None => {
                    self.other.0.remove(&key);
                }
            }
        }
        self.head = self.head.max(head);
    }

    /// The views of a whole folded state.
    pub fn from_state(state: &MemoryState, head: u64) -> Views {
        let mut views = Views::default();
        let mut batch = ViewBatch::default();
        for (id, record) in &state.tasks {
            batch.tasks.push(TaskWrite {
                id: id.clone(),
                record: Some(compact::encode(record)),
                left: Vec::new(),
                joined: keys::task_listings(record),
                stopped: (None, stopped_at(record)),
            });
        }
        fn add<V: views::View>(batch: &mut WriteBatch, records: &BTreeMap<V::Id, V>) {
            for (id, record) in records {
                for (key, value) in views::entries(id, record) {
                    batch.put(key, value);
                }
            }
        }
        add(&mut batch.other, &state.clusters);
        add(&mut batch.other, &state.task_definitions);
        add(&mut batch.other, &state.families);
        add(&mut batch.other, &state.container_instances);
        add(&mut batch.other, &state.client_tokens);
        views.apply(batch, head);
        views
    }

    fn squeeze(&self, bytes: &[u8]) -> Record {
        match &self.dictionary {
            Some(dictionary) => Record(Arc::from(dictionary.compress(bytes))),
            None => Record(Arc::from(bytes)),
        }
    }

    /// A task record's compact bytes.
    fn unsqueeze<'a>(&self, record: &'a Record) -> DomainResult<std::borrow::Cow<'a, [u8]>> {
        match &self.dictionary {
            Some(dictionary) => dictionary
                .decompress(&record.0)
                .map(Into::into)
                .map_err(|e| fault(format!("a compressed task record: {e}"))),
            None => Ok((&record.0[..]).into()),
        }
    }

    /// Trains a dictionary on the records held and compresses them all with it.
    fn train(&mut self) {
        let Some(dictionary) = RecordDictionary::train(self.tasks.values().map(|r| &r.0[..])) else {
            self.untrained_at = self.tasks.len();
            return;
        };
        let keys: Vec<TaskKey> = self.tasks.keys().cloned().collect();
        for key in keys {
            if let Some(record) = self.tasks.get_mut(&key) {
                *record = Record(Arc::from(dictionary.compress(&record.0)));
            }
        }
        self.dictionary = Some(dictionary);
    }

    /// Every entry of the views, sorted by key: the task records under `T` + id, one empty entry
    /// per listing a task is in (listing prefix + id), and every other entry as it is.
    /// A record that does not decompress is given as it is held, so that it differs.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::with_capacity(self.tasks.len() * 4 + self.other.0.len());
        for (key, record) in &self.tasks {
            let bytes = self
                .unsqueeze(record)
                .map_or_else(|_| record.0.to_vec(), |b| b.into_owned());
            out.push((keys::task(&key.id()), bytes));
        }
        for (listing, ids) in &self.listings {
            for id in ids {
                out.push(([&listing[..], id.id().as_bytes()].concat(), Vec::new()));
            }
        }
        out.extend(self.other.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Up to `limit` ids of the tasks STOPPED at or before `cutoff` (seconds), oldest first.
    pub fn stopped_before(&self, cutoff: i64, limit: usize) -> Vec<String> {
        self.stopped
            .iter()
            .take_while(|(at, _)| *at <= cutoff)
            .take(limit)
            .map(|(_, key)| key.id())
            .collect()
    }

    fn others(&self) -> SledState<'_> {
        SledState { engine: &self.other }
    }

    fn listing(&self, prefix: &[u8]) -> Option<&OrdSet<TaskKey>> {
        self.listings.get(prefix)
    }
}

fn fault(e: impl std::fmt::Display) -> DomainError {
    DomainError::server(format!("the in-memory views are damaged: {e}"))
}

impl StateView for Views {
    fn cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<ClusterRecord>> {
        self.others().cluster(scope, name)
    }

    fn active_cluster_count(&self, scope: &Scope) -> DomainResult<usize> {
        self.others().active_cluster_count(scope)
    }

    fn task(&self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        match self.tasks.get(&TaskKey::of(task_id)) {
            Some(record) => compact::decode(&self.unsqueeze(record)?).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    fn task_definition(
        &self,
        scope: &Scope,
        family: &str,
        revision: u32,
    ) -> DomainResult<Option<TaskDefinitionRecord>> {
        self.others().task_definition(scope, family, revision)
    }

    fn family(&self, scope: &Scope, family: &str) -> DomainResult<Option<FamilyRecord>> {
        self.others().family(scope, family)
    }

    fn latest_active_revision(&self, scope: &Scope, family: &str) -> DomainResult<Option<u32>> {
        self.others().latest_active_revision(scope, family)
    }

    fn container_instance(&self, instance_id: &str) -> DomainResult<Option<ContainerInstanceRecord>> {
        self.others().container_instance(instance_id)
    }

    fn container_instance_ids(&self, scope: &Scope, cluster: &str) -> DomainResult<Vec<String>> {
        self.others().container_instance_ids(scope, cluster)
    }

    fn unstopped_task_ids_on_instance(&self, instance_id: &str) -> DomainResult<Vec<String>> {
        let mut ids = Vec::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            for key in self
                .listing(&keys::tasks_on_instance(instance_id, desired))
                .into_iter()
                .flatten()
            {
                let id = key.id();
                if self.task(&id)?.is_some_and(|r| !task_is_stopped(&r)) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn client_token(&self, cluster_arn: &str, token: &str) -> DomainResult<Option<ClientTokenRecord>> {
        self.others().client_token(cluster_arn, token)
    }
}

impl StateIndex for Views {
    fn task_ids(&self, listing: &TaskListing, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        let Some(ids) = self.listing(&keys::task_listing(listing)) else {
            return Ok(Vec::new());
        };
        let start = match after {
            Some(after) => Bound::Excluded(TaskKey::of(after)),
            None => Bound::Unbounded,
        };
        Ok(ids
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(TaskKey::id)
            .collect())
    }

    fn cluster_names(&self, scope: &Scope, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        self.others().cluster_names(scope, after, limit)
    }

    fn task_definition_revisions(
        &self,
        scope: &Scope,
        status: TaskDefinitionStatus,
        family: Option<&str>,
        descending: bool,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> DomainResult<Vec<(String, u32)>> {
        self.others()
            .task_definition_revisions(scope, status, family, descending, after, limit)
    }

    fn family_names(
        &self,
        scope: &Scope,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> DomainResult<Vec<String>> {
        self.others().family_names(scope, prefix, after, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_keys_order_as_their_ids_do() {
        let ids = [
            "0000000000000000000000000000000a",
            "00000000000000000000000000000010",
            "0a",
            "ffffffffffffffffffffffffffffffff",
            "zz",
            "ABCDEF00000000000000000000000000",
        ];
        for a in ids {
            assert_eq!(TaskKey::of(a).id(), a);
            for b in ids {
                assert_eq!(TaskKey::of(a).cmp(&TaskKey::of(b)), a.cmp(b), "{a} vs {b}");
            }
        }
        assert!(matches!(TaskKey::of(ids[0]), TaskKey::Hex([0, 10])));
        assert!(matches!(TaskKey::of(ids[5]), TaskKey::Text(_)));
    }

    fn task(i: usize) -> (String, TaskRecord) {
        let id = format!("{i:032x}");
        let task = crate::proto::v1::Task {
            task_arn: Some(format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}")),
            cluster_arn: Some("arn:aws:ecs:us-east-1:123456789012:cluster/prod".into()),
            last_status: Some(["PENDING", "RUNNING", "STOPPED"][i % 3].into()),
            group: Some("family:web".into()),
            version: Some(i as i64 % 5 + 1),
            ..Default::default()
        };
        let record = TaskRecord {
            task: Some(task),
            history: vec![i as u64 + 1],
            ..Default::default()
        };
        (id, record)
    }

    fn views_of(tasks: usize) -> Views {
        let mut views = Views::default();
        for i in 0..tasks {
            let (id, record) = task(i);
            let batch = ViewBatch {
                tasks: vec![TaskWrite {
                    id,
                    record: Some(compact::encode(&record)),
                    joined: keys::task_listings(&record),
                    ..Default::default()
                }],
                ..Default::default()
            };
            views.apply(batch, i as u64 + 1);
        }
        views
    }

    #[test]
    fn records_are_compressed_once_there_are_enough_and_read_back_the_same() {
        let few = views_of(compress::TRAIN_AT - 1);
        assert!(few.dictionary.is_none());
        let many = views_of(compress::TRAIN_AT + 100);
        let dictionary = many.dictionary.as_ref().expect("trained");
        let held: usize = many.tasks.values().map(|r| r.0.len()).sum();
        let plain: usize = (0..many.tasks.len()).map(|i| compact::encode(&task(i).1).len()).sum();
        assert!(held * 2 < plain, "{held} bytes held for {plain} plain");
        for i in [0, 1, compress::TRAIN_AT - 1, compress::TRAIN_AT + 99] {
            let (id, record) = task(i);
            assert_eq!(many.task(&id).unwrap(), Some(record));
        }
        // Entries give the plain compact bytes, as the views of a fold without a dictionary do.
        let entries = many.entries();
        let (id, record) = task(7);
        let key = keys::task(&id);
        assert_eq!(
            entries.iter().find(|(k, _)| *k == key).unwrap().1,
            compact::encode(&record)
        );
        // A checkpoint's round trip keeps the dictionary and the records.
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&many, config).unwrap();
        let (back, _): (Views, _) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back.dictionary.as_deref().map(|d| d.raw()), Some(dictionary.raw()));
        assert_eq!(back.entries(), entries);
        // A record that no longer decompresses is a server fault, not a panic, and differs.
        let mut damaged = many.clone();
        let key = TaskKey::of(&task(3).0);
        damaged.tasks.insert(key, Record(Arc::from(&b"not zstd"[..])));
        assert!(damaged.task(&task(3).0).is_err());
        assert_ne!(damaged.entries(), entries);
    }
}
