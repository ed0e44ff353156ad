//! Clusters: CreateCluster (settings, capacity providers and their default strategy, tags)
//! and DeleteCluster (refused while instances are registered or tasks are not STOPPED).

use super::{active_cluster, missing};
use crate::domain::command::{event, CommandContext, Decision, Reply};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::{printable, validate_name};
use crate::domain::limits::{CAPACITY_PROVIDER_STRATEGY_MAX, CLUSTERS_MAX};
use crate::domain::state::{cluster_is_active, StateView};
use crate::domain::tags;
use crate::proto::log::event::Kind;
use crate::proto::log::{ClusterCreated, ClusterDeleted};
use crate::proto::v1::*;

/// The built-in capacity providers every cluster may associate.
pub(crate) const BUILT_IN_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

pub(super) fn create_cluster(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &CreateClusterRequest,
) -> DomainResult<Decision> {
    let scope = &ctx.scope;
    let name = request.cluster_name.clone().unwrap_or_else(|| "default".to_string());
    validate_name("clusterName", "Cluster name", &name)?;
    tags::validate_tags("tags", &request.tags)?;
    for (i, setting) in request.settings.iter().enumerate() {
        if setting.name.is_none() {
            return Err(missing(
                &format!("settings[{i}].name"),
                "name the setting (containerInsights).",
            ));
        }
        super::check_enum::<ClusterSettingName>(&format!("settings[{i}].name"), setting.name)?;
        match setting.value.as_deref() {
            Some("enhanced" | "enabled" | "disabled") => {}
            other => {
                return Err(DomainError::invalid_parameter(
                    format!("settings[{i}].value"),
                    format!(
                        "containerInsights value '{}' is invalid; use enhanced, enabled or disabled.",
                        printable(other.unwrap_or(""))
                    ),
                ))
            }
        }
    }
    for (i, provider) in request.capacity_providers.iter().enumerate() {
        if !BUILT_IN_PROVIDERS.contains(&provider.as_str()) {
            return Err(DomainError::invalid_parameter(
                format!("capacityProviders[{i}]"),
                format!(
                    "Capacity provider '{}' does not exist; taskledger offers FARGATE and FARGATE_SPOT.",
                    printable(provider)
                ),
            ));
        }
    }
    validate_strategy(
        "defaultCapacityProviderStrategy",
        &request.default_capacity_provider_strategy,
    )?;
    for (i, item) in request.default_capacity_provider_strategy.iter().enumerate() {
        let provider = item.capacity_provider.as_deref().unwrap_or_default();
        if !request.capacity_providers.iter().any(|p| p == provider) {
            return Err(DomainError::invalid_parameter(
                format!("defaultCapacityProviderStrategy[{i}].capacityProvider"),
                format!(
                    "Capacity provider '{}' must also be listed in capacityProviders.",
                    printable(provider)
                ),
            ));
        }
    }
    if let Some(existing) = state.cluster(scope, &name)? {
        if cluster_is_active(&existing) {
            let cluster = existing.cluster.unwrap_or_default();
            return Ok(Decision {
                events: vec![],
                reply: Reply::CreateCluster(CreateClusterResponse { cluster: Some(cluster) }),
            });
        }
    }
    if state.active_cluster_count(scope)? >= CLUSTERS_MAX {
        return Err(DomainError::new(
            EcsException::LimitExceededException,
            format!(
                "This account already has {CLUSTERS_MAX} clusters in {}; delete one first.",
                scope.region()
            ),
        ));
    }
    let settings = if request.settings.is_empty() {
        vec![ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights as i32),
            value: Some("disabled".to_string()),
        }]
    } else {
        request.settings.clone()
    };
    let cluster = Cluster {
        cluster_arn: Some(scope.cluster_arn(&name)),
        cluster_name: Some(name),
        status: Some("ACTIVE".to_string()),
        registered_container_instances_count: Some(0),
        running_tasks_count: Some(0),
        pending_tasks_count: Some(0),
        active_services_count: Some(0),
        tags: request.tags.clone(),
        settings,
        configuration: request.configuration.clone(),
        capacity_providers: request.capacity_providers.clone(),
        default_capacity_provider_strategy: request.default_capacity_provider_strategy.clone(),
        service_connect_defaults: request
            .service_connect_defaults
            .as_ref()
            .map(|d| ClusterServiceConnectDefaults {
                namespace: d.namespace.clone(),
            }),
        ..Default::default()
    };
    Ok(Decision {
        events: vec![event(Kind::ClusterCreated(ClusterCreated {
            cluster: Some(cluster.clone()),
        }))],
        reply: Reply::CreateCluster(CreateClusterResponse { cluster: Some(cluster) }),
    })
}

