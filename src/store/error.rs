//! Store errors: a refused command (with its ECS exception), or a fault of the store itself
//! (storage, corruption, a store that stopped taking writes), which ECS callers see as
//! `ServerException`.
//! Does not build gRPC or HTTP errors (the API layer maps these).

use crate::domain::{DomainError, EcsException};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The command or query was refused; nothing was written. Carries the ECS exception.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The storage engine failed; what was being written was not acknowledged.
    #[error("storage failure while {context}: {message}")]
    Storage { context: &'static str, message: String },
    /// Stored data cannot be read back (a damaged record, or views that disagree with the log).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// An earlier write could not be made durable; the store takes no more writes until it is
    /// reopened (reads still work). A failed fsync is never retried.
    #[error("the store refuses writes since an earlier write failed ({0}); reopen it to recover")]
    WritesRefused(String),
    /// The store was written by a newer taskledger.
    #[error(
        "the store at {path} has schema version {found}, newer than the {supported} this taskledger \
         understands; run a newer taskledger"
    )]
    NewerSchema { path: String, found: u32, supported: u32 },
    /// The filesystem holding the store is nearly full: writes are refused before the engine runs
    /// out of space mid-batch (which would stop writes until a restart). Nothing was written;
    /// writes resume by themselves once space is freed, and reads keep working.
    #[error(
        "the disk holding the store has {available} bytes free, below the reserve of {reserve} \
         bytes (--min-free-mib): nothing was written; free space and retry (reads still work)"
    )]
    DiskFull { available: u64, reserve: u64 },
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// The ECS exception callers see.
    pub fn exception(&self) -> EcsException {
        match self {
            StoreError::Rejected(e) => e.exception,
            StoreError::Storage { .. }
            | StoreError::Corrupt(_)
            | StoreError::WritesRefused(_)
            | StoreError::DiskFull { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::Closed => EcsException::ServerException,
        }
    }

    pub(crate) fn storage(context: &'static str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Storage {
            context,
            message: error.to_string(),
        }
    }

    /// Turns a domain error from a read into a store error: a `ServerException` from the
    /// domain is a storage fault, anything else a rejection.
    pub(crate) fn from_read(error: DomainError) -> StoreError {
        if error.exception == EcsException::ServerException {
            StoreError::Storage {
                context: "reading views",
                message: error.message,
            }
        } else {
            StoreError::Rejected(error)
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
