//! `LedgerService`: the tonic adapter of `taskledger.v1.Ledger` (proto/taskledger/v1/ledger.proto),
//! the audit and replay service beside `Ecs`. Per call it works out the scope and request id the
//! way `EcsService` does, opens one span, validates paging and filters, and calls `crate::audit`
//! or the store on tokio's blocking pool; `Subscribe` runs one task per stream that pulls from the
//! log (reading on the blocking pool, waiting on the head's watch channel) into a small bounded
//! channel, and stops when the client leaves or the server shuts down.
//! Does not hold audit logic (see `audit`) or read storage itself (see `store`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::auth::{cluster_of_arn, Auth, Reach};
use super::service::{authenticate, echo_request_id, request_id_of, rpc_span, scope_of};
use super::status;
use crate::audit::{eventbridge, history, AsOf, HistoryEntry as AuditEntry};
use crate::domain::command::event_kind_name;
use crate::domain::ids::{parse_cluster, parse_task_ref, printable};
use crate::domain::{DomainError, EcsException, Scope};
use crate::proto::log::LogRecord;
use crate::proto::v1::describe_tasks_as_of_request::AsOf as AsOfField;
use crate::proto::v1::ledger_server::Ledger;
use crate::proto::v1::subscribe_response::Item;
use crate::proto::v1::*;
use crate::store::subscribe::{self, Delivery, Subscription};
use crate::store::{Store, StoreError, StoreResult};

/// Page size when a request does not name one, and the most a request may ask for.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// A page stops growing past this many encoded bytes (at least one entry is always returned),
/// so that responses stay under the 4 MiB clients accept by default.
const PAGE_BYTES: usize = 2 * 1024 * 1024;
/// Messages a subscription may have ready before it waits for the client: a slow client only
/// slows its own stream, which reads the log again when it catches up.
const SUBSCRIPTION_BUFFER: usize = 64;
/// Open subscriptions at once; more are refused with `LimitExceededException`.
const MAX_SUBSCRIPTIONS: usize = 1024;
const CHECKPOINT_DEFAULT: Duration = Duration::from_secs(1);
const CHECKPOINT_MS_RANGE: std::ops::RangeInclusive<u32> = 10..=3_600_000;

/// The event kinds a filter may name.
pub use crate::domain::command::EVENT_KINDS;

/// The `taskledger.v1.Ledger` service over one store.
#[derive(Clone)]
pub struct LedgerService {
    store: Store,
    default_scope: Scope,
    request_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    subscriptions: Arc<Semaphore>,
    auth: Auth,
}

/// What a call runs with besides its request.
struct Call {
    scope: Scope,
    request_id: String,
}

