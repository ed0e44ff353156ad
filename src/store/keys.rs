//! The keyspace: one sled tree holding the log, the views and their indexes, so that one atomic
//! batch covers a whole group commit. Integers are big-endian so byte order is numeric order;
//! names cannot contain `\0` (they are validated), so `\0` separates key parts.
//! Also derives every index key from a view record (the writer and `verify` share this).
//! Does not encode values (see `codec`).

use crate::domain::ids::{stored_cluster_of, stored_id_of, Scope};
use crate::domain::lifecycle::DesiredStatus;
use crate::domain::state::{task_family, task_instance_id, TaskIndex, TaskListing};
use crate::proto::state::{ContainerInstanceRecord, TaskDefinitionRecord, TaskRecord};
use crate::proto::v1::TaskDefinitionStatus;

/// `L` + seq → the framed log record of that seq, or a chunk of consecutive framed records
/// starting at that seq (see `codec`): the truth.
pub const LOG: u8 = b'L';
/// `M` + name → store metadata.
pub const META: u8 = b'M';
/// `T` + task id → TaskRecord.
pub const TASK: u8 = b'T';
/// `C` + scope + cluster → ClusterRecord.
pub const CLUSTER: u8 = b'C';
/// `D` + scope + family `\0` + revision → TaskDefinitionRecord.
pub const TASK_DEFINITION: u8 = b'D';
/// `F` + scope + family → FamilyRecord.
pub const FAMILY: u8 = b'F';
/// `S` + scope + status + family `\0` + revision → () : task definitions by status.
pub const TASK_DEFINITION_BY_STATUS: u8 = b'S';
/// `I` + instance id → ContainerInstanceRecord.
pub const INSTANCE: u8 = b'I';
/// `J` + scope + cluster `\0` + instance id → () : instances of a cluster.
pub const INSTANCE_BY_CLUSTER: u8 = b'J';
/// `K` + cluster ARN `\0` + client token → ClientTokenRecord.
pub const CLIENT_TOKEN: u8 = b'K';
/// `X` + scope + cluster `\0` + desired + task id → () : tasks by cluster and desired status.
pub const TASK_BY_CLUSTER: u8 = b'X';
/// `Y` + scope + cluster `\0` + `f` family / `s` startedBy `\0` + desired + task id → ().
pub const TASK_BY_ATTRIBUTE: u8 = b'Y';
/// `Z` + instance id + desired + task id → () : tasks placed on an instance.
pub const TASK_BY_INSTANCE: u8 = b'Z';

/// `P` + name → derived data kept beside the log (see `log::Log::derived_get`).
pub const DERIVED: u8 = b'P';
pub const META_HEAD_SEQ: &[u8] = b"Mhead_seq";
pub const META_SCHEMA_VERSION: &[u8] = b"Mschema_version";

/// Every prefix that holds derived data (everything but the log and the schema stamp).
pub const VIEW_PREFIXES: [u8; 11] = [
    TASK,
    CLUSTER,
    TASK_DEFINITION,
    FAMILY,
    TASK_DEFINITION_BY_STATUS,
    INSTANCE,
    INSTANCE_BY_CLUSTER,
    CLIENT_TOKEN,
    TASK_BY_CLUSTER,
    TASK_BY_ATTRIBUTE,
    TASK_BY_INSTANCE,
];

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.push(prefix);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn scope_part(scope: &Scope) -> Vec<u8> {
    let mut out = Vec::with_capacity(scope.region().len() + scope.account().len() + 2);
    out.extend_from_slice(scope.region().as_bytes());
    out.push(0);
    out.extend_from_slice(scope.account().as_bytes());
    out.push(0);
    out
}

fn desired_byte(desired: DesiredStatus) -> u8 {
    match desired {
        DesiredStatus::Running => b'R',
        DesiredStatus::Stopped => b'S',
    }
}

fn status_byte(status: TaskDefinitionStatus) -> u8 {
    match status {
        TaskDefinitionStatus::Active => b'A',
        TaskDefinitionStatus::Inactive => b'I',
        TaskDefinitionStatus::DeleteInProgress => b'D',
        TaskDefinitionStatus::Unspecified => b'U',
    }
}

pub fn log(seq: u64) -> Vec<u8> {
    key(LOG, &[&seq.to_be_bytes()])
}

