//! Replay of the log: `fold` reads every record in seq order (checking density, CRCs and that
//! each event applies) into the reference `MemoryState`, `catch_up` folds the log after the
//! views' head into the in-memory views (how a store opens), `verify` compares the views with a
//! fold of the whole log and reports the first differences, `rebuild` replaces the views with a
//! fold, and `repair` cuts a damaged end off the log (a torn record, a gap, a head ahead of the
//! log). Does not run concurrently with writes: the store runs these on its writer thread.

use std::collections::BTreeMap;

use super::checkpoint;
use super::codec::{log_frames, unframe_log_record, LogChunk};
use super::engine::{Engine, WriteBatch};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::log::{KvLog, Log};
use super::memory::Views;
use super::overlay::Overlay;
use super::reader::log_value_holding;
use super::views;
use crate::domain::{evolve, MemoryState};
use crate::proto::log::LogRecord;

/// How far a long replay has got: records done out of the total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// The state the whole log folds into.
pub struct Folded {
    pub state: MemoryState,
    pub head: u64,
}

/// Folds the log from seq 1 into memory. Stops at the first gap, damaged record or event that
/// does not apply, naming its seq.
pub fn fold(log: &dyn Log, progress: Progress) -> StoreResult<Folded> {
    fold_to(log, u64::MAX, progress)
}

/// How far to fold to compare with `views`: the whole log, or on a log other servers append to,
/// the views' own head.
fn fold_limit(log: &dyn Log, views: &Views) -> u64 {
    if log.shared() {
        views.head
    } else {
        u64::MAX
    }
}

/// `fold` up to seq `until`: where views at `until` are compared with it on a log other
/// servers may be appending to.
pub fn fold_to(log: &dyn Log, until: u64, progress: Progress) -> StoreResult<Folded> {
    match fold_intact(log, progress, until)? {
        (folded, None) => Ok(folded),
        (_, Some(problem)) => Err(StoreError::Corrupt(problem)),
    }
}

/// Folds the log from seq 1 up to `until` or to the first record that is missing, damaged or
/// does not apply; returns the fold of the intact prefix and, if it stopped early, why.
/// A second thread reads and decodes the log while this one folds it.
fn fold_intact(log: &dyn Log, progress: Progress, until: u64) -> StoreResult<(Folded, Option<String>)> {
    let total = log
        .head()
        .map_err(|e| StoreError::storage("reading the head", e))?
        .min(until);
    let mut state = MemoryState::default();
    let mut head = 0u64;
    let mut problem = None;
    let mut refold = None;
    std::thread::scope(|threads| -> StoreResult<()> {
        let (records, decoded) = flume::bounded::<Vec<Decoded>>(DECODED_CHUNKS);
        // Emptied chunks go back to the decoder: fresh ones would cost new pages from the kernel.
        let (emptied, reuse) = flume::bounded::<Vec<Decoded>>(DECODED_CHUNKS + 2);
        threads.spawn(move || decode_log(log, 1, until, &records, &reuse));
        for mut chunk in decoded.iter() {
            for item in chunk.drain(..) {
                let (seq, record) = match item {
                    Decoded::Record(seq, record) => (seq, record),
                    Decoded::Problem(why) => {
                        problem = Some(why);
                        return Ok(());
                    }
                    Decoded::Failed(e) => return Err(e),
                };
                let event = record.event.as_ref().expect("unframe checks the event");
                let time = record.time.unwrap_or_default();
                if let Err(e) = evolve(&mut state, seq, &time, event) {
                    refold = Some((seq, e));
                    return Ok(());
                }
                head = seq;
                if seq % 65_536 == 0 {
                    progress(seq, total);
                }
            }
            let _ = emptied.try_send(chunk);
        }
        Ok(())
    })?;
    if let Some((seq, e)) = refold {
        // The failed event may have changed part of the state: fold again without it.
        let (folded, _) = fold_intact(log, progress, seq - 1)?;
        return Ok((folded, Some(format!("seq {seq}: {e}"))));
    }
    progress(head, total);
    Ok((Folded { state, head }, problem))
}