impl LedgerService {
    /// A service answering in `default_scope` unless a call names another region. Unary reads
    /// that take longer than `request_timeout` answer `DEADLINE_EXCEEDED` (Verify is not bounded).
    /// Open subscriptions end, after a last checkpoint, once `shutdown` turns true.
    pub fn new(
        store: Store,
        default_scope: Scope,
        request_timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> LedgerService {
        LedgerService {
            store,
            default_scope,
            request_timeout,
            shutdown,
            subscriptions: Arc::new(Semaphore::new(MAX_SUBSCRIPTIONS)),
            auth: Auth::open(),
        }
    }

    /// Only the callers of `auth` may call, each as its roles allow.
    pub fn with_auth(self, auth: Auth) -> LedgerService {
        LedgerService { auth, ..self }
    }

    /// Runs one RPC: context from metadata, a span, the work (under the timeout when given), the
    /// outcome logged and mapped, the request id echoed either way.
    async fn call<Req, Resp, Run, Fut>(
        &self,
        request: Request<Req>,
        timeout: Option<Duration>,
        run: Run,
    ) -> Result<Response<Resp>, Status>
    where
        Req: LedgerRequest,
        Resp: Send,
        Run: FnOnce(LedgerService, Call, Req) -> Fut + Send,
        Fut: Future<Output = StoreResult<Resp>> + Send,
    {
        let request_id = request_id_of(request.metadata());
        let span = rpc_span(Req::OPERATION, request.get_ref().cluster(), &request_id);
        super::trace_context::continue_trace(&span, request.metadata());
        let outcome = async {
            let scope =
                scope_of(&self.default_scope, request.metadata()).map_err(|e| status::to_status(&e, &request_id))?;
            authenticate(&self.auth, &request, &scope, Req::OPERATION, request.get_ref().reach())
                .map_err(|refusal| status::refused(&refusal, &request_id))?;
            let call = Call {
                scope,
                request_id: request_id.clone(),
            };
            let work = run(self.clone(), call, request.into_inner());
            let result = match timeout {
                Some(timeout) => match tokio::time::timeout(timeout, work).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::info!(timeout_ms = timeout.as_millis() as u64, "timed out");
                        return Err(status::deadline_exceeded(Req::OPERATION, timeout, &request_id));
                    }
                },
                None => work.await,
            };
            result.map_err(|error| {
                tracing::info!(exception = error.exception().name(), "failed: {error}");
                status::to_status(&error, &request_id)
            })
        }
        .instrument(span)
        .await;
        echo_request_id(outcome, &request_id)
    }

    /// Validates a Subscribe request and starts the task that feeds its stream.
    fn start_subscription(&self, call: Call, request: SubscribeRequest) -> StoreResult<SubscriptionStream> {
        let every = checkpoint_interval(request.checkpoint_interval_ms)?;
        let format = log_format(request.format)?;
        let filter = log_filter(&call.scope, request.filter)?;
        let from = match request.from_seq {
            0 => None,
            seq => Some(within_log(&self.store, "fromSeq", seq)?),
        };
        let permit = Arc::clone(&self.subscriptions).try_acquire_owned().map_err(|_| {
            DomainError::new(
                EcsException::LimitExceededException,
                format!("The server already serves {MAX_SUBSCRIPTIONS} subscriptions; close one or retry later."),
            )
        })?;
        let subscription = self.store.subscribe(from, filter).with_checkpoint_interval(every);
        let delivered = subscription.position() - 1;
        tracing::info!(from_seq = delivered + 1, "subscription started");
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let pump = Pump {
            store: self.store.clone(),
            format,
            every,
            sender,
            shutdown: self.shutdown.clone(),
            request_id: call.request_id,
            delivered,
            _permit: permit,
            counted: crate::metrics::Subscriber::opened(delivered),
        };
        tokio::spawn(pump.run(subscription).instrument(tracing::Span::current()));
        Ok(SubscriptionStream { receiver })
    }
}

/// Runs `work` on tokio's blocking pool (store reads may touch the disk).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Storage {
            context: "running a ledger call",
            message: format!("the call did not complete: {error}"),
        })?
}

#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn task_history(
        &self,
        request: Request<TaskHistoryRequest>,
    ) -> Result<Response<TaskHistoryResponse>, Status> {
        self.call(request, Some(self.request_timeout), |service, call, request| {
            blocking(move || task_history(&service.store, &call.scope, request))
        })
        .await
    }

    async fn describe_tasks_as_of(
        &self,
        request: Request<DescribeTasksAsOfRequest>,
    ) -> Result<Response<DescribeTasksResponse>, Status> {
        self.call(request, Some(self.request_timeout), |service, call, request| {
            blocking(move || describe_tasks_as_of(&service.store, &call.scope, request))
        })
        .await
    }

    async fn read_log(&self, request: Request<ReadLogRequest>) -> Result<Response<ReadLogResponse>, Status> {
        self.call(request, Some(self.request_timeout), |service, call, request| {
            blocking(move || read_log(&service.store, &call.scope, request))
        })
        .await
    }

    type SubscribeStream = SubscriptionStream;

    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<SubscriptionStream>, Status> {
        self.call(
            request,
            Some(self.request_timeout),
            |service, call, request| async move { service.start_subscription(call, request) },
        )
        .await
    }

    async fn verify(&self, request: Request<VerifyRequest>) -> Result<Response<VerifyResponse>, Status> {
        // Not under the request timeout: verify holds the writer until it is done either way.
        self.call(request, None, |service, _call, _request| {
            blocking(move || {
                let report = service
                    .store
                    .verify(|done, total| tracing::debug!(done, total, "verify: replaying the log"))?;
                tracing::info!(
                    events = report.events,
                    differences = report.differences,
                    "verify finished"
                );
                Ok(VerifyResponse {
                    events: report.events,
                    entries_checked: report.entries_checked,
                    differences: report.differences,
                    first_differences: report
                        .first_differences
                        .into_iter()
                        .map(|d| ViewDifference {
                            key: d.key,
                            kind: d.kind.to_string(),
                        })
                        .collect(),
                    checkpoints: report
                        .checkpoints
                        .into_iter()
                        .map(|c| CheckpointCheck {
                            seq: c.seq,
                            problem: c.problem.unwrap_or_default(),
                        })
                        .collect(),
                })
            })
        })
        .await
    }
}

