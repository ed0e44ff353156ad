//! The stored form of a task record: the ARNs that follow from the task's own ARN (its cluster,
//! its task definition's and container instance's prefixes, its containers' ARNs) are left out
//! or shortened on the way to disk and derived again on the way back, which takes a Fargate
//! task's record from about 720 to about 410 bytes. `TaskRecord::derived_arns` says which were;
//! a record whose ARNs do not have the expected shape is stored whole, so the round trip is exact
//! for every record.
//! Does not decide where records live (see `views`).

use crate::proto::state::TaskRecord;

/// `cluster_arn` is left out: it is the cluster of `task_arn`.
const CLUSTER: u32 = 1;
/// `task_definition_arn` is stored as `family:revision`.
const TASK_DEFINITION: u32 = 2;
/// `container_instance_arn` is stored as the instance id.
const CONTAINER_INSTANCE: u32 = 4;
/// Every container's `task_arn` is left out: each equals the task's.
const CONTAINER_TASK: u32 = 8;
/// Every container's `container_arn` is stored as its last segment.
const CONTAINER: u32 = 16;
const ALL: u32 = CLUSTER | TASK_DEFINITION | CONTAINER_INSTANCE | CONTAINER_TASK | CONTAINER;

/// The pieces of `arn:<partition>:ecs:<region>:<account>:task/<cluster>/<id>`.
struct TaskArn<'a> {
    /// `arn:<partition>:ecs:<region>:<account>:`
    base: &'a str,
    cluster: &'a str,
    id: &'a str,
}

impl<'a> TaskArn<'a> {
    fn parse(arn: &'a str) -> Option<TaskArn<'a>> {
        let at = arn.find(":task/")?;
        let (cluster, id) = arn[at + ":task/".len()..].split_once('/')?;
        let base = &arn[..=at];
        if !base.starts_with("arn:") || base.matches(':').count() != 5 || id.contains('/') {
            return None;
        }
        Some(TaskArn { base, cluster, id })
    }

    fn cluster_arn(&self) -> String {
        concat(&[self.base, "cluster/", self.cluster])
    }

    fn task_definition_prefix(&self) -> String {
        concat(&[self.base, "task-definition/"])
    }

    fn container_instance_prefix(&self) -> String {
        concat(&[self.base, "container-instance/", self.cluster, "/"])
    }

    fn container_prefix(&self) -> String {
        concat(&[self.base, "container/", self.cluster, "/", self.id, "/"])
    }
}

/// The parts joined, allocated once (reads derive ARNs for every task they return).
fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|part| out.push_str(part));
    out
}

/// `value` without `prefix`, when it has it.
fn shorten(value: &mut Option<String>, prefix: &str) -> bool {
    match value {
        Some(text) if text.starts_with(prefix) => {
            text.drain(..prefix.len());
            true
        }
        _ => false,
    }
}

fn lengthen(value: &mut Option<String>, prefix: &str) {
    if let Some(text) = value {
        *text = concat(&[prefix, text]);
    }
}

/// The bytes stored for a task record.
pub fn encode(record: &TaskRecord) -> Vec<u8> {
    use prost::Message;
    let Some(arn) = record
        .task
        .as_ref()
        .and_then(|t| t.task_arn.as_deref())
        .and_then(TaskArn::parse)
    else {
        return record.encode_to_vec();
    };
    let mut stored = record.clone();
    let task = stored.task.as_mut().expect("parsed above");
    let mut derived = 0;
    if task.cluster_arn.as_deref() == Some(arn.cluster_arn().as_str()) {
        task.cluster_arn = None;
        derived |= CLUSTER;
    }
    if shorten(&mut task.task_definition_arn, &arn.task_definition_prefix()) {
        derived |= TASK_DEFINITION;
    }
    if shorten(&mut task.container_instance_arn, &arn.container_instance_prefix()) {
        derived |= CONTAINER_INSTANCE;
    }
    let task_arn = record.task.as_ref().and_then(|t| t.task_arn.as_deref());
    if !task.containers.is_empty() && task.containers.iter().all(|c| c.task_arn.as_deref() == task_arn) {
        task.containers.iter_mut().for_each(|c| c.task_arn = None);
        derived |= CONTAINER_TASK;
    }
    let prefix = arn.container_prefix();
    let shaped = |c: &crate::proto::v1::Container| c.container_arn.as_deref().is_some_and(|a| a.starts_with(&prefix));
    if !task.containers.is_empty() && task.containers.iter().all(shaped) {
        task.containers.iter_mut().for_each(|c| {
            shorten(&mut c.container_arn, &prefix);
        });
        derived |= CONTAINER;
    }
    stored.derived_arns = derived;
    stored.encode_to_vec()
}