/// Folds the log after `views.head` into `views`, a decoded chunk at a time (each through an
/// `Overlay`, as the writer folds a group), with a second thread reading and checking the log.
/// Fails at the first record that is missing, damaged or does not apply.
pub fn catch_up(log: &dyn Log, views: &mut Views, progress: Progress) -> StoreResult<()> {
    let total = log.head().map_err(|e| StoreError::storage("reading the head", e))?;
    if views.head >= total {
        return Ok(());
    }
    let from = views.head + 1;
    std::thread::scope(|threads| -> StoreResult<()> {
        let (records, decoded) = flume::bounded::<Vec<Decoded>>(DECODED_CHUNKS);
        let (emptied, reuse) = flume::bounded::<Vec<Decoded>>(DECODED_CHUNKS + 2);
        // Up to the head read above: on a shared log other servers may be appending beyond it.
        threads.spawn(move || decode_log(log, from, total, &records, &reuse));
        for mut chunk in decoded.iter() {
            let mut last = views.head;
            let batch = {
                let mut overlay = Overlay::new(views);
                for item in chunk.drain(..) {
                    let (seq, record) = match item {
                        Decoded::Record(seq, record) => (seq, record),
                        Decoded::Problem(why) => return Err(StoreError::Corrupt(why)),
                        Decoded::Failed(e) => return Err(e),
                    };
                    let event = record.event.as_ref().expect("unframe checks the event");
                    let time = record.time.unwrap_or_default();
                    evolve(&mut overlay, seq, &time, event)
                        .map_err(|e| StoreError::Corrupt(format!("seq {seq}: {e}")))?;
                    last = seq;
                }
                overlay.into_batch().map_err(StoreError::from_read)?
            };
            views.apply(batch, last);
            progress(last, total);
            let _ = emptied.try_send(chunk);
        }
        Ok(())
    })?;
    if views.head != total {
        return Err(StoreError::Corrupt(format!(
            "the log ends at seq {}, but its head is {total}",
            views.head
        )));
    }
    Ok(())
}

/// Chunks of decoded records in flight between the decoding thread and the fold.
const DECODED_CHUNKS: usize = 8;
const RECORDS_PER_CHUNK: usize = 4096;

/// A log record read and checked by `decode_log`, or why the intact log ends there.
// Nearly every item is a record; boxing it would cost an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    Record(u64, LogRecord),
    Problem(String),
    Failed(StoreError),
}

/// Reads the log from `from` up to `until` in chunks, checking density and each frame, and stops
/// after the first problem or when the fold stops listening.
fn decode_log(
    log: &dyn Log,
    from: u64,
    until: u64,
    out: &flume::Sender<Vec<Decoded>>,
    reuse: &flume::Receiver<Vec<Decoded>>,
) {
    let mut chunk = Vec::with_capacity(RECORDS_PER_CHUNK);
    let mut expected = from;
    // Sends what is decoded so far; false once the fold stops listening or after a problem.
    let send = |item: Decoded, chunk: &mut Vec<Decoded>| {
        let last = !matches!(item, Decoded::Record(..));
        chunk.push(item);
        if last || chunk.len() == RECORDS_PER_CHUNK {
            let next = reuse
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(RECORDS_PER_CHUNK));
            if out.send(std::mem::replace(chunk, next)).is_err() || last {
                return false;
            }
        }
        true
    };
    for entry in log.read(from) {
        if expected > until {
            break;
        }
        let value = match entry {
            Ok(value) => value,
            Err(e) => {
                send(Decoded::Failed(StoreError::storage("reading the log", e)), &mut chunk);
                return;
            }
        };
        let first = value.first;
        // Only the first value read may start before `from` (a chunk holding it further in).
        let first = if first == expected || (expected == from && first < from) {
            Ok(first)
        } else {
            Err(format!("the log jumps from seq {} to seq {first}", expected - 1))
        };
        let first = match first {
            Ok(first) => first,
            Err(problem) => {
                send(Decoded::Problem(problem), &mut chunk);
                return;
            }
        };
        for frame in log_frames(first, &value.bytes).list() {
            if frame.as_ref().is_ok_and(|(seq, _)| *seq < from) {
                continue;
            }
            let item = match frame.and_then(|(seq, frame)| unframe_log_record(seq, frame).map(|r| (seq, r))) {
                Ok((seq, _)) if seq > until => break,
                Ok((seq, record)) => Decoded::Record(seq, record),
                Err(e) => Decoded::Problem(e.to_string()),
            };
            let seq = match &item {
                Decoded::Record(seq, _) => *seq,
                _ => expected,
            };
            if !send(item, &mut chunk) {
                return;
            }
            expected = seq + 1;
        }
    }
    let _ = out.send(chunk);
}

