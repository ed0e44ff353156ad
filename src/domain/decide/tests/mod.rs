//! Unit tests of `decide` through one given/when/then helper over a `MemoryState`.

use prost_types::Timestamp;

use crate::domain::command::{Command, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, EcsException};
use crate::domain::ids::{IdSeed, Scope};
use crate::domain::resources::{amount, CPU, MEMORY};
use crate::domain::state::StateView;
use crate::domain::{decide, evolve, MemoryState};
use crate::proto::log::event::Kind;
use crate::proto::v1::*;

/// A world built by applying commands, then one command under test.
struct Given {
    state: MemoryState,
    seq: u64,
    now_ms: i64,
}

fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012").unwrap()
}

fn given(commands: Vec<Command>) -> Given {
    let mut world = Given {
        state: MemoryState::default(),
        seq: 0,
        now_ms: 1_700_000_000_000,
    };
    for command in commands {
        world
            .apply(command)
            .unwrap_or_else(|e| panic!("setup command refused: {e}"));
    }
    world
}

impl Given {
    fn ctx(&self) -> CommandContext {
        CommandContext {
            scope: scope(),
            now: Timestamp {
                seconds: self.now_ms / 1000,
                nanos: ((self.now_ms % 1000) * 1_000_000) as i32,
            },
            seed: IdSeed(self.seq as u128 + 1),
        }
    }

    fn apply(&mut self, command: Command) -> Result<Decision, DomainError> {
        let ctx = self.ctx();
        let decision = decide(&self.state, &ctx, &command)?;
        for event in &decision.events {
            self.seq += 1;
            evolve(&mut self.state, self.seq, &ctx.now, event).unwrap();
        }
        self.now_ms += 1000;
        Ok(decision)
    }

    fn when(mut self, command: Command) -> Then {
        let result = self.apply(command);
        Then { world: self, result }
    }
}

struct Then {
    world: Given,
    result: Result<Decision, DomainError>,
}

impl Then {
    fn then_rejected(self, exception: EcsException, mentions: &str) -> DomainError {
        let err = self.result.expect_err("the command should be refused");
        assert_eq!(err.exception, exception, "{err}");
        assert!(
            err.message.contains(mentions) || err.hint.as_deref().is_some_and(|h| h.contains(mentions)),
            "message {:?} or hint {:?} should mention {mentions:?}",
            err.message,
            err.hint
        );
        err
    }

    fn then_ok(self) -> (Decision, MemoryState) {
        (self.result.unwrap_or_else(|e| panic!("refused: {e}")), self.world.state)
    }
}

fn create_cluster(name: &str) -> Command {
    Command::CreateCluster(CreateClusterRequest {
        cluster_name: Some(name.into()),
        ..Default::default()
    })
}

