//! The read operations of the ECS API (Describe*, List*, ListTagsForResource) over any
//! `StateIndex`: identifier resolution, `MISSING` failures, `include` gating, filters and
//! ECS pagination with opaque `nextToken`s. Pure: the store supplies the state.
//! Does not change anything.

use super::decide::{known_cluster, resolve_task_definition, TaskDefinitionUse};
use super::error::{DomainError, DomainResult, EcsException};
use super::ids::{parse_cluster, parse_container_instance_ref, parse_task_ref, Scope};
use super::limits::{ATTRIBUTE_NAME_MAX, ATTRIBUTE_VALUE_MAX, DESCRIBE_IDS_MAX, MAX_RESULTS_MAX};
use super::state::{task_family, task_instance_id, StateIndex, TaskIndex, TaskListing};
use crate::proto::v1::*;

/// How many index entries one ListTasks call examines at most before it returns a short page
/// with a `nextToken` (ECS allows pages shorter than `maxResults`).
const SCAN_BUDGET: usize = 10_000;

pub fn describe_tasks(
    state: &impl StateIndex,
    scope: &Scope,
    request: &DescribeTasksRequest,
) -> DomainResult<DescribeTasksResponse> {
    // ECS checks the request before it looks the cluster up.
    check_ids("tasks", request.tasks.len(), "Tasks")?;
    check_include::<TaskField>(&request.include)?;
    let (cluster, _) = known_cluster(state, scope, request.cluster.as_deref())?;
    let with_tags = includes(&request.include, TaskField::Tags as i32);
    let mut response = DescribeTasksResponse::default();
    let mut seen: Vec<String> = Vec::new();
    for (i, input) in request.tasks.iter().enumerate() {
        let reference = parse_task_ref(scope, &format!("tasks[{i}]"), input)?;
        if seen.contains(&reference.id) {
            continue;
        }
        seen.push(reference.id.clone());
        let arn = scope.task_arn(&cluster, &reference.id);
        let found = state
            .task(&reference.id)?
            .and_then(|r| r.task)
            .filter(|t| t.task_arn.as_deref() == Some(arn.as_str()))
            .filter(|_| reference.cluster.as_deref().is_none_or(|c| c == cluster));
        match found {
            Some(mut task) => {
                if !with_tags {
                    task.tags.clear();
                }
                response.tasks.push(task);
            }
            None => response.failures.push(missing_failure(arn)),
        }
    }
    Ok(response)
}

