//! Container-instance resource accounting (ECS_SEMANTICS §11): reading CPU/MEMORY/PORTS from
//! `Resource` lists, whether a task fits, and taking or giving back a task's reservation.
//! Does not choose instances: placement in `decide` does.

use crate::proto::log::Reservation;
use crate::proto::v1::{ContainerInstance, Resource};

pub const CPU: &str = "CPU";
pub const MEMORY: &str = "MEMORY";
pub const PORTS: &str = "PORTS";
pub const PORTS_UDP: &str = "PORTS_UDP";

/// Resources an instance gets when it registers without `totalResources`: a typical 4-vCPU
/// agent host with the ports the agent itself reserves (ECS_SEMANTICS §11, our choice).
pub fn default_total_resources() -> Vec<Resource> {
    vec![
        integer(CPU, 4096),
        integer(MEMORY, 7482),
        string_set(
            PORTS,
            ["22", "2375", "2376", "51678", "51679"]
                .iter()
                .map(|p| p.to_string())
                .collect(),
        ),
        string_set(PORTS_UDP, Vec::new()),
    ]
}

pub fn integer(name: &str, value: i32) -> Resource {
    Resource {
        name: Some(name.to_string()),
        r#type: Some("INTEGER".to_string()),
        integer_value: Some(value),
        ..Default::default()
    }
}

pub fn string_set(name: &str, values: Vec<String>) -> Resource {
    Resource {
        name: Some(name.to_string()),
        r#type: Some("STRINGSET".to_string()),
        string_set_value: values,
        ..Default::default()
    }
}

/// The numeric value of a named resource (integer, long or double), 0 when absent.
pub fn amount(resources: &[Resource], name: &str) -> i64 {
    resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .map(|r| {
            r.integer_value
                .map(i64::from)
                .or(r.long_value)
                .or(r.double_value.map(|d| d as i64))
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The ports listed by a STRINGSET resource.
pub fn ports(resources: &[Resource], name: &str) -> Vec<i32> {
    resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .map(|r| r.string_set_value.iter().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// What a task needs on an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub cpu: i32,
    pub memory: i32,
    pub tcp_ports: Vec<i32>,
    pub udp_ports: Vec<i32>,
}

/// The first resource the instance lacks for `needs`, as a failure reason (`RESOURCE:CPU`, …).
pub fn shortfall(instance: &ContainerInstance, needs: &Needs) -> Option<&'static str> {
    let remaining = &instance.remaining_resources;
    if amount(remaining, CPU) < i64::from(needs.cpu) {
        return Some("RESOURCE:CPU");
    }
    if amount(remaining, MEMORY) < i64::from(needs.memory) {
        return Some("RESOURCE:MEMORY");
    }
    let taken = ports(remaining, PORTS);
    if needs.tcp_ports.iter().any(|p| taken.contains(p)) {
        return Some("RESOURCE:PORTS");
    }
    let taken_udp = ports(remaining, PORTS_UDP);
    if needs.udp_ports.iter().any(|p| taken_udp.contains(p)) {
        return Some("RESOURCE:PORTS_UDP");
    }
    None
}

/// Takes (`take == true`) or gives back a reservation from the instance's remaining resources.
pub fn apply_reservation(instance: &mut ContainerInstance, reservation: &Reservation, take: bool) {
    let sign = if take { -1 } else { 1 };
    for resource in instance.remaining_resources.iter_mut() {
        match resource.name.as_deref() {
            Some(CPU) => add(resource, sign * i64::from(reservation.cpu)),
            Some(MEMORY) => add(resource, sign * i64::from(reservation.memory)),
            Some(PORTS) => update_ports(resource, &reservation.tcp_ports, take),
            Some(PORTS_UDP) => update_ports(resource, &reservation.udp_ports, take),
            _ => {}
        }
    }
    for (name, wanted) in [(PORTS, &reservation.tcp_ports), (PORTS_UDP, &reservation.udp_ports)] {
        if take
            && !wanted.is_empty()
            && !instance
                .remaining_resources
                .iter()
                .any(|r| r.name.as_deref() == Some(name))
        {
            instance
                .remaining_resources
                .push(string_set(name, wanted.iter().map(i32::to_string).collect()));
        }
    }
}

fn add(resource: &mut Resource, delta: i64) {
    if let Some(v) = resource.integer_value.as_mut() {
        *v = (i64::from(*v) + delta).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    } else if let Some(v) = resource.long_value.as_mut() {
        *v = v.saturating_add(delta);
    } else if let Some(v) = resource.double_value.as_mut() {
        *v += delta as f64;
    } else {
        resource.integer_value = Some(delta.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    }
}

fn update_ports(resource: &mut Resource, ports: &[i32], take: bool) {
    for port in ports {
        let text = port.to_string();
        let position = resource.string_set_value.iter().position(|p| *p == text);
        match (take, position) {
            (true, None) => resource.string_set_value.push(text),
            (false, Some(i)) => {
                resource.string_set_value.remove(i);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> ContainerInstance {
        ContainerInstance {
            remaining_resources: default_total_resources(),
            ..Default::default()
        }
    }

    #[test]
    fn reservation_is_taken_and_given_back_exactly() {
        let mut ci = instance();
        let before = ci.clone();
        let r = Reservation {
            cpu: 1024,
            memory: 512,
            tcp_ports: vec![80],
            udp_ports: vec![53],
            ..Default::default()
        };
        apply_reservation(&mut ci, &r, true);
        assert_eq!(amount(&ci.remaining_resources, CPU), 3072);
        assert!(ports(&ci.remaining_resources, PORTS).contains(&80));
        assert_eq!(ports(&ci.remaining_resources, PORTS_UDP), vec![53]);
        apply_reservation(&mut ci, &r, false);
        assert_eq!(ci, before);
    }

    #[test]
    fn shortfall_names_the_first_missing_resource() {
        let ci = instance();
        assert_eq!(
            shortfall(
                &ci,
                &Needs {
                    cpu: 5000,
                    ..Default::default()
                }
            ),
            Some("RESOURCE:CPU")
        );
        assert_eq!(
            shortfall(
                &ci,
                &Needs {
                    memory: 8000,
                    ..Default::default()
                }
            ),
            Some("RESOURCE:MEMORY")
        );
        assert_eq!(
            shortfall(
                &ci,
                &Needs {
                    tcp_ports: vec![22],
                    ..Default::default()
                }
            ),
            Some("RESOURCE:PORTS")
        );
        assert_eq!(
            shortfall(
                &ci,
                &Needs {
                    cpu: 10,
                    memory: 10,
                    ..Default::default()
                }
            ),
            None
        );
    }
}
