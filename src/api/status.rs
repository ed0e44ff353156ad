//! The one place that turns a `StoreError` (or a caller's refusal) into a `tonic::Status`: the gRPC code (an exhaustive
//! match on the ECS exception), ECS's message, and `google.rpc.ErrorInfo` with `reason` = the ECS
//! exception name, plus a `BadRequest` field violation when a field is at fault and a
//! `LocalizedMessage` (en-US) with what a person can do about it when the domain says.
//! Also reads the exception name back out of a status, for clients.
//! Does not decide what is an error (the domain and the store do).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::auth::Refusal;
use super::ERROR_DOMAIN;
use crate::domain::{DomainError, EcsException};
use crate::store::StoreError;

/// The gRPC code an ECS exception is answered with.
pub fn code_of(exception: EcsException) -> Code {
    match exception {
        EcsException::InvalidParameterException | EcsException::ClientException => Code::InvalidArgument,
        EcsException::ClusterNotFoundException
        | EcsException::ResourceNotFoundException
        | EcsException::ServiceNotFoundException
        | EcsException::TargetNotFoundException
        | EcsException::PlatformUnknownException => Code::NotFound,
        EcsException::ConflictException => Code::AlreadyExists,
        EcsException::LimitExceededException | EcsException::AttributeLimitExceededException => Code::ResourceExhausted,
        EcsException::ClusterContainsContainerInstancesException | EcsException::ClusterContainsTasksException => {
            Code::FailedPrecondition
        }
        EcsException::ServerException => Code::Internal,
    }
}

/// The status for a failed operation. Internal faults are logged here (error level) and answered
/// with the store's message and the request id, nothing more.
pub fn to_status(error: &StoreError, request_id: &str) -> Status {
    match error {
        StoreError::Rejected(rejection) if rejection.exception == EcsException::ServerException => {
            internal(Code::Internal, error, request_id)
        }
        StoreError::Rejected(rejection) => rejected(rejection),
        StoreError::WritesRefused(_) | StoreError::Closed => internal(Code::Unavailable, error, request_id),
        // gRPC's own words for it: "perhaps the entire file system is out of space".
        StoreError::DiskFull { .. } => internal(Code::ResourceExhausted, error, request_id),
        StoreError::Storage { .. } | StoreError::Corrupt(_) | StoreError::NewerSchema { .. } => {
            internal(Code::Internal, error, request_id)
        }
    }
}

fn rejected(rejection: &DomainError) -> Status {
    let mut metadata = HashMap::new();
    if let Some(field) = &rejection.field {
        metadata.insert("field".to_string(), field.clone());
    }
    if rejection.exception == EcsException::ConflictException {
        metadata.insert("resourceIds".to_string(), rejection.resource_ids.join(","));
    }
    let mut details = ErrorDetails::with_error_info(rejection.exception.name(), ERROR_DOMAIN, metadata);
    if let Some(field) = &rejection.field {
        details.add_bad_request_violation(field.clone(), rejection.message.clone());
    }
    if let Some(hint) = &rejection.hint {
        tracing::debug!(exception = rejection.exception.name(), message = %rejection.message, hint, "request rejected");
        details.set_localized_message("en-US", hint.clone());
    }
    Status::with_error_details(code_of(rejection.exception), rejection.message.clone(), details)
}

fn internal(code: Code, error: &StoreError, request_id: &str) -> Status {
    tracing::error!(request_id, error = %error, "internal fault");
    let details = ErrorDetails::with_error_info(
        EcsException::ServerException.name(),
        ERROR_DOMAIN,
        HashMap::from([("requestId".to_string(), request_id.to_string())]),
    );
    Status::with_error_details(
        code,
        format!("internal error, request id {request_id}: {error}"),
        details,
    )
}

/// The status for a call refused before it ran (not authenticated, not permitted, over its
/// rate): its code and message, `ErrorInfo.reason` = the AWS exception.
pub fn refused(refusal: &Refusal, request_id: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        refusal.exception,
        ERROR_DOMAIN,
        HashMap::from([("requestId".to_string(), request_id.to_string())]),
    );
    Status::with_error_details(refusal.code, refusal.message.clone(), details)
}

/// The status for an operation that did not finish within the server's request timeout.
pub fn deadline_exceeded(operation: &str, timeout: Duration, request_id: &str) -> Status {
    Status::deadline_exceeded(format!(
        "{operation} did not finish within the server's request timeout of {} ms (request id {request_id}); \
         a command may still have been committed, so check its effect (e.g. DescribeTasks) before \
         retrying, or retry RunTask with the same clientToken.",
        timeout.as_millis()
    ))
}

/// The end of a `Ledger.Subscribe` stream when the server shuts down: `UNAVAILABLE`, saying where
/// to resume (also in `ErrorInfo.metadata["resumeFromSeq"]`).
pub fn shutting_down(resume_from_seq: u64, request_id: &str) -> Status {
    let details = ErrorDetails::with_error_info(
        EcsException::ServerException.name(),
        ERROR_DOMAIN,
        HashMap::from([
            ("requestId".to_string(), request_id.to_string()),
            ("resumeFromSeq".to_string(), resume_from_seq.to_string()),
        ]),
    );
    Status::with_error_details(
        Code::Unavailable,
        format!(
            "the server is shutting down (request id {request_id}); subscribe again with from_seq = \
             {resume_from_seq} to resume without a gap"
        ),
        details,
    )
}

/// The ECS exception name a taskledger error carries in `ErrorInfo.reason`, if it has one.
pub fn exception_name(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .map(|info| info.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_carry_the_exception_name_field_and_conflicting_arns() {
        let mut conflict = DomainError::new(EcsException::ConflictException, "token reused").at("clientToken");
        conflict.resource_ids = vec!["arn:a".into(), "arn:b".into()];
        let status = to_status(&StoreError::Rejected(conflict), "req-1");
        assert_eq!(status.code(), Code::AlreadyExists);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "ConflictException");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(
            info.metadata.get("resourceIds").map(String::as_str),
            Some("arn:a,arn:b")
        );
        assert_eq!(info.metadata.get("field").map(String::as_str), Some("clientToken"));
        let bad_request = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad_request.field_violations[0].field, "clientToken");
        assert_eq!(exception_name(&status).as_deref(), Some("ConflictException"));
    }

    #[test]
    fn internal_faults_name_the_request_and_say_server_exception() {
        let status = to_status(&StoreError::Corrupt("bad record at seq 7".into()), "req-2");
        assert_eq!(status.code(), Code::Internal);
        assert!(
            status.message().starts_with("internal error, request id req-2"),
            "{}",
            status.message()
        );
        assert_eq!(exception_name(&status).as_deref(), Some("ServerException"));
        assert_eq!(to_status(&StoreError::Closed, "req-3").code(), Code::Unavailable);
    }
}
