//! `taskledger verify`, `rebuild` and `repair`: offline maintenance of a data directory, with
//! progress (a bar on a terminal, plain lines in logs; see `progress`).
//! Does not run while a server holds the directory (sled locks it).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::engine::{EngineArgs, EngineKind};
use super::progress::Progress;
use crate::store::{Store, StoreOptions};

#[derive(Debug, Args)]
pub struct DataDirArgs {
    /// The store's directory (on etcd: this server's derived data).
    #[arg(long, env = "TASKLEDGER_DATA_DIR", default_value = "./taskledger-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Opens an existing store; refuses to create one where the user expected data.
pub(super) fn open(args: &DataDirArgs) -> anyhow::Result<Store> {
    let dir = &args.data_dir;
    if args.engine.engine == EngineKind::Sled {
        anyhow::ensure!(
            dir.is_dir(),
            "no store at {}: the directory does not exist (see --data-dir)",
            dir.display()
        );
    }
    args.engine.open(dir, StoreOptions::default())
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    /// Remove the damaged end of the log and rewrite the views; without it, only report.
    #[arg(long)]
    pub apply: bool,
}

/// Reports the intact prefix of the log and what follows it; with `--apply`, cuts it off.
pub fn repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir.data_dir;
    anyhow::ensure!(
        args.dir.engine.engine == EngineKind::Sled,
        "repair cuts a damaged end off a sled log; a log on etcd is etcd's to keep whole (see etcdctl)"
    );
    anyhow::ensure!(
        dir.is_dir(),
        "no store at {}: the directory does not exist",
        dir.display()
    );
    let progress = Progress::start("repair", &[]);
    let report = Store::repair(dir, &progress.callback(), !args.apply);
    progress.finish();
    let report = report.with_context(|| format!("cannot repair the store at {}", dir.display()))?;
    if report.was_healthy() {
        println!(
            "healthy: the log is intact to seq {} and the views match it; nothing to repair",
            report.head
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "the log is intact from seq 1 to seq {} (meta said {})",
        report.head, report.previous_head
    );
    if let Some(problem) = &report.problem {
        println!("then: {problem}");
    }
    let verb = if args.apply { "removed" } else { "would remove" };
    println!("{verb} {} log entries after it", report.removed.len());
    for key in report.removed.iter().take(10) {
        println!("  {key}");
    }
    if !args.apply && !report.removed.is_empty() {
        println!(
            "a crash or failed write tears only its own unanswered group; damage anywhere else (a bad disk) \
             means some of these were acknowledged: copy the directory before --apply"
        );
    }
    println!(
        "views {}: {} entries written, {} removed",
        if args.apply { "rewritten" } else { "to rewrite" },
        report.views.entries_written,
        report.views.entries_removed
    );
    if args.apply {
        println!("repaired: the store opens at seq {}", report.head);
    } else {
        println!("nothing changed; run again with --apply to repair");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(args: DataDirArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args)?;
    let progress = Progress::start("verify", &[]);
    let report = store.verify(progress.callback());
    progress.finish();
    let report = report.context("verify failed")?;
    for check in &report.checkpoints {
        match &check.problem {
            None => println!(
                "checkpoint at seq {}: sound; it and the log after it equal the fold",
                check.seq
            ),
            Some(problem) => println!("checkpoint at seq {}: {problem}", check.seq),
        }
    }
    if report.is_clean() {
        println!(
            "clean: {} events, {} view entries match the log ({})",
            report.events,
            report.entries_checked,
            args.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "NOT clean: {} of {} view entries differ from what the {} events imply; first differences:",
        report.differences, report.entries_checked, report.events
    );
    for difference in &report.first_differences {
        println!("  {:<10} {}", difference.kind, difference.key);
    }
    println!(
        "`taskledger rebuild --data-dir {}` rewrites the views from the log.",
        args.data_dir.display()
    );
    Ok(ExitCode::FAILURE)
}

pub fn rebuild(args: DataDirArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args)?;
    let progress = Progress::start("rebuild", &[]);
    let report = store.rebuild(progress.callback());
    progress.finish();
    let report = report.context("rebuild failed")?;
    println!(
        "rebuilt from {} events: {} view entries written, {} removed ({})",
        report.events,
        report.entries_written,
        report.entries_removed,
        args.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
