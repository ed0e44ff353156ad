//! The `taskledger` binary: everything is in `taskledger::cli`.
//! Does not parse arguments or hold logic itself.

fn main() -> std::process::ExitCode {
    taskledger::cli::main()
}
