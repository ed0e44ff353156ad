//! Shared fixtures: a store in a temp dir with a manual clock, and request builders.

#![allow(dead_code)]

use taskledger::domain::Scope;
use taskledger::proto::v1::*;
use taskledger::store::{Caller, ManualClock, Store, StoreOptions};

use crate::backend::Backend;

pub struct Fixture {
    pub store: Store,
    pub clock: ManualClock,
    pub caller: Caller,
    pub dir: tempfile::TempDir,
    /// The engine under the store (`TASKLEDGER_TEST_ENGINE`).
    pub backend: Backend,
}

pub fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012").unwrap()
}

pub fn options(clock: &ManualClock) -> StoreOptions {
    StoreOptions {
        clock: std::sync::Arc::new(clock.clone()),
        ..StoreOptions::default()
    }
}

pub fn fixture() -> Fixture {
    fixture_on(Backend::from_env())
}

pub fn fixture_on(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let store = backend.open(dir.path(), options(&clock)).unwrap();
    Fixture {
        store,
        clock,
        caller: Caller::library(scope()),
        dir,
        backend,
    }
}

impl Fixture {
    pub fn reopen(self) -> Fixture {
        let Fixture {
            store,
            clock,
            caller,
            dir,
            backend,
        } = self;
        drop(store);
        let store = backend.open(dir.path(), options(&clock)).unwrap();
        Fixture {
            store,
            clock,
            caller,
            dir,
            backend,
        }
    }

    pub fn cluster(&self, name: &str) -> Cluster {
        let request = CreateClusterRequest {
            cluster_name: Some(name.into()),
            ..Default::default()
        };
        self.store
            .create_cluster(&self.caller, request)
            .unwrap()
            .cluster
            .unwrap()
    }

