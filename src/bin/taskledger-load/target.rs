//! Where the load goes: an in-process server over a fresh temp store, a `taskledger serve` child
//! process over a fresh temp store, or a running server on a loopback address; the gRPC client
//! for it, the writer's counters (in-process only), and the scratch directory a store lives in.
//! Does not run the child process itself (see `server_process`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use taskledger::api::auth::BearerToken;
use taskledger::api::{serve_with_listener, server::ServeError, ServeOptions};
use taskledger::proto::v1::ecs_client::EcsClient;
use taskledger::store::{Store, StoreOptions};
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::machine::build;
use crate::measure::WriterCounts;
use crate::server_process::ServerProcess;
use crate::LOAD_CONCURRENCY;

/// Where the load goes: an in-process server over a fresh temp store, a `taskledger serve` child
/// process over a fresh temp store, or a running server.
pub(crate) struct Target {
    pub(crate) endpoint: String,
    pub(crate) kind: Kind,
}

pub(crate) enum Kind {
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
    pub(crate) async fn start(endpoint: Option<&str>) -> anyhow::Result<Target> {
        let Some(endpoint) = endpoint else {
            return Target::in_process().await;
        };
        check_loopback(endpoint)?;
        Ok(Target {
            endpoint: endpoint.to_string(),
            kind: Kind::Remote,
        })
    }

    pub(crate) async fn in_process() -> anyhow::Result<Target> {
        Target::in_process_in(Scratch::new()?).await
    }

    pub(crate) async fn in_process_in(dir: Scratch) -> anyhow::Result<Target> {
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

    pub(crate) async fn child(binary: &Path) -> anyhow::Result<Target> {
        let dir = Scratch::new()?;
        let process = ServerProcess::spawn(binary, dir.path()).await?;
        Ok(Target {
            endpoint: process.endpoint.clone(),
            kind: Kind::Child { process, dir },
        })
    }

    pub(crate) fn describe(&self) -> String {
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

    pub(crate) fn store(&self) -> Option<&Store> {
        match &self.kind {
            Kind::InProcess { store, .. } => Some(store),
            Kind::Child { .. } | Kind::Remote => None,
        }
    }

    pub(crate) fn load_path(&self) -> String {
        match self.kind {
            Kind::InProcess { .. } => {
                format!("Store::run_task count=10 from {LOAD_CONCURRENCY} threads in this process (no gRPC)")
            }
            Kind::Child { .. } | Kind::Remote => format!("gRPC RunTask count=10, {LOAD_CONCURRENCY} in flight"),
        }
    }

    pub(crate) async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.endpoint).await
    }

    pub(crate) fn writer(&self) -> Option<WriterCounts> {
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
    pub(crate) async fn close(self) -> anyhow::Result<Option<Scratch>> {
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

/// The Ecs client of a scenario: every call carries `TASKLEDGER_TOKEN` when it is set.
pub(crate) type Client = EcsClient<InterceptedService<Channel, BearerToken>>;

/// A client of `endpoint`; an `https://` one over TLS with the CA in `TASKLEDGER_CA` and, for a
/// server that requires one, the client certificate in `TASKLEDGER_CERT` and `TASKLEDGER_KEY`;
/// a bearer token from `TASKLEDGER_TOKEN` (the CLI's variables).
pub(crate) async fn connect(endpoint: &str) -> anyhow::Result<Client> {
    let mut channel = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("invalid endpoint {endpoint}"))?
        .tcp_nodelay(true);
    if endpoint.starts_with("https://") {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let read = |variable: &str| -> anyhow::Result<Option<Vec<u8>>> {
            std::env::var_os(variable)
                .map(|path| std::fs::read(&path).with_context(|| format!("{variable}: cannot read {path:?}")))
                .transpose()
        };
        let ca = read("TASKLEDGER_CA")?.context("an https:// endpoint needs TASKLEDGER_CA (the server's CA, PEM)")?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let (Some(cert), Some(key)) = (read("TASKLEDGER_CERT")?, read("TASKLEDGER_KEY")?) {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        channel = channel.tls_config(tls).context("TASKLEDGER_CA/CERT/KEY")?;
    }
    let channel = channel
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let token = std::env::var("TASKLEDGER_TOKEN").ok();
    let bearer = BearerToken::new(token.as_deref()).map_err(|e| anyhow::anyhow!("TASKLEDGER_TOKEN: {e}"))?;
    Ok(EcsClient::with_interceptor(channel, bearer))
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
pub(crate) struct Scratch {
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

    pub(crate) fn kept(path: PathBuf) -> Scratch {
        Scratch { path, keep: true }
    }

    pub(crate) fn path(&self) -> &Path {
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