pub fn list_tasks(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListTasksRequest,
) -> DomainResult<ListTasksResponse> {
    let limit = max_results(request.max_results)?;
    if let Some(started_by) = request.started_by.as_deref() {
        let others: Vec<&str> = [
            (request.container_instance.is_some(), "containerInstance"),
            (request.family.is_some(), "family"),
            (request.launch_type.is_some(), "launchType"),
            (request.daemon_name.is_some(), "daemonName"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        if !others.is_empty() {
            return Err(DomainError::invalid_parameter(
                "startedBy",
                format!(
                    "startedBy cannot be combined with {}; only cluster, desiredStatus and paging may go with it.",
                    others.join(", ")
                ),
            ));
        }
        super::decide::check_started_by(Some(started_by), super::limits::STARTED_BY_RUN_TASK_MAX)?;
    }
    let desired = match request.desired_status.map(crate::proto::v1::DesiredStatus::try_from) {
        None | Some(Ok(crate::proto::v1::DesiredStatus::Running)) => Some(super::lifecycle::DesiredStatus::Running),
        Some(Ok(crate::proto::v1::DesiredStatus::Stopped)) => Some(super::lifecycle::DesiredStatus::Stopped),
        Some(Ok(crate::proto::v1::DesiredStatus::Pending)) => None,
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "desiredStatus",
                "desiredStatus must be RUNNING, PENDING or STOPPED.",
            ))
        }
    };
    let instance = match request.container_instance.as_deref() {
        Some(input) => Some(parse_container_instance_ref(scope, "containerInstance", input)?.id),
        None => None,
    };
    if let Some(family) = request.family.as_deref() {
        super::ids::validate_name("family", "Family", family)?;
    }
    super::decide::check_enum::<crate::proto::v1::LaunchType>("launchType", request.launch_type)?;
    // ECS checks the request before it looks resources up.
    let (cluster, _) = known_cluster(state, scope, request.cluster.as_deref())?;
    if request.service_name.is_some() {
        return Err(
            DomainError::new(EcsException::ServiceNotFoundException, "Service not found.")
                .hint("taskledger has no services; filter by startedBy, family or containerInstance.")
                .at("serviceName"),
        );
    }
    let launch_type = request.launch_type;
    let index = match (&instance, request.family.as_deref(), request.started_by.as_deref()) {
        (Some(id), _, _) => TaskIndex::Instance(id.clone()),
        (None, Some(family), _) => TaskIndex::Family(family.to_string()),
        (None, None, Some(started_by)) => TaskIndex::StartedBy(started_by.to_string()),
        (None, None, None) => TaskIndex::Cluster,
    };
    let filter = format!(
        "{cluster}|{:?}|{:?}|{:?}|{instance:?}|{launch_type:?}",
        request.desired_status, request.family, request.started_by
    );
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::Tasks, &filter)?;
    let Some(desired) = desired else {
        // desiredStatus is never PENDING.
        return Ok(ListTasksResponse::default());
    };
    let listing = TaskListing {
        scope: scope.clone(),
        cluster: cluster.clone(),
        desired,
        index,
    };
    // The listing walked already holds only tasks of its family or instance; a record is read
    // only for a filter the listing does not answer.
    let needs_record = launch_type.is_some()
        || (request.family.is_some() && !matches!(listing.index, TaskIndex::Family(_)))
        || (instance.is_some() && !matches!(listing.index, TaskIndex::Instance(_)));
    let mut after = cursor.map(|c| String::from_utf8_lossy(&c).into_owned());
    let mut arns = Vec::new();
    let mut scanned = 0;
    loop {
        let ids = state.task_ids(&listing, after.as_deref(), limit.max(64))?;
        let exhausted = ids.len() < limit.max(64);
        for id in ids {
            scanned += 1;
            after = Some(id.clone());
            let keep = !needs_record
                || match state.task(&id)? {
                    Some(record) => {
                        let task = record.task.as_ref();
                        request
                            .family
                            .as_deref()
                            .is_none_or(|f| task.and_then(task_family) == Some(f))
                            && instance.as_deref().is_none_or(|i| task_instance_id(&record) == Some(i))
                            && launch_type.is_none_or(|l| task.and_then(|t| t.launch_type) == Some(l))
                    }
                    None => false,
                };
            if keep {
                arns.push(scope.task_arn(&cluster, &id));
                if arns.len() == limit {
                    let more = !state.task_ids(&listing, after.as_deref(), 1)?.is_empty();
                    return Ok(ListTasksResponse {
                        task_arns: arns,
                        next_token: more.then(|| encode_token(TokenKind::Tasks, &filter, id.as_bytes())),
                    });
                }
            }
            if scanned >= SCAN_BUDGET {
                return Ok(ListTasksResponse {
                    task_arns: arns,
                    next_token: Some(encode_token(TokenKind::Tasks, &filter, id.as_bytes())),
                });
            }
        }
        if exhausted {
            return Ok(ListTasksResponse {
                task_arns: arns,
                next_token: None,
            });
        }
    }
}

pub fn describe_task_definition(
    state: &impl StateIndex,
    scope: &Scope,
    request: &DescribeTaskDefinitionRequest,
) -> DomainResult<DescribeTaskDefinitionResponse> {
    let input = request
        .task_definition
        .as_deref()
        .ok_or_else(|| super::decide::missing("taskDefinition", "name a family, family:revision or ARN."))?;
    let record = resolve_task_definition(state, scope, "taskDefinition", input, TaskDefinitionUse::Describe)?;
    check_include::<TaskDefinitionField>(&request.include)?;
    let with_tags = includes(&request.include, TaskDefinitionField::Tags as i32);
    Ok(DescribeTaskDefinitionResponse {
        task_definition: record.task_definition,
        tags: if with_tags { record.tags } else { Vec::new() },
    })
}