fn task_history(store: &Store, scope: &Scope, request: TaskHistoryRequest) -> StoreResult<TaskHistoryResponse> {
    let limit = page_size(request.max_results)?;
    let task = match request.cluster.as_deref() {
        None => request.task,
        Some(cluster) => {
            let cluster = parse_cluster(scope, "cluster", Some(cluster))?;
            let reference = parse_task_ref(scope, "task", &request.task)?;
            if let Some(named) = reference.cluster.as_deref().filter(|named| *named != cluster) {
                return Err(DomainError::invalid_parameter(
                    "task",
                    format!("The task ARN names cluster '{named}', but cluster is '{cluster}'."),
                )
                .into());
            }
            scope.task_arn(&cluster, &reference.id)
        }
    };
    // One more than asked, to know whether another page follows.
    let entries = history::task_history(store, scope, &task, request.after_seq, limit + 1)?;
    let found = entries.len();
    let mut response = TaskHistoryResponse::default();
    let mut bytes = 0;
    for entry in entries.into_iter().take(limit) {
        let entry = history_entry(entry);
        bytes += entry.encoded_len();
        if bytes > PAGE_BYTES && !response.entries.is_empty() {
            break;
        }
        response.entries.push(entry);
    }
    if response.entries.len() < found {
        response.next_after_seq = response.entries.last().map(|entry| entry.seq);
    }
    Ok(response)
}

fn history_entry(entry: AuditEntry) -> HistoryEntry {
    let AuditEntry { record, task } = entry;
    HistoryEntry {
        seq: record.seq,
        version: task.version.unwrap_or(0),
        time: record.time,
        kind: record.event.as_ref().map_or("Unknown", event_kind_name).to_string(),
        last_status: task.last_status.clone().unwrap_or_default(),
        desired_status: task.desired_status.clone().unwrap_or_default(),
        cause: record.cause,
        task: Some(task),
        event: record.event,
    }
}

fn describe_tasks_as_of(
    store: &Store,
    scope: &Scope,
    request: DescribeTasksAsOfRequest,
) -> StoreResult<DescribeTasksResponse> {
    let as_of = match request.as_of {
        Some(AsOfField::Seq(seq)) => {
            let head = store.head_seq();
            if seq > head {
                // Answering with today's state would change once the log reaches `seq`.
                return Err(DomainError::invalid_parameter(
                    "asOf.seq",
                    format!("asOf.seq {seq} is beyond the end of the log (the head is seq {head})."),
                )
                .into());
            }
            AsOf::Seq(seq)
        }
        Some(AsOfField::Time(time)) => AsOf::Time(time),
        None => {
            return Err(DomainError::invalid_parameter(
                "asOf",
                "asOf is required: give the seq or the time to describe the tasks at.",
            )
            .into())
        }
    };
    let describe = DescribeTasksRequest {
        cluster: request.cluster,
        tasks: request.tasks,
        include: request.include,
    };
    history::describe_tasks_as_of(store, scope, &describe, as_of)
}

fn read_log(store: &Store, scope: &Scope, request: ReadLogRequest) -> StoreResult<ReadLogResponse> {
    let limit = page_size(request.max_results)?;
    let format = log_format(request.format)?;
    let filter = log_filter(scope, request.filter)?;
    let from = within_log(store, "fromSeq", request.from_seq.max(1))?;
    let page = store.read_log_page(from, limit, &filter)?;
    let mut response = ReadLogResponse {
        records: Vec::with_capacity(page.records.len()),
        next_seq: page.next_seq,
        head: page.head,
    };
    let mut bytes = 0;
    for record in page.records {
        let seq = record.seq;
        let entry = log_entry(store, record, format)?;
        bytes += entry.encoded_len();
        if bytes > PAGE_BYTES && !response.records.is_empty() {
            // Everything before this record was examined; the next page starts with it.
            response.next_seq = seq;
            break;
        }
        response.records.push(entry);
    }
    Ok(response)
}

