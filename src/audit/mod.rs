//! What audit and replay tools need beyond the ECS API: a task's history with its state after
//! every event, time travel (DescribeTasks as of a seq or a time), the EventBridge "ECS Task
//! State Change" rendering of events, and export/import of the log to and from files.
//! Does not serve anything; the gRPC `Ledger` service and the CLI build on it.

pub mod archive;
pub mod eventbridge;
pub mod export;
pub mod history;

pub use export::{ExportError, ExportSummary};
pub use history::{AsOf, HistoryEntry};