pub fn list_task_definitions(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListTaskDefinitionsRequest,
) -> DomainResult<ListTaskDefinitionsResponse> {
    let limit = max_results(request.max_results)?;
    let status = match request.status.map(TaskDefinitionStatus::try_from) {
        None => TaskDefinitionStatus::Active,
        Some(Ok(s)) if s != TaskDefinitionStatus::Unspecified => s,
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "status",
                "status must be ACTIVE, INACTIVE or DELETE_IN_PROGRESS.",
            ))
        }
    };
    let descending = match request.sort.map(SortOrder::try_from) {
        None | Some(Ok(SortOrder::Asc)) => false,
        Some(Ok(SortOrder::Desc)) => true,
        Some(_) => return Err(DomainError::invalid_parameter("sort", "sort must be ASC or DESC.")),
    };
    if let Some(family) = request.family_prefix.as_deref() {
        super::ids::validate_name("familyPrefix", "familyPrefix", family)?;
    }
    let filter = format!("{:?}|{status:?}|{descending}", request.family_prefix);
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::TaskDefinitions, &filter)?;
    let after = match cursor.as_deref() {
        None => None,
        Some(bytes) => Some(split_revision_cursor(bytes)?),
    };
    let family = request.family_prefix.as_deref();
    let page = state.task_definition_revisions(
        scope,
        status,
        family,
        descending,
        after.as_ref().map(|(f, r)| (f.as_str(), *r)),
        limit + 1,
    )?;
    let more = page.len() > limit;
    let page: Vec<(String, u32)> = page.into_iter().take(limit).collect();
    let next_token = match (more, page.last()) {
        (true, Some((f, r))) => Some(encode_token(
            TokenKind::TaskDefinitions,
            &filter,
            format!("{f}:{r}").as_bytes(),
        )),
        _ => None,
    };
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: page.iter().map(|(f, r)| scope.task_definition_arn(f, *r)).collect(),
        next_token,
    })
}

fn split_revision_cursor(bytes: &[u8]) -> DomainResult<(String, u32)> {
    let text = String::from_utf8_lossy(bytes);
    text.rsplit_once(':')
        .and_then(|(f, r)| Some((f.to_string(), r.parse().ok()?)))
        .ok_or_else(bad_token)
}

pub fn list_task_definition_families(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListTaskDefinitionFamiliesRequest,
) -> DomainResult<ListTaskDefinitionFamiliesResponse> {
    let limit = max_results(request.max_results)?;
    let status = match request.status.map(TaskDefinitionFamilyStatus::try_from) {
        None | Some(Ok(TaskDefinitionFamilyStatus::All)) => None,
        Some(Ok(TaskDefinitionFamilyStatus::Active)) => Some(true),
        Some(Ok(TaskDefinitionFamilyStatus::Inactive)) => Some(false),
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "status",
                "status must be ACTIVE, INACTIVE or ALL.",
            ))
        }
    };
    let prefix = request.family_prefix.as_deref().unwrap_or("");
    super::ids::check_printable("familyPrefix", prefix, 255)?;
    let filter = format!("{prefix}|{status:?}");
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::Families, &filter)?;
    let mut after = cursor.map(|c| String::from_utf8_lossy(&c).into_owned());
    let mut families = Vec::new();
    let mut scanned = 0;
    loop {
        let names = state.family_names(scope, prefix, after.as_deref(), 256)?;
        let exhausted = names.len() < 256;
        for name in names {
            scanned += 1;
            after = Some(name.clone());
            let active = state.family(scope, &name)?.is_some_and(|f| f.active_revisions > 0);
            if status.is_none_or(|want| want == active) {
                families.push(name.clone());
                if families.len() == limit {
                    let more = !state.family_names(scope, prefix, Some(&name), 1)?.is_empty();
                    return Ok(ListTaskDefinitionFamiliesResponse {
                        families,
                        next_token: more.then(|| encode_token(TokenKind::Families, &filter, name.as_bytes())),
                    });
                }
            }
            if scanned >= SCAN_BUDGET {
                return Ok(ListTaskDefinitionFamiliesResponse {
                    families,
                    next_token: Some(encode_token(TokenKind::Families, &filter, name.as_bytes())),
                });
            }
        }
        if exhausted {
            return Ok(ListTaskDefinitionFamiliesResponse {
                families,
                next_token: None,
            });
        }
    }
}

