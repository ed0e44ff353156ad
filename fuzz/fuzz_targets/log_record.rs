//! cargo-fuzz target `log_record`: see `taskledger_fuzz::log_record` for the promise it checks.
//! Does not keep state between inputs.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    taskledger_fuzz::log_record(data);
});
