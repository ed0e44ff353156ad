//! `serve`: one tonic server with `taskledger.v1.Ecs`, `taskledger.v1.Ledger`, `grpc.health.v1`
//! and server reflection v1 and v1alpha; a global limit on requests in flight, a maximum request
//! size, a per-request timeout (in `EcsService` and `LedgerService`), and graceful shutdown that
//! also ends open subscriptions; optionally the simulated agent beside it.
//! Does not open or close the store: the caller owns it and drops it after `serve` returns, which
//! lets the writer drain.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower::limit::GlobalConcurrencyLimitLayer;

use super::agent::{self, AgentOptions};
use super::ledger::LedgerService;
use super::service::EcsService;
use crate::domain::{DomainError, Scope};
use crate::proto::v1::ecs_server::{EcsServer, SERVICE_NAME};
use crate::proto::v1::ledger_server::{LedgerServer, SERVICE_NAME as LEDGER_SERVICE_NAME};
use crate::store::Store;

/// How often the health service asks whether a write could succeed.
const WRITE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Keeps `taskledger.v1.Ecs`'s health true to whether writes can succeed: NOT_SERVING after a
/// failed write or fsync, and while the log's engine does not answer (etcd without a quorum);
/// SERVING again when it does. The Ledger service only reads and stays SERVING.
async fn watch_writes(store: Store, health: tonic_health::server::HealthReporter) {
    let mut serving = true;
    let mut checks = tokio::time::interval(WRITE_CHECK_EVERY);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checks.tick().await; // the first tick is now: the service starts SERVING
    loop {
        checks.tick().await;
        let probe = store.clone();
        let writable = tokio::task::spawn_blocking(move || probe.writable())
            .await
            .unwrap_or_else(|e| Err(format!("the check did not complete: {e}")));
        match writable {
            Err(reason) if serving => {
                tracing::warn!(%reason, "writes cannot succeed now: health NOT_SERVING for {SERVICE_NAME}");
                health.set_service_status(SERVICE_NAME, ServingStatus::NotServing).await;
                serving = false;
            }
            Ok(()) if !serving => {
                tracing::info!("writes can succeed again: health SERVING for {SERVICE_NAME}");
                health.set_service_status(SERVICE_NAME, ServingStatus::Serving).await;
                serving = true;
            }
            _ => {}
        }
    }
}

/// Extra time, beyond the request timeout, that shutdown waits for open streams (health watches,
/// reflection) before it closes them; unary calls finish within the request timeout.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(1);

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Where `serve` binds (`serve_with_listener` ignores it).
    pub listen: SocketAddr,
    /// The region of calls that do not name one in `x-taskledger-region` metadata.
    pub region: String,
    /// The account every resource belongs to (12 digits).
    pub account: String,
    /// Largest request message accepted, in bytes; larger ones get `OUT_OF_RANGE`.
    pub max_request_bytes: usize,
    /// Requests in flight at once over all connections; more wait for a slot.
    pub concurrency_limit: usize,
    /// Longest an ECS call may take before it is answered `DEADLINE_EXCEEDED`. A command that
    /// times out may still be committed: the writer finishes what it has queued.
    pub request_timeout: Duration,
    /// Runs the simulated agent when set.
    pub simulate_agent: Option<AgentOptions>,
    /// Serves over TLS (mutual TLS when its configuration names a client CA) when set.
    pub tls: Option<super::tls::TlsConfig>,
    /// Who may call (open: anyone who reaches the port).
    pub auth: super::auth::Auth,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            region: "us-east-1".to_string(),
            account: "123456789012".to_string(),
            max_request_bytes: 4 * 1024 * 1024,
            concurrency_limit: 1024,
            request_timeout: Duration::from_secs(30),
            simulate_agent: None,
            tls: None,
            auth: super::auth::Auth::open(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `--region` or `--account` is malformed.
    #[error("invalid --region/--account: {0}")]
    Scope(#[from] DomainError),
    #[error("cannot listen on {address}: {source} (is another server running there? pick another --listen)")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds `options.listen` and serves until `shutdown` completes; see [`serve_with_listener`].
pub async fn serve(store: Store, options: ServeOptions, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            address: options.listen,
            source,
        })?;
    serve_with_listener(store, listener, options, shutdown).await
}

/// Serves on an already-bound listener until `shutdown` completes. Then it stops accepting,
/// lets calls in flight finish (their commits are durable before they answer), waits at most
/// the request timeout plus a second for open streams, stops the agent, and returns.
pub async fn serve_with_listener(
    store: Store,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let scope = Scope::new(&options.region, &options.account)?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind {
        address: options.listen,
        source,
    })?;
    let ecs = EcsServer::new(
        EcsService::new(store.clone(), scope.clone(), options.request_timeout).with_auth(options.auth.clone()),
    )
    .max_decoding_message_size(options.max_request_bytes);
    // Turns true at shutdown, which ends open subscriptions (they would otherwise hold the
    // graceful shutdown for its whole grace period).
    let (stop_subscriptions, subscriptions_stopped) = tokio::sync::watch::channel(false);
    let ledger = LedgerServer::new(
        LedgerService::new(store.clone(), scope, options.request_timeout, subscriptions_stopped)
            .with_auth(options.auth.clone()),
    )
    .max_decoding_message_size(options.max_request_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status(SERVICE_NAME, ServingStatus::Serving).await;
    health
        .set_service_status(LEDGER_SERVICE_NAME, ServingStatus::Serving)
        .await;
    let health_checks = tokio::spawn(watch_writes(store.clone(), health.clone()));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection_v1, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);

    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = options.simulate_agent.clone().map(|agent_options| {
        tokio::spawn(agent::run(store.clone(), agent_options, async {
            let _ = agent_stopped.await;
        }))
    });
    drop(store);

    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let router = Server::builder()
        .layer(GlobalConcurrencyLimitLayer::new(options.concurrency_limit.max(1)))
        .add_service(ecs)
        .add_service(ledger)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let stopped = async {
        let _ = server_stopped.await;
    };
    let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match &options.tls {
        Some(tls) => {
            let incoming = super::tls::accept(listener, tls.clone()).map_err(|source| ServeError::Bind {
                address: options.listen,
                source,
            })?;
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
        }
    };
    tracing::info!(%address, "taskledger listening on {address}");
    tokio::pin!(server, shutdown);
    let result = tokio::select! {
        result = &mut server => result,
        () = &mut shutdown => {
            tracing::info!("shutting down: accepting no more connections, finishing calls in flight");
            health_checks.abort();
            health.set_service_status("", ServingStatus::NotServing).await;
            health.set_service_status(SERVICE_NAME, ServingStatus::NotServing).await;
            health.set_service_status(LEDGER_SERVICE_NAME, ServingStatus::NotServing).await;
            let _ = stop_server.send(());
            let _ = stop_subscriptions.send(true);
            let grace = options.request_timeout + SHUTDOWN_MARGIN;
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(grace_ms = grace.as_millis() as u64, "streams still open at the end of the grace period; closing them");
                    Ok(())
                }
            }
        }
    };
    health_checks.abort();
    let _ = health_checks.await;
    let _ = stop_agent.send(());
    if let Some(agent) = agent {
        if let Err(error) = agent.await {
            tracing::error!(error = %error, "the simulated agent failed");
        }
    }
    tracing::info!("server stopped");
    Ok(result?)
}
