//! Domain errors: every rejection names its ECS exception, says what is wrong in ECS's own words
//! (its `message`, exactly what ECS sends where ECS's text is known) and, for people, what to do
//! about it (its `hint`, which the AWS wire has no place for).
//! Does not know about gRPC codes, HTTP statuses or storage faults beyond `ServerException`.

use std::fmt;

/// The ECS exception a rejection maps to (the `__type` of ECS's JSON errors, the `reason` of
/// taskledger's gRPC `ErrorInfo`). Clients match on this name, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcsException {
    /// A client-side mistake that is not a plain bad parameter (unknown task definition,
    /// invalid task-definition content, identifiers that cannot be resolved).
    ClientException,
    /// A parameter is malformed, out of range or inconsistent with another one.
    InvalidParameterException,
    /// The named (or implied `default`) cluster does not exist.
    ClusterNotFoundException,
    /// RunTask's `clientToken` was reused with different parameters.
    ConflictException,
    /// TagResource/UntagResource named a well-formed ARN of a resource that does not exist.
    ResourceNotFoundException,
    /// A resource limit would be exceeded (tags per resource, revisions per family, clusters).
    LimitExceededException,
    /// DeleteCluster on a cluster that still has registered container instances.
    ClusterContainsContainerInstancesException,
    /// DeleteCluster on a cluster that still has tasks that are not STOPPED.
    ClusterContainsTasksException,
    /// RunTask named a Fargate `platformVersion` that does not exist.
    PlatformUnknownException,
    /// ListTasks named a `serviceName`; taskledger has no services.
    ServiceNotFoundException,
    /// PutAttributes/DeleteAttributes named a container instance that does not exist.
    TargetNotFoundException,
    /// PutAttributes would give a resource more than 10 custom attributes.
    AttributeLimitExceededException,
    /// An internal fault: storage I/O, corruption, a store that refuses writes after a failed
    /// fsync. The only exception clients should retry.
    ServerException,
}

impl EcsException {
    /// The exception's ECS name, e.g. `"ClusterNotFoundException"`.
    pub fn name(self) -> &'static str {
        match self {
            EcsException::ClientException => "ClientException",
            EcsException::InvalidParameterException => "InvalidParameterException",
            EcsException::ClusterNotFoundException => "ClusterNotFoundException",
            EcsException::ConflictException => "ConflictException",
            EcsException::ResourceNotFoundException => "ResourceNotFoundException",
            EcsException::LimitExceededException => "LimitExceededException",
            EcsException::ClusterContainsContainerInstancesException => "ClusterContainsContainerInstancesException",
            EcsException::ClusterContainsTasksException => "ClusterContainsTasksException",
            EcsException::PlatformUnknownException => "PlatformUnknownException",
            EcsException::ServiceNotFoundException => "ServiceNotFoundException",
            EcsException::TargetNotFoundException => "TargetNotFoundException",
            EcsException::AttributeLimitExceededException => "AttributeLimitExceededException",
            EcsException::ServerException => "ServerException",
        }
    }
}

impl fmt::Display for EcsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rejected command or query. Rejections append nothing and change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception}: {message}")]
pub struct DomainError {
    /// The ECS exception this rejection is reported as.
    pub exception: EcsException,
    /// What went wrong, as ECS says it: ECS's own text where it is known, in its terse style
    /// where it is not. Never starts with the exception's name.
    pub message: String,
    /// What to do about it, for a person (over gRPC a `LocalizedMessage` detail; the AWS wire,
    /// like ECS, sends only the message).
    pub hint: Option<String>,
    /// The ECS request member at fault (camelCase path such as `containerDefinitions[0].image`),
    /// when one is.
    pub field: Option<String>,
    /// For `ConflictException`: the ARNs of the tasks the first request with this client token
    /// created.
    pub resource_ids: Vec<String>,
}

impl DomainError {
    pub fn new(exception: EcsException, message: impl Into<String>) -> Self {
        DomainError {
            exception,
            message: message.into(),
            hint: None,
            field: None,
            resource_ids: Vec::new(),
        }
    }

    /// Adds what a person can do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Names the request member at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid_parameter(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EcsException::InvalidParameterException, message).at(field)
    }

    pub fn client(message: impl Into<String>) -> Self {
        Self::new(EcsException::ClientException, message)
    }

    pub fn client_at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(EcsException::ClientException, message).at(field)
    }

    pub fn cluster_not_found(cluster_name: &str) -> Self {
        Self::new(EcsException::ClusterNotFoundException, "Cluster not found.")
            .hint(format!(
                "'{cluster_name}' does not exist in this account and region; create it with CreateCluster \
             or name an existing cluster."
            ))
            .at("cluster")
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(EcsException::ServerException, message)
    }
}

/// An event that cannot be applied to the state it follows: the log or the views are damaged
/// (or were written by a newer version). Never the result of bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inconsistent event: {0}")]
pub struct InconsistentEvent(pub String);

/// Shorthand for domain results.
pub type DomainResult<T> = Result<T, DomainError>;