/// The head stamped in meta (0 for an empty store).
pub fn head_of(engine: &dyn Engine) -> StoreResult<u64> {
    match engine
        .get(keys::META_HEAD_SEQ)
        .map_err(|e| StoreError::storage("reading the head", e))?
    {
        None => Ok(0),
        Some(bytes) => bytes
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("meta/head_seq is not an 8-byte number".into())),
    }
}

/// How a stored entry differs from what the log implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mismatch {
    /// The log implies it; the views lack it.
    Missing,
    /// Both have it, with other contents.
    Different,
    /// Stored, not implied.
    Unexpected,
}

impl Mismatch {
    fn name(self) -> &'static str {
        match self {
            Mismatch::Missing => "missing",
            Mismatch::Different => "different",
            Mismatch::Unexpected => "unexpected",
        }
    }
}

/// Compares the entries the folded log implies (views, indexes, the head) with the views'.
/// Both sides are sorted and walked side by side. `on` gets each mismatch in key order with the
/// key and the expected value (none when unexpected). Returns how many keys were compared.
fn compare(views: &Views, folded: &Folded, mut on: impl FnMut(Mismatch, Vec<u8>, Option<Vec<u8>>)) -> StoreResult<u64> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut checked = 1;
    if views.head != folded.head {
        on(
            Mismatch::Different,
            keys::META_HEAD_SEQ.to_vec(),
            Some(folded.head.to_be_bytes().to_vec()),
        );
    }
    let (expected, stored) = std::thread::scope(|threads| {
        let stored = threads.spawn(|| views.entries());
        let expected = views::all_sorted(&folded.state);
        (
            expected,
            stored.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    let mut expected = expected.into_iter().peekable();
    let mut stored = stored.into_iter().peekable();
    loop {
        let order = match (expected.peek(), stored.peek()) {
            (None, None) => break,
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (Some((e, _)), Some((s, _))) => e.cmp(s),
        };
        checked += 1;
        match order {
            Less => {
                let (key, value) = expected.next().expect("peeked");
                on(Mismatch::Missing, key, Some(value));
            }
            Greater => on(Mismatch::Unexpected, stored.next().expect("peeked").0, None),
            Equal => {
                let (key, value) = expected.next().expect("peeked");
                if stored.next().expect("peeked").1 != value {
                    on(Mismatch::Different, key, Some(value));
                }
            }
        }
    }
    Ok(checked)
}

/// Every entry of the views (records, indexes, and the head under `Mhead_seq`), in key order.
pub fn stored_entries(views: &Views) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut stored: BTreeMap<_, _> = views.entries().into_iter().collect();
    if views.head > 0 {
        stored.insert(keys::META_HEAD_SEQ.to_vec(), views.head.to_be_bytes().to_vec());
    }
    stored
}

/// One way the stored views differ from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The key, readable.
    pub key: String,
    /// `missing` (the log implies it, the views lack it), `unexpected` (stored, not implied)
    /// or `different` (both, with other contents).
    pub kind: &'static str,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub entries_checked: u64,
    /// How many entries differ in all (in the views, and in every usable checkpoint folded up
    /// to the head).
    pub differences: u64,
    /// The first differences, in key order.
    pub first_differences: Vec<Difference>,
    /// Each checkpoint file found, newest first.
    pub checkpoints: Vec<CheckpointCheck>,
}

/// One checkpoint as `verify` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointCheck {
    pub seq: u64,
    /// `None`: sound, and it plus the log after it equals the fold of the whole log. Otherwise
    /// why it would not be used (damaged, stale) or how it differs (counted in `differences`).
    pub problem: Option<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences == 0
    }
}

