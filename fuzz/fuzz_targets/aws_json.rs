//! cargo-fuzz target `aws_json`: see `taskledger_fuzz::aws_json` for the promise it checks.
//! Does not reset the shared store between inputs (accepted requests accumulate, as in a server).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    taskledger_fuzz::aws_json(taskledger_fuzz::world(), data);
});
