//! The log on etcd (`--engine etcd`, cargo feature `etcd`): log values under
//! `<prefix>/log/<first seq, 20 digits>`, the head under `<prefix>/head`, the schema version the
//! log was written with under `<prefix>/schema`. An append is ONE etcd transaction that compares
//! the head with the one the group was decided against and puts the group's values and the new
//! head; a failed compare is `Conflict` (another server appended first). A task on the client's
//! own runtime watches the head key, so `wait_beyond` learns of other servers' appends.
//! Derived data (checkpoints, the history index) stays on this server's disk, in a local sled
//! engine: it is large, rebuildable from the log, and etcd's space quota is for the log.
//! Does not decide anything or know what records mean.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, SortOrder, SortTarget,
    Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use super::archive::Archived;
use super::engine::{Engine, EngineError, EngineResult};
use super::keys;
use super::log::{derived_apply_in, derived_key, derived_range_in, AppendError, AppendLimit, Log, LogValue, LogValues};

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// `http://host:port` of one or more members.
    pub endpoints: Vec<String>,
    /// Every key this store writes starts with it (`/taskledger` by default), so several stores
    /// can share one etcd cluster.
    pub prefix: String,
    /// The longest any one request to etcd may take; an append that times out is a failed
    /// write (the store refuses writes until it is reopened and has read the log again).
    pub timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/taskledger".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// etcd's limits (1.5 MiB per request, 128 operations per transaction by default), with room
/// for the head and the request's own framing.
const APPEND_LIMIT: AppendLimit = AppendLimit {
    bytes: 1024 * 1024,
    values: 100,
};

/// How many times an append is sent while etcd gives no answer (a member down, an election),
/// and the pause between tries.
const APPEND_ATTEMPTS: u32 = 4;
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Log values read per range request (each at most a 16 KiB chunk, or one larger record).
const PAGE_VALUES: i64 = 64;

/// The keys of one store under its prefix.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn log(&self, seq: u64) -> Vec<u8> {
        format!("{}/log/{seq:020}", self.prefix).into_bytes()
    }

    fn log_end(&self) -> Vec<u8> {
        keys::prefix_end(format!("{}/log/", self.prefix).as_bytes())
    }

    fn log_seq(&self, key: &[u8]) -> Option<u64> {
        let digits = key.strip_prefix(format!("{}/log/", self.prefix).as_bytes())?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    fn head(&self) -> Vec<u8> {
        format!("{}/head", self.prefix).into_bytes()
    }

    fn archive(&self, first: u64) -> Vec<u8> {
        format!("{}/archive/{first:020}", self.prefix).into_bytes()
    }

    fn archive_end(&self) -> Vec<u8> {
        keys::prefix_end(format!("{}/archive/", self.prefix).as_bytes())
    }

    fn schema(&self) -> Vec<u8> {
        format!("{}/schema", self.prefix).into_bytes()
    }
}

/// The highest head this server has seen, and a condition variable rung when it moves.
#[derive(Default)]
struct SeenHead {
    head: Mutex<u64>,
    moved: Condvar,
}

impl SeenHead {
    fn get(&self) -> u64 {
        *self.head.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn advance(&self, seq: u64) {
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        if seq > *head {
            *head = seq;
            drop(head);
            self.moved.notify_all();
        }
    }
}

fn parse_head(value: &[u8]) -> EngineResult<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            EngineError(format!(
                "etcd: the head key holds {:?}, not a seq",
                String::from_utf8_lossy(value)
            ))
        })
}

/// The log of one store on an etcd cluster.
pub struct EtcdLog {
    /// The client's own runtime (one thread), so the store's threads can call it blocking from
    /// anywhere, inside another runtime or not. `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    keys: Keys,
    timeout: Duration,
    seen: Arc<SeenHead>,
    local: Arc<dyn Engine>,
    watcher: tokio::task::JoinHandle<()>,
}