/// The seq of a log key, `None` if the key is damaged.
pub fn log_seq(key: &[u8]) -> Option<u64> {
    match key {
        [LOG, seq @ ..] => seq.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

pub fn task(id: &str) -> Vec<u8> {
    key(TASK, &[id.as_bytes()])
}

pub fn cluster(scope: &Scope, name: &str) -> Vec<u8> {
    key(CLUSTER, &[&scope_part(scope), name.as_bytes()])
}

/// The region and name a `cluster` key names.
pub fn parse_cluster(key: &[u8]) -> Option<(String, String)> {
    let rest = key.strip_prefix(&[CLUSTER])?;
    let mut parts = rest.splitn(3, |b| *b == 0);
    let (region, _account, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        String::from_utf8(region.to_vec()).ok()?,
        String::from_utf8(name.to_vec()).ok()?,
    ))
}

pub fn cluster_prefix(scope: &Scope) -> Vec<u8> {
    key(CLUSTER, &[&scope_part(scope)])
}

pub fn task_definition(scope: &Scope, family: &str, revision: u32) -> Vec<u8> {
    key(
        TASK_DEFINITION,
        &[&scope_part(scope), family.as_bytes(), &[0], &revision.to_be_bytes()],
    )
}

pub fn family(scope: &Scope, family: &str) -> Vec<u8> {
    key(FAMILY, &[&scope_part(scope), family.as_bytes()])
}

pub fn family_prefix(scope: &Scope, prefix: &str) -> Vec<u8> {
    key(FAMILY, &[&scope_part(scope), prefix.as_bytes()])
}

/// Task definitions of one status; with `family`, only that family's revisions.
pub fn task_definitions_by_status(scope: &Scope, status: TaskDefinitionStatus, family: Option<&str>) -> Vec<u8> {
    let mut out = key(TASK_DEFINITION_BY_STATUS, &[&scope_part(scope), &[status_byte(status)]]);
    if let Some(family) = family {
        out.extend_from_slice(family.as_bytes());
        out.push(0);
    }
    out
}

pub fn task_definition_by_status(scope: &Scope, status: TaskDefinitionStatus, family: &str, revision: u32) -> Vec<u8> {
    let mut out = task_definitions_by_status(scope, status, Some(family));
    out.extend_from_slice(&revision.to_be_bytes());
    out
}

/// Splits the `family \0 revision` tail of a task-definition index key.
pub fn split_family_revision(tail: &[u8]) -> Option<(String, u32)> {
    if tail.len() < 5 || tail[tail.len() - 5] != 0 {
        return None;
    }
    let family = std::str::from_utf8(&tail[..tail.len() - 5]).ok()?;
    let revision = u32::from_be_bytes(tail[tail.len() - 4..].try_into().ok()?);
    Some((family.to_string(), revision))
}

pub fn instance(id: &str) -> Vec<u8> {
    key(INSTANCE, &[id.as_bytes()])
}

pub fn instances_of_cluster(scope: &Scope, cluster: &str) -> Vec<u8> {
    key(INSTANCE_BY_CLUSTER, &[&scope_part(scope), cluster.as_bytes(), &[0]])
}

pub fn client_token(cluster_arn: &str, token: &str) -> Vec<u8> {
    key(CLIENT_TOKEN, &[cluster_arn.as_bytes(), &[0], token.as_bytes()])
}

/// The prefix under which a task listing's ids are stored, in id order.
pub fn task_listing(listing: &TaskListing) -> Vec<u8> {
    let cluster = [scope_part(&listing.scope).as_slice(), listing.cluster.as_bytes(), &[0]].concat();
    let desired = [desired_byte(listing.desired)];
    match &listing.index {
        TaskIndex::Cluster => key(TASK_BY_CLUSTER, &[&cluster, &desired]),
        TaskIndex::Family(family) => key(TASK_BY_ATTRIBUTE, &[&cluster, b"f", family.as_bytes(), &[0], &desired]),
        TaskIndex::StartedBy(started_by) => key(
            TASK_BY_ATTRIBUTE,
            &[&cluster, b"s", started_by.as_bytes(), &[0], &desired],
        ),
        TaskIndex::Instance(id) => tasks_on_instance(id, listing.desired),
    }
}

/// The region, cluster and desired status a `task_listing` prefix of `TaskIndex::Cluster` names.
pub fn parse_cluster_listing(prefix: &[u8]) -> Option<(String, String, DesiredStatus)> {
    let rest = prefix.strip_prefix(&[TASK_BY_CLUSTER])?;
    let mut parts = rest.splitn(4, |b| *b == 0);
    let (region, _account, cluster, desired) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let desired = match desired {
        [b'R'] => DesiredStatus::Running,
        [b'S'] => DesiredStatus::Stopped,
        _ => return None,
    };
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).ok();
    Some((text(region)?, text(cluster)?, desired))
}