fn ec2_definition(family: &str, cpu: i32, memory: i32, host_port: Option<i32>) -> Command {
    Command::RegisterTaskDefinition(RegisterTaskDefinitionRequest {
        family: Some(family.into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            cpu: Some(cpu),
            memory: Some(memory),
            port_mappings: host_port
                .map(|p| {
                    vec![PortMapping {
                        container_port: Some(80),
                        host_port: Some(p),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn instance(cluster: &str, cpu: i32, memory: i32) -> Command {
    Command::RegisterContainerInstance(RegisterContainerInstanceRequest {
        cluster: Some(cluster.into()),
        total_resources: vec![
            crate::domain::resources::integer(CPU, cpu),
            crate::domain::resources::integer(MEMORY, memory),
        ],
        ..Default::default()
    })
}

fn run(cluster: &str, family: &str, count: i32) -> Command {
    Command::RunTask(RunTaskRequest {
        cluster: Some(cluster.into()),
        task_definition: Some(family.into()),
        count: Some(count),
        ..Default::default()
    })
}

fn run_reply(decision: &Decision) -> &RunTaskResponse {
    match &decision.reply {
        Reply::RunTask(r) => r,
        other => panic!("not a RunTask reply: {other:?}"),
    }
}

fn report(cluster: &str, task: &str, status: &str) -> Command {
    Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
        cluster: Some(cluster.into()),
        task: Some(task.into()),
        status: Some(status.into()),
        ..Default::default()
    })
}

#[test]
fn run_task_in_a_missing_cluster_is_cluster_not_found() {
    given(vec![])
        .when(run("nowhere", "web", 1))
        .then_rejected(EcsException::ClusterNotFoundException, "nowhere");
}

#[test]
fn run_task_count_outside_1_to_10_is_invalid() {
    let world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    world
        .when(run("c", "web", 11))
        .then_rejected(EcsException::InvalidParameterException, "count");
    let world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    world
        .when(run("c", "web", 0))
        .then_rejected(EcsException::InvalidParameterException, "count");
}

#[test]
fn launch_type_and_capacity_provider_strategy_are_exclusive() {
    let world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    world
        .when(Command::RunTask(RunTaskRequest {
            cluster: Some("c".into()),
            task_definition: Some("web".into()),
            launch_type: Some(LaunchType::Ec2 as i32),
            capacity_provider_strategy: vec![CapacityProviderStrategyItem {
                capacity_provider: Some("FARGATE".into()),
                weight: Some(1),
                base: None,
            }],
            ..Default::default()
        }))
        .then_rejected(
            EcsException::InvalidParameterException,
            "either launchType or capacityProviderStrategy",
        );
}

#[test]
fn ec2_launch_without_instances_says_so() {
    let world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    world
        .when(run("c", "web", 1))
        .then_rejected(EcsException::InvalidParameterException, "No Container Instances");
}

#[test]
fn placement_reports_the_missing_resource_per_instance() {
    let world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 600, 100, None),
        instance("c", 1024, 4096),
    ]);
    let (decision, _) = world.when(run("c", "web", 3)).then_ok();
    let reply = run_reply(&decision);
    assert_eq!(reply.tasks.len(), 1, "1024 CPU units hold one 600-unit task");
    assert_eq!(reply.failures.len(), 1);
    assert_eq!(reply.failures[0].reason.as_deref(), Some("RESOURCE:CPU"));
    assert!(reply.failures[0]
        .arn
        .as_deref()
        .unwrap()
        .contains(":container-instance/c/"));
}

#[test]
fn reservations_are_released_when_the_task_stops() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 600, 300, Some(8080)),
        instance("c", 1024, 1024),
    ]);
    let decision = world.apply(run("c", "web", 1)).unwrap();
    let task = run_reply(&decision).tasks[0].clone();
    let instance_id = task
        .container_instance_arn
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let remaining = |state: &MemoryState| {
        let ci = state
            .container_instance(&instance_id)
            .unwrap()
            .unwrap()
            .container_instance
            .unwrap();
        (
            amount(&ci.remaining_resources, CPU),
            amount(&ci.remaining_resources, MEMORY),
            ci.running_tasks_count,
        )
    };
    assert_eq!(remaining(&world.state), (424, 724, Some(1)));
    world
        .apply(report("c", task.task_arn.as_deref().unwrap(), "STOPPED"))
        .unwrap();
    assert_eq!(remaining(&world.state), (1024, 1024, Some(0)));
}

#[test]
fn a_host_port_fits_once_per_instance() {
    let world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, Some(8080)),
        instance("c", 4096, 4096),
    ]);
    let (decision, _) = world.when(run("c", "web", 2)).then_ok();
    let reply = run_reply(&decision);
    assert_eq!(reply.tasks.len(), 1);
    assert_eq!(reply.failures[0].reason.as_deref(), Some("RESOURCE:PORTS"));
}

#[test]
fn tasks_spread_over_instances_by_default() {
    let world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
        instance("c", 4096, 4096),
    ]);
    let (decision, _) = world.when(run("c", "web", 4)).then_ok();
    let mut per_instance = std::collections::BTreeMap::new();
    for task in &run_reply(&decision).tasks {
        *per_instance
            .entry(task.container_instance_arn.clone().unwrap())
            .or_insert(0) += 1;
    }
    assert_eq!(per_instance.values().copied().collect::<Vec<_>>(), vec![2, 2]);
}

#[test]
fn an_inactive_task_definition_cannot_launch() {
    let world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
        Command::DeregisterTaskDefinition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web:1".into()),
        }),
    ]);
    world
        .when(run("c", "web:1", 1))
        .then_rejected(EcsException::InvalidParameterException, "inactive");
}

