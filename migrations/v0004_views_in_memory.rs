//! Schema version 4: the log is the only thing on the commit path. Views live in memory, folded
//! from the log when the store opens (src/store/memory.rs), so the view records and index entries
//! the first layout kept in sled (every prefix of `keys::VIEW_PREFIXES`) are derived data nobody
//! reads: they are removed, in chunks of their own (a store may hold millions), which is safe to
//! run again after a crash. The log and its head stay as they are.

use super::Step;
use crate::store::engine::{Engine, EngineResult, WriteBatch};
use crate::store::keys;

pub const STEP: Step = Step {
    to: 4,
    describe: "views move to memory: drop the stored view records and indexes",
    apply,
};

const CHUNK: usize = 10_000;

fn apply(engine: &dyn Engine) -> EngineResult<WriteBatch> {
    let mut batch = WriteBatch::default();
    let mut removed = 0u64;
    for prefix in keys::VIEW_PREFIXES {
        for entry in engine.range(&[prefix], &keys::prefix_end(&[prefix])) {
            let (key, _) = entry?;
            batch.delete(key);
            if batch.len() == CHUNK {
                removed += CHUNK as u64;
                engine.apply(std::mem::take(&mut batch))?;
                tracing::info!(removed, "dropping the stored views");
            }
        }
    }
    Ok(batch)
}
