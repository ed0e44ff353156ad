//! `etcd-txn-load`: the etcd side of `benches/compare.sh`. Drives a running etcd (loopback only)
//! with the versioned transition that taskledger's `transitions` scenario measures: one Txn
//! "if mod_revision(key) == R then put(key, 300-byte value)", with N requests in flight, each
//! worker owning its own keys and carrying the revision etcd returned. Latencies go into an
//! hdrhistogram in microseconds; prints one line (or one JSON object) per in-flight count.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

mod pb {
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
}

use pb::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::etcdserverpb::kv_client::KvClient;
use pb::etcdserverpb::request_op::Request;
use pb::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};

/// Bytes in every value written, as in the PostgreSQL event payload.
const VALUE_BYTES: usize = 300;

/// Versioned-transition load for etcd's v3 KV API over gRPC.
#[derive(Debug, Parser)]
#[command(name = "etcd-txn-load")]
struct Cli {
    /// etcd's client URL, http://127.0.0.1:PORT.
    #[arg(long)]
    endpoint: String,
    /// Requests in flight, one measured phase per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    in_flight: Vec<usize>,
    /// Length of each measured phase, in seconds.
    #[arg(long, default_value_t = 6.0)]
    duration_secs: f64,
    /// Keys written before measuring (untimed); each phase spreads them over its workers.
    #[arg(long, default_value_t = 4096)]
    keys: usize,
    /// One JSON object per phase on stdout instead of a text line.
    #[arg(long)]
    json: bool,
}

fn key(index: usize) -> Vec<u8> {
    format!("/tasks/{index:08}").into_bytes()
}

/// A 300-byte value that changes with every write.
fn value(index: usize, serial: u64) -> Vec<u8> {
    let mut bytes = format!("{{\"task\":{index},\"serial\":{serial},\"status\":\"RUNNING\",\"pad\":\"").into_bytes();
    bytes.resize(VALUE_BYTES - 2, b'x');
    bytes.extend_from_slice(b"\"}");
    bytes
}

async fn connect(endpoint: &str) -> anyhow::Result<KvClient<Channel>> {
    let channel = Endpoint::from_shared(endpoint.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))?;
    Ok(KvClient::new(channel))
}

/// Writes every key once (64 in flight, untimed) and returns the mod_revision of each.
async fn fill(client: &KvClient<Channel>, keys: usize) -> anyhow::Result<Vec<AtomicI64>> {
    let revisions: Arc<Vec<AtomicI64>> = Arc::new((0..keys).map(|_| AtomicI64::new(0)).collect());
    let mut workers = JoinSet::new();
    for worker in 0..64.min(keys) {
        let (mut client, revisions) = (client.clone(), Arc::clone(&revisions));
        workers.spawn(async move {
            for index in (worker..keys).step_by(64) {
                let put = PutRequest {
                    key: key(index),
                    value: value(index, 0),
                    lease: 0,
                };
                let answer = client.put(put).await?.into_inner();
                let revision = answer.header.map(|h| h.revision).unwrap_or(0);
                revisions[index].store(revision, Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    // Check one key against a Range read: the mod_revision must be the one the Put returned.
    let mut reader = client.clone();
    let read = reader
        .range(RangeRequest {
            key: key(0),
            ..Default::default()
        })
        .await?
        .into_inner();
    let seen = read.kvs.first().map(|kv| kv.mod_revision);
    ensure!(
        seen == Some(revisions[0].load(Relaxed)),
        "Range read mod_revision {seen:?}, Put returned {}",
        revisions[0].load(Relaxed)
    );
    Ok(Arc::try_unwrap(revisions).expect("workers are done"))
}

/// The transition: compare the key's mod_revision with the one last seen, then put the value.
fn transition(index: usize, revision: i64, serial: u64) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: key(index),
            target_union: Some(TargetUnion::ModRevision(revision)),
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key(index),
                value: value(index, serial),
                lease: 0,
            })),
        }],
        failure: vec![],
    }
}

struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    conflicts: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ok: 0,
            conflicts: 0,
            errors: 0,
            first_error: None,
        }
    }
}

