//! Placement of new tasks on container instances: which instances can take a task (status,
//! agent, `memberOf` constraints, distinctInstance, CPU/MEMORY/ports), the placement strategies
//! (spread, binpack, random) that choose among them, the ECS `failures` for the shortfall, and
//! the cluster query language expressions ListContainerInstances filters by.

use crate::domain::command::CommandContext;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::{printable, Scope};
use crate::domain::resources::{self, Needs};
use crate::domain::state::StateView;
use crate::proto::log::Reservation;
use crate::proto::v1::*;

/// A container instance chosen for a task and what the task takes from it.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    pub(super) instance: ContainerInstance,
    pub(super) reservation: Reservation,
}

pub(super) struct Candidate {
    id: String,
    instance: ContainerInstance,
    tasks: u64,
}

pub(super) fn load_instances(state: &impl StateView, scope: &Scope, cluster: &str) -> DomainResult<Vec<Candidate>> {
    let mut out = Vec::new();
    for id in state.container_instance_ids(scope, cluster)? {
        if let Some(record) = state.container_instance(&id)? {
            let instance = record.container_instance.unwrap_or_default();
            if instance.status.as_deref() == Some("INACTIVE") {
                continue;
            }
            out.push(Candidate {
                id,
                instance,
                tasks: record.unstopped_tasks,
            });
        }
    }
    Ok(out)
}

/// Why an instance takes no new tasks at all, as an ECS failure reason.
pub(super) fn unavailable(instance: &ContainerInstance) -> Option<&'static str> {
    match instance.status.as_deref() {
        Some("INACTIVE") => Some("INACTIVE"),
        Some("DRAINING") => Some("DRAINING"),
        _ if instance.agent_connected == Some(false) => Some("AGENT"),
        _ => None,
    }
}

/// Places up to `count` tasks on the candidates; explains the shortfall in `failures`.
pub(super) fn place(
    mut candidates: Vec<Candidate>,
    needs: &Needs,
    constraints: &[PlacementConstraint],
    strategies: &[PlacementStrategy],
    count: usize,
    ctx: &CommandContext,
    failures: &mut Vec<Failure>,
) -> DomainResult<Vec<Placement>> {
    let distinct = constraints
        .iter()
        .any(|c| c.r#type == Some(PlacementConstraintType::DistinctInstance as i32));
    let mut used: Vec<String> = Vec::new();
    let mut placements = Vec::new();
    for n in 0..count {
        // Failures explain only the round in which nothing fitted.
        let mut round: Vec<Failure> = Vec::new();
        let mut fitting: Vec<usize> = Vec::new();
        for (i, candidate) in candidates.iter().enumerate() {
            let reason = if let Some(reason) = unavailable(&candidate.instance) {
                Some(reason)
            } else if !constraints.iter().all(|c| satisfies(&candidate.instance, c)) {
                Some("ATTRIBUTE")
            } else if distinct && used.contains(&candidate.id) {
                Some("DISTINCT_INSTANCE")
            } else {
                resources::shortfall(&candidate.instance, needs)
            };
            match reason {
                Some(reason) => round.push(Failure {
                    arn: candidate.instance.container_instance_arn.clone(),
                    reason: Some(reason.to_string()),
                    detail: None,
                }),
                None => fitting.push(i),
            }
        }
        let Some(chosen) = choose(&candidates, &fitting, strategies, ctx.seed.derive(1000 + n as u64)) else {
            failures.extend(round);
            break;
        };
        let candidate = &mut candidates[chosen];
        let arn = candidate.instance.container_instance_arn.clone().unwrap_or_default();
        let reservation = reservation_for(&arn, needs);
        resources::apply_reservation(&mut candidate.instance, &reservation, true);
        candidate.tasks += 1;
        used.push(candidate.id.clone());
        placements.push(Placement {
            instance: candidate.instance.clone(),
            reservation,
        });
    }
    Ok(placements)
}

/// Picks among fitting candidates by the placement strategies (in order, ties broken by the
/// next strategy, then by instance id). Without a strategy, tasks spread by instance.
pub(super) fn choose(
    candidates: &[Candidate],
    fitting: &[usize],
    strategies: &[PlacementStrategy],
    random: u128,
) -> Option<usize> {
    if fitting.is_empty() {
        return None;
    }
    let spread_default = [PlacementStrategy {
        r#type: Some(PlacementStrategyType::Spread as i32),
        field: Some("instanceId".into()),
    }];
    let strategies = if strategies.is_empty() {
        &spread_default[..]
    } else {
        strategies
    };
    let key = |i: usize| -> Vec<i128> {
        let c = &candidates[i];
        strategies
            .iter()
            .map(
                |s| match s.r#type.and_then(|t| PlacementStrategyType::try_from(t).ok()) {
                    Some(PlacementStrategyType::Binpack) => {
                        let name = if s.field.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("memory")) {
                            resources::MEMORY
                        } else {
                            resources::CPU
                        };
                        i128::from(resources::amount(&c.instance.remaining_resources, name))
                    }
                    Some(PlacementStrategyType::Spread) => {
                        match s.field.as_deref().and_then(|f| f.strip_prefix("attribute:")) {
                            Some(attribute) => {
                                let value = attribute_value(&c.instance, attribute);
                                fitting
                                    .iter()
                                    .filter(|j| attribute_value(&candidates[**j].instance, attribute) == value)
                                    .map(|j| i128::from(candidates[*j].tasks))
                                    .sum()
                            }
                            None => i128::from(c.tasks),
                        }
                    }
                    Some(PlacementStrategyType::Random) => {
                        let id_hash =
                            c.id.bytes()
                                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                        i128::from((random as u64) ^ id_hash)
                    }
                    _ => 0,
                },
            )
            .collect()
    };
    fitting.iter().copied().min_by(|a, b| {
        key(*a)
            .cmp(&key(*b))
            .then_with(|| candidates[*a].id.cmp(&candidates[*b].id))
    })
}

