//! What deciding and folding need to know about current state, as two traits (`StateView` to
//! read, `StateMut` to write records), and `MemoryState`, the in-memory implementation used to
//! verify the store against a fold of its log and as the model in property tests.
//! Does not know how records are stored: the store implements the same traits over its engine.

use std::collections::BTreeMap;

use super::error::DomainResult;
use super::ids::Scope;
use super::lifecycle::TaskStatus;
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};

/// Read access to the current records. Errors are storage faults (reported as ServerException).
pub trait StateView {
    fn cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<ClusterRecord>>;
    /// Clusters of the scope whose status is ACTIVE (the 10,000-cluster quota).
    fn active_cluster_count(&self, scope: &Scope) -> DomainResult<usize>;
    fn task(&self, task_id: &str) -> DomainResult<Option<TaskRecord>>;
    fn task_definition(&self, scope: &Scope, family: &str, revision: u32)
        -> DomainResult<Option<TaskDefinitionRecord>>;
    fn family(&self, scope: &Scope, family: &str) -> DomainResult<Option<FamilyRecord>>;
    /// The highest ACTIVE revision of a family.
    fn latest_active_revision(&self, scope: &Scope, family: &str) -> DomainResult<Option<u32>>;
    fn container_instance(&self, instance_id: &str) -> DomainResult<Option<ContainerInstanceRecord>>;
    /// Ids of every container instance ever registered in the cluster (any status), sorted.
    fn container_instance_ids(&self, scope: &Scope, cluster: &str) -> DomainResult<Vec<String>>;
    /// Ids of the tasks placed on an instance that are not STOPPED, sorted.
    fn unstopped_task_ids_on_instance(&self, instance_id: &str) -> DomainResult<Vec<String>>;
    fn client_token(&self, cluster_arn: &str, token: &str) -> DomainResult<Option<ClientTokenRecord>>;
}

/// Write access: whole records are put back; indexes are derived from them by the store.
pub trait StateMut: StateView {
    /// The task record, to be changed and put back with `put_task`. A state that owns its
    /// records (`MemoryState`) hands the record over instead of copying it; until it is put back
    /// the task's place holds an empty record.
    fn take_task(&mut self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        self.task(task_id)
    }
    fn put_cluster(&mut self, scope: &Scope, name: &str, record: ClusterRecord);
    fn put_task(&mut self, task_id: &str, record: TaskRecord);
    fn put_task_definition(&mut self, scope: &Scope, family: &str, revision: u32, record: TaskDefinitionRecord);
    fn put_family(&mut self, scope: &Scope, family: &str, record: FamilyRecord);
    fn put_container_instance(&mut self, instance_id: &str, record: ContainerInstanceRecord);
    fn put_client_token(&mut self, cluster_arn: &str, token: &str, record: ClientTokenRecord);
    /// Removes a task record (an expired STOPPED task).
    fn remove_task(&mut self, task_id: &str);
}

/// Every record in memory, in key order. The reference model: the store's views must equal
/// what folding the log into a `MemoryState` gives.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryState {
    pub clusters: BTreeMap<(Scope, String), ClusterRecord>,
    pub tasks: BTreeMap<String, TaskRecord>,
    pub task_definitions: BTreeMap<(Scope, String, u32), TaskDefinitionRecord>,
    pub families: BTreeMap<(Scope, String), FamilyRecord>,
    pub container_instances: BTreeMap<String, ContainerInstanceRecord>,
    pub client_tokens: BTreeMap<(String, String), ClientTokenRecord>,
}

impl StateView for MemoryState {
    fn cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<ClusterRecord>> {
        Ok(self.clusters.get(&(scope.clone(), name.to_string())).cloned())
    }

    fn active_cluster_count(&self, scope: &Scope) -> DomainResult<usize> {
        Ok(self
            .clusters
            .iter()
            .filter(|((s, _), r)| s == scope && cluster_is_active(r))
            .count())
    }

    fn task(&self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        Ok(self.tasks.get(task_id).cloned())
    }

    fn task_definition(
        &self,
        scope: &Scope,
        family: &str,
        revision: u32,
    ) -> DomainResult<Option<TaskDefinitionRecord>> {
        Ok(self
            .task_definitions
            .get(&(scope.clone(), family.to_string(), revision))
            .cloned())
    }

    fn family(&self, scope: &Scope, family: &str) -> DomainResult<Option<FamilyRecord>> {
        Ok(self.families.get(&(scope.clone(), family.to_string())).cloned())
    }

