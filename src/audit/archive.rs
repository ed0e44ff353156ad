//! `taskledger archive`: moves the oldest part of a log out of an engine whose space is bounded
//! (etcd's quota) into an export file. The file is written beside its final name, fsynced,
//! renamed and its directory fsynced, then read back and checked record by record; only then
//! does the engine record the archive and delete those seqs, in one transaction. Servers read
//! the archived seqs from the file (`--archive`, see `store::archive`).
//! Does not decide when to archive.

use std::path::Path;

use super::export::{self, ExportError, Format, Progress};
use crate::store::archive::{ArchiveFile, Archived};
use crate::store::log::NOT_ARCHIVABLE;
use crate::store::{Log, StoreError};

/// The seqs `archive --before` moves: from the first the engine holds to the last one before
/// the log value that holds `before` (a value is never cut in two), never reaching the value
/// that holds the head, so the engine always keeps the log's last record. `None`: nothing to
/// move.
pub fn plan(log: &dyn Log, before: u64) -> Result<Option<(u64, u64)>, StoreError> {
    let low = log
        .archived()
        .map_err(|e| StoreError::storage("reading what was archived", e))?
        .last()
        .map_or(1, |a| a.last + 1);
    let head = log.head().map_err(|e| StoreError::storage("reading the head", e))?;
    let before = before.min(head);
    if before <= low {
        return Ok(None);
    }
    let value = log
        .read(before)
        .next()
        .transpose()
        .map_err(|e| StoreError::storage("reading the log", e))?
        .ok_or_else(|| StoreError::Corrupt(format!("the head is seq {head}, but the log has no seq {before}")))?;
    Ok((value.first > low).then(|| (low, value.first - 1)))
}

/// Archives the seqs `plan` names to `out` (which must not exist) and removes them from the
/// engine. `None`: nothing to archive, nothing written.
pub fn archive(log: &dyn Log, before: u64, out: &Path, progress: Progress) -> Result<Option<Archived>, ExportError> {
    if !log.archivable() {
        return Err(StoreError::storage("archiving", NOT_ARCHIVABLE).into());
    }
    let Some((first, last)) = plan(log, before)? else {
        return Ok(None);
    };
    tracing::info!(first, last, file = %out.display(), "archiving");
    export::write_new_file(out, |file| {
        export::export(log, file, Format::Binary, first, Some(last), progress)
    })?;
    // What the engine forgets must be in the file as it is on disk now.
    let file = ArchiveFile::open(out, progress)?;
    if (file.first, file.last) != (first, last) {
        return Err(ExportError::Damaged {
            at: out.display().to_string(),
            message: format!(
                "holds seqs {}..={} instead of {first}..={last}; nothing was removed from the log",
                file.first, file.last
            ),
        });
    }
    let archived = Archived {
        first,
        last,
        last_crc: file.last_crc,
        file: out.display().to_string(),
        archived_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    log.remove_archived(&archived)
        .map_err(|e| StoreError::storage("removing the archived seqs from the log", e))?;
    tracing::info!(first, last, file = %out.display(), "archived and removed from the log");
    Ok(Some(archived))
}
