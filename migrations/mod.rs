//! Schema migrations, one step per schema version, applied in order by `store::migrate` when a
//! store is opened. Each step turns a store of version `to - 1` into version `to`; the runner
//! writes the step's batch together with the new version stamp and syncs, so a crash leaves the
//! store at the old or the new version, never between. A step too big for one batch may apply
//! chunks of its own before it returns, provided running it again over its own partial work
//! gives the same result (the stamp still comes last).
//! Does not run anything itself.

mod v0001_initial;
mod v0002_compact_task_records;
mod v0003_log_chunks;
mod v0004_views_in_memory;
mod v0005_compressed_log_values;

use crate::store::engine::{Engine, EngineResult, WriteBatch};

/// One schema step.
pub struct Step {
    /// The schema version the store has after this step.
    pub to: u32,
    /// What the step changes, for logs.
    pub describe: &'static str,
    /// The writes that migrate a store of version `to - 1` (the runner adds the version stamp).
    pub apply: fn(&dyn Engine) -> EngineResult<WriteBatch>,
}

/// Every step, in order; the last one's `to` is the schema version this binary writes.
pub const STEPS: &[Step] = &[
    v0001_initial::STEP,
    v0002_compact_task_records::STEP,
    v0003_log_chunks::STEP,
    v0004_views_in_memory::STEP,
    v0005_compressed_log_values::STEP,
];