/// A task record from its stored bytes.
pub fn decode(bytes: &[u8]) -> Result<TaskRecord, String> {
    use prost::Message;
    let mut record = TaskRecord::decode(bytes).map_err(|e| e.to_string())?;
    let derived = std::mem::take(&mut record.derived_arns);
    if derived == 0 {
        return Ok(record);
    }
    if derived & !ALL != 0 {
        return Err(format!(
            "it derives ARNs this version does not know (flags {derived:#x})"
        ));
    }
    let Some(task) = record.task.as_mut() else {
        return Err("it derives ARNs but holds no task".into());
    };
    let task_arn = task.task_arn.clone().unwrap_or_default();
    let Some(arn) = TaskArn::parse(&task_arn) else {
        return Err("it derives ARNs from a task ARN it does not hold".into());
    };
    if derived & CLUSTER != 0 {
        task.cluster_arn = Some(arn.cluster_arn());
    }
    if derived & TASK_DEFINITION != 0 {
        lengthen(&mut task.task_definition_arn, &arn.task_definition_prefix());
    }
    if derived & CONTAINER_INSTANCE != 0 {
        lengthen(&mut task.container_instance_arn, &arn.container_instance_prefix());
    }
    if derived & CONTAINER_TASK != 0 {
        task.containers
            .iter_mut()
            .for_each(|c| c.task_arn = Some(task_arn.clone()));
    }
    if derived & CONTAINER != 0 {
        let prefix = arn.container_prefix();
        task.containers
            .iter_mut()
            .for_each(|c| lengthen(&mut c.container_arn, &prefix));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;
    use crate::proto::v1::{Container, Task};
    use prost::Message;

    fn record(scope: &Scope, cluster: &str, id: &str, containers: usize) -> TaskRecord {
        let containers = (0..containers)
            .map(|n| Container {
                name: Some(format!("c{n}")),
                task_arn: Some(scope.task_arn(cluster, id)),
                container_arn: Some(scope.container_arn(cluster, id, &format!("uuid-{n}"))),
                ..Default::default()
            })
            .collect();
        TaskRecord {
            task: Some(Task {
                task_arn: Some(scope.task_arn(cluster, id)),
                cluster_arn: Some(scope.cluster_arn(cluster)),
                task_definition_arn: Some(scope.task_definition_arn("web", 7)),
                container_instance_arn: Some(scope.container_instance_arn(cluster, "i-1")),
                containers,
                ..Default::default()
            }),
            history: vec![1, 2, 3],
            ..Default::default()
        }
    }

    fn round_trip(record: &TaskRecord) -> usize {
        let bytes = encode(record);
        assert_eq!(&decode(&bytes).unwrap(), record);
        bytes.len()
    }

    #[test]
    fn derived_arns_come_back_exactly_and_the_record_shrinks() {
        for scope in [
            Scope::new("us-east-1", "123456789012").unwrap(),
            Scope::new("cn-north-1", "000000000001").unwrap(),
        ] {
            for containers in [0, 1, 3] {
                let record = record(&scope, "prod_cluster-1", "0123456789abcdef0123456789abcdef", containers);
                let stored = round_trip(&record);
                let saved = record.encoded_len() - stored;
                assert!(
                    saved > 100 + 150 * containers,
                    "{saved} bytes saved with {containers} containers"
                );
            }
        }
    }

    #[test]
    fn arns_of_another_shape_are_stored_whole() {
        let scope = Scope::new("us-east-1", "123456789012").unwrap();
        let base = record(&scope, "prod", "abc", 2);
        let variants: Vec<fn(&mut Task)> = vec![
            |t| t.cluster_arn = Some("arn:aws:ecs:us-east-1:123456789012:cluster/other".into()),
            |t| t.cluster_arn = None,
            |t| t.task_definition_arn = Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1".into()),
            |t| t.task_definition_arn = None,
            |t| t.container_instance_arn = Some("i-1".into()),
            |t| t.containers[1].task_arn = None,
            |t| t.containers[0].task_arn = Some("arn:aws:ecs:us-east-1:123456789012:task/prod/other".into()),
            |t| t.containers[1].container_arn = Some("uuid".into()),
            |t| t.containers[0].container_arn = None,
            |t| t.task_arn = Some("arn:aws:ecs:us-east-1:123456789012:task/abc".into()),
            |t| t.task_arn = Some("arn:aws:ecs:us-east-1:123456789012:task/prod/abc/x".into()),
            |t| t.task_arn = Some("not an arn:task/prod/abc".into()),
            |t| t.task_arn = None,
        ];
        for change in variants {
            let mut record = base.clone();
            change(record.task.as_mut().unwrap());
            round_trip(&record);
        }
        round_trip(&TaskRecord::default());
    }

    #[test]
    fn unknown_flags_and_flags_without_a_task_arn_are_damage() {
        let flagged = |task: Option<Task>, flags| {
            TaskRecord {
                task,
                derived_arns: flags,
                ..Default::default()
            }
            .encode_to_vec()
        };
        assert!(decode(&flagged(Some(Task::default()), 64)).is_err());
        assert!(decode(&flagged(None, CLUSTER)).is_err());
        assert!(decode(&flagged(Some(Task::default()), CLUSTER)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_arn_text_round_trips(
            task_arn in proptest::option::of("(arn:[a-z:]{0,12}:)?(task/)?[a-z/]{0,8}"),
            cluster_arn in proptest::option::of("(arn:[a-z:]{0,12}:)?(cluster/)?[a-z/]{0,8}"),
            container_arn in proptest::option::of("(arn:[a-z:]{0,12}:)?(container/)?[a-z/]{0,12}"),
        ) {
            let task = Task {
                task_arn: task_arn.clone(),
                cluster_arn,
                containers: vec![Container { task_arn, container_arn, ..Default::default() }],
                ..Default::default()
            };
            round_trip(&TaskRecord { task: Some(task), ..Default::default() });
        }
    }
}