/// A record as the wire carries it, rendered as EventBridge JSON when asked and when it is a
/// task state change.
fn log_entry(store: &Store, record: LogRecord, format: LogFormat) -> StoreResult<LogEntry> {
    let eventbridge_json = match format {
        LogFormat::Eventbridge if eventbridge::is_task_state_change(&record) => {
            eventbridge::render(store, std::slice::from_ref(&record))?
                .pop()
                .flatten()
                .map(|event| event.to_string())
        }
        LogFormat::Eventbridge | LogFormat::Typed | LogFormat::Unspecified => None,
    };
    Ok(LogEntry {
        seq: record.seq,
        record: Some(record),
        eventbridge_json,
    })
}

/// `seq` when the log has reached it (or it is the next one to be written).
fn within_log(store: &Store, field: &str, seq: u64) -> StoreResult<u64> {
    let head = store.head_seq();
    if seq > head.saturating_add(1) {
        return Err(DomainError::invalid_parameter(
            field,
            format!("{field} {seq} is beyond the end of the log (the head is seq {head})."),
        )
        .into());
    }
    Ok(seq)
}

fn page_size(max_results: Option<i32>) -> StoreResult<usize> {
    match max_results {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE as i32).contains(&n) => Ok(n as usize),
        Some(n) => Err(DomainError::invalid_parameter(
            "maxResults",
            format!("maxResults must be between 1 and {MAX_PAGE} (got {n})."),
        )
        .into()),
    }
}

fn log_format(format: i32) -> StoreResult<LogFormat> {
    LogFormat::try_from(format).map_err(|_| {
        DomainError::invalid_parameter(
            "format",
            format!("format {format} is unknown: use LOG_FORMAT_TYPED or LOG_FORMAT_EVENTBRIDGE."),
        )
        .into()
    })
}

fn checkpoint_interval(milliseconds: Option<u32>) -> StoreResult<Duration> {
    match milliseconds {
        None => Ok(CHECKPOINT_DEFAULT),
        Some(ms) if CHECKPOINT_MS_RANGE.contains(&ms) => Ok(Duration::from_millis(u64::from(ms))),
        Some(ms) => Err(DomainError::invalid_parameter(
            "checkpointIntervalMs",
            format!(
                "checkpointIntervalMs must be between {} and {} (got {ms}).",
                CHECKPOINT_MS_RANGE.start(),
                CHECKPOINT_MS_RANGE.end()
            ),
        )
        .into()),
    }
}

