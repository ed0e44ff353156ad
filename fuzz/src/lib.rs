//! The fuzz targets of taskledger for cargo-fuzz; their bodies are in `targets.rs`, which the
//! main crate's `cargo test` also runs through a randomized fallback harness.
//! Does not run anything by itself: see `fuzz_targets/` and `src/bin/seeds.rs`.

mod targets;

pub use targets::*;

/// The world the request targets share within one fuzzing process.
pub fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(World::new)
}