    fn latest_active_revision(&self, scope: &Scope, family: &str) -> DomainResult<Option<u32>> {
        Ok(self
            .task_definitions
            .iter()
            .filter(|((s, f, _), r)| s == scope && f == family && task_definition_is_active(r))
            .map(|((_, _, revision), _)| *revision)
            .max())
    }

    fn container_instance(&self, instance_id: &str) -> DomainResult<Option<ContainerInstanceRecord>> {
        Ok(self.container_instances.get(instance_id).cloned())
    }

    fn container_instance_ids(&self, scope: &Scope, cluster: &str) -> DomainResult<Vec<String>> {
        let arn_prefix = scope.container_instance_arn(cluster, "");
        Ok(self
            .container_instances
            .iter()
            .filter(|(_, r)| {
                r.container_instance
                    .as_ref()
                    .and_then(|ci| ci.container_instance_arn.as_deref())
                    .is_some_and(|arn| arn.starts_with(&arn_prefix))
            })
            .map(|(id, _)| id.clone())
            .collect())
    }

    fn unstopped_task_ids_on_instance(&self, instance_id: &str) -> DomainResult<Vec<String>> {
        Ok(self
            .tasks
            .iter()
            .filter(|(_, r)| task_instance_id(r) == Some(instance_id) && !task_is_stopped(r))
            .map(|(id, _)| id.clone())
            .collect())
    }

    fn client_token(&self, cluster_arn: &str, token: &str) -> DomainResult<Option<ClientTokenRecord>> {
        Ok(self
            .client_tokens
            .get(&(cluster_arn.to_string(), token.to_string()))
            .cloned())
    }
}

impl StateMut for MemoryState {
    fn take_task(&mut self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        // In place: removing and inserting again would move the map's large values twice.
        Ok(self.tasks.get_mut(task_id).map(std::mem::take))
    }

    fn put_cluster(&mut self, scope: &Scope, name: &str, record: ClusterRecord) {
        self.clusters.insert((scope.clone(), name.to_string()), record);
    }

    fn put_task(&mut self, task_id: &str, record: TaskRecord) {
        match self.tasks.get_mut(task_id) {
            Some(place) => *place = record,
            None => {
                self.tasks.insert(task_id.to_string(), record);
            }
        }
    }

    fn put_task_definition(&mut self, scope: &Scope, family: &str, revision: u32, record: TaskDefinitionRecord) {
        self.task_definitions
            .insert((scope.clone(), family.to_string(), revision), record);
    }

    fn put_family(&mut self, scope: &Scope, family: &str, record: FamilyRecord) {
        self.families.insert((scope.clone(), family.to_string()), record);
    }

    fn put_container_instance(&mut self, instance_id: &str, record: ContainerInstanceRecord) {
        self.container_instances.insert(instance_id.to_string(), record);
    }

    fn put_client_token(&mut self, cluster_arn: &str, token: &str, record: ClientTokenRecord) {
        self.client_tokens
            .insert((cluster_arn.to_string(), token.to_string()), record);
    }

    fn remove_task(&mut self, task_id: &str) {
        self.tasks.remove(task_id);
    }
}

/// Whether a cluster record is ACTIVE.
pub fn cluster_is_active(record: &ClusterRecord) -> bool {
    record.cluster.as_ref().and_then(|c| c.status.as_deref()) == Some("ACTIVE")
}

/// Whether a task-definition revision is ACTIVE.
pub fn task_definition_is_active(record: &TaskDefinitionRecord) -> bool {
    record.task_definition.as_ref().and_then(|t| t.status)
        == Some(crate::proto::v1::TaskDefinitionStatus::Active as i32)
}

/// Whether a task has reached STOPPED.
pub fn task_is_stopped(record: &TaskRecord) -> bool {
    TaskStatus::of(record.task.as_ref().and_then(|t| t.last_status.as_deref())) == TaskStatus::Stopped
}

/// The id of the container instance a task is placed on, if any.
pub fn task_instance_id(record: &TaskRecord) -> Option<&str> {
    record
        .task
        .as_ref()
        .and_then(|t| t.container_instance_arn.as_deref())
        .map(super::ids::stored_id_of)
}

/// Which index a task listing walks (ECS ListTasks filters, ECS_SEMANTICS §2.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskIndex {
    /// Every task of the cluster with the desired status.
    Cluster,
    Family(String),
    StartedBy(String),
    /// Tasks placed on this container instance (by id).
    Instance(String),
}

