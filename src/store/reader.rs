//! Reading view records keyed as in `keys` from an ordered key-value space: the in-memory views
//! keep every record but the tasks that way (`memory::OtherEntries`) and read them through
//! `SledState`. Also finds the log value holding a seq in a key-value log (`KvLog`).
//! Does not write.

use super::codec::decode_view;
use super::engine::{Engine, EngineError, EngineResult};
use super::keys;
use super::views::View;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::Scope;
use crate::domain::state::{task_is_stopped, StateIndex, StateView, TaskListing};
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};
use crate::proto::v1::TaskDefinitionStatus;

/// The log value holding `seq`, with the seq it is stored under: the value under the greatest
/// log key not above `seq` (a chunk holds the seqs from its key on). It may end before `seq`.
pub fn log_value_holding(engine: &dyn Engine, seq: u64) -> EngineResult<Option<(u64, Vec<u8>)>> {
    if let Some(value) = engine.get(&keys::log(seq))? {
        return Ok(Some((seq, value)));
    }
    let end = keys::log(seq);
    match engine.range_rev(&keys::log(0), &end).next() {
        None => Ok(None),
        Some(entry) => {
            let (key, value) = entry?;
            match keys::log_seq(&key) {
                Some(first) => Ok(Some((first, value))),
                None => Err(EngineError(format!("damaged log key {}", keys::describe(&key)))),
            }
        }
    }
}

/// View records read through an engine (in memory: `memory::OtherEntries`).
pub struct SledState<'a> {
    pub engine: &'a dyn Engine,
}

fn fault(e: impl std::fmt::Display) -> DomainError {
    DomainError::server(format!("storage fault while reading: {e}"))
}

impl SledState<'_> {
    fn record<M: View + Default>(&self, key: &[u8]) -> DomainResult<Option<M>> {
        match self.engine.get(key).map_err(fault)? {
            Some(bytes) => M::decode_stored(key, &bytes).map(Some).map_err(fault),
            None => Ok(None),
        }
    }

    /// Key suffixes under `prefix`, after `after` (a suffix), ascending, at most `limit`.
    fn suffixes(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> DomainResult<Vec<Vec<u8>>> {
        let start = match after {
            Some(after) => [prefix, after, &[0]].concat(),
            None => prefix.to_vec(),
        };
        let end = keys::prefix_end(prefix);
        let mut out = Vec::new();
        for entry in self.engine.range(&start, &end).take(limit) {
            let (key, _) = entry.map_err(fault)?;
            out.push(key[prefix.len()..].to_vec());
        }
        Ok(out)
    }
}

