//! `taskledger-load`: the load generator of issue 7. A tonic client (loopback only) that runs one
//! scenario per subcommand, each bounded in requests and time, with hdrhistogram latencies in
//! microseconds, against an in-process server over a fresh temp store (default; then it also reads
//! the writer's counters) or a running server (`--endpoint`). `smoke` runs every scenario tiny.
//! Does not compare with other stores (etcd, PostgreSQL, moto) and never judges a timing: it fails
//! only when a scenario measured nothing (or, in `smoke`, when a request failed).

use std::fmt::Display;
use std::future::Future;
use std::io::BufRead;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use taskledger::api::{serve_with_listener, server::ServeError, ServeOptions};
use taskledger::domain::Scope;
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::proto::v1::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, CreateClusterRequest, DescribeTasksRequest, LaunchType,
    ListTasksRequest, NetworkConfiguration, NetworkMode, RegisterTaskDefinitionRequest, RunTaskRequest,
    SubmitTaskStateChangeRequest,
};
use taskledger::store::{Caller, Store, StoreOptions};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

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

/// What every scenario shares: where to send load and how to print.
struct Session {
    endpoint: Option<String>,
    json: bool,
}

impl Session {
    async fn run(&self, scenario: Scenario) -> anyhow::Result<Value> {
        match scenario {
            Scenario::Transitions(args) => transitions(self, args).await,
            Scenario::RunTask(args) => run_task(self, args).await,
            Scenario::Describe(args) => describe(self, args).await,
            Scenario::List(args) => list(self, args).await,
            Scenario::Rebuild(args) => rebuild(self, args).await,
            Scenario::ColdStart(args) => cold_start(self, args).await,
            Scenario::Footprint(args) => footprint(self, args).await,
            Scenario::Fill(args) => fill(self, args).await,
            Scenario::Smoke => bail!("smoke does not nest"),
        }
    }

    fn line(&self, text: impl Display) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// The command that reproduces a scenario.
    fn command(&self, arguments: String) -> String {
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| format!(" --endpoint {e}"))
            .unwrap_or_default();
        format!("cargo run --release --bin taskledger-load --{endpoint} {arguments}")
    }

    /// Prints a scenario's header and starts collecting its results.
    fn report(&self, scenario: &str, title: &str, arguments: String, parameters: Value, target: &Target) -> Report<'_> {
        let command = self.command(arguments);
        let machine = machine();
        self.line(format_args!("\n== {scenario}: {title}"));
        self.line(format_args!("command:    {command}"));
        self.line(format_args!("parameters: {parameters}"));
        self.line(format_args!("target:     {}", target.describe()));
        self.line(format_args!("machine:    {machine}"));
        Report {
            session: self,
            value: json!({"scenario": scenario, "command": command, "parameters": parameters,
                "target": target.describe(), "machine": machine}),
            results: Vec::new(),
        }
    }
}

struct Report<'a> {
    session: &'a Session,
    value: Value,
    results: Vec<Value>,
}

