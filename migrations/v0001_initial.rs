//! Schema version 1, the first layout: one sled tree `taskledger` with the log under `L` + seq
//! (log records in format 1, see proto/taskledger/log/v1/log.proto), views encoded with prost
//! (proto/taskledger/state/v1/state.proto) and the keys of src/store/keys.rs.
//! A brand-new store (version 0: no data, no stamp) needs no writes to become version 1.

use super::Step;
use crate::store::engine::{Engine, EngineError, EngineResult, WriteBatch};

pub const STEP: Step = Step {
    to: 1,
    describe: "initial layout",
    apply,
};

fn apply(engine: &dyn Engine) -> EngineResult<WriteBatch> {
    if let Some(entry) = engine.range(&[], &[0xff]).next() {
        let (key, _) = entry?;
        return Err(EngineError(format!(
            "the store holds data (key {:?}) but no schema version; it was not written by taskledger",
            String::from_utf8_lossy(&key)
        )));
    }
    Ok(WriteBatch::default())
}
