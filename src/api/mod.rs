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

/// The request-metadata key that names the region of a call (default: the server's region).
pub const REGION_HEADER: &str = "x-taskledger-region";
/// The request/response-metadata key that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// `ErrorInfo.domain` of every error taskledger returns.
pub const ERROR_DOMAIN: &str = "ecs.taskledger";
