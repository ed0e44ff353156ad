//! Where a view record lives: its own key plus one (empty) entry per index it belongs to. The
//! writer, `rebuild` and `verify` all place records through the `View` trait, so the stored views
//! and the views recomputed from the log can only differ if the data does.
//! Does not store anything.

use std::collections::BTreeMap;

use prost::Message;

use super::codec::{decode_view, encode_view};
use super::compact;
use super::keys;
use crate::domain::ids::Scope;
use crate::domain::MemoryState;
use crate::proto::state::{
    ClientTokenRecord, ClusterRecord, ContainerInstanceRecord, FamilyRecord, TaskDefinitionRecord, TaskRecord,
};

pub type Entry = (Vec<u8>, Vec<u8>);

/// A kind of view record: how its identity maps to its key and which index keys it occupies.
pub trait View: Message + Sized {
    /// What identifies a record of this kind (a task id, a scope and name, …).
    type Id;
    fn key(id: &Self::Id) -> Vec<u8>;
    fn index_keys(&self, _id: &Self::Id) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// The bytes stored for the record.
    fn encode_stored(&self) -> Vec<u8> {
        encode_view(self)
    }
    /// The record from the bytes stored under `key`; an error means the views are damaged.
    fn decode_stored(key: &[u8], bytes: &[u8]) -> Result<Self, String>
    where
        Self: Default,
    {
        decode_view(key, bytes)
    }
}

impl View for TaskRecord {
    type Id = String;
    fn key(id: &String) -> Vec<u8> {
        keys::task(id)
    }
    fn index_keys(&self, id: &String) -> Vec<Vec<u8>> {
        keys::task_index_keys(id, self)
    }
    fn encode_stored(&self) -> Vec<u8> {
        compact::encode(self)
    }
    fn decode_stored(key: &[u8], bytes: &[u8]) -> Result<Self, String> {
        compact::decode(bytes).map_err(|e| format!("view record {} is undecodable: {e}", keys::describe(key)))
    }
}

impl View for ClusterRecord {
    type Id = (Scope, String);
    fn key((scope, name): &Self::Id) -> Vec<u8> {
        keys::cluster(scope, name)
    }
}

impl View for TaskDefinitionRecord {
    type Id = (Scope, String, u32);
    fn key((scope, family, revision): &Self::Id) -> Vec<u8> {
        keys::task_definition(scope, family, *revision)
    }
    fn index_keys(&self, (scope, family, revision): &Self::Id) -> Vec<Vec<u8>> {
        keys::task_definition_index_keys(scope, family, *revision, self)
    }
}

impl View for FamilyRecord {
    type Id = (Scope, String);
    fn key((scope, name): &Self::Id) -> Vec<u8> {
        keys::family(scope, name)
    }
}

impl View for ContainerInstanceRecord {
    type Id = String;
    fn key(id: &String) -> Vec<u8> {
        keys::instance(id)
    }
    fn index_keys(&self, id: &String) -> Vec<Vec<u8>> {
        keys::instance_index_keys(id, self)
    }
}

impl View for ClientTokenRecord {
    type Id = (String, String);
    fn key((cluster_arn, token): &Self::Id) -> Vec<u8> {
        keys::client_token(cluster_arn, token)
    }
}

/// Every entry a record occupies.
pub fn entries<V: View>(id: &V::Id, record: &V) -> impl Iterator<Item = Entry> {
    let indexes = record.index_keys(id);
    std::iter::once((V::key(id), record.encode_stored())).chain(indexes.into_iter().map(|k| (k, Vec::new())))
}

/// Every view entry of a whole state, in key order.
pub fn all(state: &MemoryState) -> BTreeMap<Vec<u8>, Vec<u8>> {
    all_sorted(state).into_iter().collect()
}

/// Every view entry of a whole state, sorted by key (keys are unique).
pub fn all_sorted(state: &MemoryState) -> Vec<Entry> {
    fn add<V: View>(out: &mut Vec<Entry>, records: &BTreeMap<V::Id, V>) {
        for (id, record) in records {
            out.extend(entries(id, record));
        }
    }
    let mut out = Vec::new();
    add(&mut out, &state.tasks);
    add(&mut out, &state.clusters);
    add(&mut out, &state.task_definitions);
    add(&mut out, &state.families);
    add(&mut out, &state.container_instances);
    add(&mut out, &state.client_tokens);
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out
}