/// A listing of tasks: one cluster, one desired status, one index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskListing {
    pub scope: Scope,
    pub cluster: String,
    pub desired: super::lifecycle::DesiredStatus,
    pub index: TaskIndex,
}

/// Ordered scans over the indexes, for the List* queries. Every scan returns keys strictly after
/// `after`, in index order, at most `limit` of them.
pub trait StateIndex: StateView {
    /// Task ids of a listing, in id order.
    fn task_ids(&self, listing: &TaskListing, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>>;
    /// Names of the scope's clusters (any status), in name order.
    fn cluster_names(&self, scope: &Scope, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>>;
    /// (family, revision) of the scope's task definitions with `status` (only `family`'s when
    /// given), by family then revision; `descending` reverses both and `after` then means before.
    fn task_definition_revisions(
        &self,
        scope: &Scope,
        status: crate::proto::v1::TaskDefinitionStatus,
        family: Option<&str>,
        descending: bool,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> DomainResult<Vec<(String, u32)>>;
    /// Family names of the scope starting with `prefix`, in name order.
    fn family_names(&self, scope: &Scope, prefix: &str, after: Option<&str>, limit: usize)
        -> DomainResult<Vec<String>>;
}

/// Whether a task belongs to a listing (the same rule the store's indexes follow).
pub fn task_in_listing(record: &TaskRecord, listing: &TaskListing) -> bool {
    use super::lifecycle::DesiredStatus;
    let Some(task) = record.task.as_ref() else { return false };
    let cluster_prefix = listing.scope.task_arn(&listing.cluster, "");
    if !task.task_arn.as_deref().is_some_and(|a| a.starts_with(&cluster_prefix)) {
        return false;
    }
    if DesiredStatus::of(task.desired_status.as_deref()) != listing.desired {
        return false;
    }
    match &listing.index {
        TaskIndex::Cluster => true,
        TaskIndex::Family(family) => task_family(task) == Some(family.as_str()),
        TaskIndex::StartedBy(started_by) => task.started_by.as_deref() == Some(started_by.as_str()),
        TaskIndex::Instance(id) => task_instance_id(record) == Some(id.as_str()),
    }
}

/// The family of a task's task definition.
pub fn task_family(task: &crate::proto::v1::Task) -> Option<&str> {
    let arn = task.task_definition_arn.as_deref()?;
    let (_, rest) = arn.rsplit_once("task-definition/")?;
    rest.split_once(':').map(|(family, _)| family)
}

fn page<T: Clone>(items: impl Iterator<Item = T>, limit: usize) -> Vec<T> {
    items.take(limit).collect()
}

impl StateIndex for MemoryState {
    fn task_ids(&self, listing: &TaskListing, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        Ok(page(
            self.tasks
                .iter()
                .filter(|(id, _)| after.is_none_or(|a| id.as_str() > a))
                .filter(|(_, r)| task_in_listing(r, listing))
                .map(|(id, _)| id.clone()),
            limit,
        ))
    }

    fn cluster_names(&self, scope: &Scope, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        Ok(page(
            self.clusters
                .keys()
                .filter(|(s, name)| s == scope && after.is_none_or(|a| name.as_str() > a))
                .map(|(_, name)| name.clone()),
            limit,
        ))
    }

    fn task_definition_revisions(
        &self,
        scope: &Scope,
        status: crate::proto::v1::TaskDefinitionStatus,
        family: Option<&str>,
        descending: bool,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> DomainResult<Vec<(String, u32)>> {
        let mut all: Vec<(String, u32)> = self
            .task_definitions
            .iter()
            .filter(|((s, f, _), record)| {
                s == scope
                    && family.is_none_or(|family| f == family)
                    && record.task_definition.as_ref().and_then(|t| t.status) == Some(status as i32)
            })
            .map(|((_, f, r), _)| (f.clone(), *r))
            .collect();
        if descending {
            all.reverse();
        }
        let beyond = |(f, r): &(String, u32)| match after {
            None => true,
            Some(cursor) if descending => (f.as_str(), *r) < cursor,
            Some(cursor) => (f.as_str(), *r) > cursor,
        };
        Ok(page(all.into_iter().filter(beyond), limit))
    }

    fn family_names(
        &self,
        scope: &Scope,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> DomainResult<Vec<String>> {
        Ok(page(
            self.families
                .keys()
                .filter(|(s, f)| s == scope && f.starts_with(prefix) && after.is_none_or(|a| f.as_str() > a))
                .map(|(_, f)| f.clone()),
            limit,
        ))
    }
}
