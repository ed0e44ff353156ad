//! taskledger: an event-sourced task-state store that mirrors the Amazon ECS task APIs.
//!
//! Every change to a task, cluster, task definition or container instance is an event appended
//! to a durable log; queryable views are folded from the log and can always be rebuilt from it.
//!
//! # Map
//! - [`domain`]: the pure ECS rules: ids and ARNs, the task lifecycle, `decide` (command + state
//!   → events) and `evolve` (event + state → state), the read queries. No I/O.
//! - [`store`]: the sled-backed store: the single writer with group commit, the log codec, the
//!   views and their indexes, verify/rebuild, migrations. Usable without any server.
//! - [`proto`]: the types generated from `proto/`: ECS shapes and the gRPC services
//!   (`taskledger.v1`), the log format (`taskledger.log.v1`), the view records.
//! - [`ecs_json`]: ECS's own JSON for any of those messages (AWS JSON 1.1, CLI input).
//! - [`metrics`]: the catalogue of metrics the store and the front ends record through the
//!   `metrics` facade (an embedder may install any recorder; the server renders Prometheus's).
//! - `api` (feature `server`) and `cli` (feature `cli`, both on by default): the gRPC and AWS
//!   JSON front ends and the binaries' commands. `--no-default-features` builds the store alone.
//!
//! # Embedding
//! ```
//! use taskledger::domain::Scope;
//! use taskledger::proto::v1::*;
//! use taskledger::store::{Caller, Store};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let caller = Caller::library(Scope::new("us-east-1", "123456789012")?);
//!
//! store.create_cluster(&caller, CreateClusterRequest { cluster_name: Some("prod".into()), ..Default::default() })?;
//! store.register_task_definition(&caller, RegisterTaskDefinitionRequest {
//!     family: Some("web".into()),
//!     container_definitions: vec![ContainerDefinition {
//!         name: Some("app".into()),
//!         image: Some("nginx:1.25".into()),
//!         memory: Some(256),
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! })?;
//! store.register_container_instance(&caller, RegisterContainerInstanceRequest {
//!     cluster: Some("prod".into()),
//!     ..Default::default()
//! })?;
//!
//! // Returns once the new task's event is fsynced.
//! let run = store.run_task(&caller, RunTaskRequest {
//!     cluster: Some("prod".into()),
//!     task_definition: Some("web".into()),
//!     ..Default::default()
//! })?;
//! let task_arn = run.tasks[0].task_arn.clone().unwrap();
//! assert_eq!(run.tasks[0].last_status.as_deref(), Some("PENDING"));
//!
//! // What an agent reports moves the task along its lifecycle; each change bumps `version`.
//! store.submit_task_state_change(&caller, SubmitTaskStateChangeRequest {
//!     cluster: Some("prod".into()),
//!     task: Some(task_arn.clone()),
//!     status: Some("RUNNING".into()),
//!     ..Default::default()
//! })?;
//! let described = store.describe_tasks(&caller.scope, &DescribeTasksRequest {
//!     cluster: Some("prod".into()),
//!     tasks: vec![task_arn.clone()],
//!     include: vec![],
//! })?;
//! assert_eq!(described.tasks[0].last_status.as_deref(), Some("RUNNING"));
//! assert_eq!(described.tasks[0].version, Some(2));
//!
//! // The whole history is there, and the views provably match it.
//! let task_id = task_arn.rsplit('/').next().unwrap();
//! assert_eq!(store.task_history(task_id, None, 100)?.len(), 2);
//! assert!(store.verify(|_, _| {})?.is_clean());
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "server")]
pub mod api;
pub mod audit;
#[cfg(feature = "cli")]
pub mod cli;
pub mod domain;
pub mod ecs_json;
pub mod metrics;
pub mod proto;
pub mod store;
