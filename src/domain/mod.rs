//! The pure heart of taskledger: identifiers, the ECS rules, commands validated against state
//! into events (`decide`), and events folded into state (`evolve`). No I/O, no clock, no
//! randomness, no storage engine, no transport, no async runtime: time, ids and scope arrive as
//! inputs.

pub mod command;
pub mod decide;
pub mod error;
pub mod evolve;
pub mod history;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod query;
pub mod resources;
pub mod state;
pub mod tags;
pub mod task_definition;

pub use command::{Command, CommandContext, Decision, Reply};
pub use decide::decide;
pub use error::{DomainError, DomainResult, EcsException, InconsistentEvent};
pub use evolve::evolve;
pub use ids::{IdSeed, Scope};
pub use state::{MemoryState, StateIndex, StateMut, StateView};
