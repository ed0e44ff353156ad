//! Unit tests of the container-instance and task-definition commands ECS fidelity added:
//! UpdateContainerInstancesState, DeleteTaskDefinitions, the attribute commands and ListAttributes,
//! SubmitAttachmentStateChanges, and the order in which instance requests are checked.

use super::*;

#[test]
fn a_draining_instance_gets_no_new_tasks_until_it_is_active_again() {
    let mut world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    let Reply::RegisterContainerInstance(r) = world.apply(instance("c", 4096, 4096)).unwrap().reply else {
        panic!()
    };
    let arn = r.container_instance.unwrap().container_instance_arn.unwrap();
    let set = |status: ContainerInstanceStatus, instances: Vec<String>| {
        Command::UpdateContainerInstancesState(UpdateContainerInstancesStateRequest {
            cluster: Some("c".into()),
            container_instances: instances,
            status: Some(status as i32),
        })
    };
    let missing = "0123456789abcdef0123456789abcdef".to_string();
    let Reply::UpdateContainerInstancesState(drained) = world
        .apply(set(ContainerInstanceStatus::Draining, vec![arn.clone(), missing]))
        .unwrap()
        .reply
    else {
        panic!()
    };
    let changed = &drained.container_instances[0];
    assert_eq!(changed.status.as_deref(), Some("DRAINING"));
    assert_eq!(changed.version, Some(2), "the change bumps the instance's version");
    assert_eq!(drained.failures.len(), 1);
    assert_eq!(drained.failures[0].reason.as_deref(), Some("MISSING"));

    let placed = world.apply(run("c", "web", 1)).unwrap();
    let reply = run_reply(&placed);
    assert!(reply.tasks.is_empty());
    assert_eq!(reply.failures[0].reason.as_deref(), Some("DRAINING"));

    // Setting the status it already has changes nothing and appends nothing.
    let again = world
        .apply(set(ContainerInstanceStatus::Draining, vec![arn.clone()]))
        .unwrap();
    assert!(again.events.is_empty());

    world
        .apply(set(ContainerInstanceStatus::Active, vec![arn.clone()]))
        .unwrap();
    assert_eq!(run_reply(&world.apply(run("c", "web", 1)).unwrap()).tasks.len(), 1);

    world
        .when(set(ContainerInstanceStatus::Registering, vec![arn]))
        .then_rejected(EcsException::InvalidParameterException, "ACTIVE or DRAINING");
}

#[test]
fn instance_state_requests_are_checked_before_the_cluster() {
    let world = given(vec![]);
    world
        .when(Command::UpdateContainerInstancesState(
            UpdateContainerInstancesStateRequest {
                cluster: Some("nowhere".into()),
                container_instances: vec![],
                status: Some(ContainerInstanceStatus::Draining as i32),
            },
        ))
        .then_rejected(EcsException::ClientException, "cannot be empty");
    let world = given(vec![]);
    world
        .when(Command::UpdateContainerInstancesState(
            UpdateContainerInstancesStateRequest {
                cluster: Some("nowhere".into()),
                container_instances: vec!["0123456789abcdef0123456789abcdef".into()],
                status: Some(ContainerInstanceStatus::Draining as i32),
            },
        ))
        .then_rejected(EcsException::ClusterNotFoundException, "");
}

