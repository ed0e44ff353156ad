//! cargo-fuzz target `export_events`: see `taskledger_fuzz::export_events` for the promise it checks.
//! Does not keep state between inputs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    taskledger_fuzz::export_events(data);
});
