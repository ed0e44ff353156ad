//! Replay of the whole log: `fold` reads every record in seq order (checking density, CRCs and
//! that each event applies), `verify` compares the views it yields with the stored ones and
//! reports the first differences, and `rebuild` rewrites the stored views from it.
//! Does not run concurrently with writes: the store runs these on its writer thread.

use std::collections::BTreeMap;

use super::codec::unframe_log_record;
use super::engine::{Engine, WriteBatch};
use super::error::{StoreError, StoreResult};
use super::keys;
use super::views;
use crate::domain::{evolve, MemoryState};

/// How far a long replay has got: records done out of the total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// The state the whole log folds into.
pub struct Folded {
    pub state: MemoryState,
    pub head: u64,
}

/// Folds the log from seq 1 into memory. Stops at the first gap, damaged record or event that
/// does not apply, naming its seq.
pub fn fold(engine: &dyn Engine, progress: Progress) -> StoreResult<Folded> {
    let total = head_of(engine)?;
    let mut state = MemoryState::default();
    let mut expected = 1u64;
    let start = keys::log(1);
    let end = keys::prefix_end(&[keys::LOG]);
    for entry in engine.range(&start, &end) {
        let (key, bytes) = entry.map_err(|e| StoreError::storage("reading the log", e))?;
        let seq = key
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt(format!("damaged log key {}", keys::describe(&key))))?;
        if seq != expected {
            return Err(StoreError::Corrupt(format!(
                "the log jumps from seq {} to seq {seq}",
                expected - 1
            )));
        }
        let record = unframe_log_record(seq, &bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event = record.event.as_ref().expect("unframe checks the event");
        let time = record.time.unwrap_or_default();
        evolve(&mut state, seq, &time, event).map_err(|e| StoreError::Corrupt(format!("seq {seq}: {e}")))?;
        if seq % 65_536 == 0 {
            progress(seq, total);
        }
        expected += 1;
    }
    let head = expected - 1;
    progress(head, total);
    Ok(Folded { state, head })
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

/// Every derived entry the folded log implies: views, indexes and the head.
fn expected_entries(folded: &Folded) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut expected = views::all(&folded.state);
    if folded.head > 0 {
        // The head is first written with the first group commit.
        expected.insert(keys::META_HEAD_SEQ.to_vec(), folded.head.to_be_bytes().to_vec());
    }
    expected
}

/// Every derived entry actually stored.
pub fn stored_entries(engine: &dyn Engine) -> StoreResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut stored = BTreeMap::new();
    for prefix in keys::VIEW_PREFIXES {
        for entry in engine.range(&[prefix], &keys::prefix_end(&[prefix])) {
            let (k, v) = entry.map_err(|e| StoreError::storage("reading the views", e))?;
            stored.insert(k, v);
        }
    }
    if let Some(head) = engine
        .get(keys::META_HEAD_SEQ)
        .map_err(|e| StoreError::storage("reading the head", e))?
    {
        stored.insert(keys::META_HEAD_SEQ.to_vec(), head);
    }
    Ok(stored)
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
    /// How many entries differ in all.
    pub differences: u64,
    /// The first differences, in key order.
    pub first_differences: Vec<Difference>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences == 0
    }
}

/// Rebuilds every view from the log in memory and compares it with the stored views.
pub fn verify(engine: &dyn Engine, progress: Progress) -> StoreResult<VerifyReport> {
    let folded = fold(engine, progress)?;
    let expected = expected_entries(&folded);
    let stored = stored_entries(engine)?;
    let mut report = VerifyReport {
        events: folded.head,
        entries_checked: expected.len().max(stored.len()) as u64,
        differences: 0,
        first_differences: Vec::new(),
    };
    let mut note = |key: &[u8], kind: &'static str| {
        report.differences += 1;
        if report.first_differences.len() < 20 {
            report.first_differences.push(Difference {
                key: keys::describe(key),
                kind,
            });
        }
    };
    for (key, value) in &expected {
        match stored.get(key) {
            None => note(key, "missing"),
            Some(v) if v != value => note(key, "different"),
            Some(_) => {}
        }
    }
    for key in stored.keys().filter(|k| !expected.contains_key(*k)) {
        note(key, "unexpected");
    }
    report.first_differences.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

/// What `rebuild` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    pub entries_written: u64,
    pub entries_removed: u64,
}

/// Rewrites the stored views so they are exactly what the log implies, then syncs.
pub fn rebuild(engine: &dyn Engine, progress: Progress) -> StoreResult<RebuildReport> {
    let folded = fold(engine, progress)?;
    let expected = expected_entries(&folded);
    let stored = stored_entries(engine)?;
    let mut report = RebuildReport {
        events: folded.head,
        entries_written: 0,
        entries_removed: 0,
    };
    let mut batch = WriteBatch::default();
    for key in stored.keys().filter(|k| !expected.contains_key(*k)) {
        batch.delete(key.clone());
        report.entries_removed += 1;
    }
    for (key, value) in expected {
        if stored.get(&key) != Some(&value) {
            batch.put(key, value);
            report.entries_written += 1;
        }
    }
    // One batch: a crash leaves either the old views or the rebuilt ones.
    engine
        .apply(batch)
        .map_err(|e| StoreError::storage("writing rebuilt views", e))?;
    engine
        .sync()
        .map_err(|e| StoreError::storage("making rebuilt views durable", e))?;
    Ok(report)
}