/// Folds the whole log into the reference model and compares it with the views and with every
/// checkpoint in `checkpoints` (a store's directory) folded up to the same head.
pub fn verify(
    log: &dyn Log,
    views: &Views,
    checkpoints: Option<&std::path::Path>,
    progress: Progress,
) -> StoreResult<VerifyReport> {
    let folded = fold_to(log, fold_limit(log, views), progress)?;
    let mut differences = 0;
    let mut first_differences = Vec::new();
    let mut note = |what: String, mismatch: Mismatch| {
        differences += 1;
        if first_differences.len() < 20 {
            first_differences.push(Difference {
                key: what,
                kind: mismatch.name(),
            });
        }
    };
    let entries_checked = compare(views, &folded, |mismatch, key, _| note(keys::describe(&key), mismatch))?;
    let mut checks = Vec::new();
    let found = match checkpoints {
        Some(dir) => checkpoint::list(dir).map_err(|e| StoreError::storage("listing the checkpoints", e))?,
        None => Vec::new(),
    };
    for (seq, path) in found {
        let usable = checkpoint::read(&path).and_then(|(stamp, views)| {
            checkpoint::matches_log(&stamp, log, folded.head, super::migrate::current_version()).map(|()| views)
        });
        let problem = match usable {
            Err(e) => Some(e.to_string()),
            Ok(mut from_checkpoint) => {
                catch_up(log, &mut from_checkpoint, &|_, _| {})?;
                let before = differences_of(&from_checkpoint, &folded)?;
                for (mismatch, key) in &before {
                    note(format!("checkpoint {seq}: {}", keys::describe(key)), *mismatch);
                }
                (!before.is_empty()).then(|| format!("{} entries differ from the fold of the log", before.len()))
            }
        };
        checks.push(CheckpointCheck { seq, problem });
    }
    first_differences.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(VerifyReport {
        events: folded.head,
        entries_checked,
        differences,
        first_differences,
        checkpoints: checks,
    })
}

fn differences_of(views: &Views, folded: &Folded) -> StoreResult<Vec<(Mismatch, Vec<u8>)>> {
    let mut found = Vec::new();
    compare(views, folded, |mismatch, key, _| found.push((mismatch, key)))?;
    Ok(found)
}

/// What `rebuild` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub entries_written: u64,
    pub entries_removed: u64,
}

/// The views exactly as the log implies them, and how they differ from `views`.
pub fn rebuild(log: &dyn Log, views: &Views, progress: Progress) -> StoreResult<(Views, RebuildReport)> {
    let started = std::time::Instant::now();
    let folded = fold_to(log, fold_limit(log, views), progress)?;
    tracing::info!(
        events = folded.head,
        seconds = started.elapsed().as_secs_f64(),
        "rebuild: log folded"
    );
    let mut report = RebuildReport {
        events: folded.head,
        entries_written: 0,
        entries_removed: 0,
    };
    compare(views, &folded, |_, _, expected| match expected {
        Some(_) => report.entries_written += 1,
        None => report.entries_removed += 1,
    })?;
    let rebuilt = Views::from_state(&folded.state, folded.head);
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "rebuild: views replaced");
    Ok((rebuilt, report))
}

/// One batch, then a sync: a crash leaves either everything before it or everything after.
fn commit(engine: &dyn Engine, batch: WriteBatch, what: &'static str) -> StoreResult<()> {
    engine.apply(batch).map_err(|e| StoreError::storage(what, e))?;
    engine.sync().map_err(|e| StoreError::storage(what, e))
}

/// What `repair` found, and did unless it was a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The head meta had before.
    pub previous_head: u64,
    /// The last seq of the intact prefix of the log: the head after the repair.
    pub head: u64,
    /// Why the log stops being intact after `head`, if it does.
    pub problem: Option<String>,
    /// The log entries after the intact prefix (removed unless a dry run), readable.
    pub removed: Vec<String>,
    /// The events the intact prefix holds (the views are folded from it when the store opens).
    pub views: RebuildReport,
}

impl RepairReport {
    /// Whether the store needed nothing: an intact log whose views match it.
    pub fn was_healthy(&self) -> bool {
        self.problem.is_none() && self.removed.is_empty() && self.previous_head == self.head
    }
}

