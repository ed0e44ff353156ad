//! `taskledger serve`: opens the store, binds, prints `taskledger listening on <addr>` on stdout,
//! serves until SIGINT or SIGTERM, then shuts down gracefully and closes the store (exit 0).
//! Does not implement the server (see `api::server`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::engine::EngineArgs;
use crate::api::auth::{Auth, Callers};
use crate::api::aws::{serve_aws, serve_aws_tls, AwsOptions};
use crate::api::metrics_http::{self, serve_metrics};
use crate::api::tls::{TlsConfig, TlsPem};
use crate::api::{serve_with_listener, AgentOptions, Operations, ServeOptions};
use crate::domain::Scope;
use crate::store::{CheckpointPolicy, SledOptions, StoreOptions};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; beyond loopback it takes TLS (`--tls-cert`,
    /// `--tls-key`) and authenticated callers (`--auth-file` or `--tls-client-ca`), or
    /// `--insecure-no-auth`.
    #[arg(long, env = "TASKLEDGER_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Also serve ECS's own wire protocol (AWS JSON 1.1) for AWS SDKs and the AWS CLI on this
    /// address, e.g. 127.0.0.1:4566. Off unless given; loopback unless you name another address.
    #[arg(long, env = "TASKLEDGER_AWS_LISTEN")]
    aws_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (`/metrics`), liveness (`/healthz`) and readiness (`/readyz`: can
    /// writes succeed) over HTTP on this address, e.g. 127.0.0.1:9090. Off unless given.
    #[arg(long, env = "TASKLEDGER_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// The store's directory (created if missing).
    #[arg(long, env = "TASKLEDGER_DATA_DIR", default_value = "./taskledger-data")]
    data_dir: PathBuf,
    /// Region of calls that do not name one in `x-taskledger-region` metadata.
    #[arg(long, env = "TASKLEDGER_REGION", default_value = "us-east-1")]
    region: String,
    /// Account of every resource (12 digits; the default is the AWS documentation's example).
    #[arg(long, env = "TASKLEDGER_ACCOUNT", default_value = "123456789012")]
    account: String,
    /// Run a built-in agent that moves tasks through their lifecycle, so waiters finish.
    #[arg(long, env = "TASKLEDGER_SIMULATE_AGENT")]
    simulate_agent: bool,
    /// The simulated agent's delay before each lifecycle step, in milliseconds.
    #[arg(long, env = "TASKLEDGER_AGENT_STEP_MS", default_value_t = 500)]
    agent_step_ms: u64,
    /// Largest request message accepted, in bytes.
    #[arg(long, env = "TASKLEDGER_MAX_REQUEST_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Requests in flight at once over all connections; more wait for a slot.
    #[arg(long, env = "TASKLEDGER_CONCURRENCY_LIMIT", default_value_t = 1024)]
    concurrency_limit: usize,
    /// Longest an ECS call may take before it is answered DEADLINE_EXCEEDED, in milliseconds.
    /// A command that times out may still be committed.
    #[arg(long, env = "TASKLEDGER_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// sled's page cache, in MiB.
    #[arg(long, env = "TASKLEDGER_CACHE_MB", default_value_t = 32)]
    cache_mb: u64,
    /// Refuse writes (ServerException, nothing written) while the data directory's filesystem has
    /// less free space than this, in MiB, so the store never runs out in the middle of a write;
    /// writes resume once space is freed. 0 turns the reserve off.
    #[arg(long, env = "TASKLEDGER_MIN_FREE_MIB", default_value_t = 64)]
    min_free_mib: u64,
    /// How long a STOPPED task is still described and listed, as ECS keeps one for about an
    /// hour: `30s`, `15m`, `1h`, `7d`… or `forever`. Expiry is itself a logged event
    /// (`TasksExpired`); history, time travel, ReadLog and export keep every task.
    #[arg(long, env = "TASKLEDGER_STOPPED_TASK_RETENTION", default_value = "1h", value_parser = parse_retention)]
    stopped_task_retention: Retention,
    /// Checkpoint the in-memory views after this many events (at least as many as the store
    /// holds tasks), and on a clean shutdown, so that opening loads the checkpoint and folds only
    /// the log after it. 0: never.
    #[arg(long, env = "TASKLEDGER_CHECKPOINT_EVENTS", default_value_t = 100_000)]
    checkpoint_events: u64,
    /// ... or after this many seconds, if anything was written since the last one.
    #[arg(long, env = "TASKLEDGER_CHECKPOINT_SECS", default_value_t = 60)]
    checkpoint_secs: u64,
    /// Serve gRPC and the AWS JSON endpoint over TLS with this certificate chain (PEM).
    #[arg(long, env = "TASKLEDGER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "TASKLEDGER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS on both front ends.
    #[arg(long, env = "TASKLEDGER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Callers and their roles (TOML when it ends in .toml, else JSON): each with a bearer token
    /// (as its SHA-256), a client-certificate subject and/or an AWS access key, roles (reader,
    /// agent, operator, admin), optionally regions, clusters and a rate limit. Then every call
    /// must prove its caller. Read again on SIGHUP. `taskledger auth token` makes a token.
    #[arg(long, env = "TASKLEDGER_AUTH_FILE")]
    auth_file: Option<PathBuf>,
    /// Serve beyond loopback without TLS or authentication. Anyone who reaches the port can read
    /// and change everything; a warning says so at every start.
    #[arg(long, env = "TASKLEDGER_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `--stopped-task-retention`: a duration, or `None` for `forever`.
#[derive(Debug, Clone, Copy)]
struct Retention(Option<Duration>);

fn parse_retention(text: &str) -> Result<Retention, String> {
    if text == "forever" {
        return Ok(Retention(None));
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 15m, 1h, 7d or `forever`"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d (or say `forever`)")),
    };
    number
        .checked_mul(seconds)
        .map(|s| Retention(Some(Duration::from_secs(s))))
        .ok_or_else(|| format!("{text:?} is too long; say `forever`"))
}