impl EtcdLog {
    /// Connects to etcd, checks that the log under the prefix was written with `schema` (and
    /// stamps it on an empty one), reads the head and starts watching it. `local` holds the
    /// derived data.
    pub fn connect(options: &EtcdOptions, schema: u32, local: Arc<dyn Engine>) -> EngineResult<EtcdLog> {
        let prefix = options.prefix.trim_end_matches('/').to_string();
        if prefix.is_empty() || !prefix.starts_with('/') {
            return Err(EngineError(format!(
                "the etcd prefix must start with '/' and name something: {:?}",
                options.prefix
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("taskledger-etcd")
            .enable_all()
            .build()
            .map_err(|e| EngineError(format!("starting the etcd client's runtime: {e}")))?;
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.timeout)
            .with_timeout(options.timeout)
            .with_keep_alive(Duration::from_secs(10), options.timeout);
        let endpoints = options.endpoints.clone();
        let client = block(&runtime, options.timeout, async move {
            Client::connect(endpoints, Some(connect)).await
        })
        .map_err(|e| {
            EngineError(format!(
                "connecting to etcd at {}: {}",
                options.endpoints.join(","),
                e.0
            ))
        })?;
        let keys = Keys { prefix };
        let seen = Arc::new(SeenHead::default());
        let watcher = runtime.spawn(watch_head(client.clone(), keys.head(), Arc::clone(&seen)));
        let log = EtcdLog {
            runtime: Some(runtime),
            client,
            keys,
            timeout: options.timeout,
            seen,
            local,
            watcher,
        };
        log.check_schema(schema)?;
        let head = log.read_head()?;
        log.seen.advance(head);
        tracing::info!(endpoints = %options.endpoints.join(","), prefix = %log.keys.prefix, head, "log on etcd");
        Ok(log)
    }

    /// Runs a request on the client's runtime and waits for it, at most the request timeout.
    fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    ) -> EngineResult<T> {
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the log");
        block(runtime, self.timeout, request)
    }

    fn read_head(&self) -> EngineResult<u64> {
        let mut kv = self.client.kv_client();
        let key = self.keys.head();
        let response = self.run(async move { kv.get(key, None).await })?;
        match response.kvs().first() {
            Some(kv) => parse_head(kv.value()),
            None => Ok(0),
        }
    }

    /// Stamps `schema` on a log that has none; refuses a log written with another.
    fn check_schema(&self, schema: u32) -> EngineResult<()> {
        let key = self.keys.schema();
        let stamp = schema.to_string();
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), stamp.clone(), None)])
            .or_else([TxnOp::get(key, None)]);
        let mut kv = self.client.kv_client();
        let response = self.run(async move { kv.txn(txn).await })?;
        if response.succeeded() {
            return Ok(());
        }
        let found = first_get_value(&response.op_responses()).unwrap_or_default();
        if found == stamp.as_bytes() {
            return Ok(());
        }
        Err(EngineError(format!(
            "the log under {} on etcd was written with schema version {}; this binary reads and writes {schema}",
            self.keys.prefix,
            String::from_utf8_lossy(&found)
        )))
    }

    /// The first page of a read from `seq`: from the value holding it. Most reads start where a
    /// value does (a follower reads from its head + 1), which one range request answers;
    /// otherwise the holder starts a little before `seq`, and is looked for in growing windows
    /// below it (etcd sorts a descending range whole before applying its limit, so one search
    /// down to the log's first key would cost in proportion to the log's length).
    fn first_page(&self, seq: u64) -> EngineResult<Vec<LogValue>> {
        let values = self.page(seq)?;
        if values.first().is_some_and(|value| value.first == seq) {
            return Ok(values);
        }
        for window in [256, 65_536, u64::MAX] {
            let low = seq.saturating_sub(window);
            let mut kv = self.client.kv_client();
            let start = self.keys.log(low);
            let options = GetOptions::new()
                .with_range(self.keys.log(seq))
                .with_sort(SortTarget::Key, SortOrder::Descend)
                .with_limit(1)
                .with_keys_only();
            let response = self.run(async move { kv.get(start, Some(options)).await })?;
            if let Some(kv) = response.kvs().first() {
                let first = self.keys.log_seq(kv.key()).ok_or_else(|| {
                    EngineError(format!("etcd: damaged log key {:?}", String::from_utf8_lossy(kv.key())))
                })?;
                return self.page(first);
            }
            if low == 0 {
                break;
            }
        }
        Ok(values)
    }

    /// Up to `PAGE_VALUES` log values from the one starting at `first` on.
    fn page(&self, first: u64) -> EngineResult<Vec<LogValue>> {
        let mut kv = self.client.kv_client();
        let start = self.keys.log(first);
        let options = GetOptions::new()
            .with_range(self.keys.log_end())
            .with_limit(PAGE_VALUES);
        let response = self.run(async move { kv.get(start, Some(options)).await })?;
        response
            .kvs()
            .iter()
            .map(|kv| {
                let first = self.keys.log_seq(kv.key()).ok_or_else(|| {
                    EngineError(format!("etcd: damaged log key {:?}", String::from_utf8_lossy(kv.key())))
                })?;
                Ok(LogValue {
                    first,
                    bytes: kv.value().to_vec(),
                })
            })
            .collect()
    }
}

