//! Schema version 3: a log value may hold a chunk of consecutive framed records stored under the
//! first one's seq (src/store/codec.rs, `LOG_CHUNK`), so that a group commit writes one value per
//! few KiB of records instead of one per record. The records themselves keep format 1, and values
//! holding one bare frame stay as they are: nothing is rewritten. The step exists so that a
//! binary that cannot read chunks refuses the store as newer instead of meeting a chunk.

use super::Step;
use crate::store::engine::{Engine, EngineResult, WriteBatch};

pub const STEP: Step = Step {
    to: 3,
    describe: "log values may hold chunks of records",
    apply,
};

fn apply(_engine: &dyn Engine) -> EngineResult<WriteBatch> {
    Ok(WriteBatch::default())
}