#[test]
fn only_inactive_revisions_are_deleted_and_every_other_item_is_a_failure() {
    let mut world = given(vec![
        ec2_definition("web", 10, 10, None),
        ec2_definition("web", 10, 10, None),
    ]);
    world
        .apply(Command::DeregisterTaskDefinition(DeregisterTaskDefinitionRequest {
            task_definition: Some("web:1".into()),
        }))
        .unwrap();
    let delete = |items: &[&str]| {
        Command::DeleteTaskDefinitions(DeleteTaskDefinitionsRequest {
            task_definitions: items.iter().map(|s| s.to_string()).collect(),
        })
    };
    let decision = world
        .apply(delete(&["web:1", "web:2", "web:9", "web", "web:1"]))
        .unwrap();
    let Reply::DeleteTaskDefinitions(reply) = &decision.reply else {
        panic!()
    };
    assert_eq!(decision.events.len(), 1, "one deletion, named twice");
    let deleted = &reply.task_definitions[0];
    assert_eq!(deleted.status, Some(TaskDefinitionStatus::DeleteInProgress as i32));
    assert!(deleted.delete_requested_at.is_some());
    let reasons: Vec<&str> = reply.failures.iter().filter_map(|f| f.reason.as_deref()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("still in ACTIVE status"));
    assert!(reasons[1].contains("does not exist"));
    assert!(reasons[2].contains("identifier is invalid"));

    // Still described, never launched, and asking again appends nothing.
    let stored = world.state.task_definition(&scope(), "web", 1).unwrap().unwrap();
    assert_eq!(
        stored.task_definition.unwrap().status,
        Some(TaskDefinitionStatus::DeleteInProgress as i32)
    );
    assert!(world.apply(delete(&["web:1"])).unwrap().events.is_empty());
    world.apply(create_cluster("c")).unwrap();
    world.apply(instance("c", 4096, 4096)).unwrap();
    world
        .when(run("c", "web:1", 1))
        .then_rejected(EcsException::InvalidParameterException, "inactive");
}

#[test]
fn deleting_no_or_eleven_task_definitions_is_refused() {
    for items in [vec![], vec!["web:1".to_string(); 11]] {
        given(vec![])
            .when(Command::DeleteTaskDefinitions(DeleteTaskDefinitionsRequest {
                task_definitions: items,
            }))
            .then_rejected(EcsException::InvalidParameterException, "Task Definitions");
    }
}

fn attribute(name: &str, value: Option<&str>, target: &str) -> Attribute {
    Attribute {
        name: Some(name.into()),
        value: value.map(Into::into),
        target_type: Some(TargetType::ContainerInstance as i32),
        target_id: Some(target.into()),
    }
}

fn put(cluster: &str, attributes: Vec<Attribute>) -> Command {
    Command::PutAttributes(PutAttributesRequest {
        cluster: Some(cluster.into()),
        attributes,
    })
}