impl Drop for EtcdLog {
    fn drop(&mut self) {
        self.watcher.abort();
        // Never blocks, so the last store handle may be dropped inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `request` on `runtime` from any thread and waits for it, at most `timeout`.
fn block<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    timeout: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
) -> EngineResult<T> {
    let (answer, answered) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = answer.send(tokio::time::timeout(timeout, request).await);
    });
    match answered.recv() {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(EngineError(format!("etcd: {e}"))),
        Ok(Err(_)) => Err(EngineError(format!("etcd did not answer within {timeout:?}"))),
        Err(_) => Err(EngineError("the etcd client has stopped".into())),
    }
}

/// The value the `n`th get of a transaction's answer found, if any.
fn get_value(responses: &[TxnOpResponse], n: usize) -> Option<Vec<u8>> {
    responses
        .iter()
        .filter_map(|response| match response {
            TxnOpResponse::Get(get) => Some(get),
            _ => None,
        })
        .nth(n)
        .and_then(|get| get.kvs().first().map(|kv| kv.value().to_vec()))
}

fn first_get_value(responses: &[TxnOpResponse]) -> Option<Vec<u8>> {
    get_value(responses, 0)
}

fn second_get_value(responses: &[TxnOpResponse]) -> Option<Vec<u8>> {
    get_value(responses, 1)
}

