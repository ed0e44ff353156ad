//! The writer's view of state during one group commit: the committed in-memory views, with the
//! records earlier commands of the same group changed laid over them. At the end of the group
//! its changes become a `ViewBatch` (records plus index diffs), applied to the views once the
//! group is durable in the log. `rebuild` and the open-time fold use it the same way.
//! Does not decide or fold events itself; `decide` and `evolve` work through it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::engine::WriteBatch;
use super::keys;
use super::memory::{stopped_at, TaskWrite, ViewBatch, Views};
use super::views::View;
use crate::domain::error::DomainResult;
use crate::domain::ids::Scope;
use crate::domain::state::{task_definition_is_active, task_instance_id, task_is_stopped, StateMut, StateView};
use crate::domain::DomainError;
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};

/// A record as committed (`original`) and as this group leaves it (`current`); shared until
/// the group changes it, so caching a read costs no copy.
struct Slot<T> {
    original: Option<Arc<T>>,
    current: Option<Arc<T>>,
    dirty: bool,
}

type Slots<K, T> = RefCell<HashMap<K, Slot<T>>>;

pub struct Overlay<'a> {
    base: &'a Views,
    tasks: Slots<String, TaskRecord>,
    clusters: Slots<(Scope, String), ClusterRecord>,
    task_definitions: Slots<(Scope, String, u32), TaskDefinitionRecord>,
    families: Slots<(Scope, String), FamilyRecord>,
    instances: Slots<String, ContainerInstanceRecord>,
    tokens: Slots<(String, String), ClientTokenRecord>,
    /// A read that failed while a record was being put; fails the group at commit.
    fault: RefCell<Option<DomainError>>,
}

fn get<K: Hash + Eq, T: Clone>(
    slots: &Slots<K, T>,
    key: K,
    load: impl FnOnce() -> DomainResult<Option<Arc<T>>>,
) -> DomainResult<Option<T>> {
    if let Some(slot) = slots.borrow().get(&key) {
        return Ok(slot.current.as_deref().cloned());
    }
    let loaded = load()?;
    let copy = loaded.as_deref().cloned();
    slots.borrow_mut().insert(
        key,
        Slot {
            original: loaded.clone(),
            current: loaded,
            dirty: false,
        },
    );
    Ok(copy)
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a Views) -> Self {
        Overlay {
            base,
            tasks: RefCell::default(),
            clusters: RefCell::default(),
            task_definitions: RefCell::default(),
            families: RefCell::default(),
            instances: RefCell::default(),
            tokens: RefCell::default(),
            fault: RefCell::default(),
        }
    }

    fn load_task(&self, id: &str) -> DomainResult<Option<Arc<TaskRecord>>> {
        arc(self.base.task(id))
    }

    fn load_cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<Arc<ClusterRecord>>> {
        arc(self.base.cluster(scope, name))
    }

    fn load_instance(&self, id: &str) -> DomainResult<Option<Arc<ContainerInstanceRecord>>> {
        arc(self.base.container_instance(id))
    }

    fn put<K: Hash + Eq, T>(
        &self,
        slots: &Slots<K, T>,
        key: K,
        value: T,
        load: impl FnOnce() -> DomainResult<Option<Arc<T>>>,
    ) {
        self.write(slots, key, Some(value), load);
    }

    /// Sets a record (`None`: removes it), loading what was committed the first time it is
    /// touched so the diff knows what it replaces.
    fn write<K: Hash + Eq, T>(
        &self,
        slots: &Slots<K, T>,
        key: K,
        value: Option<T>,
        load: impl FnOnce() -> DomainResult<Option<Arc<T>>>,
    ) {
        let current = value.map(Arc::new);
        let mut map = slots.borrow_mut();
        if let Some(slot) = map.get_mut(&key) {
            slot.current = current;
            slot.dirty = true;
            return;
        }
        let original = load().unwrap_or_else(|e| {
            self.fault.borrow_mut().get_or_insert(e);
            None
        });
        map.insert(
            key,
            Slot {
                original,
                current,
                dirty: true,
            },
        );
    }

    /// The view changes of everything this group changed.
    pub fn into_batch(self) -> DomainResult<ViewBatch> {
        if let Some(fault) = self.fault.into_inner() {
            return Err(fault);
        }
        let mut batch = ViewBatch::default();
        diff_tasks(self.tasks, &mut batch.tasks);
        diff(self.clusters, &mut batch.other);
        diff(self.task_definitions, &mut batch.other);
        diff(self.families, &mut batch.other);
        diff(self.instances, &mut batch.other);
        diff(self.tokens, &mut batch.other);
        Ok(batch)
    }
}

