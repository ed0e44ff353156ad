//! The session every scenario runs in: where to send load (`--endpoint`, else an in-process
//! server), how to print (`--json`), and each scenario's report: its header lines, one line and one
//! JSON value per result, and the closing JSON object on stdout.
//! Does not measure anything (see `measure`) nor choose a server (see `target`).

use std::fmt::Display;

use anyhow::bail;
use serde_json::{json, Value};

use crate::cold_start::cold_start;
use crate::describe::describe;
use crate::fill::fill;
use crate::follow::follow;
use crate::footprint::footprint;
use crate::list::list;
use crate::machine::{loadavg, machine};
use crate::rebuild::rebuild;
use crate::run_task::run_task;
use crate::target::Target;
use crate::transitions::transitions;
use crate::Scenario;

/// What every scenario shares: where to send load and how to print.
pub(crate) struct Session {
    pub(crate) endpoint: Option<String>,
    pub(crate) json: bool,
}

impl Session {
    pub(crate) async fn run(&self, scenario: Scenario) -> anyhow::Result<Value> {
        match scenario {
            Scenario::Transitions(args) => transitions(self, args).await,
            Scenario::RunTask(args) => run_task(self, args).await,
            Scenario::Describe(args) => describe(self, args).await,
            Scenario::List(args) => list(self, args).await,
            Scenario::Rebuild(args) => rebuild(self, args).await,
            Scenario::ColdStart(args) => cold_start(self, args).await,
            Scenario::Footprint(args) => footprint(self, args).await,
            Scenario::Fill(args) => fill(self, args).await,
            Scenario::Follow(args) => follow(self, args).await,
            Scenario::Smoke => bail!("smoke does not nest"),
        }
    }

    pub(crate) fn line(&self, text: impl Display) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    /// The command that reproduces a scenario.
    fn command(&self, arguments: String) -> String {
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| format!(" --endpoint {e}"))
            .unwrap_or_default();
        format!("cargo run --release --bin taskledger-load --{endpoint} {arguments}")
    }

    /// Prints a scenario's header and starts collecting its results.
    pub(crate) fn report(
        &self,
        scenario: &str,
        title: &str,
        arguments: String,
        parameters: Value,
        target: &Target,
    ) -> Report<'_> {
        let command = self.command(arguments);
        let machine = machine();
        self.line(format_args!("\n== {scenario}: {title}"));
        self.line(format_args!("command:    {command}"));
        self.line(format_args!("parameters: {parameters}"));
        self.line(format_args!("target:     {}", target.describe()));
        self.line(format_args!("machine:    {machine}"));
        Report {
            session: self,
            value: json!({"scenario": scenario, "command": command, "parameters": parameters,
                "target": target.describe(), "machine": machine}),
            results: Vec::new(),
        }
    }
}

pub(crate) struct Report<'a> {
    session: &'a Session,
    value: Value,
    results: Vec<Value>,
}

impl Report<'_> {
    pub(crate) fn note(&self, text: impl Display) {
        self.session.line(text);
    }

    pub(crate) fn result(&mut self, line: impl Display, value: Value) {
        self.session.line(line);
        self.results.push(value);
    }

    pub(crate) fn finish(mut self) -> Value {
        self.value["results"] = Value::Array(self.results);
        self.value["loadavg_after"] = json!(loadavg());
        if self.session.json {
            println!("{}", self.value);
        }
        self.value
    }
}
