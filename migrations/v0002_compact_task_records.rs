//! Schema version 2: task records are stored in their compact form (src/store/compact.rs), with
//! the ARNs that follow from the task's own ARN left out. Every task record is read and written
//! back; a record already compact is written back unchanged, so the step can run again after a
//! crash. It writes in chunks of its own (a store may hold millions of tasks) and leaves the
//! version stamp to the runner, which writes it last.

use super::Step;
use crate::proto::state::TaskRecord;
use crate::store::engine::{Engine, EngineResult, WriteBatch};
use crate::store::keys;
use crate::store::views::View;

pub const STEP: Step = Step {
    to: 2,
    describe: "compact task records",
    apply,
};

const CHUNK: usize = 10_000;

fn apply(engine: &dyn Engine) -> EngineResult<WriteBatch> {
    let (start, end) = ([keys::TASK], keys::prefix_end(&[keys::TASK]));
    let mut batch = WriteBatch::default();
    let mut rewritten = 0u64;
    for entry in engine.range(&start, &end) {
        let (key, bytes) = entry?;
        let record = TaskRecord::decode_stored(&key, &bytes).map_err(crate::store::engine::EngineError)?;
        let compact = record.encode_stored();
        if compact != bytes {
            batch.put(key, compact);
        }
        if batch.len() == CHUNK {
            rewritten += CHUNK as u64;
            engine.apply(std::mem::take(&mut batch))?;
            tracing::info!(rewritten, "compacting task records");
        }
    }
    Ok(batch)
}