fn arc<T>(record: DomainResult<Option<T>>) -> DomainResult<Option<Arc<T>>> {
    record.map(|r| r.map(Arc::new))
}

/// Whether a slot ends where it started.
fn unchanged<T: PartialEq>(slot: &Slot<T>) -> bool {
    match (&slot.original, &slot.current) {
        (Some(old), Some(new)) => Arc::ptr_eq(old, new) || old == new,
        (None, None) => true,
        _ => false,
    }
}

/// The task records that changed, with the listings each left and joined.
fn diff_tasks(slots: Slots<String, TaskRecord>, out: &mut Vec<TaskWrite>) {
    for (id, slot) in slots.into_inner() {
        if !slot.dirty || unchanged(&slot) {
            continue;
        }
        let old = slot.original.as_deref().map(keys::task_listings).unwrap_or_default();
        let new = slot.current.as_deref().map(keys::task_listings).unwrap_or_default();
        out.push(TaskWrite {
            stopped: (
                slot.original.as_deref().and_then(stopped_at),
                slot.current.as_deref().and_then(stopped_at),
            ),
            left: old.iter().filter(|l| !new.contains(l)).cloned().collect(),
            joined: new.iter().filter(|l| !old.contains(l)).cloned().collect(),
            record: slot.current.as_deref().map(|r| r.encode_stored()),
            id,
        });
    }
}

/// The writes that turn what was committed into what this group left: the record itself when it
/// changed, and the index entries it left or joined.
fn diff<T: View + PartialEq>(slots: Slots<T::Id, T>, batch: &mut WriteBatch)
where
    T::Id: Hash + Eq,
{
    for (id, slot) in slots.into_inner() {
        if !slot.dirty || unchanged(&slot) {
            continue;
        }
        let old_indexes = slot.original.as_deref().map(|r| r.index_keys(&id)).unwrap_or_default();
        let new_indexes = slot.current.as_deref().map(|r| r.index_keys(&id)).unwrap_or_default();
        for key in old_indexes.iter().filter(|k| !new_indexes.contains(k)) {
            batch.delete(key.clone());
        }
        for key in new_indexes.iter().filter(|k| !old_indexes.contains(k)) {
            batch.put(key.clone(), Vec::new());
        }
        match slot.current.as_deref() {
            Some(record) => batch.put(T::key(&id), record.encode_stored()),
            None => batch.delete(T::key(&id)),
        }
    }
}