pub fn describe_clusters(
    state: &impl StateIndex,
    scope: &Scope,
    request: &DescribeClustersRequest,
) -> DomainResult<DescribeClustersResponse> {
    if request.clusters.len() > DESCRIBE_IDS_MAX {
        return Err(DomainError::invalid_parameter(
            "clusters",
            format!(
                "At most {DESCRIBE_IDS_MAX} clusters can be described at once; got {}.",
                request.clusters.len()
            ),
        ));
    }
    let defaults = ["default".to_string()];
    let names: &[String] = if request.clusters.is_empty() {
        &defaults
    } else {
        &request.clusters
    };
    check_include::<ClusterField>(&request.include)?;
    let include = |field: ClusterField| includes(&request.include, field as i32);
    let mut response = DescribeClustersResponse::default();
    let mut seen = Vec::new();
    for (i, input) in names.iter().enumerate() {
        let name = parse_cluster(scope, &format!("clusters[{i}]"), Some(input))?;
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        match state.cluster(scope, &name)?.and_then(|r| r.cluster) {
            Some(mut cluster) => {
                if !include(ClusterField::Tags) {
                    cluster.tags.clear();
                }
                if !include(ClusterField::Settings) {
                    cluster.settings.clear();
                }
                if !include(ClusterField::Statistics) {
                    cluster.statistics.clear();
                } else {
                    complete_statistics(&mut cluster);
                }
                if !include(ClusterField::Configurations) {
                    cluster.configuration = None;
                }
                if !include(ClusterField::Attachments) {
                    cluster.attachments.clear();
                    cluster.attachments_status = None;
                }
                response.clusters.push(cluster);
            }
            None => response.failures.push(missing_failure(scope.cluster_arn(&name))),
        }
    }
    Ok(response)
}

/// Statistics as ECS lists them: every counter, zeros included, in ECS's order.
fn complete_statistics(cluster: &mut Cluster) {
    const NAMES: [&str; 8] = [
        "runningEC2TasksCount",
        "RunningFargateTasksCount",
        "pendingEC2TasksCount",
        "pendingFargateTasksCount",
        "activeEC2ServiceCount",
        "activeFargateServiceCount",
        "drainingEC2ServiceCount",
        "drainingFargateServiceCount",
    ];
    cluster.statistics = NAMES
        .iter()
        .map(|name| KeyValuePair {
            name: Some(name.to_string()),
            value: Some(
                cluster
                    .statistics
                    .iter()
                    .find(|s| s.name.as_deref() == Some(name))
                    .and_then(|s| s.value.clone())
                    .unwrap_or_else(|| "0".to_string()),
            ),
        })
        .collect();
}