/// The store's filter for a request's: names resolved in the call's scope, kinds checked.
fn log_filter(scope: &Scope, filter: Option<LogFilter>) -> StoreResult<subscribe::LogFilter> {
    let filter = filter.unwrap_or_default();
    let mut cluster_arn = match filter.cluster.as_deref() {
        Some(cluster) => Some(scope.cluster_arn(&parse_cluster(scope, "filter.cluster", Some(cluster))?)),
        None => None,
    };
    let mut task_id = None;
    if let Some(task) = filter.task.as_deref() {
        let reference = parse_task_ref(scope, "filter.task", task)?;
        if let Some(cluster) = reference.cluster.as_deref() {
            let named = scope.cluster_arn(cluster);
            if cluster_arn.as_ref().is_some_and(|arn| *arn != named) {
                return Err(DomainError::invalid_parameter(
                    "filter.task",
                    format!("filter.task names cluster '{cluster}', which is not filter.cluster."),
                )
                .into());
            }
            cluster_arn = Some(named);
        }
        task_id = Some(reference.id);
    }
    for (i, kind) in filter.kinds.iter().enumerate() {
        if !EVENT_KINDS.contains(&kind.as_str()) {
            return Err(DomainError::invalid_parameter(
                format!("filter.kinds[{i}]"),
                format!(
                    "'{}' is not an event kind; use one of {}.",
                    printable(kind),
                    EVENT_KINDS.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(subscribe::LogFilter {
        cluster_arn,
        task_id,
        kinds: filter.kinds,
    })
}

/// The stream of one Subscribe call: what its pump task has ready.
pub struct SubscriptionStream {
    receiver: mpsc::Receiver<Result<SubscribeResponse, Status>>,
}

impl Stream for SubscriptionStream {
    type Item = Result<SubscribeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

/// Moves one subscription's deliveries into its stream's bounded channel. The log is read (and
/// rendered) on the blocking pool, like every other read of the API; waiting for new commits
/// happens here, on the head's watch channel, without holding a thread.
struct Pump {
    store: Store,
    format: LogFormat,
    /// How often the subscription delivers a checkpoint while nothing else is.
    every: Duration,
    sender: mpsc::Sender<Result<SubscribeResponse, Status>>,
    shutdown: watch::Receiver<bool>,
    request_id: String,
    /// Everything up to this seq has been sent (or examined and dropped by the filter).
    delivered: u64,
    _permit: OwnedSemaphorePermit,
    /// Counts the subscription in `taskledger_subscribers` while it lives, and where it is.
    counted: crate::metrics::Subscriber,
}

/// Deliveries read per trip to the blocking pool.
const PUMP_BATCH: usize = 256;

/// What the subscription has ready now (at most `PUMP_BATCH`), as stream items with their seq.
fn ready_items(store: &Store, subscription: &mut Subscription, format: LogFormat) -> StoreResult<Vec<(Item, u64)>> {
    let mut items = Vec::new();
    while items.len() < PUMP_BATCH {
        match subscription.try_next()? {
            None => break,
            Some(Delivery::Record(record)) => {
                let seq = record.seq;
                items.push((Item::Entry(log_entry(store, record, format)?), seq));
            }
            Some(Delivery::Checkpoint { seq }) => {
                let head = store.head_seq();
                items.push((Item::Checkpoint(Checkpoint { seq, head }), seq));
            }
        }
    }
    Ok(items)
}

impl Pump {
    async fn run(mut self, mut subscription: Subscription) {
        let mut head = self.store.watch_head();
        let reason = 'pump: loop {
            let (store, format) = (self.store.clone(), self.format);
            let step = tokio::task::spawn_blocking(move || {
                let ready = ready_items(&store, &mut subscription, format);
                (subscription, ready)
            });
            let items = match step.await {
                Ok((returned, Ok(items))) => {
                    subscription = returned;
                    items
                }
                Ok((_, Err(error))) => break self.fail(&error).await,
                Err(error) => {
                    let error = StoreError::Storage {
                        context: "reading the log for a subscription",
                        message: format!("the read did not complete: {error}"),
                    };
                    break self.fail(&error).await;
                }
            };
            if items.is_empty() {
                // Caught up: wait for a commit, or until a checkpoint is due.
                let after = subscription.position() - 1;
                self.counted.at(after);
                let stopping = tokio::select! {
                    biased;
                    () = self.sender.closed() => break "the subscriber left",
                    _ = self.shutdown.wait_for(|stop| *stop) => true,
                    _ = tokio::time::timeout(self.every, head.wait_for(|head| *head > after)) => false,
                };
                if stopping {
                    break self.say_goodbye().await;
                }
                continue;
            }
            for (item, position) in items {
                let message = SubscribeResponse { item: Some(item) };
                // A full buffer waits for the client, but not past shutdown.
                let sent = tokio::select! {
                    biased;
                    sent = self.sender.send(Ok(message)) => Some(sent.is_ok()),
                    _ = self.shutdown.wait_for(|stop| *stop) => None,
                };
                match sent {
                    Some(true) => {
                        self.delivered = self.delivered.max(position);
                        self.counted.at(self.delivered);
                    }
                    Some(false) => break 'pump "the subscriber left",
                    None => break 'pump self.say_goodbye().await,
                }
            }
        };
        tracing::info!(delivered = self.delivered, "subscription ended: {reason}");
    }

    /// A last checkpoint, then `UNAVAILABLE` naming where to resume.
    async fn say_goodbye(&self) -> &'static str {
        let checkpoint = Checkpoint {
            seq: self.delivered,
            head: self.store.head_seq(),
        };
        let item = Some(Item::Checkpoint(checkpoint));
        if self.sender.send(Ok(SubscribeResponse { item })).await.is_ok() {
            let _ = self
                .sender
                .send(Err(status::shutting_down(self.delivered + 1, &self.request_id)))
                .await;
        }
        "the server is shutting down"
    }

    async fn fail(&self, error: &StoreError) -> &'static str {
        let _ = self.sender.send(Err(status::to_status(error, &self.request_id))).await;
        "the store failed"
    }
}

/// What every Ledger request tells the span and the caller check before it runs.
trait LedgerRequest: Send + 'static {
    const OPERATION: &'static str;
    fn cluster(&self) -> Option<&str>;
    fn reach(&self) -> Reach<'_>;
}

/// A task named by bare id and no cluster is looked up in every cluster.
fn task_reach<'a>(cluster: Option<&'a str>, task: &'a str) -> Reach<'a> {
    Reach::Named(cluster.or_else(|| cluster_of_arn(task)))
}

impl LedgerRequest for TaskHistoryRequest {
    const OPERATION: &'static str = "TaskHistory";
    fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }
    fn reach(&self) -> Reach<'_> {
        task_reach(self.cluster.as_deref(), &self.task)
    }
}

