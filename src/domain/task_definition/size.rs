//! Task size: the task-level `cpu` and `memory` strings (CPU units or vCPUs, MiB or GB)
//! normalised to whole CPU units and MiB, and the containers' cpu and memory checked against them.

use super::saturating_sum;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::ids::printable;
use crate::proto::v1::ContainerDefinition;

/// A task-level `cpu` or `memory` string, normalised; `forms` says what is accepted.
pub(super) fn task_size(
    member: &str,
    text: Option<&str>,
    normalise: fn(&str) -> Option<i32>,
    forms: &str,
) -> DomainResult<Option<i32>> {
    let Some(text) = text else { return Ok(None) };
    match normalise(text) {
        Some(value) => Ok(Some(value)),
        None => Err(DomainError::client_at(
            member,
            format!(
                "Invalid '{member}' setting for task: '{}' is not valid; give {forms}, amounting \
                 to a positive whole number.",
                printable(text)
            ),
        )),
    }
}

/// Task `cpu` as CPU units: an integer (`"1024"`) or vCPUs (`"1 vCPU"`, `"0.25 vcpu"`,
/// `"2vCPU"`; 1 vCPU = 1024 units). `None` when the text is neither or does not come to a
/// positive whole number of units that fits an `i32`.
pub fn normalise_cpu(text: &str) -> Option<i32> {
    scaled(text, "vcpu")
}

/// Task `memory` in MiB: an integer (`"2048"`) or GB (`"2 GB"`, `"0.5GB"`; 1 GB = 1024 MiB).
/// `None` when the text is neither or does not come to a positive whole number of MiB.
pub fn normalise_memory(text: &str) -> Option<i32> {
    scaled(text, "gb")
}

/// An integer, or a decimal number (`"2"`, `"0.25"`, `".5"`) followed by `unit` (any case,
/// optional space) worth 1024.
fn scaled(text: &str, unit: &str) -> Option<i32> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, factor) = match lower.strip_suffix(unit) {
        Some(number) => (number.trim_end(), 1024),
        None if lower.contains('.') => return None,
        None => (lower.as_str(), 1),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let parse = |s: &str| {
        if s.is_empty() {
            Some(0)
        } else {
            s.parse::<u128>().ok()
        }
    };
    let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
    let value = (parse(whole)? * scale + parse(fraction)?) * factor;
    if value % scale != 0 {
        return None;
    }
    i32::try_from(value / scale).ok().filter(|v| *v > 0)
}

/// Container cpu and memory against the task-level values, when those are set.
pub(super) fn check_container_totals(
    containers: &[ContainerDefinition],
    task_cpu: Option<i32>,
    task_memory: Option<i32>,
) -> DomainResult<()> {
    if let Some(task_cpu) = task_cpu {
        let total = saturating_sum(containers.iter().map(|c| c.cpu.unwrap_or(0)));
        if total > task_cpu {
            return Err(DomainError::client_at(
                "cpu",
                format!(
                    "The containers reserve {total} CPU units in total, more than the task's \
                     {task_cpu}; lower the container cpu values or raise the task cpu."
                ),
            ));
        }
    }
    if let Some(task_memory) = task_memory {
        for (i, c) in containers.iter().enumerate() {
            if let Some(memory) = c.memory.filter(|m| *m > task_memory) {
                return Err(DomainError::client_at(
                    format!("containerDefinitions[{i}].memory"),
                    format!(
                        "The 'memory' setting for container '{}' ({memory} MiB) is greater than for \
                         the task ({task_memory} MiB).",
                        c.name.as_deref().unwrap_or("")
                    ),
                ));
            }
        }
        let total = saturating_sum(
            containers
                .iter()
                .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0)),
        );
        if total > task_memory {
            return Err(DomainError::client_at(
                "memory",
                format!(
                    "The containers reserve {total} MiB of memory in total, more than the task's \
                     {task_memory} MiB; lower memoryReservation/memory of the containers or raise \
                     the task memory."
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{assert_client, container, fargate, given, registered, rejected};
    use super::*;

    #[test]
    fn container_totals_must_fit_the_task_size() {
        let err = rejected(given(|r| {
            r.cpu = Some("256".into());
            r.container_definitions[0].cpu = Some(200);
            r.container_definitions.push(ContainerDefinition {
                cpu: Some(100),
                ..container("side")
            });
        }));
        assert_client(&err, "cpu");
        let err = rejected(given(|r| {
            r.memory = Some("512".into());
            r.container_definitions.push(ContainerDefinition {
                memory: Some(300),
                ..container("side")
            });
        }));
        assert_client(&err, "memory");
        let err = rejected(given(|r| {
            r.memory = Some("512".into());
            r.container_definitions[0].memory = Some(1024);
            r.container_definitions[0].memory_reservation = Some(128);
        }));
        assert_client(&err, "containerDefinitions[0].memory");
        assert!(err.message.contains("greater than for the task"), "{}", err.message);
    }

    #[test]
    fn vcpu_and_gb_strings_are_normalised() {
        assert_eq!(normalise_cpu("256"), Some(256));
        assert_eq!(normalise_cpu("1 vCPU"), Some(1024));
        assert_eq!(normalise_cpu("2vcpu"), Some(2048));
        assert_eq!(normalise_cpu("0.25 vCPU"), Some(256));
        assert_eq!(normalise_cpu(" .5 vCPU"), Some(512));
        assert_eq!(normalise_cpu("."), None);
        assert_eq!(normalise_memory("1024.0"), None);
        assert_eq!(normalise_cpu("0.1 vCPU"), None, "102.4 units is not a whole number");
        assert_eq!(normalise_cpu("1.5"), None);
        assert_eq!(normalise_cpu("-1"), None);
        assert_eq!(normalise_cpu("0"), None);
        assert_eq!(normalise_cpu("one"), None);
        assert_eq!(normalise_cpu("99999999999999999999"), None);
        assert_eq!(normalise_memory("512"), Some(512));
        assert_eq!(normalise_memory("2 GB"), Some(2048));
        assert_eq!(normalise_memory("0.5GB"), Some(512));
        assert_eq!(normalise_memory("1 gb"), Some(1024));
        assert_eq!(normalise_memory("1 GiB"), None);

        let td = registered(given(fargate("0.25 vCPU", "0.5 GB")));
        assert_eq!((td.cpu.as_deref(), td.memory.as_deref()), (Some("256"), Some("512")));
    }

    #[test]
    fn unparseable_task_cpu_or_memory_is_rejected() {
        assert_client(&rejected(given(|r| r.cpu = Some("lots".into()))), "cpu");
        assert_client(&rejected(given(|r| r.memory = Some("1 TB".into()))), "memory");
    }

    proptest::proptest! {
        #[test]
        fn normalising_never_panics_and_integers_round_trip(text in ".{0,40}", n in 1..=i32::MAX) {
            let _ = (normalise_cpu(&text), normalise_memory(&text));
            proptest::prop_assert_eq!(normalise_cpu(&n.to_string()), Some(n));
            proptest::prop_assert_eq!(normalise_memory(&n.to_string()), Some(n));
        }
    }
}
