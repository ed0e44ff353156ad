//! The one integration-test binary: the store's promises (DESIGN invariants), lifecycle
//! conformance, crash safety with real processes, migrations, and the audit surface (library,
//! the Ledger service, the audit CLI).

mod backend;
mod grpc_support;
mod support;

/// The fuzz targets' bodies, shared with the cargo-fuzz crate in `fuzz/`.
#[path = "../../fuzz/src/targets.rs"]
mod fuzz_targets;

#[cfg(feature = "etcd")]
mod archive;
mod audit;
mod auth;
mod aws;
mod checkpoints;
mod crash;
mod crash_loop;
mod disk_full;
#[cfg(feature = "etcd")]
mod etcd;
mod faults;
mod fuzz_smoke;
mod golden;
mod grpc;
mod hostile;
mod invariants;
mod ledger;
mod lifecycle;
mod linearizability;
mod log_check;
mod metrics;
mod model;
mod pipeline;
mod retention;
mod tls;
#[cfg(feature = "otel")]
mod traces;
