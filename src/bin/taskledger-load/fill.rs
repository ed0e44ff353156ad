//! `fill`: fills a store in a new directory and keeps it, to time `taskledger rebuild`, `verify`
//! or `serve` on it by hand (under a profiler, say). In-process only.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::session::Session;
use crate::target::{Scratch, Target};
use crate::workload::{load, Goal, Workload};
use crate::Fill;

pub(crate) async fn fill(session: &Session, args: Fill) -> anyhow::Result<Value> {
    ensure!(
        session.endpoint.is_none(),
        "fill writes a store of its own (run without --endpoint)"
    );
    ensure!(
        !args.dir.exists(),
        "{} exists already: fill only creates a new store",
        args.dir.display()
    );
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let target = Target::in_process_in(Scratch::kept(args.dir.clone())).await?;
    let (goal, size) = Goal::of(args.events, args.tasks);
    let arguments = format!("fill {size} --dir {}", args.dir.display());
    let parameters = json!({"events": args.events, "tasks": args.tasks, "dir": args.dir.display().to_string(),
        "fill": goal.describe()});
    let mut report = session.report("fill", "a filled store, kept on disk", arguments, parameters, &target);
    let workload = Workload::create(&target, "fill").await?;
    let loaded = load(&target, &workload, goal).await?;
    report.note(loaded.line());
    let head = loaded.head.unwrap_or_default();
    target.close().await?;
    report.result(
        format!(
            "kept {} with {head} events; cluster {:?}, e.g. task {}",
            args.dir.display(),
            workload.cluster,
            loaded.ids.first().map(String::as_str).unwrap_or("-")
        ),
        json!({"dir": args.dir.display().to_string(), "events": head, "cluster": workload.cluster,
            "tasks": loaded.ids.len()}),
    );
    Ok(report.finish())
}
