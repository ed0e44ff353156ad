//! `taskledger archive` on a log on a real etcd (`--features etcd`): the oldest seqs go to a
//! checked export file and out of etcd (keys deleted, history compacted), twice in a row; the
//! server that was running and a follower of it keep working through it; a server given the
//! files folds and reads the whole log as before; one without them says which file holds what
//! it cannot read; a file that is not an archive of the log is refused; sled refuses to archive.

use std::path::Path;
use std::process::{Command, Output};

use taskledger::store::{Store, StoreOptions};

use crate::backend::Backend;
use crate::support::{options, varied_workload, Fixture};

fn taskledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("taskledger runs")
}

/// `taskledger archive` on the fixture's log, with its own scratch data directory.
fn archive(backend: &Backend, before: u64, out: &Path) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "archive".into(),
        "--data-dir".into(),
        scratch.path().display().to_string(),
    ];
    args.extend(backend.serve_args());
    args.extend([
        "--before".into(),
        before.to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    taskledger(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn with_archives(f: &Fixture, archives: &[&Path]) -> StoreOptions {
    StoreOptions {
        archives: archives.iter().map(|p| p.to_path_buf()).collect(),
        ..options(&f.clock)
    }
}

fn etcd_of(backend: &Backend) -> (String, String) {
    match backend {
        Backend::Etcd { endpoint, prefix } => (endpoint.clone(), prefix.clone()),
        Backend::Sled => unreachable!("these tests run on etcd"),
    }
}

/// The first log key's seq under the prefix, and whether etcd still serves revision 2.
fn etcd_state(backend: &Backend) -> (u64, bool) {
    let (endpoint, prefix) = etcd_of(backend);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None).await.unwrap();
        let key = format!("{prefix}/log/");
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_limit(1)
            .with_keys_only();
        let first = client.get(key.clone(), Some(options)).await.unwrap();
        let first = String::from_utf8_lossy(first.kvs()[0].key())
            .trim_start_matches(&key)
            .parse()
            .unwrap();
        let old = client
            .get(key, Some(etcd_client::GetOptions::new().with_revision(2)))
            .await;
        (first, old.is_ok())
    })
}

/// Tasks run and started, one command at a time (a log value per command).
fn busy(f: &Fixture, rounds: usize) {
    for _ in 0..rounds {
        for task in f.run_fargate("prod", "web", 2).tasks {
            let arn = task.task_arn.unwrap();
            f.report("prod", &arn, "PENDING").unwrap();
            f.report("prod", &arn, "RUNNING").unwrap();
        }
    }
}

fn task_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