impl StateView for Overlay<'_> {
    fn cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<ClusterRecord>> {
        get(&self.clusters, (scope.clone(), name.to_string()), || {
            self.load_cluster(scope, name)
        })
    }

    fn active_cluster_count(&self, scope: &Scope) -> DomainResult<usize> {
        let mut count = self.base.active_cluster_count(scope)? as i64;
        for ((s, _), slot) in self.clusters.borrow().iter() {
            if s == scope && slot.dirty {
                let was = slot
                    .original
                    .as_deref()
                    .is_some_and(crate::domain::state::cluster_is_active);
                let is = slot
                    .current
                    .as_deref()
                    .is_some_and(crate::domain::state::cluster_is_active);
                count += i64::from(is) - i64::from(was);
            }
        }
        Ok(count.max(0) as usize)
    }

    fn task(&self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        get(&self.tasks, task_id.to_string(), || self.load_task(task_id))
    }

    fn task_definition(
        &self,
        scope: &Scope,
        family: &str,
        revision: u32,
    ) -> DomainResult<Option<TaskDefinitionRecord>> {
        get(
            &self.task_definitions,
            (scope.clone(), family.to_string(), revision),
            || arc(self.base.task_definition(scope, family, revision)),
        )
    }

    fn family(&self, scope: &Scope, family: &str) -> DomainResult<Option<FamilyRecord>> {
        get(&self.families, (scope.clone(), family.to_string()), || {
            arc(self.base.family(scope, family))
        })
    }

    fn latest_active_revision(&self, scope: &Scope, family: &str) -> DomainResult<Option<u32>> {
        let pending: Vec<(u32, bool)> = self
            .task_definitions
            .borrow()
            .iter()
            .filter(|((s, f, _), slot)| s == scope && f == family && slot.dirty)
            .map(|((_, _, r), slot)| (*r, slot.current.as_deref().is_some_and(task_definition_is_active)))
            .collect();
        let newest_pending = pending.iter().filter(|(_, active)| *active).map(|(r, _)| *r).max();
        // The committed latest may have been deregistered in this group: walk down past those.
        let mut committed = self.base.latest_active_revision(scope, family)?;
        while let Some(revision) = committed {
            if !pending.iter().any(|(r, active)| *r == revision && !active) {
                break;
            }
            committed = (1..revision).rev().find(|r| {
                !pending.iter().any(|(p, _)| p == r)
                    && self
                        .base
                        .task_definition(scope, family, *r)
                        .ok()
                        .flatten()
                        .is_some_and(|t| task_definition_is_active(&t))
            });
        }
        Ok(newest_pending.max(committed))
    }

    fn container_instance(&self, instance_id: &str) -> DomainResult<Option<ContainerInstanceRecord>> {
        get(&self.instances, instance_id.to_string(), || {
            self.load_instance(instance_id)
        })
    }

    fn container_instance_ids(&self, scope: &Scope, cluster: &str) -> DomainResult<Vec<String>> {
        let mut ids = self.base.container_instance_ids(scope, cluster)?;
        let arn_prefix = scope.container_instance_arn(cluster, "");
        for (id, slot) in self.instances.borrow().iter() {
            let in_cluster = slot
                .current
                .as_deref()
                .and_then(|r| r.container_instance.as_ref())
                .and_then(|c| c.container_instance_arn.as_deref())
                .is_some_and(|a| a.starts_with(&arn_prefix));
            if in_cluster && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn unstopped_task_ids_on_instance(&self, instance_id: &str) -> DomainResult<Vec<String>> {
        let mut ids = self.base.unstopped_task_ids_on_instance(instance_id)?;
        for (id, slot) in self.tasks.borrow().iter() {
            if slot
                .current
                .as_deref()
                .is_some_and(|r| task_instance_id(r) == Some(instance_id))
                && !ids.contains(id)
            {
                ids.push(id.clone());
            }
        }
        let mut unstopped = Vec::new();
        for id in ids {
            if self.task(&id)?.is_some_and(|r| !task_is_stopped(&r)) {
                unstopped.push(id);
            }
        }
        unstopped.sort();
        Ok(unstopped)
    }

    fn client_token(&self, cluster_arn: &str, token: &str) -> DomainResult<Option<ClientTokenRecord>> {
        get(&self.tokens, (cluster_arn.to_string(), token.to_string()), || {
            arc(self.base.client_token(cluster_arn, token))
        })
    }
}

impl StateMut for Overlay<'_> {
    fn put_cluster(&mut self, scope: &Scope, name: &str, record: ClusterRecord) {
        self.put(&self.clusters, (scope.clone(), name.to_string()), record, || {
            self.load_cluster(scope, name)
        });
    }

    fn put_task(&mut self, task_id: &str, record: TaskRecord) {
        self.put(&self.tasks, task_id.to_string(), record, || self.load_task(task_id));
    }

    fn remove_task(&mut self, task_id: &str) {
        self.write(&self.tasks, task_id.to_string(), None, || self.load_task(task_id));
    }

    fn put_task_definition(&mut self, scope: &Scope, family: &str, revision: u32, record: TaskDefinitionRecord) {
        self.put(
            &self.task_definitions,
            (scope.clone(), family.to_string(), revision),
            record,
            || arc(self.base.task_definition(scope, family, revision)),
        );
    }

    fn put_family(&mut self, scope: &Scope, family: &str, record: FamilyRecord) {
        self.put(&self.families, (scope.clone(), family.to_string()), record, || {
            arc(self.base.family(scope, family))
        });
    }

    fn put_container_instance(&mut self, instance_id: &str, record: ContainerInstanceRecord) {
        self.put(&self.instances, instance_id.to_string(), record, || {
            self.load_instance(instance_id)
        });
    }

    fn put_client_token(&mut self, cluster_arn: &str, token: &str, record: ClientTokenRecord) {
        self.put(
            &self.tokens,
            (cluster_arn.to_string(), token.to_string()),
            record,
            || arc(self.base.client_token(cluster_arn, token)),
        );
    }
}
