//! RunTask/StartTask overrides: container overrides checked against the definition they apply
//! to, and the task-level cpu, memory and ephemeral-storage overrides.

use super::container::check_environment_files;
use super::{normalise_cpu, normalise_memory, shown, EPHEMERAL_STORAGE_GIB};
use crate::domain::error::{DomainError, DomainResult, EcsException};
use crate::domain::ids::printable;
use crate::proto::v1::{TaskDefinition, TaskOverride};

/// Checks RunTask/StartTask `overrides` against the definition (ECS_SEMANTICS §7.3): every
/// container override names a container of the definition (once), environment files are S3
/// files (at most 10), cpu/memory values are valid. The 8192-character JSON limit is the
/// caller's to check.
pub fn validate_overrides(td: &TaskDefinition, overrides: &TaskOverride) -> DomainResult<()> {
    for (i, o) in overrides.container_overrides.iter().enumerate() {
        let at = format!("overrides.containerOverrides[{i}]");
        let name = o.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                "Every container override needs the name of the container it overrides.",
            ));
        }
        if !td.container_definitions.iter().any(|c| c.name.as_deref() == Some(name)) {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Container override names '{}', which is not a container of this task \
                     definition; use one of: {}.",
                    printable(name),
                    container_names(td)
                ),
            ));
        }
        if overrides.container_overrides[..i]
            .iter()
            .any(|earlier| earlier.name.as_deref() == Some(name))
        {
            return Err(DomainError::invalid_parameter(
                format!("{at}.name"),
                format!(
                    "Container '{}' is overridden twice; give one override per container.",
                    printable(name)
                ),
            ));
        }
        check_environment_files(&format!("{at}.environmentFiles"), &o.environment_files).map_err(|e| DomainError {
            exception: EcsException::InvalidParameterException,
            ..e
        })?;
        for (member, value) in [
            ("cpu", o.cpu),
            ("memory", o.memory),
            ("memoryReservation", o.memory_reservation),
        ] {
            if let Some(value) = value.filter(|v| *v < 0) {
                return Err(DomainError::invalid_parameter(
                    format!("{at}.{member}"),
                    format!("Container override {member} must not be negative; got {value}."),
                ));
            }
        }
    }
    if let Some(text) = overrides.cpu.as_deref() {
        if normalise_cpu(text).is_none() {
            return Err(DomainError::invalid_parameter(
                "overrides.cpu",
                format!(
                    "Task cpu override '{}' is not valid: give CPU units ('512') or vCPUs ('0.5 vCPU').",
                    printable(text)
                ),
            ));
        }
    }
    if let Some(text) = overrides.memory.as_deref() {
        if normalise_memory(text).is_none() {
            return Err(DomainError::invalid_parameter(
                "overrides.memory",
                format!(
                    "Task memory override '{}' is not valid: give MiB ('1024') or GB ('1 GB').",
                    printable(text)
                ),
            ));
        }
    }
    if let Some(storage) = overrides.ephemeral_storage {
        if !storage
            .size_in_gib
            .is_some_and(|size| EPHEMERAL_STORAGE_GIB.contains(&size))
        {
            return Err(DomainError::invalid_parameter(
                "overrides.ephemeralStorage.sizeInGiB",
                format!(
                    "ephemeralStorage.sizeInGiB must be {} to {} GiB; got {}.",
                    EPHEMERAL_STORAGE_GIB.start(),
                    EPHEMERAL_STORAGE_GIB.end(),
                    shown(storage.size_in_gib)
                ),
            ));
        }
    }
    Ok(())
}

fn container_names(td: &TaskDefinition) -> String {
    let names = td
        .container_definitions
        .iter()
        .filter_map(|c| c.name.clone())
        .collect::<Vec<_>>();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{given, registered};
    use super::*;
    use crate::proto::v1::{ContainerOverride, EnvironmentFile};

    fn override_named(name: Option<&str>) -> TaskOverride {
        TaskOverride {
            container_overrides: vec![ContainerOverride {
                name: name.map(String::from),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn override_must_name_a_container() {
        let td = registered(given(|_| {}));
        for name in [None, Some(""), Some("ghost")] {
            let err = validate_overrides(&td, &override_named(name)).expect_err("override without a known container");
            assert_eq!(err.exception, EcsException::InvalidParameterException);
            assert_eq!(err.field.as_deref(), Some("overrides.containerOverrides[0].name"));
        }
        assert!(validate_overrides(&td, &override_named(Some("app"))).is_ok());
        assert!(validate_overrides(&td, &TaskOverride::default()).is_ok());
    }

    #[test]
    fn override_values_are_checked() {
        let td = registered(given(|_| {}));
        let mut negative = override_named(Some("app"));
        negative.container_overrides[0].memory = Some(-1);
        let err = validate_overrides(&td, &negative).expect_err("negative memory");
        assert_eq!(err.field.as_deref(), Some("overrides.containerOverrides[0].memory"));

        let mut files = override_named(Some("app"));
        files.container_overrides[0].environment_files = vec![EnvironmentFile {
            value: Some("arn:aws:s3:::bucket/app.env".into()),
            r#type: None,
        }];
        let err = validate_overrides(&td, &files).expect_err("environment file without type");
        assert_eq!(err.exception, EcsException::InvalidParameterException);
        assert_eq!(
            err.field.as_deref(),
            Some("overrides.containerOverrides[0].environmentFiles[0].type")
        );

        let bad_cpu = TaskOverride {
            cpu: Some("fast".into()),
            ..Default::default()
        };
        assert_eq!(
            validate_overrides(&td, &bad_cpu).map_err(|e| e.field),
            Err(Some("overrides.cpu".into()))
        );

        let mut twice = override_named(Some("app"));
        twice.container_overrides.push(ContainerOverride {
            name: Some("app".into()),
            ..Default::default()
        });
        assert!(validate_overrides(&td, &twice).is_err());
    }
}