pub fn list_clusters(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListClustersRequest,
) -> DomainResult<ListClustersResponse> {
    let limit = max_results(request.max_results)?;
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::Clusters, "")?;
    let mut after = cursor.map(|c| String::from_utf8_lossy(&c).into_owned());
    let mut arns = Vec::new();
    loop {
        let names = state.cluster_names(scope, after.as_deref(), 256)?;
        let exhausted = names.len() < 256;
        for name in names {
            after = Some(name.clone());
            let active = state
                .cluster(scope, &name)?
                .is_some_and(|r| super::state::cluster_is_active(&r));
            if active {
                arns.push(scope.cluster_arn(&name));
                if arns.len() == limit {
                    let more = state.cluster_names(scope, Some(&name), 10_000)?.iter().any(|n| {
                        state
                            .cluster(scope, n)
                            .ok()
                            .flatten()
                            .is_some_and(|r| super::state::cluster_is_active(&r))
                    });
                    return Ok(ListClustersResponse {
                        cluster_arns: arns,
                        next_token: more.then(|| encode_token(TokenKind::Clusters, "", name.as_bytes())),
                    });
                }
            }
        }
        if exhausted {
            return Ok(ListClustersResponse {
                cluster_arns: arns,
                next_token: None,
            });
        }
    }
}

pub fn describe_container_instances(
    state: &impl StateIndex,
    scope: &Scope,
    request: &DescribeContainerInstancesRequest,
) -> DomainResult<DescribeContainerInstancesResponse> {
    // ECS checks the request before it looks the cluster up.
    if request.container_instances.is_empty() {
        return Err(DomainError::client_at(
            "containerInstances",
            "Container Instances cannot be empty.",
        ));
    }
    check_ids(
        "containerInstances",
        request.container_instances.len(),
        "Container Instances",
    )?;
    check_include::<ContainerInstanceField>(&request.include)?;
    let (cluster, _) = known_cluster(state, scope, request.cluster.as_deref())?;
    let with_tags = includes(&request.include, ContainerInstanceField::Tags as i32);
    let with_health = includes(&request.include, ContainerInstanceField::ContainerInstanceHealth as i32);
    let mut response = DescribeContainerInstancesResponse::default();
    let mut seen = Vec::new();
    for (i, input) in request.container_instances.iter().enumerate() {
        let reference = parse_container_instance_ref(scope, &format!("containerInstances[{i}]"), input)?;
        if seen.contains(&reference.id) {
            continue;
        }
        seen.push(reference.id.clone());
        let arn = scope.container_instance_arn(&cluster, &reference.id);
        let found = state
            .container_instance(&reference.id)?
            .and_then(|r| r.container_instance)
            .filter(|ci| ci.container_instance_arn.as_deref() == Some(arn.as_str()))
            .filter(|_| reference.cluster.as_deref().is_none_or(|c| c == cluster));
        match found {
            Some(mut instance) => {
                if !with_tags {
                    instance.tags.clear();
                }
                if with_health {
                    instance.health_status = Some(ContainerInstanceHealthStatus {
                        overall_status: Some(InstanceHealthCheckState::Ok as i32),
                        details: Vec::new(),
                    });
                }
                response.container_instances.push(instance);
            }
            None => response.failures.push(missing_failure(arn)),
        }
    }
    Ok(response)
}

