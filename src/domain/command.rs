//! Commands (the ECS operations that change state), the context they are decided in, and the
//! replies they produce. Requests and replies are the ECS shapes of `proto/taskledger/v1`.
//! Does not validate or apply anything: see `decide` and `evolve`.

use prost_types::Timestamp;

use super::ids::{IdSeed, Scope};
use crate::proto::log::{event::Kind, Event};
use crate::proto::v1::*;

/// A request that changes state, as ECS names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RunTask(RunTaskRequest),
    StartTask(StartTaskRequest),
    StopTask(StopTaskRequest),
    SubmitTaskStateChange(SubmitTaskStateChangeRequest),
    SubmitContainerStateChange(SubmitContainerStateChangeRequest),
    SubmitAttachmentStateChanges(SubmitAttachmentStateChangesRequest),
    RegisterTaskDefinition(RegisterTaskDefinitionRequest),
    DeregisterTaskDefinition(DeregisterTaskDefinitionRequest),
    CreateCluster(CreateClusterRequest),
    DeleteCluster(DeleteClusterRequest),
    RegisterContainerInstance(RegisterContainerInstanceRequest),
    DeregisterContainerInstance(DeregisterContainerInstanceRequest),
    UpdateContainerInstancesState(UpdateContainerInstancesStateRequest),
    DeleteTaskDefinitions(DeleteTaskDefinitionsRequest),
    PutAttributes(PutAttributesRequest),
    DeleteAttributes(DeleteAttributesRequest),
    TagResource(TagResourceRequest),
    UntagResource(UntagResourceRequest),
    /// Not an ECS operation: the store's own retention of STOPPED tasks.
    ExpireTasks(ExpireTasks),
}

/// Removes STOPPED tasks that have been stopped for at least `retention_seconds` from the views.
/// Tasks that no longer qualify (not found, not stopped, stopped too recently) are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireTasks {
    pub task_arns: Vec<String>,
    pub retention_seconds: i64,
}

impl Command {
    /// The ECS operation name, e.g. `"RunTask"`.
    pub fn operation(&self) -> &'static str {
        match self {
            Command::RunTask(_) => "RunTask",
            Command::StartTask(_) => "StartTask",
            Command::StopTask(_) => "StopTask",
            Command::SubmitTaskStateChange(_) => "SubmitTaskStateChange",
            Command::SubmitContainerStateChange(_) => "SubmitContainerStateChange",
            Command::SubmitAttachmentStateChanges(_) => "SubmitAttachmentStateChanges",
            Command::RegisterTaskDefinition(_) => "RegisterTaskDefinition",
            Command::DeregisterTaskDefinition(_) => "DeregisterTaskDefinition",
            Command::CreateCluster(_) => "CreateCluster",
            Command::DeleteCluster(_) => "DeleteCluster",
            Command::RegisterContainerInstance(_) => "RegisterContainerInstance",
            Command::DeregisterContainerInstance(_) => "DeregisterContainerInstance",
            Command::UpdateContainerInstancesState(_) => "UpdateContainerInstancesState",
            Command::DeleteTaskDefinitions(_) => "DeleteTaskDefinitions",
            Command::PutAttributes(_) => "PutAttributes",
            Command::DeleteAttributes(_) => "DeleteAttributes",
            Command::TagResource(_) => "TagResource",
            Command::UntagResource(_) => "UntagResource",
            Command::ExpireTasks(_) => "ExpireTasks",
        }
    }

    /// RunTask's clientToken, recorded in the cause of the events it writes.
    pub fn client_token(&self) -> Option<&str> {
        match self {
            Command::RunTask(r) => r.client_token.as_deref(),
            _ => None,
        }
    }

    /// The cluster the command names, as given (for logs and spans).
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Command::RunTask(r) => r.cluster.as_deref(),
            Command::StartTask(r) => r.cluster.as_deref(),
            Command::StopTask(r) => r.cluster.as_deref(),
            Command::SubmitTaskStateChange(r) => r.cluster.as_deref(),
            Command::SubmitContainerStateChange(r) => r.cluster.as_deref(),
            Command::SubmitAttachmentStateChanges(r) => r.cluster.as_deref(),
            Command::CreateCluster(r) => r.cluster_name.as_deref(),
            Command::DeleteCluster(r) => r.cluster.as_deref(),
            Command::RegisterContainerInstance(r) => r.cluster.as_deref(),
            Command::DeregisterContainerInstance(r) => r.cluster.as_deref(),
            Command::UpdateContainerInstancesState(r) => r.cluster.as_deref(),
            Command::PutAttributes(r) => r.cluster.as_deref(),
            Command::DeleteAttributes(r) => r.cluster.as_deref(),
            Command::RegisterTaskDefinition(_)
            | Command::DeregisterTaskDefinition(_)
            | Command::DeleteTaskDefinitions(_)
            | Command::TagResource(_)
            | Command::UntagResource(_)
            | Command::ExpireTasks(_) => None,
        }
    }
}