/// Keeps the longest intact prefix of the log (dense from seq 1, every CRC sound, every event
/// applying), removes every log entry after it and sets the head to match, in one batch. What it removes was never acknowledged if the damage came from a crash or a failed
/// write, since a write is answered only once its whole group is durable. `dry_run` only reports.
pub fn repair(engine: std::sync::Arc<dyn Engine>, progress: Progress, dry_run: bool) -> StoreResult<RepairReport> {
    let previous_head = head_of(&*engine)?;
    let (folded, problem) = {
        let log = KvLog::new(std::sync::Arc::clone(&engine), previous_head, false);
        fold_intact(&log, progress, u64::MAX)?
    };
    let engine = &*engine;
    let mut batch = WriteBatch::default();
    let mut removed = Vec::new();
    // A chunk holding the last intact record may hold damaged ones after it: keep its start.
    if let Some((first, value)) = log_value_holding(engine, folded.head.max(1))
        .map_err(|e| StoreError::storage("reading the log", e))?
        .filter(|_| folded.head > 0)
    {
        let frames = log_frames(first, &value);
        let frames = frames.list();
        if frames
            .iter()
            .any(|f| f.as_ref().map_or(true, |(seq, _)| *seq > folded.head))
        {
            let mut kept = LogChunk::default();
            for (_, frame) in frames.iter().flatten().filter(|(seq, _)| *seq <= folded.head) {
                kept.push_frame(frame);
            }
            removed.push(format!(
                "seqs {}.. of the chunk under {}",
                folded.head + 1,
                keys::describe(&keys::log(first))
            ));
            match kept.records() {
                0 => batch.delete(keys::log(first)),
                _ => batch.put(keys::log(first), kept.finish()),
            }
        }
    }
    for entry in engine.range(&keys::log(folded.head + 1), &keys::prefix_end(&[keys::LOG])) {
        let (key, _) = entry.map_err(|e| StoreError::storage("reading the log", e))?;
        removed.push(keys::describe(&key));
        batch.delete(key);
    }
    let views = RebuildReport {
        events: folded.head,
        entries_written: 0,
        entries_removed: 0,
    };
    if folded.head == 0 && previous_head > 0 {
        batch.delete(keys::META_HEAD_SEQ.to_vec());
    } else if folded.head != previous_head {
        batch.put(keys::META_HEAD_SEQ.to_vec(), folded.head.to_be_bytes().to_vec());
    }
    let report = RepairReport {
        previous_head,
        head: folded.head,
        problem,
        removed,
        views,
    };
    if !dry_run && !report.was_healthy() {
        commit(engine, batch, "writing the repaired log")?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Scope;
    use crate::domain::StateMut;
    use crate::proto::state::ClusterRecord;
    use crate::proto::v1::Cluster;

    #[test]
    fn compare_names_every_way_views_differ_from_a_fold() {
        let scope = Scope::new("us-east-1", "123456789012").unwrap();
        let mut state = MemoryState::default();
        for name in ["a", "b"] {
            let cluster = Cluster {
                cluster_name: Some(name.into()),
                status: Some("ACTIVE".into()),
                ..Default::default()
            };
            state.put_cluster(
                &scope,
                name,
                ClusterRecord {
                    cluster: Some(cluster),
                    ..Default::default()
                },
            );
        }
        let folded = Folded { state, head: 2 };
        let views = Views::from_state(&folded.state, 2);
        let mut found = Vec::new();
        compare(&views, &folded, |m, key, _| found.push((m, key))).unwrap();
        assert!(found.is_empty(), "{found:?}");

        let mut damaged = views.clone();
        let mut batch = super::super::memory::ViewBatch::default();
        batch.other.put(keys::cluster(&scope, "a"), b"garbage".to_vec());
        batch.other.delete(keys::cluster(&scope, "b"));
        batch.other.put(keys::cluster(&scope, "c"), b"stray".to_vec());
        damaged.apply(batch, 3);
        let mut found = Vec::new();
        compare(&damaged, &folded, |m, key, _| found.push((m, key))).unwrap();
        let kinds: Vec<_> = found.iter().map(|(m, _)| *m).collect();
        assert_eq!(
            kinds,
            [
                Mismatch::Different,
                Mismatch::Different,
                Mismatch::Missing,
                Mismatch::Unexpected
            ],
            "{found:?}"
        );
    }
}