pub fn list_container_instances(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListContainerInstancesRequest,
) -> DomainResult<ListContainerInstancesResponse> {
    let limit = max_results(request.max_results)?;
    let status = match request.status.map(ContainerInstanceStatus::try_from) {
        None => None,
        Some(Ok(s)) if s != ContainerInstanceStatus::Unspecified => Some(s),
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "status",
                "status must be ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED.",
            ))
        }
    };
    let constraint = match request.filter.as_deref() {
        Some(expression) => {
            super::ids::check_printable("filter", expression, 2000)?;
            Some(PlacementConstraint {
                r#type: Some(PlacementConstraintType::MemberOf as i32),
                expression: Some(expression.to_string()),
            })
        }
        None => None,
    };
    if let Some(c) = &constraint {
        super::decide::check_expression("filter", c.expression.as_deref().unwrap_or(""))?;
    }
    // ECS checks the request before it looks the cluster up.
    let (cluster, _) = known_cluster(state, scope, request.cluster.as_deref())?;
    let filter = format!("{cluster}|{status:?}|{:?}", request.filter);
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::ContainerInstances, &filter)?;
    let after = cursor.map(|c| String::from_utf8_lossy(&c).into_owned());
    let mut arns = Vec::new();
    let ids = state.container_instance_ids(scope, &cluster)?;
    let mut remaining = ids
        .iter()
        .filter(|id| after.as_deref().is_none_or(|a| id.as_str() > a))
        .peekable();
    while let Some(id) = remaining.next() {
        let Some(instance) = state.container_instance(id)?.and_then(|r| r.container_instance) else {
            continue;
        };
        let instance_status = instance.status.as_deref().unwrap_or("ACTIVE");
        let status_ok = match status {
            None => instance_status != "INACTIVE",
            Some(s) => instance_status == s.as_str_name().trim_start_matches("CONTAINER_INSTANCE_STATUS_"),
        };
        let filter_ok = constraint
            .as_ref()
            .is_none_or(|c| super::decide::instance_satisfies(&instance, c));
        if status_ok && filter_ok {
            arns.push(scope.container_instance_arn(&cluster, id));
            if arns.len() == limit {
                let more = remaining.peek().is_some();
                return Ok(ListContainerInstancesResponse {
                    container_instance_arns: arns,
                    next_token: more.then(|| encode_token(TokenKind::ContainerInstances, &filter, id.as_bytes())),
                });
            }
        }
    }
    Ok(ListContainerInstancesResponse {
        container_instance_arns: arns,
        next_token: None,
    })
}

/// ListAttributes: the attributes of the cluster's registered container instances, ECS's own
/// (`ecs.*`) and custom ones, by instance id then name; filtered by name, and by value with a
/// name.
pub fn list_attributes(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListAttributesRequest,
) -> DomainResult<ListAttributesResponse> {
    match request.target_type.map(TargetType::try_from) {
        Some(Ok(TargetType::ContainerInstance)) => {}
        None => {
            return Err(DomainError::invalid_parameter("targetType", "targetType is required.")
                .hint("The only target type is container-instance."))
        }
        Some(_) => {
            return Err(DomainError::invalid_parameter(
                "targetType",
                "targetType can only be container-instance.",
            ))
        }
    }
    if request.attribute_value.is_some() && request.attribute_name.is_none() {
        return Err(DomainError::invalid_parameter(
            "attributeValue",
            "attributeName is required when attributeValue is specified.",
        ));
    }
    let limit = max_results(request.max_results)?;
    super::decide::check_length("attributeName", request.attribute_name.as_deref(), ATTRIBUTE_NAME_MAX)?;
    super::decide::check_length(
        "attributeValue",
        request.attribute_value.as_deref(),
        ATTRIBUTE_VALUE_MAX,
    )?;
    let (cluster, _) = known_cluster(state, scope, request.cluster.as_deref())?;
    let filter = format!("{cluster}|{:?}|{:?}", request.attribute_name, request.attribute_value);
    let cursor = decode_token(request.next_token.as_deref(), TokenKind::Attributes, &filter)?;
    let after: Option<(String, String)> = match cursor {
        None => None,
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| bad_token())?;
            let (id, name) = text.split_once('\0').ok_or_else(bad_token)?;
            Some((id.to_string(), name.to_string()))
        }
    };
    let mut attributes = Vec::new();
    let mut last: Option<(String, String)> = None;
    for id in state.container_instance_ids(scope, &cluster)? {
        if after.as_ref().is_some_and(|(a, _)| id.as_str() < a.as_str()) {
            continue;
        }
        let Some(instance) = state.container_instance(&id)?.and_then(|r| r.container_instance) else {
            continue;
        };
        if instance.status.as_deref() == Some("INACTIVE") {
            continue;
        }
        let mut own: Vec<&Attribute> = instance
            .attributes
            .iter()
            .filter(|a| request.attribute_name.is_none() || a.name == request.attribute_name)
            .filter(|a| request.attribute_value.is_none() || a.value == request.attribute_value)
            .collect();
        own.sort_by(|a, b| a.name.cmp(&b.name));
        let arn = scope.container_instance_arn(&cluster, &id);
        for attribute in own {
            let name = attribute.name.clone().unwrap_or_default();
            if after.as_ref().is_some_and(|(a, n)| id == *a && name <= *n) {
                continue;
            }
            if attributes.len() == limit {
                let (id, name) = last.expect("a full page has a last item");
                return Ok(ListAttributesResponse {
                    attributes,
                    next_token: Some(encode_token(
                        TokenKind::Attributes,
                        &filter,
                        format!("{id}\0{name}").as_bytes(),
                    )),
                });
            }
            attributes.push(Attribute {
                name: attribute.name.clone(),
                value: attribute.value.clone(),
                target_type: Some(TargetType::ContainerInstance as i32),
                target_id: Some(arn.clone()),
            });
            last = Some((id.clone(), name));
        }
    }
    Ok(ListAttributesResponse {
        attributes,
        next_token: None,
    })
}