#[test]
fn a_bare_family_launches_its_latest_active_revision() {
    let world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        ec2_definition("web", 20, 10, None),
        ec2_definition("web", 30, 10, None),
        instance("c", 4096, 4096),
        Command::DeregisterTaskDefinition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web:3".into()),
        }),
    ]);
    let (decision, _) = world.when(run("c", "web", 1)).then_ok();
    assert!(run_reply(&decision).tasks[0]
        .task_definition_arn
        .as_deref()
        .unwrap()
        .ends_with("web:2"));
}

#[test]
fn deregistering_needs_a_revision() {
    let world = given(vec![ec2_definition("web", 10, 10, None)]);
    world
        .when(Command::DeregisterTaskDefinition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web".into()),
        }))
        .then_rejected(EcsException::ClientException, "revision");
}

#[test]
fn delete_cluster_refuses_while_instances_or_tasks_remain() {
    let world = given(vec![create_cluster("c"), instance("c", 4096, 4096)]);
    world
        .when(Command::DeleteCluster(DeleteClusterRequest {
            cluster: Some("c".into()),
        }))
        .then_rejected(EcsException::ClusterContainsContainerInstancesException, "deregister");
}

#[test]
fn create_cluster_on_an_existing_name_returns_it_without_an_event() {
    let world = given(vec![create_cluster("c")]);
    let (decision, _) = world.when(create_cluster("c")).then_ok();
    assert!(decision.events.is_empty());
}

#[test]
fn agent_stop_before_running_is_task_failed_to_start() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let task = run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks[0].clone();
    let arn = task.task_arn.unwrap();
    let (decision, state) = world.when(report("c", &arn, "STOPPED")).then_ok();
    let Kind::TaskChanged(change) = decision.events[0].kind.as_ref().unwrap() else {
        panic!()
    };
    assert_eq!(change.stop_code, Some(TaskStopCode::TaskFailedToStart as i32));
    assert_eq!(
        change.desired_status.as_deref(),
        Some("STOPPED"),
        "one event stops both statuses"
    );
    let stored = state
        .task(arn.rsplit('/').next().unwrap())
        .unwrap()
        .unwrap()
        .task
        .unwrap();
    assert_eq!(stored.containers[0].last_status.as_deref(), Some("STOPPED"));
}

#[test]
fn agent_stop_after_running_is_essential_container_exited() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let arn = run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks[0]
        .task_arn
        .clone()
        .unwrap();
    world.apply(report("c", &arn, "RUNNING")).unwrap();
    let (decision, _) = world.when(report("c", &arn, "STOPPED")).then_ok();
    let Kind::TaskChanged(change) = decision.events[0].kind.as_ref().unwrap() else {
        panic!()
    };
    assert_eq!(change.stop_code, Some(TaskStopCode::EssentialContainerExited as i32));
    assert_eq!(
        change.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
}

#[test]
fn once_stopping_a_task_cannot_go_back_to_running() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let arn = run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks[0]
        .task_arn
        .clone()
        .unwrap();
    world
        .apply(Command::StopTask(StopTaskRequest {
            cluster: Some("c".into()),
            task: Some(arn.clone()),
            reason: None,
        }))
        .unwrap();
    world
        .when(report("c", &arn, "RUNNING"))
        .then_rejected(EcsException::InvalidParameterException, "desiredStatus STOPPED");
}

