//! The `taskledger` command line: `serve`; the offline commands `verify`, `rebuild`, `export`,
//! `import` and `archive`; `tail`, which follows a running server's log; and client commands
//! that talk gRPC to a running server and print ECS JSON. Flags fall back to `TASKLEDGER_*` environment variables.
//! Does not hold server or store logic (see `api`, `store`).

mod admin;
mod audit;
mod auth;
mod client;
mod connect;
mod engine;
mod progress;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use telemetry::LogFormat;

/// An event-sourced task-state store that mirrors the Amazon ECS task APIs.
#[derive(Debug, Parser)]
#[command(name = "taskledger", version, about, propagate_version = true)]
pub struct Cli {
    /// How log lines are written to stderr: `text` for people, `json` (one object per line,
    /// with the fields of the request's span: operation, request id…) for log pipelines.
    #[arg(
        long,
        global = true,
        env = "TASKLEDGER_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Export traces (every request's span and what it runs, at info level) to this OTLP/gRPC
    /// collector, e.g. http://127.0.0.1:4317. A caller's W3C `traceparent` becomes the parent.
    #[arg(long, global = true, env = "TASKLEDGER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// The share of requests traced when they come without a sampled `traceparent`, 0 to 1
    /// (those with one follow their caller's decision). Every span exported costs the server.
    #[arg(long, global = true, env = "TASKLEDGER_OTLP_SAMPLE_RATIO", default_value_t = 1.0)]
    otlp_sample_ratio: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the store over gRPC (taskledger.v1.Ecs and Ledger, health, reflection).
    Serve(serve::ServeArgs),
    /// Rebuild every view from the log and compare (offline: stop the server first).
    Verify(admin::DataDirArgs),
    /// Rewrite every view from the log (offline: stop the server first).
    Rebuild(admin::DataDirArgs),
    /// Show, and with --apply cut off, a damaged end of the log that stops the store from opening.
    Repair(admin::RepairArgs),
    /// Write the log (all or a seq range) to a file, or check a file with --verify (offline).
    Export(audit::ExportArgs),
    /// Move the oldest part of a log on etcd into an archive file and out of etcd's quota.
    Archive(audit::ArchiveArgs),
    /// Load an export into a new, empty data directory, keeping every seq (offline).
    Import(audit::ImportArgs),
    /// Print a running server's log as it is committed, one JSON object per line.
    Tail(audit::TailArgs),
    /// Callers of `serve --auth-file`: `auth token` makes a bearer token and its file entry.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Clusters: create, describe, list, delete.
    Clusters(client::Client<client::ClustersCommand>),
    /// Task definitions: register (from ECS JSON), describe, list, deregister.
    TaskDefinitions(client::Client<client::TaskDefinitionsCommand>),
    /// Tasks: run, describe, stop, list.
    Tasks(client::Client<client::TasksCommand>),
    /// Container instances: register, list, describe, deregister.
    Instances(client::Client<client::InstancesCommand>),
}

/// Parses the command line, runs the command, and turns the outcome into an exit code. Errors are
/// printed to stderr as `error: …` (for ECS errors: `error: <ExceptionName>: <message>`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_)
        | Command::Verify(_)
        | Command::Rebuild(_)
        | Command::Repair(_)
        | Command::Export(_)
        | Command::Import(_)
        | Command::Archive(_) => "info",
        Command::Tail(_)
        | Command::Auth(_)
        | Command::Clusters(_)
        | Command::TaskDefinitions(_)
        | Command::Tasks(_)
        | Command::Instances(_) => "warn",
    };
    let otlp = cli.otlp_endpoint.as_deref().map(|endpoint| telemetry::Otlp {
        endpoint,
        ratio: cli.otlp_sample_ratio,
    });
    let telemetry = match telemetry::init(cli.log_format, default_level, otlp) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Verify(args) => admin::verify(args),
        Command::Rebuild(args) => admin::rebuild(args),
        Command::Repair(args) => admin::repair(args),
        Command::Export(args) => audit::export(args),
        Command::Import(args) => audit::import(args),
        Command::Archive(args) => audit::archive(args),
        Command::Tail(args) => audit::tail(args),
        Command::Auth(command) => auth::run(command),
        Command::Clusters(client) => client.run(client::Resource::Clusters),
        Command::TaskDefinitions(client) => client.run(client::Resource::TaskDefinitions),
        Command::Tasks(client) => client.run(client::Resource::Tasks),
        Command::Instances(client) => client.run(client::Resource::Instances),
    };
    drop(telemetry);
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
