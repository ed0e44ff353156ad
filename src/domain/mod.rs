//! The pure heart of taskledger: identifiers, the ECS rules, commands validated against state
//! into events (`decide`), and events folded into state (`evolve`). No I/O, no clock, no
//! randomness, no sled, no tonic, no tokio: time, ids and scope arrive as inputs.

pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod tags;

pub use error::{DomainError, DomainResult, EcsException};
pub use ids::{IdSeed, Scope};