/// The prefix of the tasks placed on an instance with one desired status.
pub fn tasks_on_instance(instance_id: &str, desired: DesiredStatus) -> Vec<u8> {
    key(TASK_BY_INSTANCE, &[instance_id.as_bytes(), &[desired_byte(desired)]])
}

/// The listings a task record is in (prefixes of `task_listing`; the task's id follows each in
/// its index key).
pub fn task_listings(record: &TaskRecord) -> Vec<Vec<u8>> {
    let Some(task) = record.task.as_ref() else {
        return Vec::new();
    };
    let Some((scope, cluster)) = task.task_arn.as_deref().and_then(stored_cluster_of) else {
        return Vec::new();
    };
    let desired = DesiredStatus::of(task.desired_status.as_deref());
    let listing = |index| {
        task_listing(&TaskListing {
            scope: scope.clone(),
            cluster: cluster.clone(),
            desired,
            index,
        })
    };
    let mut listings = vec![listing(TaskIndex::Cluster)];
    if let Some(family) = task_family(task) {
        listings.push(listing(TaskIndex::Family(family.to_string())));
    }
    if let Some(started_by) = task.started_by.as_deref() {
        listings.push(listing(TaskIndex::StartedBy(started_by.to_string())));
    }
    if let Some(instance) = task_instance_id(record) {
        listings.push(listing(TaskIndex::Instance(instance.to_string())));
    }
    listings
}

/// Every index key a task record belongs under.
pub fn task_index_keys(id: &str, record: &TaskRecord) -> Vec<Vec<u8>> {
    task_listings(record)
        .into_iter()
        .map(|listing| [listing, id.as_bytes().to_vec()].concat())
        .collect()
}

/// Every index key a task-definition record belongs under.
pub fn task_definition_index_keys(
    scope: &Scope,
    family: &str,
    revision: u32,
    record: &TaskDefinitionRecord,
) -> Vec<Vec<u8>> {
    let status = record
        .task_definition
        .as_ref()
        .and_then(|t| t.status)
        .and_then(|s| TaskDefinitionStatus::try_from(s).ok())
        .unwrap_or(TaskDefinitionStatus::Unspecified);
    vec![task_definition_by_status(scope, status, family, revision)]
}

/// Every index key a container-instance record belongs under.
pub fn instance_index_keys(id: &str, record: &ContainerInstanceRecord) -> Vec<Vec<u8>> {
    let arn = record
        .container_instance
        .as_ref()
        .and_then(|c| c.container_instance_arn.as_deref());
    match arn.and_then(stored_cluster_of) {
        Some((scope, cluster)) => vec![[instances_of_cluster(&scope, &cluster), id.as_bytes().to_vec()].concat()],
        None => Vec::new(),
    }
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// A key for people: printable bytes as text, others as `\xNN`, integers after a `\0` as hex.
pub fn describe(key: &[u8]) -> String {
    key.iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                (*b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// The id of the task an id-keyed record or index entry is about (for diagnostics).
pub fn id_of_task_arn(arn: &str) -> &str {
    stored_id_of(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_keys_sort_numerically() {
        assert!(log(2) < log(10));
        assert!(log(255) < log(256));
    }

    #[test]
    fn family_names_sort_before_longer_names_with_the_same_start() {
        let scope = Scope::new("us-east-1", "123456789012").unwrap();
        let a = task_definition_by_status(&scope, TaskDefinitionStatus::Active, "web", 9);
        let b = task_definition_by_status(&scope, TaskDefinitionStatus::Active, "web-api", 1);
        assert!(a < b);
        let prefix = task_definitions_by_status(&scope, TaskDefinitionStatus::Active, None);
        assert_eq!(split_family_revision(&a[prefix.len()..]), Some(("web".to_string(), 9)));
    }

    #[test]
    fn a_clusters_listing_names_its_region_cluster_and_desired_status() {
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let listing = |index| TaskListing {
                scope: Scope::new("eu-west-1", "123456789012").unwrap(),
                cluster: "prod-1".to_string(),
                desired,
                index,
            };
            let prefix = task_listing(&listing(TaskIndex::Cluster));
            let parsed = parse_cluster_listing(&prefix);
            assert_eq!(parsed, Some(("eu-west-1".into(), "prod-1".into(), desired)));
            let family = task_listing(&listing(TaskIndex::Family("web".into())));
            assert_eq!(parse_cluster_listing(&family), None);
        }
        let scope = Scope::new("eu-west-1", "123456789012").unwrap();
        let parsed = parse_cluster(&cluster(&scope, "prod-1"));
        assert_eq!(parsed, Some(("eu-west-1".into(), "prod-1".into())));
    }

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), vec![b'b']);
    }
}
