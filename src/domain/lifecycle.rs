//! The task lifecycle of ECS_SEMANTICS §8: `lastStatus` values in order, `desiredStatus`, and
//! which moves are allowed. Does not apply moves: `decide` and `evolve` do, using these rules.

use super::error::{DomainError, DomainResult};
use super::ids::printable;

/// A task's `lastStatus`, in lifecycle order. Moves only go to a higher value; STOPPED is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    /// Parses a status reported by an agent or a caller.
    pub fn parse(field: &str, value: &str) -> DomainResult<TaskStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                DomainError::invalid_parameter(
                    field,
                    format!(
                        "Status '{}' is not a task status; use one of PROVISIONING, PENDING, ACTIVATING, \
                     RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED.",
                        printable(value)
                    ),
                )
            })
    }

    /// Reads a stored `lastStatus`; unknown text reads as PENDING so a damaged view cannot panic.
    pub fn of(stored: Option<&str>) -> TaskStatus {
        stored
            .and_then(|s| TaskStatus::ALL.into_iter().find(|t| t.as_str() == s))
            .unwrap_or(TaskStatus::Pending)
    }

    /// Whether the task is past RUNNING on its way to STOPPED (sets `stoppingAt`).
    pub fn is_stopping_phase(self) -> bool {
        matches!(
            self,
            TaskStatus::Deactivating | TaskStatus::Stopping | TaskStatus::Deprovisioning
        )
    }
}

/// A task's `desiredStatus`: RUNNING at creation, changed once to STOPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }

    pub fn of(stored: Option<&str>) -> DesiredStatus {
        if stored == Some("STOPPED") {
            DesiredStatus::Stopped
        } else {
            DesiredStatus::Running
        }
    }
}

/// A container's `lastStatus` as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(field: &str, value: &str) -> DomainResult<ContainerStatus> {
        match value {
            "PENDING" => Ok(ContainerStatus::Pending),
            "RUNNING" => Ok(ContainerStatus::Running),
            "STOPPED" => Ok(ContainerStatus::Stopped),
            other => Err(DomainError::invalid_parameter(
                field,
                format!(
                    "Container status '{}' is invalid; use PENDING, RUNNING or STOPPED.",
                    printable(other)
                ),
            )),
        }
    }

    pub fn of(stored: Option<&str>) -> ContainerStatus {
        match stored {
            Some("RUNNING") => ContainerStatus::Running,
            Some("STOPPED") => ContainerStatus::Stopped,
            _ => ContainerStatus::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_ordered_as_the_ecs_lifecycle() {
        for pair in TaskStatus::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        assert_eq!(TaskStatus::parse("status", "RUNNING").unwrap(), TaskStatus::Running);
        assert!(TaskStatus::parse("status", "running").is_err());
    }
}
