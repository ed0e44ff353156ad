//! The one integration-test binary: the store's promises (DESIGN invariants), lifecycle
//! conformance, crash safety with real processes, and migrations.

mod support;

mod audit;
mod crash;
mod invariants;
mod lifecycle;
mod model;
