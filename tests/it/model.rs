//! Property test: random command sequences, valid and invalid, applied both to the store and to
//! an in-memory model (the pure `decide` + `evolve` over a `MemoryState`). After every step the
//! replies agree, the stored views equal the model's, seq and versions stay dense, and a
//! rejected command appends nothing.

use std::collections::BTreeMap;

use proptest::prelude::*;
use taskledger::domain::{decide, evolve, Command, CommandContext, IdSeed, MemoryState};
use taskledger::proto::log::event::Kind;
use taskledger::proto::v1::*;
use taskledger::store::{views, Caller, ManualClock, Store, StoreOptions};

use crate::support::scope;

const SEED: u128 = 0x5eed_0f7a_511e_d9e7;
const CLUSTERS: [&str; 2] = ["alpha", "beta"];
const FAMILIES: [&str; 2] = ["web", "job"];
const STATUSES: [&str; 9] = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
    "BOGUS",
];

#[derive(Debug, Clone)]
enum Op {
    CreateCluster(usize),
    DeleteCluster(usize),
    RegisterFargate(usize),
    RegisterEc2 {
        family: usize,
        cpu: i32,
        port: Option<i32>,
    },
    Deregister {
        family: usize,
        revision: u32,
    },
    RegisterInstance(usize),
    DeregisterInstance {
        cluster: usize,
        instance: usize,
        force: bool,
    },
    Run {
        cluster: usize,
        family: usize,
        count: i32,
        fargate: bool,
        token: Option<u8>,
    },
    Stop {
        cluster: usize,
        task: usize,
    },
    Report {
        cluster: usize,
        task: usize,
        status: usize,
        exit_code: Option<i32>,
    },
    Tag {
        task: usize,
        key: u8,
    },
    Untag {
        task: usize,
        key: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLUSTERS.len();
    let f = 0..FAMILIES.len();
    prop_oneof![
        2 => c.clone().prop_map(Op::CreateCluster),
        1 => c.clone().prop_map(Op::DeleteCluster),
        2 => f.clone().prop_map(Op::RegisterFargate),
        2 => (f.clone(), 0..3000i32, proptest::option::of(8000..8003i32))
            .prop_map(|(family, cpu, port)| Op::RegisterEc2 { family, cpu, port }),
        1 => (f.clone(), 1..4u32).prop_map(|(family, revision)| Op::Deregister { family, revision }),
        2 => c.clone().prop_map(Op::RegisterInstance),
        1 => (c.clone(), 0..4usize, any::<bool>())
            .prop_map(|(cluster, instance, force)| Op::DeregisterInstance { cluster, instance, force }),
        6 => (c.clone(), f.clone(), -1..5i32, any::<bool>(), proptest::option::of(0..3u8))
            .prop_map(|(cluster, family, count, fargate, token)| Op::Run { cluster, family, count, fargate, token }),
        3 => (c.clone(), 0..12usize).prop_map(|(cluster, task)| Op::Stop { cluster, task }),
        8 => (c.clone(), 0..12usize, 0..STATUSES.len(), proptest::option::of(0..2i32))
            .prop_map(|(cluster, task, status, exit_code)| Op::Report { cluster, task, status, exit_code }),
        1 => (0..12usize, 0..3u8).prop_map(|(task, key)| Op::Tag { task, key }),
        1 => (0..12usize, 0..3u8).prop_map(|(task, key)| Op::Untag { task, key }),
    ]
}

/// Turns an op into a command, naming tasks and instances by what the model has seen.
fn command(op: &Op, tasks: &[String], instances: &BTreeMap<usize, Vec<String>>) -> Command {
    // Mostly an existing task; index 11 names one that does not exist.
    let task = |i: usize| match tasks.len() {
        0 => format!("{i:032x}"),
        n if i < 11 => tasks[(n - 1).saturating_sub(i % n)].clone(),
        _ => format!("{i:032x}"),
    };
    match op.clone() {
        Op::CreateCluster(c) => Command::CreateCluster(CreateClusterRequest {
            cluster_name: Some(CLUSTERS[c].into()),
            ..Default::default()
        }),
        Op::DeleteCluster(c) => Command::DeleteCluster(DeleteClusterRequest {
            cluster: Some(CLUSTERS[c].into()),
        }),
        Op::RegisterFargate(f) => Command::RegisterTaskDefinition(RegisterTaskDefinitionRequest {
            family: Some(FAMILIES[f].into()),
            network_mode: Some(NetworkMode::Awsvpc as i32),
            requires_compatibilities: vec![Compatibility::Fargate as i32],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            container_definitions: vec![ContainerDefinition {
                name: Some("app".into()),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        Op::RegisterEc2 { family, cpu, port } => Command::RegisterTaskDefinition(RegisterTaskDefinitionRequest {
            family: Some(FAMILIES[family].into()),
            container_definitions: vec![ContainerDefinition {
                name: Some("app".into()),
                image: Some("busybox".into()),
                cpu: Some(cpu),
                memory: Some(128),
                port_mappings: port
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
        }),
        Op::Deregister { family, revision } => Command::DeregisterTaskDefinition(DeregisterTaskDefinitionRequest {
            task_definition: Some(format!("{}:{revision}", FAMILIES[family])),
        }),
        Op::RegisterInstance(c) => Command::RegisterContainerInstance(RegisterContainerInstanceRequest {
            cluster: Some(CLUSTERS[c].into()),
            ..Default::default()
        }),
        Op::DeregisterInstance {
            cluster,
            instance,
            force,
        } => Command::DeregisterContainerInstance(DeregisterContainerInstanceRequest {
            cluster: Some(CLUSTERS[cluster].into()),
            container_instance: Some(
                instances
                    .get(&cluster)
                    .and_then(|v| v.get(instance))
                    .cloned()
                    .unwrap_or_else(|| "f".repeat(32)),
            ),
            force: Some(force),
        }),
        Op::Run {
            cluster,
            family,
            count,
            fargate,
            token,
        } => Command::RunTask(RunTaskRequest {
            cluster: Some(CLUSTERS[cluster].into()),
            task_definition: Some(FAMILIES[family].into()),
            count: Some(count),
            launch_type: Some(if fargate { LaunchType::Fargate } else { LaunchType::Ec2 } as i32),
            network_configuration: fargate.then(|| NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    subnets: vec!["subnet-1".into()],
                    ..Default::default()
                }),
            }),
            client_token: token.map(|t| format!("token-{t}")),
            ..Default::default()
        }),
        Op::Stop { cluster, task: t } => Command::StopTask(StopTaskRequest {
            cluster: Some(CLUSTERS[cluster].into()),
            task: Some(task(t)),
            reason: Some("because".into()),
        }),
        Op::Report {
            cluster,
            task: t,
            status,
            exit_code,
        } => Command::SubmitTaskStateChange(SubmitTaskStateChangeRequest {
            cluster: Some(CLUSTERS[cluster].into()),
            task: Some(task(t)),
            status: Some(STATUSES[status].into()),
            containers: exit_code
                .map(|code| {
                    vec![ContainerStateChange {
                        container_name: Some("app".into()),
                        exit_code: Some(code),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }),
        Op::Tag { task: t, key } => Command::TagResource(TagResourceRequest {
            resource_arn: Some(if t < 11 && !tasks.is_empty() {
                task(t)
            } else {
                scope().task_arn("alpha", &"e".repeat(32))
            }),
            tags: vec![Tag {
                key: Some(format!("k{key}")),
                value: Some("v".into()),
            }],
        }),
        Op::Untag { task: t, key } => Command::UntagResource(UntagResourceRequest {
            resource_arn: Some(if t < 11 && !tasks.is_empty() {
                task(t)
            } else {
                scope().task_arn("alpha", &"e".repeat(32))
            }),
            tag_keys: vec![format!("k{key}")],
        }),
    }
}

fn stored_views_without_meta(store: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut entries = store.view_entries().unwrap();
    entries.retain(|k, _| k[0] != taskledger::store::keys::META);
    entries
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 500, .. ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_a_fold_of_its_log(random in proptest::collection::vec(op(), 1..60)) {
        // Most sequences start from a usable world: clusters, definitions, an instance each.
        let setup = [
            Op::CreateCluster(0),
            Op::CreateCluster(1),
            Op::RegisterFargate(0),
            Op::RegisterEc2 { family: 1, cpu: 512, port: None },
            Op::RegisterInstance(0),
            Op::RegisterInstance(1),
        ];
        let skip_setup = random.len() % 5 == 0;
        let ops: Vec<Op> = if skip_setup { random } else { setup.into_iter().chain(random).collect() };
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Store::open_with(dir.path(), StoreOptions {
            clock: std::sync::Arc::new(clock.clone()),
            id_seed: Some(SEED),
            sync: false,
            ..StoreOptions::default()
        }).unwrap();
        let caller = Caller::library(scope());
        let mut model = MemoryState::default();
        let mut head = 0u64;
        let mut tasks: Vec<String> = Vec::new();
        let mut instances: BTreeMap<usize, Vec<String>> = BTreeMap::new();

        for (n, op) in ops.iter().enumerate() {
            clock.advance(1000);
            let command = command(op, &tasks, &instances);
            let ctx = CommandContext { scope: scope(), now: clock_now(&clock), seed: IdSeed(IdSeed(SEED).derive(n as u64 + 1)) };
            let expected = decide(&model, &ctx, &command);
            let actual = store.execute(&caller, command.clone());
            match (&expected, &actual) {
                (Ok(decision), Ok(executed)) => {
                    prop_assert_eq!(&decision.reply, &executed.reply);
                    for event in &decision.events {
                        head += 1;
                        evolve(&mut model, head, &ctx.now, event).unwrap();
                        match event.kind.as_ref().unwrap() {
                            Kind::TaskCreated(e) => tasks.push(e.task.as_ref().unwrap().task_arn.clone().unwrap()),
                            Kind::ContainerInstanceRegistered(e) => {
                                let arn = e.container_instance.as_ref().unwrap().container_instance_arn.clone().unwrap();
                                if let Op::RegisterInstance(c) = op {
                                    instances.entry(*c).or_default().push(arn);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                (Err(e), Err(a)) => prop_assert_eq!(e.exception, a.exception(), "{} vs {}", e, a),
                _ => prop_assert!(false, "model {:?} but store {:?} for {:?}", expected.as_ref().map(|d| &d.reply), actual, command),
            }
            prop_assert_eq!(store.head_seq(), head, "a rejected command appends nothing; seq stays dense");
            prop_assert_eq!(stored_views_without_meta(&store), views::all(&model));
        }
        let log = store.read_log(1, usize::MAX).unwrap();
        prop_assert!(log.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
        let report = store.verify(|_, _| {}).unwrap();
        prop_assert!(report.is_clean(), "verify: {:?}", report);
    }
}

fn clock_now(clock: &ManualClock) -> prost_types::Timestamp {
    use taskledger::store::Clock;
    clock.now()
}