pub fn list_tags_for_resource(
    state: &impl StateIndex,
    scope: &Scope,
    request: &ListTagsForResourceRequest,
) -> DomainResult<ListTagsForResourceResponse> {
    let tags = super::decide::tags_of(state, scope, request.resource_arn.as_deref())?;
    Ok(ListTagsForResourceResponse { tags })
}

/// Refuses `include` values the API does not define.
fn check_include<E: TryFrom<i32>>(include: &[i32]) -> DomainResult<()> {
    for (i, value) in include.iter().enumerate() {
        super::decide::check_enum::<E>(&format!("include[{i}]"), Some(*value))?;
    }
    Ok(())
}

fn includes(include: &[i32], field: i32) -> bool {
    include.contains(&field)
}

fn check_ids(field: &str, count: usize, what: &str) -> DomainResult<()> {
    if count == 0 {
        return Err(DomainError::invalid_parameter(
            field,
            format!("{what} cannot be empty."),
        ));
    }
    if count > DESCRIBE_IDS_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!("At most {DESCRIBE_IDS_MAX} {field} can be described at once; got {count}."),
        ));
    }
    Ok(())
}

fn missing_failure(arn: String) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some("MISSING".to_string()),
        detail: None,
    }
}

/// `maxResults`: 1–100, 100 when absent.
fn max_results(value: Option<i32>) -> DomainResult<usize> {
    match value {
        None => Ok(MAX_RESULTS_MAX as usize),
        Some(n) if (1..=MAX_RESULTS_MAX).contains(&n) => Ok(n as usize),
        Some(n) => Err(DomainError::invalid_parameter(
            "maxResults",
            format!("maxResults must be between 1 and {MAX_RESULTS_MAX}; got {n}."),
        )),
    }
}

/// Which listing a `nextToken` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Tasks = 1,
    TaskDefinitions = 2,
    Families = 3,
    Clusters = 4,
    ContainerInstances = 5,
    Attributes = 6,
}

/// FNV-1a, to tie a token to the filters of the listing that issued it.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn encode_token(kind: TokenKind, filter: &str, cursor: &[u8]) -> String {
    let mut bytes = vec![kind as u8];
    bytes.extend_from_slice(&fnv(filter).to_be_bytes());
    bytes.extend_from_slice(cursor);
    hex::encode(bytes)
}

fn bad_token() -> DomainError {
    DomainError::invalid_parameter(
        "nextToken",
        "nextToken is invalid: pass back the token of the previous page of the same listing, with the same filters.",
    )
}

fn decode_token(token: Option<&str>, kind: TokenKind, filter: &str) -> DomainResult<Option<Vec<u8>>> {
    let Some(token) = token else { return Ok(None) };
    if token.len() % 2 != 0 || token.len() > 2048 || token.len() < 18 {
        return Err(bad_token());
    }
    let bytes = hex::decode(token).map_err(|_| bad_token())?;
    if bytes[0] != kind as u8 || bytes[1..9] != fnv(filter).to_be_bytes() {
        return Err(bad_token());
    }
    Ok(Some(bytes[9..].to_vec()))
}
