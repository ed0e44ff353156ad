//! `smoke`: every scenario at tiny sizes, for CI. Fails only when a scenario produced no results
//! (skips against `--endpoint` excepted) or a request failed; never judges a timing. `follow`
//! needs two servers on one etcd and is run by `tests/it/etcd.rs` instead.

use anyhow::bail;
use serde_json::Value;

use crate::session::Session;
use crate::{Bounds, ColdStart, Describe, Footprint, List, Rebuild, RunTasks, Scenario, Transitions};

pub(crate) async fn smoke(session: &Session) -> anyhow::Result<()> {
    let bounds = Bounds {
        duration_secs: 1.0,
        max_requests: 300,
    };
    let scenarios = [
        Scenario::Transitions(Transitions {
            in_flight: vec![1, 16],
            bounds: bounds.clone(),
        }),
        Scenario::RunTask(RunTasks {
            in_flight: vec![4],
            bounds: Bounds {
                max_requests: 30,
                ..bounds.clone()
            },
        }),
        Scenario::Describe(Describe {
            tasks: 300,
            in_flight: vec![1, 4],
            bounds: bounds.clone(),
        }),
        Scenario::List(List {
            tasks: 300,
            duration_secs: 2.0,
        }),
        Scenario::Rebuild(Rebuild { events: 500, repeat: 1 }),
        Scenario::ColdStart(ColdStart {
            events: 500,
            tasks: None,
            repeat: 1,
            server_binary: None,
            keep_page_cache: true,
        }),
        Scenario::Footprint(Footprint {
            tasks: 300,
            server_binary: None,
            in_process: false,
            server_pid: None,
        }),
    ];
    let (mut ran, mut skipped) = (0, 0);
    for scenario in scenarios {
        let value = session.run(scenario).await?;
        let name = value["scenario"].as_str().unwrap_or("?").to_string();
        match value["results"].as_array() {
            Some(results) if !results.is_empty() => ran += 1,
            // Only rebuild and cold-start skip, and only against --endpoint.
            _ if session.endpoint.is_some() => skipped += 1,
            _ => bail!("smoke: {name} produced no results"),
        }
        if let Some(errors) = first_errors(&value) {
            bail!("smoke: {name} had failed requests: {errors}");
        }
    }
    session.line(format_args!(
        "\nsmoke: {ran} scenarios ran and produced numbers, {skipped} skipped (timings are not judged)"
    ));
    Ok(())
}

/// The first result of a scenario report with errors, if any.
fn first_errors(value: &Value) -> Option<String> {
    value["results"]
        .as_array()?
        .iter()
        .find(|r| r["errors"].as_u64().is_some_and(|e| e > 0))
        .map(|r| format!("{} errors, first: {}", r["errors"], r["first_error"]))
}
