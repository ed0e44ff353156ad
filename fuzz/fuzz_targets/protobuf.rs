//! cargo-fuzz target `protobuf`: see `taskledger_fuzz::protobuf` for the promise it checks.
//! Does not reset the shared store between inputs (accepted requests accumulate, as in a server).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    taskledger_fuzz::protobuf(taskledger_fuzz::world(), data);
});
