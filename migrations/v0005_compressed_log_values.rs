//! Schema version 5: a log value may be compressed whole with zstd behind a `LOG_PACKED` byte
//! (src/store/codec.rs), a 16 KiB chunk of records taking 2–3 KiB. The records inside keep format
//! 1 and their CRCs, and values already written stay as they are: nothing is rewritten. The step
//! exists so that a binary that cannot decompress values refuses the store as newer instead of
//! meeting one.

use super::Step;
use crate::store::engine::{Engine, EngineResult, WriteBatch};

pub const STEP: Step = Step {
    to: 5,
    describe: "log values may be compressed",
    apply,
};

fn apply(_engine: &dyn Engine) -> EngineResult<WriteBatch> {
    Ok(WriteBatch::default())
}
