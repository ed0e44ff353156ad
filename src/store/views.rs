//! Which key-value entries a view record occupies: the record under its own key plus one entry
//! per index it belongs to. The writer, `rebuild` and `verify` all derive entries here, so the
//! stored views and the views recomputed from the log can only differ if the data does.
//! Does not store anything.

use std::collections::BTreeMap;

use super::codec::encode_view;
use super::keys;
use crate::domain::ids::Scope;
use crate::domain::MemoryState;
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};

pub type Entry = (Vec<u8>, Vec<u8>);

fn with_indexes(main: Entry, indexes: Vec<Vec<u8>>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(1 + indexes.len());
    out.push(main);
    out.extend(indexes.into_iter().map(|k| (k, Vec::new())));
    out
}

pub fn task(id: &str, record: &TaskRecord) -> Vec<Entry> {
    with_indexes((keys::task(id), encode_view(record)), keys::task_index_keys(id, record))
}

pub fn cluster(scope: &Scope, name: &str, record: &ClusterRecord) -> Vec<Entry> {
    vec![(keys::cluster(scope, name), encode_view(record))]
}

pub fn task_definition(scope: &Scope, family: &str, revision: u32, record: &TaskDefinitionRecord) -> Vec<Entry> {
    with_indexes(
        (keys::task_definition(scope, family, revision), encode_view(record)),
        keys::task_definition_index_keys(scope, family, revision, record),
    )
}

pub fn family(scope: &Scope, name: &str, record: &FamilyRecord) -> Vec<Entry> {
    vec![(keys::family(scope, name), encode_view(record))]
}

pub fn instance(id: &str, record: &ContainerInstanceRecord) -> Vec<Entry> {
    with_indexes(
        (keys::instance(id), encode_view(record)),
        keys::instance_index_keys(id, record),
    )
}

pub fn client_token(cluster_arn: &str, token: &str, record: &ClientTokenRecord) -> Vec<Entry> {
    vec![(keys::client_token(cluster_arn, token), encode_view(record))]
}

/// Every view entry of a whole state.
pub fn all(state: &MemoryState) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (id, r) in &state.tasks {
        out.extend(task(id, r));
    }
    for ((scope, name), r) in &state.clusters {
        out.extend(cluster(scope, name, r));
    }
    for ((scope, family_name, revision), r) in &state.task_definitions {
        out.extend(task_definition(scope, family_name, *revision, r));
    }
    for ((scope, name), r) in &state.families {
        out.extend(family(scope, name, r));
    }
    for (id, r) in &state.container_instances {
        out.extend(instance(id, r));
    }
    for ((arn, token), r) in &state.client_tokens {
        out.extend(client_token(arn, token, r));
    }
    out
}