pub(super) fn reservation_for(instance_arn: &str, needs: &Needs) -> Reservation {
    Reservation {
        container_instance_arn: instance_arn.to_string(),
        cpu: needs.cpu,
        memory: needs.memory,
        tcp_ports: needs.tcp_ports.clone(),
        udp_ports: needs.udp_ports.clone(),
    }
}

pub(super) fn attribute_value<'a>(instance: &'a ContainerInstance, name: &str) -> Option<&'a str> {
    instance
        .attributes
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

/// A memberOf expression taskledger understands: `attribute:<name> == <value>`, `!=`, or
/// `attribute:<name> exists`/`in [a, b]`; `ec2InstanceId` may stand for the attribute.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expression {
    Equals(String, String, bool),
    In(String, Vec<String>),
    Exists(String),
}

pub(super) fn parse_expression(field: &str, text: &str) -> DomainResult<Expression> {
    let unsupported = || {
        DomainError::invalid_parameter(
            field,
            format!(
                "Expression '{}' is not supported; taskledger understands 'attribute:<name> == <value>', \
                 '!=', 'in [v1, v2]' and 'exists'.",
                printable(text)
            ),
        )
    };
    let text = text.trim();
    let subject = |s: &str| -> Option<String> {
        let s = s.trim();
        if s == "ec2InstanceId" {
            Some("ec2InstanceId".into())
        } else {
            s.strip_prefix("attribute:")
                .filter(|n| !n.is_empty())
                .map(str::to_string)
        }
    };
    if let Some((left, right)) = text.split_once("!=") {
        return Ok(Expression::Equals(
            subject(left).ok_or_else(unsupported)?,
            right.trim().to_string(),
            false,
        ));
    }
    if let Some((left, right)) = text.split_once("==") {
        return Ok(Expression::Equals(
            subject(left).ok_or_else(unsupported)?,
            right.trim().to_string(),
            true,
        ));
    }
    if let Some(left) = text.strip_suffix(" exists") {
        return Ok(Expression::Exists(subject(left).ok_or_else(unsupported)?));
    }
    if let Some((left, right)) = text.split_once(" in ") {
        let list = right
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(unsupported)?;
        return Ok(Expression::In(
            subject(left).ok_or_else(unsupported)?,
            list.split(',').map(|v| v.trim().to_string()).collect(),
        ));
    }
    Err(unsupported())
}

/// Checks that taskledger understands a cluster-query-language expression.
pub(crate) fn check_expression(field: &str, text: &str) -> DomainResult<()> {
    parse_expression(field, text).map(|_| ())
}

/// Whether an instance satisfies a memberOf constraint (ListContainerInstances `filter`).
pub(crate) fn instance_satisfies(instance: &ContainerInstance, constraint: &PlacementConstraint) -> bool {
    satisfies(instance, constraint)
}

/// Whether an instance satisfies a placement constraint (distinctInstance is handled by `place`).
pub(super) fn satisfies(instance: &ContainerInstance, constraint: &PlacementConstraint) -> bool {
    if constraint.r#type != Some(PlacementConstraintType::MemberOf as i32) {
        return true;
    }
    let Ok(expression) = parse_expression("expression", constraint.expression.as_deref().unwrap_or("")) else {
        return false;
    };
    let value = |name: &str| -> Option<String> {
        if name == "ec2InstanceId" {
            instance.ec2_instance_id.clone()
        } else {
            attribute_value(instance, name).map(str::to_string)
        }
    };
    match expression {
        Expression::Equals(name, wanted, equal) => (value(&name).as_deref() == Some(wanted.as_str())) == equal,
        Expression::In(name, list) => value(&name).is_some_and(|v| list.contains(&v)),
        Expression::Exists(name) => value(&name).is_some(),
    }
}
