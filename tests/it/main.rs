//! The one integration-test binary: the store's promises (DESIGN invariants), lifecycle
//! conformance, crash safety with real processes, migrations, and the audit surface (library,
//! the Ledger service, the audit CLI).

mod grpc_support;
mod support;

mod audit;
mod aws;
mod crash;
mod crash_loop;
mod disk_full;
mod faults;
mod grpc;
mod hostile;
mod invariants;
mod ledger;
mod lifecycle;
mod linearizability;
mod log_check;
mod model;