/// Follows the head key for as long as the log is open: reads it, watches it from the next
/// revision, and on any error or a cancelled watch starts over after a pause (the crate does not
/// reconnect by itself). Only the latest value matters, so compaction never loses anything here.
async fn watch_head(client: Client, key: Vec<u8>, seen: Arc<SeenHead>) {
    loop {
        if let Err(e) = follow_head(&client, &key, &seen).await {
            tracing::debug!(error = %e, "watching the log's head on etcd; starting over");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn follow_head(client: &Client, key: &[u8], seen: &SeenHead) -> Result<(), etcd_client::Error> {
    let response = client.kv_client().get(key.to_vec(), None).await?;
    if let Some(kv) = response.kvs().first() {
        if let Ok(head) = parse_head(kv.value()) {
            seen.advance(head);
        }
    }
    let revision = response.header().map_or(0, |h| h.revision());
    let options = WatchOptions::new()
        .with_start_revision(revision + 1)
        .with_progress_notify();
    let mut stream = client.watch_client().watch(key.to_vec(), Some(options)).await?;
    while let Some(message) = stream.message().await? {
        for event in message.events() {
            if let Some(head) = event.kv().and_then(|kv| parse_head(kv.value()).ok()) {
                seen.advance(head);
            }
        }
        if message.canceled() {
            break;
        }
    }
    Ok(())
}

impl Log for EtcdLog {
    fn head(&self) -> EngineResult<u64> {
        Ok(self.seen.get())
    }

    /// A request that fails without an answer (a member down, a leader election, a timeout)
    /// may or may not have been applied: it is sent again until etcd answers, for up to
    /// `APPEND_ATTEMPTS` request timeouts. The head compare makes that safe: a retry of an
    /// append that did land fails its compare, and then the log value at the group's first seq
    /// is this group's own (its records carry request ids and times) and the append succeeded.
    fn append(&self, expected_head: u64, last: u64, values: Vec<LogValue>) -> Result<(), AppendError> {
        let Some(first) = values.first().map(|value| (value.first, value.bytes.clone())) else {
            return Ok(());
        };
        let head_key = self.keys.head();
        let compare = if expected_head == 0 {
            Compare::version(head_key.clone(), CompareOp::Equal, 0)
        } else {
            Compare::value(head_key.clone(), CompareOp::Equal, expected_head.to_string())
        };
        let mut puts: Vec<TxnOp> = values
            .into_iter()
            .map(|value| TxnOp::put(self.keys.log(value.first), value.bytes, None))
            .collect();
        puts.push(TxnOp::put(head_key.clone(), last.to_string(), None));
        let txn = Txn::new()
            .when([compare])
            .and_then(puts)
            .or_else([TxnOp::get(head_key, None), TxnOp::get(self.keys.log(first.0), None)]);
        let mut unanswered = 0;
        let response = loop {
            let mut kv = self.client.kv_client();
            let attempt = txn.clone();
            match self.run(async move { kv.txn(attempt).await }) {
                Ok(response) => break response,
                Err(e) if unanswered + 1 < APPEND_ATTEMPTS => {
                    unanswered += 1;
                    tracing::warn!(error = %e, attempt = unanswered, "an append to etcd got no answer; sending it again");
                    std::thread::sleep(RETRY_PAUSE);
                }
                Err(e) => return Err(AppendError::Failed(e)),
            }
        };
        if response.succeeded() {
            self.seen.advance(last);
            return Ok(());
        }
        let answers = response.op_responses();
        let head = match first_get_value(&answers) {
            Some(value) => parse_head(&value)?,
            None => 0,
        };
        self.seen.advance(head);
        let landed = unanswered > 0 && head >= last && second_get_value(&answers).as_deref() == Some(&first.1[..]);
        if landed {
            tracing::info!(expected_head, last, "an append that got no answer had landed");
            return Ok(());
        }
        Err(AppendError::Conflict {
            expected: expected_head,
            head,
        })
    }

    fn append_limit(&self) -> Option<AppendLimit> {
        Some(APPEND_LIMIT)
    }

    fn shared(&self) -> bool {
        true
    }

    fn read(&self, from: u64) -> LogValues<'_> {
        let from = from.max(1);
        let first_page = match self.first_page(from) {
            Ok(values) => values,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let mut next = match first_page.last() {
            Some(last) if first_page.len() as i64 == PAGE_VALUES => Some(last.first + 1),
            _ => None,
        };
        let mut page = first_page.into_iter();
        Box::new(std::iter::from_fn(move || loop {
            if let Some(value) = page.next() {
                return Some(Ok(value));
            }
            let first = next?;
            match self.page(first) {
                Ok(values) => {
                    next = match values.last() {
                        Some(last) if values.len() as i64 == PAGE_VALUES => Some(last.first + 1),
                        _ => None,
                    };
                    if values.is_empty() {
                        return None;
                    }
                    page = values.into_iter();
                }
                Err(e) => {
                    next = None;
                    return Some(Err(e));
                }
            }
        }))
    }

    fn wait_beyond(&self, seen: u64, timeout: Duration) -> EngineResult<u64> {
        let guard = self.seen.head.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, waited) = self
            .seen
            .moved
            .wait_timeout_while(guard, timeout, |head| *head <= seen)
            .unwrap_or_else(|p| p.into_inner());
        let head = *guard;
        drop(guard);
        if waited.timed_out() {
            // The watch may be down (it starts over by itself): ask etcd once.
            if let Ok(read) = self.read_head() {
                self.seen.advance(read);
                return Ok(read.max(head));
            }
        }
        Ok(head)
    }

    fn derived_get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.local.get(&derived_key(key))
    }

    fn derived_range(&self, prefix: &[u8]) -> EngineResult<Vec<(Vec<u8>, Vec<u8>)>> {
        derived_range_in(&*self.local, prefix)
    }

    fn derived_apply(&self, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> EngineResult<()> {
        derived_apply_in(&*self.local, writes)
    }

    fn size_on_disk(&self) -> EngineResult<u64> {
        let mut maintenance = self.client.maintenance_client();
        let status = self.run(async move { maintenance.status().await })?;
        Ok(self.local.size_on_disk()? + u64::try_from(status.db_size()).unwrap_or(0))
    }

    /// A linearizable read of the head (etcd's default for a range request).
    fn current_head(&self) -> EngineResult<u64> {
        let head = self.read_head()?;
        self.seen.advance(head);
        Ok(head)
    }

    /// etcd answers a linearizable read only with a quorum, as it would an append.
    fn probe(&self) -> EngineResult<()> {
        self.current_head().map(|_| ())
    }

    fn archivable(&self) -> bool {
        true
    }

    fn archived(&self) -> EngineResult<Vec<Archived>> {
        let mut kv = self.client.kv_client();
        let start = self.keys.archive(0);
        let options = GetOptions::new().with_range(self.keys.archive_end());
        let response = self.run(async move { kv.get(start, Some(options)).await })?;
        response
            .kvs()
            .iter()
            .map(|kv| {
                serde_json::from_slice(kv.value()).map_err(|e| {
                    EngineError(format!(
                        "etcd: the archive record {:?} is damaged: {e}",
                        String::from_utf8_lossy(kv.key())
                    ))
                })
            })
            .collect()
    }

    /// One transaction records the archive and deletes its log values, on condition that no
    /// archive starting there was recorded and that a value starts right after it; then etcd is
    /// asked to compact its history up to that revision, which gives the space back (a
    /// `defrag` of each member returns it to the file system). Nothing here reads at an old
    /// revision, so compaction never breaks a server that follows the log.
    fn remove_archived(&self, archived: &Archived) -> EngineResult<()> {
        let record =
            serde_json::to_vec(archived).map_err(|e| EngineError(format!("encoding an archive record: {e}")))?;
        let txn = Txn::new()
            .when([
                Compare::version(self.keys.archive(archived.first), CompareOp::Equal, 0),
                Compare::version(self.keys.log(archived.last + 1), CompareOp::Greater, 0),
            ])
            .and_then([
                TxnOp::put(self.keys.archive(archived.first), record, None),
                TxnOp::delete(
                    self.keys.log(0),
                    Some(DeleteOptions::new().with_range(self.keys.log(archived.last + 1))),
                ),
            ]);
        let mut kv = self.client.kv_client();
        let response = self.run(async move { kv.txn(txn).await })?;
        if !response.succeeded() {
            return Err(EngineError(format!(
                "etcd: seqs {}..={} were not archived: an archive from seq {} is already recorded, or no log value \
                 starts at seq {}",
                archived.first,
                archived.last,
                archived.first,
                archived.last + 1
            )));
        }
        let revision = response.header().map_or(0, |h| h.revision());
        let mut kv = self.client.kv_client();
        let compaction = CompactionOptions::new().with_physical();
        match self.run(async move { kv.compact(revision, Some(compaction)).await }) {
            Ok(_) => tracing::info!(revision, "etcd compacted after archiving"),
            // Someone compacted further already: the space is freed either way.
            Err(e) => tracing::warn!(revision, error = %e, "etcd did not compact after archiving"),
        }
        Ok(())
    }

    fn available_space(&self) -> EngineResult<Option<u64>> {
        // etcd's quota is its own (it answers "mvcc: database space exceeded"); the local disk
        // holds the checkpoints.
        self.local.available_space()
    }
}