#[test]
fn container_reports_change_the_task_version_and_repeat_reports_do_not() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let arn = run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks[0]
        .task_arn
        .clone()
        .unwrap();
    let container_report = || {
        Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
            cluster: Some("c".into()),
            task: Some(arn.clone()),
            status: Some("PENDING".into()),
            containers: vec![ContainerStateChange {
                container_name: Some("app".into()),
                status: Some("RUNNING".into()),
                runtime_id: Some("abc".into()),
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    let first = world.apply(container_report()).unwrap();
    assert_eq!(first.events.len(), 1);
    let again = world.apply(container_report()).unwrap();
    assert!(again.events.is_empty(), "an agent retry with no new data is a no-op");
}

#[test]
fn an_unknown_container_in_a_report_is_invalid() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let arn = run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks[0]
        .task_arn
        .clone()
        .unwrap();
    world
        .when(Command::SubmitContainerStateChange(SubmitContainerStateChangeRequest {
            cluster: Some("c".into()),
            task: Some(arn),
            container_name: Some("ghost".into()),
            status: Some("RUNNING".into()),
            ..Default::default()
        }))
        .then_rejected(EcsException::InvalidParameterException, "ghost");
}

#[test]
fn stop_task_clears_tags_and_keeps_last_status() {
    let mut world = given(vec![
        create_cluster("c"),
        ec2_definition("web", 10, 10, None),
        instance("c", 4096, 4096),
    ]);
    let mut request = match run("c", "web", 1) {
        Command::RunTask(r) => r,
        _ => unreachable!(),
    };
    request.tags = vec![Tag {
        key: Some("team".into()),
        value: Some("blue".into()),
    }];
    let arn = run_reply(&world.apply(Command::RunTask(request)).unwrap()).tasks[0]
        .task_arn
        .clone()
        .unwrap();
    let (decision, _) = world
        .when(Command::StopTask(StopTaskRequest {
            cluster: Some("c".into()),
            task: Some(arn),
            reason: Some("bye".into()),
        }))
        .then_ok();
    let Reply::StopTask(StopTaskResponse { task: Some(task) }) = decision.reply else {
        panic!()
    };
    assert_eq!(task.last_status.as_deref(), Some("PENDING"));
    assert_eq!(task.desired_status.as_deref(), Some("STOPPED"));
    assert_eq!(task.stopped_reason.as_deref(), Some("bye"));
    assert!(task.tags.is_empty());
}

#[test]
fn the_fifty_first_tag_is_a_limit_exceeded() {
    let tags: Vec<Tag> = (0..50)
        .map(|i| Tag {
            key: Some(format!("k{i}")),
            value: Some("v".into()),
        })
        .collect();
    let world = given(vec![
        create_cluster("c"),
        Command::TagResource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("c")),
            tags,
        }),
    ]);
    world
        .when(Command::TagResource(TagResourceRequest {
            resource_arn: Some(scope().cluster_arn("c")),
            tags: vec![Tag {
                key: Some("one-more".into()),
                value: None,
            }],
        }))
        .then_rejected(EcsException::LimitExceededException, "at most 50");
}

#[test]
fn tagging_a_missing_resource_is_resource_not_found() {
    given(vec![])
        .when(Command::TagResource(TagResourceRequest {
            resource_arn: Some(scope().task_definition_arn("ghost", 1)),
            tags: vec![Tag {
                key: Some("a".into()),
                value: None,
            }],
        }))
        .then_rejected(EcsException::ResourceNotFoundException, "does not exist");
}

#[test]
fn client_token_must_be_printable_ascii() {
    let world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    let Command::RunTask(mut request) = run("c", "web", 1) else {
        unreachable!()
    };
    request.client_token = Some("has space".into());
    world
        .when(Command::RunTask(request))
        .then_rejected(EcsException::InvalidParameterException, "clientToken");
}

#[test]
fn forced_deregistration_stops_the_instances_tasks() {
    let mut world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    let registered = world.apply(instance("c", 4096, 4096)).unwrap();
    let Reply::RegisterContainerInstance(r) = registered.reply else {
        panic!()
    };
    let instance_arn = r.container_instance.unwrap().container_instance_arn.unwrap();
    world.apply(run("c", "web", 2)).unwrap();
    let deregister = |force| {
        Command::DeregisterContainerInstance(DeregisterContainerInstanceRequest {
            cluster: Some("c".into()),
            container_instance: Some(instance_arn.clone()),
            force: Some(force),
        })
    };
    assert_eq!(
        world.apply(deregister(false)).unwrap_err().exception,
        EcsException::InvalidParameterException
    );
    let (decision, _) = world.when(deregister(true)).then_ok();
    let stops = decision
        .events
        .iter()
        .filter(|e| matches!(e.kind, Some(Kind::TaskChanged(ref c)) if c.desired_status.as_deref() == Some("STOPPED")))
        .count();
    assert_eq!(stops, 2);
}

mod instances_and_definitions;