impl Report<'_> {
    fn note(&self, text: impl Display) {
        self.session.line(text);
    }

    fn result(&mut self, line: impl Display, value: Value) {
        self.session.line(line);
        self.results.push(value);
    }

    fn finish(mut self) -> Value {
        self.value["results"] = Value::Array(self.results);
        self.value["loadavg_after"] = json!(loadavg());
        if self.session.json {
            println!("{}", self.value);
        }
        self.value
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn transitions(session: &Session, args: Transitions) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "transitions").await?;
    let arguments = format!(
        "transitions --in-flight {} --duration-secs {} --max-requests {}",
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let tasks_per_phase = |in_flight: usize| {
        args.bounds
            .max_requests
            .div_ceil(LIFECYCLE.len() as u64)
            .max(in_flight as u64)
    };
    let parameters = json!({"in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "statuses": LIFECYCLE,
        "tasks_created_per_phase": "max(ceil(max_requests / 7), in_flight), by RunTask count=10 before the phase (untimed)"});
    let mut report = session.report(
        "transitions",
        "durable SubmitTaskStateChange via gRPC",
        arguments,
        parameters,
        &target,
    );
    for &in_flight in &args.in_flight {
        let loaded = load(&target, &workload, Goal::Tasks(tasks_per_phase(in_flight))).await?;
        let tasks = Arc::new(loaded.ids);
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |worker, mut client, limits| {
            let (tasks, cluster) = (Arc::clone(&tasks), cluster.clone());
            async move {
                let mut tally = Tally::new();
                'tasks: for task in tasks.iter().skip(worker).step_by(in_flight) {
                    for status in LIFECYCLE {
                        if !limits.take() {
                            break 'tasks;
                        }
                        if tally
                            .time(client.submit_task_state_change(transition(&cluster, task, status)))
                            .await
                            .is_none()
                        {
                            continue 'tasks;
                        }
                        tally.items += 1;
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("transitions"), phase.json("transitions"));
    }
    target.close().await?;
    Ok(report.finish())
}

async fn run_task(session: &Session, args: RunTasks) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "run-task").await?;
    let arguments = format!(
        "run-task --in-flight {} --duration-secs {} --max-requests {}",
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let parameters = json!({"in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "count_per_call": 10, "launch_type": "FARGATE"});
    let mut report = session.report("run-task", "RunTask count=10 via gRPC", arguments, parameters, &target);
    for &in_flight in &args.in_flight {
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |_, mut client, limits| {
            let cluster = cluster.clone();
            async move {
                let mut tally = Tally::new();
                while limits.take() {
                    if let Some(response) = tally.time(client.run_task(run_request(&cluster, 10))).await {
                        tally.items += response.tasks.len() as u64;
                        if !response.failures.is_empty() {
                            tally.fail(format!("RunTask failures: {:?}", response.failures));
                        }
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("tasks"), phase.json("tasks"));
    }
    target.close().await?;
    Ok(report.finish())
}

async fn describe(session: &Session, args: Describe) -> anyhow::Result<Value> {
    check_in_flight(&args.in_flight)?;
    check_duration(args.bounds.duration_secs)?;
    ensure!(args.tasks >= 1, "--tasks must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "describe").await?;
    let arguments = format!(
        "describe --tasks {} --in-flight {} --duration-secs {} --max-requests {}",
        args.tasks,
        join(&args.in_flight),
        args.bounds.duration_secs,
        args.bounds.max_requests
    );
    let parameters = json!({"tasks": args.tasks, "in_flight": args.in_flight, "duration_secs": args.bounds.duration_secs,
        "max_requests": args.bounds.max_requests, "ids_per_call": 100, "load_path": target.load_path()});
    let mut report = session.report(
        "describe",
        "DescribeTasks with 100 random ids via gRPC",
        arguments,
        parameters,
        &target,
    );
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let ids = Arc::new(loaded.ids);
    for &in_flight in &args.in_flight {
        let cluster = workload.cluster.clone();
        let phase = closed_loop(&target, in_flight, &args.bounds, |worker, mut client, limits| {
            let (ids, cluster) = (Arc::clone(&ids), cluster.clone());
            async move {
                let mut tally = Tally::new();
                let mut random = SplitMix(worker as u64 + 1);
                while limits.take() {
                    let request = DescribeTasksRequest {
                        cluster: Some(cluster.clone()),
                        tasks: random.pick(&ids, 100),
                        include: vec![],
                    };
                    if let Some(response) = tally.time(client.describe_tasks(request)).await {
                        tally.items += response.tasks.len() as u64;
                        if !response.failures.is_empty() {
                            tally.fail(format!("DescribeTasks failures: {:?}", response.failures.first()));
                        }
                    }
                }
                tally
            }
        })
        .await?;
        report.result(phase.line("tasks described"), phase.json("tasks_described"));
    }
    target.close().await?;
    Ok(report.finish())
}

async fn list(session: &Session, args: List) -> anyhow::Result<Value> {
    check_duration(args.duration_secs)?;
    let target = Target::start(session.endpoint.as_deref()).await?;
    let workload = Workload::create(&target, "list").await?;
    let arguments = format!("list --tasks {} --duration-secs {}", args.tasks, args.duration_secs);
    let parameters = json!({"tasks": args.tasks, "max_results": 100, "duration_secs": args.duration_secs,
        "load_path": target.load_path()});
    let mut report = session.report(
        "list",
        "ListTasks paging through one cluster via gRPC",
        arguments,
        parameters,
        &target,
    );
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let mut client = target.client().await?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration_secs);
    let walk = walk_list(&mut client, &workload.cluster, deadline).await;
    ensure!(
        walk.tally.requests > 0,
        "no ListTasks page was answered: {:?}",
        walk.tally.first_error
    );
    let seconds = walk.seconds;
    let line = format!(
        "listed {} of {} tasks in {} pages, {:.3} s{}: {:.0} pages/s, {:.0} tasks/s; per page {}",
        walk.tally.items,
        loaded.count(),
        walk.tally.requests,
        seconds,
        if walk.complete {
            ""
        } else {
            " (CUT SHORT by --duration-secs)"
        },
        rate(walk.tally.requests, seconds),
        rate(walk.tally.items, seconds),
        walk.tally.latency_text()
    );
    let mut value = json!({"tasks_listed": walk.tally.items, "tasks_loaded": loaded.count(), "pages": walk.tally.requests,
        "seconds": seconds, "pages_per_sec": rate(walk.tally.requests, seconds), "tasks_per_sec": rate(walk.tally.items, seconds),
        "complete": walk.complete, "errors": walk.tally.errors, "first_error": walk.tally.first_error});
    walk.tally.latency_json(&mut value);
    report.result(line, value);
    target.close().await?;
    Ok(report.finish())
}

async fn rebuild(session: &Session, args: Rebuild) -> anyhow::Result<Value> {
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let arguments = format!("rebuild --events {} --repeat {}", args.events, args.repeat);
    let parameters =
        json!({"events": args.events, "repeat": args.repeat, "fill": Goal::Events(args.events).describe()});
    let mut report = session.report(
        "rebuild",
        "Store::rebuild of every view from the log",
        arguments,
        parameters,
        &target,
    );
    let Some(store) = target.store().cloned() else {
        report.note("skipped: rebuild needs the in-process store (run without --endpoint)");
        return Ok(report.finish());
    };
    let workload = Workload::create(&target, "rebuild").await?;
    let loaded = load(&target, &workload, Goal::Events(args.events)).await?;
    report.note(loaded.line());
    for repetition in 1..=args.repeat {
        let store = store.clone();
        let started = Instant::now();
        let rebuilt = tokio::task::spawn_blocking(move || store.rebuild(|_, _| {}))
            .await
            .context("the rebuild thread panicked")?
            .context("Store::rebuild failed")?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(rebuilt.events > 0, "the rebuild replayed no events");
        report.result(
            format!(
                "rebuild {repetition}: {} events in {seconds:.3} s = {:.0} events/s ({} entries written, {} removed)",
                rebuilt.events,
                rate(rebuilt.events, seconds),
                rebuilt.entries_written,
                rebuilt.entries_removed
            ),
            json!({"repetition": repetition, "events": rebuilt.events, "seconds": seconds,
                "events_per_sec": rate(rebuilt.events, seconds), "entries_written": rebuilt.entries_written,
                "entries_removed": rebuilt.entries_removed}),
        );
    }
    target.close().await?;
    Ok(report.finish())
}

async fn cold_start(session: &Session, args: ColdStart) -> anyhow::Result<Value> {
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let binary = server_binary(args.server_binary.as_deref())?;
    let (goal, size) = Goal::of(args.events, args.tasks);
    let arguments = format!(
        "cold-start {size} --repeat {}{}",
        args.repeat,
        if args.keep_page_cache { " --keep-page-cache" } else { "" }
    );
    let parameters = json!({"events": args.events, "tasks": args.tasks, "repeat": args.repeat, "fill": goal.describe(),
        "drop_page_cache": !args.keep_page_cache,
        "server_binary": binary.display().to_string(),
        "measured": "from spawning `taskledger serve --listen 127.0.0.1:0` to the first answered DescribeTasks"});
    let title = "process start until the first DescribeTasks answers";
    let mut report = session.report("cold-start", title, arguments, parameters, &target);
    if target.store().is_none() {
        report.note("skipped: cold-start fills its own store and starts its own server (run without --endpoint)");
        return Ok(report.finish());
    }
    let workload = Workload::create(&target, "cold-start").await?;
    let loaded = load(&target, &workload, goal).await?;
    report.note(loaded.line());
    let probe = loaded.ids.first().cloned().context("the fill created no task")?;
    let dir = target.close().await?.context("an in-process target has a directory")?;
    for repetition in 1..=args.repeat {
        let page_cache = match args.keep_page_cache {
            true => "page cache kept: --keep-page-cache".to_string(),
            false => drop_page_cache(),
        };
        let started = Instant::now();
        let mut server = ServerProcess::spawn(&binary, dir.path()).await?;
        let listening = started.elapsed().as_secs_f64();
        let mut client = connect(&server.endpoint).await?;
        let request = DescribeTasksRequest {
            cluster: Some(workload.cluster.clone()),
            tasks: vec![probe.clone()],
            include: vec![],
        };
        let answer = client
            .describe_tasks(request)
            .await
            .context("the first DescribeTasks failed")?;
        let first_answer = started.elapsed().as_secs_f64();
        ensure!(
            answer.into_inner().tasks.len() == 1,
            "the first DescribeTasks did not find the task"
        );
        server.stop().await;
        report.result(
            format!(
                "start {repetition}: listening after {:.1} ms, first DescribeTasks answered after {:.1} ms ({page_cache})",
                listening * 1e3,
                first_answer * 1e3
            ),
            json!({"repetition": repetition, "events": loaded.head, "listening_ms": listening * 1e3,
                "first_answer_ms": first_answer * 1e3, "page_cache": page_cache}),
        );
    }
    Ok(report.finish())
}

async fn fill(session: &Session, args: Fill) -> anyhow::Result<Value> {
    ensure!(
        session.endpoint.is_none(),
        "fill writes a store of its own (run without --endpoint)"
    );
    ensure!(
        !args.dir.exists(),
        "{} exists already: fill only creates a new store",
        args.dir.display()
    );
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let target = Target::in_process_in(Scratch::kept(args.dir.clone())).await?;
    let (goal, size) = Goal::of(args.events, args.tasks);
    let arguments = format!("fill {size} --dir {}", args.dir.display());
    let parameters = json!({"events": args.events, "tasks": args.tasks, "dir": args.dir.display().to_string(),
        "fill": goal.describe()});
    let mut report = session.report("fill", "a filled store, kept on disk", arguments, parameters, &target);
    let workload = Workload::create(&target, "fill").await?;
    let loaded = load(&target, &workload, goal).await?;
    report.note(loaded.line());
    let head = loaded.head.unwrap_or_default();
    target.close().await?;
    report.result(
        format!(
            "kept {} with {head} events; cluster {:?}, e.g. task {}",
            args.dir.display(),
            workload.cluster,
            loaded.ids.first().map(String::as_str).unwrap_or("-")
        ),
        json!({"dir": args.dir.display().to_string(), "events": head, "cluster": workload.cluster,
            "tasks": loaded.ids.len()}),
    );
    Ok(report.finish())
}

async fn footprint(session: &Session, args: Footprint) -> anyhow::Result<Value> {
    let target = match (session.endpoint.as_deref(), args.in_process) {
        (Some(endpoint), _) => Target::start(Some(endpoint)).await?,
        (None, true) => Target::in_process().await?,
        (None, false) => Target::child(&server_binary(args.server_binary.as_deref())?).await?,
    };
    let (pid, whose) = match &target.kind {
        Kind::InProcess { .. } => (
            Some(std::process::id()),
            "this process (server and load generator together)",
        ),
        Kind::Child { process, .. } => (Some(process.child.id()), "the server process"),
        Kind::Remote => (args.server_pid, "the server process given by --server-pid"),
    };
    let arguments = format!(
        "footprint --tasks {}{}",
        args.tasks,
        if args.in_process { " --in-process" } else { "" }
    );
    let parameters = json!({"tasks": args.tasks, "load_path": target.load_path(), "rss_of": whose,
        "touch": "after loading, every task is described once (100 per call, 16 in flight) and listed once"});
    let title = "peak RSS of the server holding N tasks; bytes on disk per event";
    let mut report = session.report("footprint", title, arguments, parameters, &target);
    let workload = Workload::create(&target, "footprint").await?;
    let loaded = load(&target, &workload, Goal::Tasks(args.tasks)).await?;
    report.note(loaded.line());
    let rss_before = pid.and_then(|pid| proc_status_kib(pid, "VmRSS"));
    let touched = touch_all(&target.endpoint, &workload.cluster, &loaded.ids).await?;
    let hwm = pid.and_then(|pid| proc_status_kib(pid, "VmHWM"));
    let rss = pid.and_then(|pid| proc_status_kib(pid, "VmRSS"));
    let measured = match target.store() {
        Some(store) => Some((store.size_on_disk()?, store.head_seq())),
        None => None,
    };
    let dir = target.close().await?;
    let disk = match (measured, &dir) {
        (Some(measured), _) => Some(measured),
        (None, Some(dir)) => {
            let path = dir.path().to_path_buf();
            let reopened = tokio::task::spawn_blocking(move || {
                let store = Store::open(&path)?;
                anyhow::Ok((store.size_on_disk()?, store.head_seq()))
            });
            Some(reopened.await.context("reopening the store panicked")??)
        }
        (None, None) => None,
    };
    let per_event = disk.map(|(bytes, head)| bytes as f64 / head.max(1) as f64);
    report.result(
        format!(
            "RSS of {whose}{}: {} after loading {} tasks; after describing and listing all {touched}: peak (VmHWM) {}, \
             now {}. On disk: {}",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            kib_text(rss_before),
            loaded.count(),
            kib_text(hwm),
            kib_text(rss),
            match disk {
                Some((bytes, head)) => format!(
                    "{bytes} bytes for {head} events = {:.0} bytes/event",
                    bytes as f64 / head.max(1) as f64
                ),
                None => "unknown (not our store)".to_string(),
            }
        ),
        json!({"tasks": loaded.count(), "tasks_touched": touched, "pid": pid, "rss_of": whose,
            "rss_after_load_kib": rss_before, "vm_hwm_kib": hwm, "vm_rss_kib": rss,
            "bytes_on_disk": disk.map(|d| d.0), "events": disk.map(|d| d.1), "bytes_per_event": per_event}),
    );
    Ok(report.finish())
}

async fn smoke(session: &Session) -> anyhow::Result<()> {
    let bounds = Bounds {
        duration_secs: 1.0,
        max_requests: 300,
    };
    let scenarios = [
        Scenario::Transitions(Transitions {
            in_flight: vec![1, 16],
            bounds: bounds.clone(),
        }),
        Scenario::RunTask(RunTasks {
            in_flight: vec![4],
            bounds: Bounds {
                max_requests: 30,
                ..bounds.clone()
            },
        }),
        Scenario::Describe(Describe {
            tasks: 300,
            in_flight: vec![1, 4],
            bounds: bounds.clone(),
        }),
        Scenario::List(List {
            tasks: 300,
            duration_secs: 2.0,
        }),
        Scenario::Rebuild(Rebuild { events: 500, repeat: 1 }),
        Scenario::ColdStart(ColdStart {
            events: 500,
            tasks: None,
            repeat: 1,
            server_binary: None,
            keep_page_cache: true,
        }),
        Scenario::Footprint(Footprint {
            tasks: 300,
            server_binary: None,
            in_process: false,
            server_pid: None,
        }),
    ];
    let (mut ran, mut skipped) = (0, 0);
    for scenario in scenarios {
        let value = session.run(scenario).await?;
        let name = value["scenario"].as_str().unwrap_or("?").to_string();
        match value["results"].as_array() {
            Some(results) if !results.is_empty() => ran += 1,
            // Only rebuild and cold-start skip, and only against --endpoint.
            _ if session.endpoint.is_some() => skipped += 1,
            _ => bail!("smoke: {name} produced no results"),
        }
        if let Some(errors) = first_errors(&value) {
            bail!("smoke: {name} had failed requests: {errors}");
        }
    }
    session.line(format_args!(
        "\nsmoke: {ran} scenarios ran and produced numbers, {skipped} skipped (timings are not judged)"
    ));
    Ok(())
}

/// The first result of a scenario report with errors, if any.
fn first_errors(value: &Value) -> Option<String> {
    value["results"]
        .as_array()?
        .iter()
        .find(|r| r["errors"].as_u64().is_some_and(|e| e > 0))
        .map(|r| format!("{} errors, first: {}", r["errors"], r["first_error"]))
}

// ---------------------------------------------------------------------------------------------
// Where the load goes

/// Where the load goes: an in-process server over a fresh temp store, a `taskledger serve` child
/// process over a fresh temp store, or a running server.
struct Target {
    endpoint: String,
    kind: Kind,
}

enum Kind {
    InProcess {
        store: Store,
        stop: oneshot::Sender<()>,
        server: tokio::task::JoinHandle<Result<(), ServeError>>,
        dir: Scratch,
    },
    Child {
        process: ServerProcess,
        dir: Scratch,
    },
    Remote,
}

impl Target {
    /// `--endpoint` if given, else an in-process server.
    async fn start(endpoint: Option<&str>) -> anyhow::Result<Target> {
        let Some(endpoint) = endpoint else {
            return Target::in_process().await;
        };
        check_loopback(endpoint)?;
        Ok(Target {
            endpoint: endpoint.to_string(),
            kind: Kind::Remote,
        })
    }

    async fn in_process() -> anyhow::Result<Target> {
        Target::in_process_in(Scratch::new()?).await
    }

    async fn in_process_in(dir: Scratch) -> anyhow::Result<Target> {
        let store = Store::open_with(dir.path(), StoreOptions::default()).context("opening the temp store")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let address = listener.local_addr().context("reading the bound address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let options = ServeOptions::default();
        let server = tokio::spawn(serve_with_listener(store.clone(), listener, options, async {
            let _ = stopped.await;
        }));
        Ok(Target {
            endpoint: format!("http://{address}"),
            kind: Kind::InProcess {
                store,
                stop,
                server,
                dir,
            },
        })
    }

    async fn child(binary: &Path) -> anyhow::Result<Target> {
        let dir = Scratch::new()?;
        let process = ServerProcess::spawn(binary, dir.path()).await?;
        Ok(Target {
            endpoint: process.endpoint.clone(),
            kind: Kind::Child { process, dir },
        })
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::InProcess { dir, .. } => format!(
                "in-process server at {} over a fresh store in {} ({} build)",
                self.endpoint,
                dir.path().display(),
                build()
            ),
            Kind::Child { process, dir } => format!(
                "`taskledger serve` child process {} at {} over a fresh store in {}",
                process.child.id(),
                self.endpoint,
                dir.path().display()
            ),
            Kind::Remote => format!("running server at {} (events per fdatasync unknown)", self.endpoint),
        }
    }

    fn store(&self) -> Option<&Store> {
        match &self.kind {
            Kind::InProcess { store, .. } => Some(store),
            Kind::Child { .. } | Kind::Remote => None,
        }
    }

    fn load_path(&self) -> String {
        match self.kind {
            Kind::InProcess { .. } => {
                format!("Store::run_task count=10 from {LOAD_CONCURRENCY} threads in this process (no gRPC)")
            }
            Kind::Child { .. } | Kind::Remote => format!("gRPC RunTask count=10, {LOAD_CONCURRENCY} in flight"),
        }
    }

    async fn client(&self) -> anyhow::Result<EcsClient<Channel>> {
        connect(&self.endpoint).await
    }

    fn writer(&self) -> Option<WriterCounts> {
        self.store().map(|store| {
            let stats = store.stats();
            WriterCounts {
                groups: stats.groups.load(Relaxed),
                commands: stats.commands.load(Relaxed),
                events: stats.events.load(Relaxed),
                syncs: stats.syncs.load(Relaxed),
            }
        })
    }

    /// Stops the server (gracefully) and closes its store; returns the store's directory, which
    /// lives until the `Scratch` is dropped.
    async fn close(self) -> anyhow::Result<Option<Scratch>> {
        match self.kind {
            Kind::InProcess {
                store,
                stop,
                server,
                dir,
            } => {
                let _ = stop.send(());
                server
                    .await
                    .context("the in-process server panicked")?
                    .context("the in-process server failed")?;
                // The last handle: the writer drains, and sled releases the directory.
                tokio::task::spawn_blocking(move || drop(store))
                    .await
                    .context("closing the store panicked")?;
                Ok(Some(dir))
            }
            Kind::Child { mut process, dir } => {
                process.stop().await;
                Ok(Some(dir))
            }
            Kind::Remote => Ok(None),
        }
    }
}

async fn connect(endpoint: &str) -> anyhow::Result<EcsClient<Channel>> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("invalid endpoint {endpoint}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    Ok(EcsClient::new(channel))
}

fn check_loopback(endpoint: &str) -> anyhow::Result<()> {
    let parsed = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("--endpoint {endpoint}: expected http://127.0.0.1:PORT"))?;
    let host = parsed.uri().host().unwrap_or_default();
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--endpoint host {host:?} is not an IP address; this tool talks to 127.0.0.1 only"))?;
    ensure!(
        ip.is_loopback(),
        "--endpoint {endpoint}: only loopback addresses (127.0.0.1) are allowed"
    );
    Ok(())
}

/// A directory under the system temp dir, removed when dropped.
/// A directory for one store: removed when dropped unless kept.
struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!(
            "taskledger-load-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path, keep: false })
    }

    fn kept(path: PathBuf) -> Scratch {
        Scratch { path, keep: true }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A `taskledger serve` child process on 127.0.0.1:0; killed if dropped before `stop`.
struct ServerProcess {
    child: Child,
    endpoint: String,
}

impl ServerProcess {
    async fn spawn(binary: &Path, data_dir: &Path) -> anyhow::Result<ServerProcess> {
        let mut child = std::process::Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().context("the child's stdout is piped")?;
        let (found, listening) = oneshot::channel();
        // Reads every line, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("taskledger listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(address.trim().to_string());
                    }
                }
            }
        });
        let mut server = ServerProcess {
            child,
            endpoint: String::new(),
        };
        let address = tokio::time::timeout(SPAWN_TIMEOUT, listening)
            .await
            .context("`taskledger serve` did not print its address in time")?
            .context("`taskledger serve` exited before listening (is the store locked or damaged?)")?;
        server.endpoint = format!("http://{address}");
        Ok(server)
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it has not exited within 10 s.
    async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..1000 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // polling a child process for exit
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("taskledger"),
    };
    ensure!(
        path.is_file(),
        "{} not found: build it first (`cargo build --release --bin taskledger` for release, without --release for \
         debug) or pass --server-binary",
        path.display()
    );
    Ok(path)
}

/// `sync`, then ask the kernel to drop clean page-cache pages; says what happened.
fn drop_page_cache() -> String {
    let _ = std::process::Command::new("sync").status();
    match std::fs::write("/proc/sys/vm/drop_caches", "1") {
        Ok(()) => "page cache dropped".to_string(),
        Err(error) => format!("page cache not dropped: {error}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Workload and loading

/// The scenario's own cluster (a unique name, so runs against a shared server do not mix) and a
/// Fargate task definition.
struct Workload {
    cluster: String,
}

impl Workload {
    async fn create(target: &Target, scenario: &str) -> anyhow::Result<Workload> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let cluster = format!("load-{scenario}-{}", &suffix[..8]);
        let mut client = target.client().await?;
        client
            .create_cluster(CreateClusterRequest {
                cluster_name: Some(cluster.clone()),
                ..Default::default()
            })
            .await
            .context("CreateCluster")?;
        client
            .register_task_definition(fargate_definition())
            .await
            .context("RegisterTaskDefinition")?;
        Ok(Workload { cluster })
    }
}

#[derive(Debug, Clone, Copy)]
enum Goal {
    /// This many tasks, created by RunTask count=10.
    Tasks(u64),
    /// This many events (rounded up to whole tasks): tasks created by RunTask count=10, each then
    /// walked through the whole lifecycle (in-process only).
    Events(u64),
}

impl Goal {
    /// `--tasks` if given, else `--events`; and the option as given.
    fn of(events: u64, tasks: Option<u64>) -> (Goal, String) {
        match tasks {
            Some(tasks) => (Goal::Tasks(tasks), format!("--tasks {tasks}")),
            None => (Goal::Events(events), format!("--events {events}")),
        }
    }

    /// Tasks to create: an event goal gets whole lifecycles (RunTask's event, then one per status).
    fn tasks(self) -> u64 {
        match self {
            Goal::Tasks(n) => n,
            Goal::Events(n) => n.div_ceil(1 + LIFECYCLE.len() as u64),
        }
    }

    fn describe(self) -> String {
        match self {
            Goal::Tasks(n) => format!("{n} tasks by RunTask count=10"),
            Goal::Events(n) => format!(
                "{n} events: {} tasks by RunTask count=10, each then walked {} by SubmitTaskStateChange (8 events \
                 a task), from {LOAD_CONCURRENCY} threads through Store (no gRPC)",
                self.tasks(),
                LIFECYCLE.join("→")
            ),
        }
    }
}

struct Loaded {
    ids: Vec<String>,
    how: String,
    seconds: f64,
    head: Option<u64>,
}

impl Loaded {
    fn count(&self) -> u64 {
        self.ids.len() as u64
    }

    fn line(&self) -> String {
        let head = self
            .head
            .map(|h| format!(", store head {h} events"))
            .unwrap_or_default();
        format!(
            "loaded {} tasks in {:.1} s ({:.0} tasks/s) via {}{head} [setup, not a result]",
            self.count(),
            self.seconds,
            rate(self.count(), self.seconds),
            self.how
        )
    }
}

async fn load(target: &Target, workload: &Workload, goal: Goal) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let ids = match (target.store(), goal) {
        (Some(store), _) => {
            let (store, cluster) = (store.clone(), workload.cluster.clone());
            tokio::task::spawn_blocking(move || load_in_process(&store, &cluster, goal))
                .await
                .context("the loader panicked")??
        }
        (None, Goal::Tasks(tasks)) => load_grpc(&target.endpoint, &workload.cluster, tasks).await?,
        (None, Goal::Events(_)) => bail!("filling a store up to a number of events needs the in-process store"),
    };
    Ok(Loaded {
        ids,
        how: target.load_path(),
        seconds: started.elapsed().as_secs_f64(),
        head: target.store().map(Store::head_seq),
    })
}

fn load_in_process(store: &Store, cluster: &str, goal: Goal) -> anyhow::Result<Vec<String>> {
    let scope = Scope::new("us-east-1", "123456789012").context("the default scope is valid")?;
    let claimed = AtomicU64::new(0);
    let batches: Vec<anyhow::Result<Vec<String>>> = std::thread::scope(|threads| {
        let workers: Vec<_> = (0..LOAD_CONCURRENCY)
            .map(|_| {
                threads.spawn(|| {
                    let caller = Caller {
                        name: "taskledger-load".to_string(),
                        ..Caller::library(scope.clone())
                    };
                    let mut ids = Vec::new();
                    loop {
                        let first = claimed.fetch_add(10, Relaxed);
                        if first >= goal.tasks() {
                            break;
                        }
                        let count = (goal.tasks() - first).min(10);
                        let response = store.run_task(&caller, run_request(cluster, count as i32))?;
                        ensure!(response.failures.is_empty(), "RunTask failed: {:?}", response.failures);
                        let new: Vec<String> = response
                            .tasks
                            .iter()
                            .filter_map(|t| t.task_arn.as_deref())
                            .map(task_id)
                            .collect();
                        if let Goal::Events(_) = goal {
                            for task in &new {
                                for status in LIFECYCLE {
                                    store.submit_task_state_change(&caller, transition(cluster, task, status))?;
                                }
                            }
                        }
                        ids.extend(new);
                    }
                    Ok(ids)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("loader threads do not panic"))
            .collect()
    });
    let mut ids = Vec::new();
    for batch in batches {
        ids.extend(batch?);
    }
    Ok(ids)
}

async fn load_grpc(endpoint: &str, cluster: &str, tasks: u64) -> anyhow::Result<Vec<String>> {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..LOAD_CONCURRENCY {
        let (mut client, claimed, cluster) = (connect(endpoint).await?, Arc::clone(&claimed), cluster.to_string());
        workers.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let first = claimed.fetch_add(10, Relaxed);
                if first >= tasks {
                    return anyhow::Ok(ids);
                }
                let request = run_request(&cluster, (tasks - first).min(10) as i32);
                let response = client
                    .run_task(request)
                    .await
                    .context("RunTask while loading")?
                    .into_inner();
                ensure!(response.failures.is_empty(), "RunTask failed: {:?}", response.failures);
                ids.extend(response.tasks.iter().filter_map(|t| t.task_arn.as_deref()).map(task_id));
            }
        });
    }
    let mut ids = Vec::new();
    while let Some(batch) = workers.join_next().await {
        ids.extend(batch.context("a loader panicked")??);
    }
    Ok(ids)
}

/// Describes every task once (100 per call, 16 in flight), then lists them all; returns how
/// many tasks were described.
async fn touch_all(endpoint: &str, cluster: &str, ids: &[String]) -> anyhow::Result<u64> {
    let chunks: Arc<Vec<Vec<String>>> = Arc::new(ids.chunks(100).map(<[String]>::to_vec).collect());
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..16 {
        let (mut client, chunks, next, cluster) = (
            connect(endpoint).await?,
            Arc::clone(&chunks),
            Arc::clone(&next),
            cluster.to_string(),
        );
        workers.spawn(async move {
            let mut described = 0;
            while let Some(chunk) = chunks.get(next.fetch_add(1, Relaxed) as usize) {
                let request = DescribeTasksRequest {
                    cluster: Some(cluster.clone()),
                    tasks: chunk.clone(),
                    include: vec![],
                };
                described += client
                    .describe_tasks(request)
                    .await
                    .context("DescribeTasks")?
                    .into_inner()
                    .tasks
                    .len() as u64;
            }
            anyhow::Ok(described)
        });
    }
    let mut described = 0;
    while let Some(count) = workers.join_next().await {
        described += count.context("a describer panicked")??;
    }
    let mut client = connect(endpoint).await?;
    let walk = walk_list(&mut client, cluster, Instant::now() + SPAWN_TIMEOUT).await;
    ensure!(walk.tally.errors == 0, "ListTasks failed: {:?}", walk.tally.first_error);
    Ok(described)
}

struct Walk {
    tally: Tally,
    seconds: f64,
    complete: bool,
}

/// Pages through ListTasks of one cluster (maxResults 100) until the end or the deadline.
async fn walk_list(client: &mut EcsClient<Channel>, cluster: &str, deadline: Instant) -> Walk {
    let mut tally = Tally::new();
    let mut next_token = None;
    let started = Instant::now();
    let complete = loop {
        if Instant::now() >= deadline {
            break false;
        }
        let request = ListTasksRequest {
            cluster: Some(cluster.to_string()),
            next_token: next_token.take(),
            max_results: Some(100),
            ..Default::default()
        };
        let Some(page) = tally.time(client.list_tasks(request)).await else {
            break false;
        };
        tally.items += page.task_arns.len() as u64;
        match page.next_token {
            Some(token) if !token.is_empty() => next_token = Some(token),
            _ => break true,
        }
    };
    Walk {
        tally,
        seconds: started.elapsed().as_secs_f64(),
        complete,
    }
}

fn fargate_definition() -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: Some("load".into()),
        network_mode: Some(NetworkMode::Awsvpc as i32),
        requires_compatibilities: vec![Compatibility::Fargate as i32],
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("nginx:1.25".into()),
            essential: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn run_request(cluster: &str, count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some(cluster.into()),
        task_definition: Some("load".into()),
        count: Some(count),
        launch_type: Some(LaunchType::Fargate as i32),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-1".into()],
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn transition(cluster: &str, task: &str, status: &str) -> SubmitTaskStateChangeRequest {
    SubmitTaskStateChangeRequest {
        cluster: Some(cluster.into()),
        task: Some(task.into()),
        status: Some(status.into()),
        ..Default::default()
    }
}

/// The id at the end of a task ARN (`arn:…:task/<cluster>/<id>`).
fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// A phase's bounds, shared by its workers: a deadline and a request budget.
#[derive(Clone)]
struct Limits {
    deadline: Instant,
    issued: Arc<AtomicU64>,
    max: u64,
}

impl Limits {
    /// Whether one more request may be sent.
    fn take(&self) -> bool {
        Instant::now() < self.deadline && self.issued.fetch_add(1, Relaxed) < self.max
    }
}

/// One worker's (or a merged phase's) latencies and counts.
struct Tally {
    latency: Histogram<u64>,
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    /// What the scenario counts: transitions, tasks launched, tasks described or listed.
    items: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant bounds are valid"),
            requests: 0,
            errors: 0,
            first_error: None,
            items: 0,
        }
    }

    /// Times one call; records its latency in microseconds if it succeeded.
    async fn time<T>(&mut self, call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Option<T> {
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

    fn fail(&mut self, why: String) {
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

    fn latency_text(&self) -> String {
        format!(
            "p50 {} us, p99 {} us, max {} us",
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.latency.max()
        )
    }

    fn latency_json(&self, value: &mut Value) {
        value["p50_us"] = json!(self.latency.value_at_quantile(0.5));
        value["p99_us"] = json!(self.latency.value_at_quantile(0.99));
        value["max_us"] = json!(self.latency.max());
    }
}

#[derive(Debug, Clone, Copy)]
struct WriterCounts {
    groups: u64,
    commands: u64,
    events: u64,
    syncs: u64,
}

struct Phase {
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

    fn line(&self, items: &str) -> String {
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

    fn json(&self, items: &str) -> Value {
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
async fn closed_loop<F, W>(target: &Target, in_flight: usize, bounds: &Bounds, worker: W) -> anyhow::Result<Phase>
where
    W: Fn(usize, EcsClient<Channel>, Limits) -> F,
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

/// splitmix64: reproducible, good enough to pick ids.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` distinct items (all of them if there are fewer), in random order.
    fn pick(&mut self, items: &[String], n: usize) -> Vec<String> {
        if items.len() <= n {
            return items.to_vec();
        }
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        while chosen.len() < n {
            let index = (self.next() % items.len() as u64) as usize;
            if !chosen.contains(&index) {
                chosen.push(index);
            }
        }
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
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

fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_string()).ok();
    let rotational = read("/sys/block/vda/queue/rotational").map(|r| match r.as_str() {
        "0" => "vda non-rotational (SSD or virtual)".to_string(),
        "1" => "vda rotational".to_string(),
        other => format!("vda rotational={other}"),
    });
    json!({"nproc": std::thread::available_parallelism().map(|n| n.get()).ok(), "kernel": read("/proc/sys/kernel/osrelease"),
        "disk": rotational, "loadavg": loadavg(), "build": build(),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok()})
}

/// A `Vm*` line of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

fn kib_text(kib: Option<u64>) -> String {
    kib.map_or("unknown".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