/// The `--tls-*` files, read again on SIGHUP.
#[derive(Debug, Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn read(&self) -> anyhow::Result<TlsPem> {
        TlsPem::read(&self.cert, &self.key, self.client_ca.as_deref()).map_err(|e| anyhow::anyhow!("--tls-*: {e}"))
    }
}

/// On every SIGHUP, reads the `--tls-*` files again and serves new connections with them (open
/// connections keep what they have), and the `--auth-file` (calls from then on are checked
/// against it). Files that are not valid leave the old setup in place.
#[cfg(unix)]
fn reload_on_sighup(tls: Option<(TlsFiles, TlsConfig)>, auth: Option<(PathBuf, Auth)>) -> anyhow::Result<()> {
    if tls.is_none() && auth.is_none() {
        return Ok(());
    }
    let mut hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if let Some((files, config)) = &tls {
                match files
                    .read()
                    .and_then(|pem| config.replace(&pem).map_err(|e| anyhow::anyhow!("{e}")))
                {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded; new connections use them"),
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "SIGHUP: TLS certificates not reloaded; the old ones stay")
                    }
                }
            }
            if let Some((path, auth)) = &auth {
                match Callers::read(path).and_then(|callers| auth.replace(callers)) {
                    Ok(()) => tracing::info!("SIGHUP: --auth-file reloaded; calls from now on are checked against it"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: --auth-file not reloaded; the old callers stay"),
                }
            }
        }
    });
    Ok(())
}