impl StateView for SledState<'_> {
    fn cluster(&self, scope: &Scope, name: &str) -> DomainResult<Option<ClusterRecord>> {
        self.record(&keys::cluster(scope, name))
    }

    fn active_cluster_count(&self, scope: &Scope) -> DomainResult<usize> {
        let prefix = keys::cluster_prefix(scope);
        let mut count = 0;
        for entry in self.engine.range(&prefix, &keys::prefix_end(&prefix)) {
            let (key, bytes) = entry.map_err(fault)?;
            let record: ClusterRecord = decode_view(&key, &bytes).map_err(fault)?;
            if crate::domain::state::cluster_is_active(&record) {
                count += 1;
            }
        }
        Ok(count)
    }

    fn task(&self, task_id: &str) -> DomainResult<Option<TaskRecord>> {
        self.record(&keys::task(task_id))
    }

    fn task_definition(
        &self,
        scope: &Scope,
        family: &str,
        revision: u32,
    ) -> DomainResult<Option<TaskDefinitionRecord>> {
        self.record(&keys::task_definition(scope, family, revision))
    }

    fn family(&self, scope: &Scope, family: &str) -> DomainResult<Option<FamilyRecord>> {
        self.record(&keys::family(scope, family))
    }

    fn latest_active_revision(&self, scope: &Scope, family: &str) -> DomainResult<Option<u32>> {
        let prefix = keys::task_definitions_by_status(scope, TaskDefinitionStatus::Active, Some(family));
        match self.engine.range_rev(&prefix, &keys::prefix_end(&prefix)).next() {
            Some(entry) => {
                let (key, _) = entry.map_err(fault)?;
                let tail: [u8; 4] = key[prefix.len()..]
                    .try_into()
                    .map_err(|_| fault("damaged revision index"))?;
                Ok(Some(u32::from_be_bytes(tail)))
            }
            None => Ok(None),
        }
    }

    fn container_instance(&self, instance_id: &str) -> DomainResult<Option<ContainerInstanceRecord>> {
        self.record(&keys::instance(instance_id))
    }

    fn container_instance_ids(&self, scope: &Scope, cluster: &str) -> DomainResult<Vec<String>> {
        let prefix = keys::instances_of_cluster(scope, cluster);
        let suffixes = self.suffixes(&prefix, None, usize::MAX)?;
        Ok(suffixes
            .into_iter()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .collect())
    }

    fn unstopped_task_ids_on_instance(&self, instance_id: &str) -> DomainResult<Vec<String>> {
        let mut ids = Vec::new();
        for desired in [
            crate::domain::lifecycle::DesiredStatus::Running,
            crate::domain::lifecycle::DesiredStatus::Stopped,
        ] {
            let prefix = keys::tasks_on_instance(instance_id, desired);
            for suffix in self.suffixes(&prefix, None, usize::MAX)? {
                let id = String::from_utf8_lossy(&suffix).into_owned();
                if self.task(&id)?.is_some_and(|r| !task_is_stopped(&r)) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn client_token(&self, cluster_arn: &str, token: &str) -> DomainResult<Option<ClientTokenRecord>> {
        self.record(&keys::client_token(cluster_arn, token))
    }
}

impl StateIndex for SledState<'_> {
    fn task_ids(&self, listing: &TaskListing, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        let prefix = keys::task_listing(listing);
        let suffixes = self.suffixes(&prefix, after.map(str::as_bytes), limit)?;
        Ok(suffixes
            .into_iter()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .collect())
    }

    fn cluster_names(&self, scope: &Scope, after: Option<&str>, limit: usize) -> DomainResult<Vec<String>> {
        let prefix = keys::cluster_prefix(scope);
        let suffixes = self.suffixes(&prefix, after.map(str::as_bytes), limit)?;
        Ok(suffixes
            .into_iter()
            .map(|s| String::from_utf8_lossy(&s).into_owned())
            .collect())
    }

    fn task_definition_revisions(
        &self,
        scope: &Scope,
        status: TaskDefinitionStatus,
        family: Option<&str>,
        descending: bool,
        after: Option<(&str, u32)>,
        limit: usize,
    ) -> DomainResult<Vec<(String, u32)>> {
        let base = keys::task_definitions_by_status(scope, status, None);
        let prefix = keys::task_definitions_by_status(scope, status, family);
        let end = keys::prefix_end(&prefix);
        let cursor = after.map(|(f, r)| keys::task_definition_by_status(scope, status, f, r));
        let entries = if descending {
            let upper = cursor.unwrap_or(end);
            self.engine.range_rev(&prefix, &upper)
        } else {
            let lower = cursor.map(|mut c| {
                c.push(0);
                c
            });
            self.engine.range(lower.as_deref().unwrap_or(&prefix), &end)
        };
        let mut out = Vec::new();
        for entry in entries.take(limit) {
            let (key, _) = entry.map_err(fault)?;
            out.push(
                keys::split_family_revision(&key[base.len()..])
                    .ok_or_else(|| fault("damaged task-definition index"))?,
            );
        }
        Ok(out)
    }

    fn family_names(
        &self,
        scope: &Scope,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> DomainResult<Vec<String>> {
        let base = keys::family_prefix(scope, "");
        let start = match after {
            Some(after) => [keys::family(scope, after), vec![0]].concat(),
            None => keys::family_prefix(scope, prefix),
        };
        let end = keys::prefix_end(&keys::family_prefix(scope, prefix));
        let mut out = Vec::new();
        for entry in self.engine.range(&start, &end).take(limit) {
            let (key, _) = entry.map_err(fault)?;
            out.push(String::from_utf8_lossy(&key[base.len()..]).into_owned());
        }
        Ok(out)
    }
}
