//! The gRPC front end: the `taskledger.v1.Ecs` service over the store, the `taskledger.v1.Ledger`
//! audit service beside it, health and reflection, the server with its limits and graceful
//! shutdown, and the optional simulated agent.
//! Does not hold ECS rules (see `domain`) or storage (see `store`); the only module of the crate
//! that imports tonic besides the generated code and the CLI client.
//!
//! # Map
//! - [`operations`]: the 29 ECS operations as tonic-free async calls on the store (the code path
//!   every front end shares).
//! - [`service`]: `EcsService`, the tonic adapter: scope and request id from metadata, one span per
//!   RPC, the per-request timeout.
//! - [`ledger`]: `LedgerService`, the `taskledger.v1.Ledger` adapter over `crate::audit` and the
//!   store: task history, time travel, log pages, subscriptions, verify.
//! - [`status`]: the one mapping from `StoreError` to `tonic::Status` (and back to an ECS exception
//!   name on the client side).
//! - [`server`]: `serve`: Ecs + Ledger + health + reflection, limits, graceful shutdown.
//! - [`agent`]: `--simulate-agent`: moves tasks through their lifecycle with ordinary commands.
//! - [`tls`]: TLS and mutual TLS for both front ends, from PEM files.
//! - [`auth`]: callers from `--auth-file`, who a request comes from, what it may do, rate limits.
//! - [`sigv4`]: SigV4 signatures on the AWS endpoint, checked with the caller's secret.
//! - [`trace_context`]: a caller's W3C `traceparent` continued, the trace id into the log.
//! - [`metrics_http`]: `--metrics-listen`: `/metrics` for Prometheus, `/healthz`, `/readyz`.

pub mod agent;
pub mod auth;
pub mod aws;
pub mod ledger;
pub mod metrics_http;
pub mod operations;
pub mod server;
pub mod service;
pub mod sigv4;
pub mod status;
pub mod tls;
pub mod trace_context;

pub use agent::AgentOptions;
pub use ledger::LedgerService;
pub use operations::Operations;
pub use server::{serve, serve_with_listener, ServeOptions};
pub use service::EcsService;

/// A value the server swaps while serving (TLS certificates, callers on SIGHUP): readers take
/// the current one and keep it for what they are doing. Cheap to clone; equal when shared.
pub(crate) struct Swappable<T>(std::sync::Arc<std::sync::RwLock<std::sync::Arc<T>>>);

impl<T> Swappable<T> {
    pub(crate) fn new(value: std::sync::Arc<T>) -> Swappable<T> {
        Swappable(std::sync::Arc::new(std::sync::RwLock::new(value)))
    }

    pub(crate) fn replace(&self, value: std::sync::Arc<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = value;
    }

    pub(crate) fn current(&self) -> std::sync::Arc<T> {
        std::sync::Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl<T> Clone for Swappable<T> {
    fn clone(&self) -> Self {
        Swappable(std::sync::Arc::clone(&self.0))
    }
}

impl<T> PartialEq for Swappable<T> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Swappable<T> {}

/// The request-metadata key that names the region of a call (default: the server's region).
pub const REGION_HEADER: &str = "x-taskledger-region";
/// The request/response-metadata key that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// `ErrorInfo.domain` of every error taskledger returns.
pub const ERROR_DOMAIN: &str = "ecs.taskledger";