/// Refuses front ends beyond loopback that nothing protects, before anything is opened.
fn check_exposure(args: &ServeArgs) -> anyhow::Result<()> {
    let exposed: Vec<String> = [
        Some(("--listen", args.listen)),
        args.aws_listen.map(|a| ("--aws-listen", a)),
    ]
    .into_iter()
    .flatten()
    .filter(|(_, address)| !address.ip().is_loopback())
    .map(|(flag, address)| format!("{flag} {address}"))
    .collect();
    if exposed.is_empty() {
        return Ok(());
    }
    let exposed = exposed.join(", ");
    if args.insecure_no_auth {
        tracing::warn!(%exposed, "--insecure-no-auth: serving beyond loopback without TLS or authentication; anyone who reaches it can change state");
        return Ok(());
    }
    let authenticated = args.auth_file.is_some() || args.tls_client_ca.is_some();
    match (args.tls_cert.is_some(), authenticated) {
        (true, true) => Ok(()),
        (false, _) => anyhow::bail!(
            "{exposed} is beyond loopback: give --tls-cert and --tls-key, and --auth-file (callers with tokens, \
             certificate subjects or AWS keys, and roles) or --tls-client-ca (only clients with certificates \
             from your CA); or --insecure-no-auth to serve it unprotected"
        ),
        (true, false) => anyhow::bail!(
            "{exposed} is beyond loopback over TLS but nothing authenticates callers: give --auth-file (callers \
             with tokens, certificate subjects or AWS keys, and roles) or --tls-client-ca (only clients with \
             certificates from your CA); or --insecure-no-auth to serve it unprotected"
        ),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    check_exposure(&args)?;
    let tls_files = args
        .tls_cert
        .clone()
        .zip(args.tls_key.clone())
        .map(|(cert, key)| TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca.clone(),
        });
    let tls = match &tls_files {
        Some(files) => Some(TlsConfig::new(&files.read()?).map_err(|e| anyhow::anyhow!("--tls-*: {e}"))?),
        None => None,
    };
    let auth = match &args.auth_file {
        Some(path) => Auth::with(Callers::read(path).map_err(|e| anyhow::anyhow!("--auth-file {e}"))?),
        None => Auth::open(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let store_options = StoreOptions {
        sled: SledOptions {
            cache_capacity: args.cache_mb.saturating_mul(1024 * 1024),
        },
        min_free_space: args.min_free_mib.saturating_mul(1024 * 1024),
        stopped_task_retention: args.stopped_task_retention.0,
        checkpoints: (args.checkpoint_events > 0).then(|| CheckpointPolicy {
            every_events: args.checkpoint_events,
            interval: Duration::from_secs(args.checkpoint_secs.max(1)),
        }),
        ..StoreOptions::default()
    };
    if args.metrics_listen.is_some() {
        // Before the store opens, so that what opening records is kept too.
        metrics_http::install().map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?;
    }
    let store = args.engine.open(&args.data_dir, store_options)?;

    let options = ServeOptions {
        listen: args.listen,
        region: args.region,
        account: args.account,
        max_request_bytes: args.max_request_bytes,
        concurrency_limit: args.concurrency_limit,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        simulate_agent: args.simulate_agent.then(|| AgentOptions {
            step_delay: Duration::from_millis(args.agent_step_ms),
        }),
        tls: tls.clone(),
        auth: auth.clone(),
    };
    let scope = Scope::new(&options.region, &options.account)
        .map_err(|e| anyhow::anyhow!("--region/--account: {}", e.message))?;
    let aws_options = AwsOptions {
        default_scope: scope,
        max_body_bytes: args.max_request_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        auth: auth.clone(),
    };
    runtime.block_on(async {
        #[cfg(unix)]
        reload_on_sighup(
            tls_files.zip(tls.clone()),
            args.auth_file.clone().map(|path| (path, auth.clone())),
        )?;
        // One signal stops both front ends.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let aws = match args.aws_listen {
            Some(address) => {
                let (listener, bound) = bind(address, "--aws-listen").await?;
                let operations = Operations::new(store.clone());
                Some(match &tls {
                    Some(tls) => {
                        println!("taskledger AWS JSON endpoint on https://{bound}");
                        let tls = tls.clone();
                        tokio::spawn(serve_aws_tls(listener, operations, aws_options, tls, until_stopped()))
                    }
                    None => {
                        println!("taskledger AWS JSON endpoint on http://{bound}");
                        tokio::spawn(serve_aws(listener, operations, aws_options, until_stopped()))
                    }
                })
            }
            None => None,
        };
        let metrics = match args.metrics_listen {
            Some(address) => {
                let (listener, bound) = bind(address, "--metrics-listen").await?;
                if !bound.ip().is_loopback() {
                    tracing::warn!(%bound, "metrics endpoint listening beyond loopback: it has no authentication");
                }
                println!("taskledger metrics on http://{bound}/metrics");
                Some(tokio::spawn(serve_metrics(listener, store.clone(), until_stopped())))
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {} (is another server running there?)", options.listen))?;
        let address = listener.local_addr().context("reading the bound address")?;
        println!("taskledger listening on {address}");
        serve_with_listener(store.clone(), listener, options, until_stopped()).await?;
        if let Some(aws) = aws {
            aws.await
                .context("the AWS endpoint task failed")?
                .context("the AWS endpoint failed")?;
        }
        if let Some(metrics) = metrics {
            metrics
                .await
                .context("the metrics endpoint task failed")?
                .context("the metrics endpoint failed")?;
        }
        anyhow::Ok(())
    })?;
    if let Some(reason) = store.write_refusal() {
        // After a storage failure sled may wait forever for writes it can no longer make (it did
        // after ENOSPC). Everything acknowledged was fsynced already: exit without closing it.
        tracing::error!(%reason, "exiting without closing the store after a storage failure");
        std::mem::forget(store);
        return Ok(ExitCode::SUCCESS);
    }
    // The last handle: the writer answers what is queued, then stops.
    drop(store);
    tracing::info!("store closed");
    Ok(ExitCode::SUCCESS)
}

/// A listener for one of the extra endpoints, and the address it got.
async fn bind(address: SocketAddr, flag: &str) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for {flag}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    Ok((listener, bound))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retentions_parse_as_durations_or_forever() {
        assert_eq!(parse_retention("1h").unwrap().0, Some(Duration::from_secs(3600)));
        assert_eq!(parse_retention("30s").unwrap().0, Some(Duration::from_secs(30)));
        assert_eq!(parse_retention("7d").unwrap().0, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_retention("forever").unwrap().0, None);
        for bad in ["", "h", "1", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }
}
