//! The migration runner: reads `meta/schema_version`, refuses stores newer than this binary, and
//! applies the steps of `migrations/` in order to older ones, each step crash-safe (its writes
//! and the new stamp in one batch, then a sync).
//! Does not define the steps (see `migrations/`).

use std::path::Path;

use super::engine::Engine;
use super::error::{StoreError, StoreResult};
use super::keys::META_SCHEMA_VERSION;

#[path = "../../migrations/mod.rs"]
mod steps;

/// The schema version this binary reads and writes.
pub fn current_version() -> u32 {
    steps::STEPS.last().map(|s| s.to).unwrap_or(0)
}

/// The stamped schema version (0 for a store that has none yet).
pub fn stored_version(engine: &dyn Engine) -> StoreResult<u32> {
    match engine
        .get(META_SCHEMA_VERSION)
        .map_err(|e| StoreError::storage("reading the schema version", e))?
    {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 4] = bytes
                .try_into()
                .map_err(|_| StoreError::Corrupt("meta/schema_version is not a 4-byte number".into()))?;
            Ok(u32::from_be_bytes(bytes))
        }
    }
}

/// Brings the store at `path` to the current schema version, or refuses it.
pub fn prepare(engine: &dyn Engine, path: &Path) -> StoreResult<()> {
    let supported = current_version();
    let mut version = stored_version(engine)?;
    if version > supported {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
            supported,
        });
    }
    let start = version;
    for step in steps::STEPS.iter().filter(|s| s.to > start) {
        if step.to != version + 1 {
            return Err(StoreError::Corrupt(format!(
                "no migration from schema version {version} to {}",
                step.to
            )));
        }
        tracing::info!(
            from = version,
            to = step.to,
            step = step.describe,
            "migrating the store"
        );
        let mut batch = (step.apply)(engine).map_err(|e| StoreError::storage("migrating the store", e))?;
        batch.put(META_SCHEMA_VERSION.to_vec(), step.to.to_be_bytes().to_vec());
        engine
            .apply(batch)
            .map_err(|e| StoreError::storage("migrating the store", e))?;
        engine
            .sync()
            .map_err(|e| StoreError::storage("migrating the store", e))?;
        version = step.to;
    }
    Ok(())
}