/// Everything a command is decided with besides state: whose resources, when, and the
/// randomness for new ids. The store fills it in; tests choose it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandContext {
    pub scope: Scope,
    /// The store's clock when the command is decided; recorded in the events it produces.
    pub now: Timestamp,
    pub seed: IdSeed,
}

/// The answer to a command, as ECS shapes it.
// Replies are built once and moved to their caller; boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    RunTask(RunTaskResponse),
    StartTask(StartTaskResponse),
    StopTask(StopTaskResponse),
    SubmitTaskStateChange(SubmitTaskStateChangeResponse),
    SubmitContainerStateChange(SubmitContainerStateChangeResponse),
    SubmitAttachmentStateChanges(SubmitAttachmentStateChangesResponse),
    RegisterTaskDefinition(RegisterTaskDefinitionResponse),
    DeregisterTaskDefinition(DeregisterTaskDefinitionResponse),
    CreateCluster(CreateClusterResponse),
    DeleteCluster(DeleteClusterResponse),
    RegisterContainerInstance(RegisterContainerInstanceResponse),
    DeregisterContainerInstance(DeregisterContainerInstanceResponse),
    UpdateContainerInstancesState(UpdateContainerInstancesStateResponse),
    DeleteTaskDefinitions(DeleteTaskDefinitionsResponse),
    PutAttributes(PutAttributesResponse),
    DeleteAttributes(DeleteAttributesResponse),
    TagResource(TagResourceResponse),
    UntagResource(UntagResourceResponse),
    /// How many tasks expired.
    ExpireTasks(usize),
}

/// What deciding a command produced: the events to append (possibly none: a no-op or an
/// idempotent replay) and the reply to send once they are durable.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub reply: Reply,
}

/// Wraps one kind of event.
pub fn event(kind: Kind) -> Event {
    Event { kind: Some(kind) }
}

/// The ids of the tasks an event is about (their history lists it).
pub fn event_task_id(event: &Event) -> Option<&str> {
    let arn = match &event.kind {
        Some(Kind::TaskCreated(e)) => e.task.as_ref()?.task_arn.as_deref()?,
        Some(Kind::TaskChanged(e)) => e.task_arn.as_str(),
        Some(Kind::TagsChanged(e)) if e.resource_arn.contains(":task/") => e.resource_arn.as_str(),
        _ => return None,
    };
    Some(super::ids::stored_id_of(arn))
}

macro_rules! event_kinds {
    ($($kind:ident),* $(,)?) => {
        /// Every event kind's name (the cases of `taskledger.log.v1.Event.kind`), as filters
        /// name them.
        pub const EVENT_KINDS: &[&str] = &[$(stringify!($kind)),*];

        /// The name of an event's kind, e.g. `"TaskChanged"` (for logs, filters and errors).
        pub fn event_kind_name(event: &Event) -> &'static str {
            match &event.kind {
                $(Some(Kind::$kind(_)) => stringify!($kind),)*
                None => "Unknown",
            }
        }
    };
}

event_kinds!(
    TaskCreated,
    TaskChanged,
    TagsChanged,
    ClientTokenRecorded,
    TasksExpired,
    TaskDefinitionRegistered,
    TaskDefinitionDeregistered,
    TaskDefinitionDeleted,
    ClusterCreated,
    ClusterDeleted,
    ContainerInstanceRegistered,
    ContainerInstanceStatusChanged,
    AttributesChanged,
    ContainerInstanceDeregistered,
);
