//! Reading the log as a stream: filtered pages from any seq, and subscriptions that catch up from
//! any seq and then stay live. A subscription only ever reads durable records, by seq, from the
//! log itself, so there is no switch from a catch-up source to a live one where events could be
//! lost or repeated, and a slow subscriber never slows the writer: the writer only moves the head.
//! Does not render events (see `audit`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::error::StoreResult;
use super::Store;
use crate::domain::command::{event_kind_name, event_task_id};
use crate::domain::ids::{stored_cluster_of, Scope};
use crate::proto::log::{event::Kind, Event, LogRecord};

/// Which records a reader wants. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only events about this cluster (by ARN).
    pub cluster_arn: Option<String>,
    /// Only events about this task (by id).
    pub task_id: Option<String>,
    /// Only these kinds (`TaskCreated`, `TaskChanged`, …).
    pub kinds: Vec<String>,
}

impl LogFilter {
    pub fn matches(&self, record: &LogRecord) -> bool {
        let Some(event) = record.event.as_ref() else {
            return false;
        };
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == event_kind_name(event)) {
            return false;
        }
        if let Some(task_id) = &self.task_id {
            if event_task_id(event) != Some(task_id.as_str()) {
                return false;
            }
        }
        if let Some(cluster_arn) = &self.cluster_arn {
            if event_cluster_arn(event).as_deref() != Some(cluster_arn.as_str()) {
                return false;
            }
        }
        true
    }
}

/// The ARN of the cluster an event is about, if it is about one.
pub fn event_cluster_arn(event: &Event) -> Option<String> {
    let arn = match event.kind.as_ref()? {
        Kind::TaskCreated(e) => return e.task.as_ref()?.cluster_arn.clone(),
        Kind::TaskChanged(e) => e.task_arn.as_str(),
        Kind::TagsChanged(e) => e.resource_arn.as_str(),
        Kind::ClientTokenRecorded(e) => return Some(e.cluster_arn.clone()),
        Kind::TasksExpired(e) => e.task_arns.first()?.as_str(),
        Kind::ClusterCreated(e) => return e.cluster.as_ref()?.cluster_arn.clone(),
        Kind::ClusterDeleted(e) => return Some(e.cluster_arn.clone()),
        Kind::ContainerInstanceRegistered(e) => e.container_instance.as_ref()?.container_instance_arn.as_deref()?,
        Kind::ContainerInstanceDeregistered(e) => e.container_instance_arn.as_str(),
        Kind::ContainerInstanceStatusChanged(e) => e.container_instance_arn.as_str(),
        Kind::AttributesChanged(e) => e.container_instance_arn.as_str(),
        Kind::TaskDefinitionRegistered(_) | Kind::TaskDefinitionDeregistered(_) | Kind::TaskDefinitionDeleted(_) => {
            return None
        }
    };
    let (scope, cluster): (Scope, String) = stored_cluster_of(arn)?;
    Some(scope.cluster_arn(&cluster))
}

/// A page of the log: the matching records, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    pub records: Vec<LogRecord>,
    /// The seq to read from next (everything before it was examined).
    pub next_seq: u64,
    /// The durable head when the page was read.
    pub head: u64,
}

/// Records examined per page at most, matching or not, so that a selective filter still returns.
const SCAN_BUDGET: usize = 65_536;
const READ_CHUNK: usize = 512;

impl Store {
    /// Up to `limit` durable records matching `filter`, from `from` on.
    pub fn read_log_page(&self, from: u64, limit: usize, filter: &LogFilter) -> StoreResult<LogPage> {
        let head = self.head_seq();
        let mut next = from.max(1);
        let mut records = Vec::new();
        let mut scanned = 0;
        while next <= head && records.len() < limit && scanned < SCAN_BUDGET {
            let chunk = self.read_log(next, READ_CHUNK.min(SCAN_BUDGET - scanned))?;
            if chunk.is_empty() {
                break;
            }
            for record in chunk {
                scanned += 1;
                next = record.seq + 1;
                if filter.matches(&record) {
                    records.push(record);
                    if records.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(LogPage {
            records,
            next_seq: next,
            head,
        })
    }

    /// Follows the log from `from` (or from the head when `None`): every durable record after it,
    /// in order, then whatever is committed later.
    pub fn subscribe(&self, from: Option<u64>, filter: LogFilter) -> Subscription {
        let next = from.unwrap_or_else(|| self.head_seq() + 1).max(1);
        Subscription {
            store: self.clone(),
            next,
            filter,
            buffer: VecDeque::new(),
            checkpoint_every: Duration::from_secs(1),
            last_delivery: Instant::now(),
        }
    }
}

/// What a subscription delivers.
// Almost every delivery is a record; boxing it would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Record(LogRecord),
    /// Everything up to `seq` was examined (and delivered if it matched): resume from `seq + 1`.
    Checkpoint {
        seq: u64,
    },
}

/// A position in the log that follows it. See [`Store::subscribe`].
pub struct Subscription {
    store: Store,
    next: u64,
    filter: LogFilter,
    buffer: VecDeque<LogRecord>,
    checkpoint_every: Duration,
    last_delivery: Instant,
}

impl Subscription {
    /// How often a checkpoint is delivered while nothing else is (default one second).
    pub fn with_checkpoint_interval(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
    }

    /// The next seq this subscription will examine.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next delivery if one is ready without waiting for the head to move (it may still read
    /// the log): for callers that read on a blocking thread and wait elsewhere.
    pub fn try_next(&mut self) -> StoreResult<Option<Delivery>> {
        self.poll()
    }

    /// The next delivery if one is ready without waiting.
    fn poll(&mut self) -> StoreResult<Option<Delivery>> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.last_delivery = Instant::now();
                return Ok(Some(Delivery::Record(record)));
            }
            if self.last_delivery.elapsed() >= self.checkpoint_every {
                self.last_delivery = Instant::now();
                return Ok(Some(Delivery::Checkpoint { seq: self.next - 1 }));
            }
            if self.next > self.store.head_seq() {
                return Ok(None);
            }
            // Bounded: one chunk at a time, whatever the backlog.
            let page = self.store.read_log_page(self.next, READ_CHUNK, &self.filter)?;
            self.next = page.next_seq;
            self.buffer.extend(page.records);
        }
    }

    fn wait_budget(&self) -> Duration {
        self.checkpoint_every.saturating_sub(self.last_delivery.elapsed())
    }

    /// Blocks until the next delivery (a record, or a checkpoint when the interval passes).
    pub fn next_blocking(&mut self) -> StoreResult<Delivery> {
        loop {
            if let Some(delivery) = self.poll()? {
                return Ok(delivery);
            }
            self.store.wait_for_head(self.next - 1, self.wait_budget());
        }
    }

    /// Waits, without blocking a thread, for the next delivery.
    pub async fn next(&mut self) -> StoreResult<Delivery> {
        let mut head = self.store.watch_head();
        loop {
            if let Some(delivery) = self.poll()? {
                return Ok(delivery);
            }
            let after = self.next - 1;
            let _ = tokio::time::timeout(self.wait_budget(), head.wait_for(|h| *h > after)).await;
        }
    }
}
