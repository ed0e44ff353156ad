//! The `taskledger` binary: everything is in `taskledger::cli`.
//! Does not parse arguments or hold logic itself.

/// mimalloc rather than glibc's malloc: the writer allocates and frees records all day, and glibc's
/// per-thread arenas hold on to memory (see BENCHMARKS.md for what it changed). A library user
/// picks their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    taskledger::cli::main()
}