async fn phase(
    clients: &[KvClient<Channel>],
    revisions: &Arc<Vec<AtomicI64>>,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<(Tally, f64)> {
    let keys = revisions.len();
    ensure!(
        keys >= in_flight,
        "--keys {keys} must be at least the in-flight count {in_flight}"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let serial = Arc::new(AtomicU64::new(1));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..in_flight {
        let mut client = clients[worker % clients.len()].clone();
        let (revisions, stop, serial) = (Arc::clone(revisions), Arc::clone(&stop), Arc::clone(&serial));
        workers.spawn(async move {
            let mut tally = Tally::new();
            let mine: Vec<usize> = (worker..keys).step_by(in_flight).collect();
            'outer: loop {
                for &index in &mine {
                    if stop.load(Relaxed) {
                        break 'outer;
                    }
                    let revision = revisions[index].load(Relaxed);
                    let request = transition(index, revision, serial.fetch_add(1, Relaxed));
                    let sent = Instant::now();
                    let answer = client.txn(request).await;
                    let micros = sent.elapsed().as_micros().max(1) as u64;
                    match answer {
                        Ok(answer) => {
                            let answer = answer.into_inner();
                            tally.latency.saturating_record(micros);
                            if answer.succeeded {
                                tally.ok += 1;
                                let new = answer.header.map(|h| h.revision).unwrap_or(0);
                                revisions[index].store(new, Relaxed);
                            } else {
                                tally.conflicts += 1;
                            }
                        }
                        Err(status) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| status.to_string());
                        }
                    }
                }
            }
            tally
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Relaxed);
    let mut total = Tally::new();
    while let Some(done) = workers.join_next().await {
        let tally = done?;
        total.latency.add(&tally.latency)?;
        total.ok += tally.ok;
        total.conflicts += tally.conflicts;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    Ok((total, started.elapsed().as_secs_f64()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.endpoint.starts_with("http://127.0.0.1:") {
        bail!("--endpoint must be http://127.0.0.1:PORT (loopback only)");
    }
    ensure!(cli.duration_secs > 0.0, "--duration-secs must be positive");
    ensure!(
        cli.in_flight.iter().all(|&n| n > 0),
        "in-flight counts must be positive"
    );
    let first = connect(&cli.endpoint).await?;
    let revisions = Arc::new(fill(&first, cli.keys).await?);
    for &in_flight in &cli.in_flight {
        // As taskledger-load does: one connection per 32 requests in flight, 1 to 8.
        let connections = in_flight.div_ceil(32).clamp(1, 8);
        let mut clients = vec![first.clone()];
        for _ in 1..connections {
            clients.push(connect(&cli.endpoint).await?);
        }
        let (tally, seconds) = phase(
            &clients,
            &revisions,
            in_flight,
            Duration::from_secs_f64(cli.duration_secs),
        )
        .await?;
        let rate = tally.ok as f64 / seconds;
        let (p50, p99, max) = (
            tally.latency.value_at_quantile(0.5),
            tally.latency.value_at_quantile(0.99),
            tally.latency.max(),
        );
        if cli.json {
            println!(
                "{}",
                json!({"system": "etcd", "scenario": "transitions", "in_flight": in_flight,
                    "connections": connections, "transitions": tally.ok, "conflicts": tally.conflicts,
                    "errors": tally.errors, "first_error": tally.first_error, "seconds": seconds,
                    "transitions_per_sec": rate, "p50_us": p50, "p99_us": p99, "max_us": max,
                    "value_bytes": VALUE_BYTES, "keys": cli.keys})
            );
        } else {
            println!(
                "etcd in flight {in_flight:>3}: {rate:>8.0} transitions/s; p50 {p50} us, p99 {p99} us, max {max} us \
                 ({} ok, {} conflicts, {} errors in {seconds:.2} s over {connections} connections)",
                tally.ok, tally.conflicts, tally.errors
            );
        }
        if let Some(first_error) = &tally.first_error {
            eprintln!("etcd in flight {in_flight}: first error: {first_error}");
        }
        ensure!(tally.ok > 0, "no transition succeeded at {in_flight} in flight");
    }
    Ok(())
}
