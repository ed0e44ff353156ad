//! cargo-fuzz target `export_file`: see `taskledger_fuzz::export_file` for the promise it checks.
//! Does not keep state between inputs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    taskledger_fuzz::export_file(data);
});
