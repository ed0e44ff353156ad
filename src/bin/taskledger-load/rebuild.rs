//! Scenario 5a, `rebuild`: `Store::rebuild` of every view from the log of a filled store
//! (in-process only; skipped with `--endpoint`).

use std::time::Instant;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::measure::rate;
use crate::session::Session;
use crate::target::Target;
use crate::workload::{load, Goal, Workload};
use crate::Rebuild;

pub(crate) async fn rebuild(session: &Session, args: Rebuild) -> anyhow::Result<Value> {
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    let target = Target::start(session.endpoint.as_deref()).await?;
    let arguments = format!("rebuild --events {} --repeat {}", args.events, args.repeat);
    let parameters =
        json!({"events": args.events, "repeat": args.repeat, "fill": Goal::Events(args.events).describe()});
    let mut report = session.report(
        "rebuild",
        "Store::rebuild of every view from the log",
        arguments,
        parameters,
        &target,
    );
    let Some(store) = target.store().cloned() else {
        report.note("skipped: rebuild needs the in-process store (run without --endpoint)");
        return Ok(report.finish());
    };
    let workload = Workload::create(&target, "rebuild").await?;
    let loaded = load(&target, &workload, Goal::Events(args.events)).await?;
    report.note(loaded.line());
    for repetition in 1..=args.repeat {
        let store = store.clone();
        let started = Instant::now();
        let rebuilt = tokio::task::spawn_blocking(move || store.rebuild(|_, _| {}))
            .await
            .context("the rebuild thread panicked")?
            .context("Store::rebuild failed")?;
        let seconds = started.elapsed().as_secs_f64();
        ensure!(rebuilt.events > 0, "the rebuild replayed no events");
        report.result(
            format!(
                "rebuild {repetition}: {} events in {seconds:.3} s = {:.0} events/s ({} entries written, {} removed)",
                rebuilt.events,
                rate(rebuilt.events, seconds),
                rebuilt.entries_written,
                rebuilt.entries_removed
            ),
            json!({"repetition": repetition, "events": rebuilt.events, "seconds": seconds,
                "events_per_sec": rate(rebuilt.events, seconds), "entries_written": rebuilt.entries_written,
                "entries_removed": rebuilt.entries_removed}),
        );
    }
    target.close().await?;
    Ok(report.finish())
}