impl LedgerRequest for DescribeTasksAsOfRequest {
    const OPERATION: &'static str = "DescribeTasksAsOf";
    fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Cluster(self.cluster.as_deref())
    }
}

impl LedgerRequest for ReadLogRequest {
    const OPERATION: &'static str = "ReadLog";
    fn cluster(&self) -> Option<&str> {
        self.filter.as_ref()?.cluster.as_deref()
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Named(self.cluster())
    }
}

impl LedgerRequest for SubscribeRequest {
    const OPERATION: &'static str = "Subscribe";
    fn cluster(&self) -> Option<&str> {
        self.filter.as_ref()?.cluster.as_deref()
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Named(self.cluster())
    }
}

impl LedgerRequest for VerifyRequest {
    const OPERATION: &'static str = "Verify";
    fn cluster(&self) -> Option<&str> {
        None
    }
    fn reach(&self) -> Reach<'_> {
        Reach::Region
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_accept_exactly_the_event_kinds_of_the_log() {
        let pool = prost_reflect::DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let event = pool.get_message_by_name("taskledger.log.v1.Event").expect("Event");
        let mut kinds: Vec<String> = event
            .fields()
            .map(|field| {
                field
                    .kind()
                    .as_message()
                    .expect("every kind is a message")
                    .name()
                    .to_string()
            })
            .collect();
        let mut known: Vec<String> = EVENT_KINDS.iter().map(|k| k.to_string()).collect();
        kinds.sort();
        known.sort();
        assert_eq!(kinds, known);
    }

    #[test]
    fn page_sizes_outside_one_to_a_thousand_are_refused() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(1000)).unwrap(), 1000);
        for bad in [0, -1, 1001] {
            let error = page_size(Some(bad)).unwrap_err();
            assert_eq!(error.exception(), EcsException::InvalidParameterException);
        }
    }

    #[test]
    fn a_filter_resolves_names_in_the_call_scope_and_refuses_unknown_kinds() {
        let scope = Scope::new("eu-west-1", "123456789012").unwrap();
        let filter = LogFilter {
            cluster: Some("prod".into()),
            task: None,
            kinds: vec!["TaskChanged".into()],
        };
        let resolved = log_filter(&scope, Some(filter)).unwrap();
        assert_eq!(
            resolved.cluster_arn.as_deref(),
            Some("arn:aws:ecs:eu-west-1:123456789012:cluster/prod")
        );
        let unknown = LogFilter {
            kinds: vec!["TaskCreated".into(), "TaskExploded".into()],
            ..LogFilter::default()
        };
        let error = log_filter(&scope, Some(unknown)).unwrap_err().to_string();
        assert!(error.contains("TaskExploded"), "{error}");
        let other_region = LogFilter {
            task: Some("arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef".into()),
            ..LogFilter::default()
        };
        assert!(log_filter(&scope, Some(other_region)).is_err());
    }
}