/// Checks a capacity provider strategy's shape (ECS_SEMANTICS §2.1).
pub(crate) fn validate_strategy(field: &str, strategy: &[CapacityProviderStrategyItem]) -> DomainResult<()> {
    if strategy.len() > CAPACITY_PROVIDER_STRATEGY_MAX {
        return Err(DomainError::invalid_parameter(
            field,
            format!("A capacity provider strategy has at most {CAPACITY_PROVIDER_STRATEGY_MAX} items."),
        ));
    }
    let mut with_base = 0;
    for (i, item) in strategy.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if item.capacity_provider.as_deref().unwrap_or("").is_empty() {
            return Err(missing(
                &format!("{at}.capacityProvider"),
                "name the capacity provider.",
            ));
        }
        if !(0..=1000).contains(&item.weight.unwrap_or(0)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.weight"),
                "weight must be between 0 and 1000.",
            ));
        }
        if !(0..=100_000).contains(&item.base.unwrap_or(0)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.base"),
                "base must be between 0 and 100000.",
            ));
        }
        if item.base.unwrap_or(0) > 0 {
            with_base += 1;
        }
        if strategy[..i]
            .iter()
            .any(|o| o.capacity_provider == item.capacity_provider)
        {
            return Err(DomainError::invalid_parameter(
                format!("{at}.capacityProvider"),
                "Each capacity provider may appear once in a strategy.",
            ));
        }
    }
    if with_base > 1 {
        return Err(DomainError::invalid_parameter(
            field,
            "Only one capacity provider in a strategy can have a base.",
        ));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight.unwrap_or(0) == 0) {
        return Err(DomainError::invalid_parameter(
            field,
            "At least one capacity provider in a strategy needs a weight greater than 0.",
        ));
    }
    Ok(())
}

pub(super) fn delete_cluster(
    state: &impl StateView,
    ctx: &CommandContext,
    request: &DeleteClusterRequest,
) -> DomainResult<Decision> {
    let input = request
        .cluster
        .as_deref()
        .ok_or_else(|| missing("cluster", "name the cluster to delete."))?;
    let (name, record) = active_cluster(state, &ctx.scope, Some(input))?;
    let mut cluster = record.cluster.unwrap_or_default();
    if cluster.registered_container_instances_count.unwrap_or(0) > 0 {
        return Err(DomainError::new(
            EcsException::ClusterContainsContainerInstancesException,
            "The Cluster cannot be deleted while Container Instances are active.",
        )
        .hint(format!(
            "Cluster '{name}' still has {} registered container instances; deregister them first.",
            cluster.registered_container_instances_count.unwrap_or(0)
        )));
    }
    if record.unstopped_tasks > 0 {
        return Err(DomainError::new(
            EcsException::ClusterContainsTasksException,
            "The Cluster cannot be deleted while Tasks are active.",
        )
        .hint(format!(
            "Cluster '{name}' still has {} tasks that are not STOPPED; stop them and wait for STOPPED first.",
            record.unstopped_tasks
        )));
    }
    let arn = ctx.scope.cluster_arn(&name);
    cluster.status = Some("INACTIVE".to_string());
    Ok(Decision {
        events: vec![event(Kind::ClusterDeleted(ClusterDeleted { cluster_arn: arn }))],
        reply: Reply::DeleteCluster(DeleteClusterResponse { cluster: Some(cluster) }),
    })
}
