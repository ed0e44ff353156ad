//! `taskledger-load`: the load generator of issue 7. A tonic client (loopback only) that runs one
//! scenario per subcommand, each bounded in requests and time, with hdrhistogram latencies in
//! microseconds, against an in-process server over a fresh temp store (default; then it also reads
//! the writer's counters) or a running server (`--endpoint`). `smoke` runs every scenario tiny.
//! Does not compare with other stores (etcd, PostgreSQL, moto) and never judges a timing: it fails
//! only when a scenario measured nothing (or, in `smoke`, when a request failed).

mod cold_start;
mod describe;
mod fill;
mod follow;
mod footprint;
mod list;
mod machine;
mod measure;
mod rebuild;
mod requests;
mod run_task;
mod server_process;
mod session;
mod smoke;
mod target;
mod transitions;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};
use clap::{Args, Parser, Subcommand};

use crate::session::Session;
use crate::smoke::smoke;

/// The agent's reports that walk a Fargate task from PROVISIONING to STOPPED.
const LIFECYCLE: [&str; 7] = [
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];
/// Concurrent callers while loading a store (threads in-process, requests over gRPC).
const LOAD_CONCURRENCY: usize = 64;
/// Longest wait for a spawned `taskledger serve` to answer.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Load generator for taskledger (issue 7). Talks gRPC to 127.0.0.1 only.
#[derive(Debug, Parser)]
#[command(name = "taskledger-load")]
struct Cli {
    /// A running server, http://127.0.0.1:PORT. Default: an in-process server on 127.0.0.1:0 over
    /// a fresh temp store (the only way to see events per fdatasync).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// One JSON object per scenario on stdout; the human-readable lines go to stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Clone, Subcommand)]
enum Scenario {
    /// 1. Durable SubmitTaskStateChange PENDING → … → STOPPED on existing Fargate tasks.
    Transitions(Transitions),
    /// 2. RunTask count=10.
    RunTask(RunTasks),
    /// 3. DescribeTasks with 100 random ids against a loaded store.
    Describe(Describe),
    /// 4. ListTasks paging (maxResults 100) through every task of one cluster.
    List(List),
    /// 5a. Store::rebuild of every view from the log (in-process only).
    Rebuild(Rebuild),
    /// 5b. Spawn `taskledger serve` on a filled store until the first DescribeTasks answers.
    ColdStart(ColdStart),
    /// 6. Peak RSS of a `taskledger serve` process loaded with N tasks, and bytes on disk per event.
    Footprint(Footprint),
    /// Fills a store in a new directory and keeps it, to time `taskledger rebuild`, `verify` or
    /// `serve` on it by hand (under a profiler, say).
    Fill(Fill),
    /// With two servers on one shared log (etcd): how soon the other (`--follower`) shows a
    /// write the first (`--endpoint`) acknowledged.
    Follow(Follow),
    /// Every scenario at tiny sizes, for CI: checks only that each ran and produced numbers.
    Smoke,
}

#[derive(Debug, Clone, Args)]
struct Bounds {
    /// Longest each measured phase runs, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Most requests each measured phase sends.
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
}

#[derive(Debug, Clone, Args)]
struct Transitions {
    /// Requests in flight, one phase per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    in_flight: Vec<usize>,
    #[command(flatten)]
    bounds: Bounds,
}

#[derive(Debug, Clone, Args)]
struct Follow {
    /// The other server on the same log, http://127.0.0.1:PORT.
    #[arg(long)]
    follower: String,
    /// Writes in flight on the first server, one phase per value.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    in_flight: Vec<usize>,
    #[command(flatten)]
    bounds: Bounds,
}

#[derive(Debug, Clone, Args)]
struct RunTasks {
    #[arg(long, value_delimiter = ',', default_value = "16")]
    in_flight: Vec<usize>,
    #[command(flatten)]
    bounds: Bounds,
}

#[derive(Debug, Clone, Args)]
struct Describe {
    /// Tasks in the store before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    in_flight: Vec<usize>,
    #[command(flatten)]
    bounds: Bounds,
}

#[derive(Debug, Clone, Args)]
struct List {
    /// Tasks in the one cluster that is paged through.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Longest the paging runs, in seconds (a walk cut short is reported as incomplete).
    #[arg(long, default_value_t = 120.0)]
    duration_secs: f64,
}

#[derive(Debug, Clone, Args)]
struct Rebuild {
    /// Events in the log (rounded up to whole task lifecycles of 8 events).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Rebuilds of the same store.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
}

#[derive(Debug, Clone, Args)]
struct Fill {
    /// Events in the log (rounded up to whole task lifecycles of 8 events).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// This many live tasks instead (RunTask only).
    #[arg(long)]
    tasks: Option<u64>,
    /// Where to create the store; must not exist yet, and is kept.
    #[arg(long)]
    dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
struct ColdStart {
    /// Fill the store with this many events: tasks walked through their whole lifecycle.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Fill it with this many live tasks instead (RunTask only), for opening a store that large.
    #[arg(long)]
    tasks: Option<u64>,
    /// Starts of the same store.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The server binary; default: `taskledger` beside this executable.
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// Do not try to drop the page cache before each start (it slows everything else down).
    #[arg(long)]
    keep_page_cache: bool,
}

#[derive(Debug, Clone, Args)]
struct Footprint {
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    /// The server binary; default: `taskledger` beside this executable.
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// Measure an in-process server instead of a `taskledger serve` child process (the RSS then
    /// includes the load generator).
    #[arg(long)]
    in_process: bool,
    /// With --endpoint: the server's pid, to read its RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// The allocator of the `taskledger` binary, so the in-process server measures as the real one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let session = Session {
        endpoint: cli.endpoint,
        json: cli.json,
    };
    runtime.block_on(async {
        match cli.scenario {
            Scenario::Smoke => smoke(&session).await,
            scenario => session.run(scenario).await.map(drop),
        }
    })
}

fn join(values: &[usize]) -> String {
    values.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

fn check_in_flight(values: &[usize]) -> anyhow::Result<()> {
    ensure!(
        !values.is_empty() && values.iter().all(|&n| (1..=4096).contains(&n)),
        "--in-flight takes counts from 1 to 4096"
    );
    Ok(())
}

fn check_duration(seconds: f64) -> anyhow::Result<()> {
    ensure!(
        seconds.is_finite() && seconds > 0.0,
        "--duration-secs must be a positive number"
    );
    Ok(())
}