#[test]
fn custom_attributes_steer_placement_and_are_listed() {
    let mut world = given(vec![create_cluster("c"), ec2_definition("web", 10, 10, None)]);
    let Reply::RegisterContainerInstance(r) = world.apply(instance("c", 4096, 4096)).unwrap().reply else {
        panic!()
    };
    let arn = r.container_instance.unwrap().container_instance_arn.unwrap();
    let id = arn.rsplit('/').next().unwrap().to_string();
    let constrained = || {
        let Command::RunTask(mut request) = run("c", "web", 1) else {
            unreachable!()
        };
        request.placement_constraints = vec![PlacementConstraint {
            r#type: Some(PlacementConstraintType::MemberOf as i32),
            expression: Some("attribute:stack == prod".into()),
        }];
        Command::RunTask(request)
    };
    let refused = world.apply(constrained()).unwrap();
    assert_eq!(run_reply(&refused).failures[0].reason.as_deref(), Some("ATTRIBUTE"));

    // The short id with targetType, and the same attribute twice: the last value wins.
    let decision = world
        .apply(put(
            "c",
            vec![
                attribute("stack", Some("dev"), &id),
                attribute("stack", Some("prod"), &arn),
            ],
        ))
        .unwrap();
    assert_eq!(decision.events.len(), 1, "one event per instance");
    assert_eq!(run_reply(&world.apply(constrained()).unwrap()).tasks.len(), 1);
    let instance = world
        .state
        .container_instance(&id)
        .unwrap()
        .unwrap()
        .container_instance
        .unwrap();
    assert_eq!(instance.version, Some(2), "registered, then attributes put");

    let listed = crate::domain::query::list_attributes(
        &world.state,
        &scope(),
        &ListAttributesRequest {
            cluster: Some("c".into()),
            target_type: Some(TargetType::ContainerInstance as i32),
            attribute_name: Some("stack".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(listed.attributes.len(), 1);
    assert_eq!(listed.attributes[0].value.as_deref(), Some("prod"));
    assert_eq!(listed.attributes[0].target_id.as_deref(), Some(arn.as_str()));

    world
        .apply(Command::DeleteAttributes(DeleteAttributesRequest {
            cluster: Some("c".into()),
            attributes: vec![attribute("stack", None, &arn)],
        }))
        .unwrap();
    let refused = world.apply(constrained()).unwrap();
    assert_eq!(run_reply(&refused).failures[0].reason.as_deref(), Some("ATTRIBUTE"));
}

#[test]
fn attributes_are_checked_whole_before_targets_and_limited_per_instance() {
    let mut world = given(vec![create_cluster("c")]);
    let Reply::RegisterContainerInstance(r) = world.apply(instance("c", 4096, 4096)).unwrap().reply else {
        panic!()
    };
    let arn = r.container_instance.unwrap().container_instance_arn.unwrap();
    let ghost = "0123456789abcdef0123456789abcdef";
    let cases = [
        (vec![], EcsException::InvalidParameterException, "attributes"),
        (
            vec![attribute("ecs.os-type", Some("x"), &arn)],
            EcsException::InvalidParameterException,
            "reserved",
        ),
        (
            vec![Attribute {
                target_type: None,
                ..attribute("a", None, ghost)
            }],
            EcsException::InvalidParameterException,
            "targetType",
        ),
        (
            vec![attribute("bad name!", None, &arn)],
            EcsException::InvalidParameterException,
            "bad name",
        ),
        (
            vec![attribute("a", None, ghost)],
            EcsException::TargetNotFoundException,
            ghost,
        ),
    ];
    for (attributes, exception, mentions) in cases {
        let before = world.state.clone();
        let error = world.apply(put("c", attributes)).unwrap_err();
        assert_eq!(error.exception, exception, "{error}");
        assert!(
            error.message.contains(mentions) || error.field.as_deref().is_some_and(|f| f.contains(mentions)),
            "{error}"
        );
        assert_eq!(world.state, before);
    }
    // The request is checked before the cluster is looked up.
    assert_eq!(
        world.apply(put("nowhere", vec![])).unwrap_err().exception,
        EcsException::InvalidParameterException
    );
    let ten: Vec<Attribute> = (0..10).map(|i| attribute(&format!("a{i}"), Some("v"), &arn)).collect();
    world.apply(put("c", ten)).unwrap();
    let error = world
        .apply(put("c", vec![attribute("eleventh", None, &arn)]))
        .unwrap_err();
    assert_eq!(error.exception, EcsException::AttributeLimitExceededException);
    // Replacing one of the ten is not an eleventh.
    world.apply(put("c", vec![attribute("a0", Some("w"), &arn)])).unwrap();
}

#[test]
fn list_attributes_pages_through_every_instance_and_keeps_its_filters() {
    let mut world = given(vec![create_cluster("c")]);
    let mut arns = Vec::new();
    for _ in 0..2 {
        let Reply::RegisterContainerInstance(r) = world.apply(instance("c", 4096, 4096)).unwrap().reply else {
            panic!()
        };
        arns.push(r.container_instance.unwrap().container_instance_arn.unwrap());
    }
    for arn in &arns {
        world
            .apply(put(
                "c",
                vec![attribute("x", Some("1"), arn), attribute("y", Some("2"), arn)],
            ))
            .unwrap();
    }
    let list = |name: Option<&str>, token: Option<String>| {
        crate::domain::query::list_attributes(
            &world.state,
            &scope(),
            &ListAttributesRequest {
                cluster: Some("c".into()),
                target_type: Some(TargetType::ContainerInstance as i32),
                attribute_name: name.map(Into::into),
                max_results: Some(3),
                next_token: token,
                ..Default::default()
            },
        )
    };
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = list(None, token).unwrap();
        seen.extend(
            page.attributes
                .into_iter()
                .map(|a| (a.target_id.unwrap(), a.name.unwrap())),
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let custom: Vec<_> = seen.iter().filter(|(_, n)| !n.starts_with("ecs.")).collect();
    assert_eq!(custom.len(), 4, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no attribute twice");
    // A token is bound to the filters that issued it.
    let token = list(None, None).unwrap().next_token;
    assert_eq!(
        list(Some("x"), token).unwrap_err().exception,
        EcsException::InvalidParameterException
    );
}

#[test]
fn attachment_reports_find_their_task_by_the_attachment_id() {
    let mut world = given(vec![
        create_cluster("c"),
        Command::RegisterTaskDefinition(RegisterTaskDefinitionRequest {
            family: Some("vpc".into()),
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
    ]);
    let launched = world
        .apply(Command::RunTask(RunTaskRequest {
            cluster: Some("c".into()),
            task_definition: Some("vpc".into()),
            launch_type: Some(LaunchType::Fargate as i32),
            network_configuration: Some(NetworkConfiguration {
                awsvpc_configuration: Some(AwsVpcConfiguration {
                    subnets: vec!["subnet-1".into()],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }))
        .unwrap();
    let task = run_reply(&launched).tasks[0].clone();
    let attachment = task.attachments[0].id.clone().unwrap();
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:attachment/{attachment}");
    let report = |cluster: &str, arn: &str, status: &str| {
        Command::SubmitAttachmentStateChanges(SubmitAttachmentStateChangesRequest {
            cluster: Some(cluster.into()),
            attachments: vec![AttachmentStateChange {
                attachment_arn: Some(arn.into()),
                status: Some(status.into()),
            }],
        })
    };
    let decision = world.apply(report("c", &arn, "ATTACHED")).unwrap();
    let [event] = &decision.events[..] else {
        panic!("one event: {:?}", decision.events)
    };
    let Some(Kind::TaskChanged(change)) = &event.kind else {
        panic!()
    };
    assert_eq!(change.task_arn, task.task_arn.clone().unwrap());
    assert_eq!(change.version, task.version.unwrap() + 1);
    let stored = world.state.task(stored_id(&task)).unwrap().unwrap().task.unwrap();
    assert_eq!(stored.attachments[0].status.as_deref(), Some("ATTACHED"));

    assert!(
        world.apply(report("c", &arn, "ATTACHED")).unwrap().events.is_empty(),
        "nothing new"
    );
    let ghost = "arn:aws:ecs:us-east-1:123456789012:attachment/01234567-89ab-cdef-0123-456789abcdef";
    world
        .when(report("c", ghost, "ATTACHED"))
        .then_rejected(EcsException::InvalidParameterException, "Attachment not found");
    let mut world = given(vec![]);
    assert_eq!(
        world
            .apply(Command::SubmitAttachmentStateChanges(
                SubmitAttachmentStateChangesRequest {
                    cluster: Some("nowhere".into()),
                    attachments: vec![],
                }
            ))
            .unwrap_err()
            .exception,
        EcsException::InvalidParameterException,
        "the reports are checked before the cluster"
    );
}

fn stored_id(task: &Task) -> &str {
    task.task_arn.as_deref().unwrap().rsplit('/').next().unwrap()
}

#[test]
fn instance_requests_are_checked_before_the_cluster_is_looked_up() {
    let register = Command::RegisterContainerInstance(RegisterContainerInstanceRequest {
        cluster: Some("nowhere".into()),
        tags: vec![Tag {
            key: None,
            value: Some("v".into()),
        }],
        ..Default::default()
    });
    let deregister = Command::DeregisterContainerInstance(DeregisterContainerInstanceRequest {
        cluster: Some("nowhere".into()),
        container_instance: None,
        force: None,
    });
    for command in [register, deregister] {
        let error = given(vec![]).when(command).result.unwrap_err();
        assert_eq!(error.exception, EcsException::InvalidParameterException, "{error}");
    }
}