    pub fn fargate_definition(&self, family: &str) -> TaskDefinition {
        let request = RegisterTaskDefinitionRequest {
            family: Some(family.into()),
            network_mode: Some(NetworkMode::Awsvpc as i32),
            requires_compatibilities: vec![Compatibility::Fargate as i32],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            container_definitions: vec![ContainerDefinition {
                name: Some("app".into()),
                image: Some("nginx:1.25".into()),
                essential: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        };
        self.store
            .register_task_definition(&self.caller, request)
            .unwrap()
            .task_definition
            .unwrap()
    }

    pub fn ec2_definition(&self, family: &str, cpu: i32, memory: i32, host_port: Option<i32>) -> TaskDefinition {
        let request = RegisterTaskDefinitionRequest {
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
        };
        self.store
            .register_task_definition(&self.caller, request)
            .unwrap()
            .task_definition
            .unwrap()
    }

    pub fn instance(&self, cluster: &str) -> ContainerInstance {
        let request = RegisterContainerInstanceRequest {
            cluster: Some(cluster.into()),
            ..Default::default()
        };
        self.store
            .register_container_instance(&self.caller, request)
            .unwrap()
            .container_instance
            .unwrap()
    }

    pub fn run_fargate(&self, cluster: &str, family: &str, count: i32) -> RunTaskResponse {
        self.store
            .run_task(&self.caller, fargate_run(cluster, family, count))
            .unwrap()
    }

    pub fn report(
        &self,
        cluster: &str,
        task_arn: &str,
        status: &str,
    ) -> taskledger::store::StoreResult<SubmitTaskStateChangeResponse> {
        self.store.submit_task_state_change(
            &self.caller,
            SubmitTaskStateChangeRequest {
                cluster: Some(cluster.into()),
                task: Some(task_arn.into()),
                status: Some(status.into()),
                ..Default::default()
            },
        )
    }

    pub fn describe(&self, cluster: &str, task_arn: &str) -> Task {
        let response = self
            .store
            .describe_tasks(
                &self.caller.scope,
                &DescribeTasksRequest {
                    cluster: Some(cluster.into()),
                    tasks: vec![task_arn.into()],
                    include: vec![],
                },
            )
            .unwrap();
        assert!(response.failures.is_empty(), "{:?}", response.failures);
        response.tasks.into_iter().next().unwrap()
    }

    pub fn verify_clean(&self) {
        let report = self.store.verify(|_, _| {}).unwrap();
        assert!(report.is_clean(), "views disagree with the log: {report:?}");
    }
}

pub fn fargate_run(cluster: &str, family: &str, count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some(cluster.into()),
        task_definition: Some(family.into()),
        count: Some(count),
        launch_type: Some(LaunchType::Fargate as i32),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-1".into()],
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Asserts that every acknowledged (task ARN → version) survived in `store`, in `cluster`.
pub fn assert_acknowledged(
    store: &Store,
    cluster: &str,
    acknowledged: &std::collections::BTreeMap<String, i64>,
    round: usize,
) {
    for (arn, version) in acknowledged {
        let described = store
            .describe_tasks(
                &scope(),
                &DescribeTasksRequest {
                    cluster: Some(cluster.into()),
                    tasks: vec![arn.clone()],
                    include: vec![],
                },
            )
            .unwrap();
        let task = described
            .tasks
            .first()
            .unwrap_or_else(|| panic!("round {round}: acknowledged task {arn} is lost"));
        assert!(
            task.version.unwrap() >= *version,
            "round {round}: {arn} lost version {version}"
        );
        let id = arn.rsplit('/').next().unwrap();
        let history = store.task_history(id, None, usize::MAX).unwrap();
        assert!(
            history.len() as i64 >= *version,
            "round {round}: history of {arn} is missing events"
        );
    }
    let report = store.verify(|_, _| {}).unwrap();
    assert!(
        report.is_clean(),
        "round {round}: views disagree with the log: {report:?}"
    );
}

/// A workload touching every kind of event (also what wrote the golden stores).
pub fn varied_workload(f: &Fixture) {
    f.cluster("prod");
    f.cluster("batch");
    f.fargate_definition("web");
    f.ec2_definition("worker", 256, 256, Some(8080));
    let instance = f.instance("batch");
    let tasks = f.run_fargate("prod", "web", 3).tasks;
    for (i, task) in tasks.iter().enumerate() {
        let arn = task.task_arn.as_deref().unwrap();
        f.report("prod", arn, "PENDING").unwrap();
        if i > 0 {
            f.report("prod", arn, "RUNNING").unwrap();
        }
    }
    f.store
        .stop_task(
            &f.caller,
            StopTaskRequest {
                cluster: Some("prod".into()),
                task: tasks[1].task_arn.clone(),
                reason: None,
            },
        )
        .unwrap();
    f.report("prod", tasks[1].task_arn.as_deref().unwrap(), "STOPPED")
        .unwrap();
    let ec2 = f
        .store
        .run_task(
            &f.caller,
            RunTaskRequest {
                cluster: Some("batch".into()),
                task_definition: Some("worker".into()),
                count: Some(2),
                client_token: Some("tok-1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        ec2.tasks.len(),
        1,
        "one host port 8080 fits once per instance: {:?}",
        ec2.failures
    );
    assert_eq!(ec2.failures[0].reason.as_deref(), Some("RESOURCE:PORTS"));
    f.store
        .tag_resource(
            &f.caller,
            TagResourceRequest {
                resource_arn: tasks[0].task_arn.clone(),
                tags: vec![Tag {
                    key: Some("team".into()),
                    value: Some("blue".into()),
                }],
            },
        )
        .unwrap();
    f.store
        .deregister_task_definition(
            &f.caller,
            DeregisterTaskDefinitionRequest {
                task_definition: Some("web:1".into()),
            },
        )
        .unwrap();
    f.store
        .deregister_container_instance(
            &f.caller,
            DeregisterContainerInstanceRequest {
                cluster: Some("batch".into()),
                container_instance: instance.container_instance_arn.clone(),
                force: Some(true),
            },
        )
        .unwrap();
}