#[test]
fn archived_seqs_leave_etcd_and_are_read_from_their_files_by_servers_given_them() {
    let f = crate::support::fixture_on(Backend::etcd());
    varied_workload(&f);
    f.fargate_definition("web");
    let early = f.run_fargate("prod", "web", 1).tasks[0].task_arn.clone().unwrap();
    f.report("prod", &early, "PENDING").unwrap();
    busy(&f, 10);
    let middle = f.store.head_seq();
    busy(&f, 10);
    let head = f.store.head_seq();
    let whole_log = f.store.read_log(1, usize::MAX).unwrap();
    let history = f.store.task_history(&task_id(&early), None, 1000).unwrap();
    assert!(history.len() >= 2 && history[0].seq < middle, "{history:?}");
    // A second server following the first one, from before the archive to after it.
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = f.backend.open(follower_dir.path(), options(&f.clock)).unwrap();

    let files = tempfile::tempdir().unwrap();
    let first_file = files.path().join("first.tlx");
    let output = archive(&f.backend, middle, &first_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let archived = f.store.archived().unwrap();
    assert_eq!(archived.len(), 1, "{archived:?}");
    let (first, last) = (archived[0].first, archived[0].last);
    assert!(
        first == 1 && last < middle && last > middle / 2,
        "{archived:?} for --before {middle}"
    );
    assert!(stdout.contains(&format!("archived seqs 1..={last}")), "{stdout}");
    assert!(first_file.exists() && !files.path().join("first.tlx.partial").exists());
    let (low, old_revisions) = etcd_state(&f.backend);
    assert_eq!(low, last + 1, "etcd still holds log keys below the archive");
    assert!(!old_revisions, "etcd was not compacted");
    let check = taskledger(&["export", "--verify", &first_file.display().to_string()]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    // The running server: archived seqs name their file; everything after reads and writes on.
    let refused = f.store.read_log(1, 10).unwrap_err().to_string();
    assert!(
        refused.contains("first.tlx") && refused.contains("--archive"),
        "{refused}"
    );
    let refused = f
        .store
        .task_history(&task_id(&early), None, 1000)
        .unwrap_err()
        .to_string();
    assert!(refused.contains(&format!("seqs 1..={last}")), "{refused}");
    assert_eq!(
        f.store.read_log(last + 1, usize::MAX).unwrap(),
        whole_log[last as usize..]
    );
    f.report("prod", &early, "RUNNING").unwrap();
    let head = head.max(f.store.head_seq());
    let reached = follower.wait_for_head(head - 1, std::time::Duration::from_secs(30));
    assert_eq!(reached, head, "the follower stopped following through the archive");
    assert_eq!(follower.view_entries().unwrap(), f.store.view_entries().unwrap());
    drop(follower);

    // Archived again, up to near the head; the value holding the head always stays.
    let second_file = files.path().join("second.tlx");
    let output = archive(&f.backend, u64::MAX, &second_file);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let archived = f.store.archived().unwrap();
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert_eq!(archived[1].first, last + 1);
    assert!(archived[1].last < head);
    assert_eq!(etcd_state(&f.backend).0, archived[1].last + 1);

    // A new server with nothing on its disk: without the files it cannot fold the log and says
    // which file to give it; with them it folds and reads exactly what the first one holds.
    let fresh = tempfile::tempdir().unwrap();
    let refused = f
        .backend
        .open(fresh.path(), options(&f.clock))
        .err()
        .expect("a server cannot fold archived seqs it has no file for")
        .to_string();
    assert!(
        refused.contains("first.tlx") && refused.contains("--archive"),
        "{refused}"
    );
    let only_second = f
        .backend
        .open(&fresh.path().join("b"), with_archives(&f, &[&second_file]))
        .err()
        .expect("the first file is missing")
        .to_string();
    assert!(only_second.contains("first.tlx"), "{only_second}");
    let whole_log = [whole_log, f.store.read_log(head, usize::MAX).unwrap()].concat();
    let store = f
        .backend
        .open(&fresh.path().join("c"), with_archives(&f, &[&second_file, &first_file]))
        .unwrap();
    assert_eq!(store.view_entries().unwrap(), f.store.view_entries().unwrap());
    assert_eq!(store.read_log(1, usize::MAX).unwrap(), whole_log);
    let again = store.task_history(&task_id(&early), None, 1000).unwrap();
    assert_eq!(again[..history.len()], history[..]);
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
    f.report("prod", &early, "STOPPED").unwrap();
    caught_up(&store, f.store.head_seq());
    drop(store);

    // A file that is not an archive of this log is refused, naming what the log did archive.
    let other = crate::support::fixture_on(Backend::etcd());
    varied_workload(&other);
    let stranger = files.path().join("stranger.tlx");
    drop(other.store);
    let export = {
        let mut args = vec![
            "export".to_string(),
            "--data-dir".into(),
            other.dir.path().display().to_string(),
        ];
        args.extend(other.backend.serve_args());
        args.extend([
            "--out".into(),
            stranger.display().to_string(),
            "--to".into(),
            last.to_string(),
        ]);
        taskledger(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let refused = f
        .backend
        .open(
            &fresh.path().join("d"),
            with_archives(&f, &[&first_file, &second_file, &stranger]),
        )
        .err()
        .expect("a stranger's file is refused")
        .to_string();
    assert!(refused.contains("not an archive of this log"), "{refused}");
}

fn caught_up(store: &Store, head: u64) {
    let reached = store.wait_for_head(head - 1, std::time::Duration::from_secs(30));
    assert!(
        reached >= head,
        "the server follows the log only to {reached}, not {head}"
    );
}

#[test]
fn archive_refuses_a_log_on_sled_and_writes_nothing() {
    let f = crate::support::fixture_on(Backend::Sled);
    varied_workload(&f);
    let dir = f.dir.path().display().to_string();
    drop(f.store);
    let out = f.dir.path().join("nothing.tlx");
    let output = taskledger(&[
        "archive",
        "--data-dir",
        &dir,
        "--before",
        "5",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keeps its whole log"), "{stderr}");
    assert!(!out.exists() && !f.dir.path().join("nothing.tlx.partial").exists());
}
