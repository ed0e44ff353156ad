//! taskledger: an event-sourced task-state store that mirrors the Amazon ECS task APIs.

pub mod domain;
pub mod ecs_json;
pub mod proto;
pub mod store;
