//! The one integration-test binary: the store's promises (DESIGN invariants), lifecycle
//! conformance, crash safety with real processes, and migrations.

mod grpc_support;
mod support;

mod audit;
mod aws;
mod crash;
mod grpc;
mod invariants;
mod lifecycle;
mod model;
mod server_crash;
