//! The commit pipeline's second stage. The writer decides a group against its working views (the
//! published views plus every group already handed over), seals it (log values, the views with
//! the group applied, the callers' answers) and hands it here. This thread appends it to the log
//! in one durable write and only then publishes those views, the new head and the answers. While
//! it waits on the disk, the writer decides the next group: one group's decisions overlap the
//! previous group's fsync.
//!
//! Groups are appended, published and answered strictly in the order they were decided, and a
//! group's answers (refusals and no-op replies included, which may have read an earlier group's
//! changes) wait for every earlier group to be durable. After a failed append to a log of its
//! own, every later group fails too and the store refuses writes until it is reopened; on a
//! shared log (etcd) the log's head decides what a later group does (see `make_durable`).
//! After a `Conflict` (another server appended to a shared log first), the group and every later
//! one go back to the writer unanswered, to be decided again once it has caught up with the log,
//! until it says `resume`.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::error::{StoreError, StoreResult};
use super::log::{AppendError, Log, LogValue};
use super::memory::Views;
use super::writer::{Executed, Pending, ReplyTo, Shared};
use super::Caller;
use crate::domain::Command;

/// A decided group, ready to be made durable.
pub(crate) struct Sealed {
    /// The head the log must be at (the previous group's last seq).
    pub expected_head: u64,
    /// The group's last seq (`expected_head` when it has no events).
    pub last: u64,
    pub values: Vec<LogValue>,
    /// The views with this group applied, published once it is durable.
    pub views: Arc<Views>,
    pub events: u64,
    /// Its events by kind, for metrics.
    pub kinds: Vec<(&'static str, u64)>,
    /// The group's commands, in order, to be decided again if the append meets a conflict.
    pub commands: Vec<(Caller, Command)>,
    pub replies: Vec<(ReplyTo, StoreResult<Executed>)>,
}

impl Sealed {
    /// The group's commands with their callers' reply channels, unanswered.
    fn into_pending(self) -> Vec<Pending> {
        self.commands
            .into_iter()
            .zip(self.replies)
            .map(|((caller, command), (reply, _))| (caller, command, reply))
            .collect()
    }
}

enum Message {
    Group(Sealed),
    /// Answered once every group handed over before it is durable (or failed) and answered.
    Barrier(flume::Sender<()>),
    /// The writer has caught up with the log: append again.
    Resume,
}

/// The thread of the second stage, and the rendezvous the writer hands groups over by.
pub(crate) struct Committer {
    to_thread: Option<flume::Sender<Message>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Committer {
    /// Starts the thread; groups that meet a conflict go back through `bounce`.
    pub fn start(
        log: Arc<dyn Log>,
        shared: Arc<Shared>,
        sync: bool,
        bounce: flume::Sender<Vec<Pending>>,
    ) -> std::io::Result<Committer> {
        // A rendezvous: the writer is at most one sealed group ahead of the disk.
        let (to_thread, messages) = flume::bounded::<Message>(0);
        let published = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("taskledger-commit".into())
            .spawn(move || {
                // Set from a conflict until the writer has caught up: groups decided before it
                // did go back too.
                let mut stale = false;
                for message in messages {
                    match message {
                        Message::Group(group) if stale => {
                            let _ = bounce.send(group.into_pending());
                        }
                        Message::Group(group) => {
                            if let Some(group) = make_durable(&*log, &published, sync, group) {
                                stale = true;
                                let _ = bounce.send(group.into_pending());
                            }
                        }
                        Message::Resume => stale = false,
                        Message::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Committer {
            to_thread: Some(to_thread),
            thread: Some(thread),
            shared,
        })
    }

    /// Hands a sealed group over, waiting while the one before is still being appended.
    pub fn hand_over(&self, group: Sealed) {
        let sent = match &self.to_thread {
            Some(to_thread) => to_thread.send(Message::Group(group)),
            None => Err(flume::SendError(Message::Group(group))),
        };
        if let Err(flume::SendError(Message::Group(group))) = sent {
            let message = "the commit thread has stopped".to_string();
            self.shared.refuse_writes("committing a group", &message);
            answer_all(group.replies, || StoreError::Storage {
                context: "committing a group",
                message: message.clone(),
            });
        }
    }

    /// Waits until every group handed over so far is durable (or failed) and answered.
    pub fn drain(&self) {
        let Some(to_thread) = &self.to_thread else {
            return;
        };
        let (done, finished) = flume::bounded(1);
        if to_thread.send(Message::Barrier(done)).is_ok() {
            let _ = finished.recv();
        }
    }

    /// Appends again after a conflict: the writer has caught up with the log.
    pub fn resume(&self) {
        if let Some(to_thread) = &self.to_thread {
            let _ = to_thread.send(Message::Resume);
        }
    }

    /// Finishes the groups handed over and stops the thread.
    pub fn stop(&mut self) {
        drop(self.to_thread.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Appends one group durably, then publishes its views and head and answers its callers.
/// Gives the group back, unanswered, if another server appended first.
fn make_durable(log: &dyn Log, shared: &Shared, sync: bool, mut group: Sealed) -> Option<Sealed> {
    // An earlier group failed: this one was decided on top of it, so it fails too.
    if let Some(reason) = shared.refusal() {
        answer_all(group.replies, || StoreError::WritesRefused(reason.clone()));
        return None;
    }
    if group.events == 0 && log.shared() {
        // Answers that wrote nothing (no-ops, replays, refusals) were decided on this server's
        // views; on a shared log they hold only if no other server appended since, which a
        // linearizable read of the head shows. Otherwise they are decided again, like a
        // conflicting append. Without an answer from the engine they stand as decided.
        match log.current_head() {
            Ok(head) if head > group.expected_head => {
                count_conflict(shared);
                return Some(group);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot confirm answers that wrote nothing against the log's head"),
        }
    }
    if group.events > 0 {
        let values = std::mem::take(&mut group.values);
        let bytes = values.iter().map(|v| v.bytes.len()).sum();
        let started = std::time::Instant::now();
        match log.append(group.expected_head, group.last, values) {
            Ok(()) => {}
            Err(AppendError::Conflict { expected, head }) => {
                tracing::debug!(
                    expected,
                    head,
                    "another server appended first; deciding the group again"
                );
                count_conflict(shared);
                return Some(group);
            }
            Err(e) if log.shared() => {
                // etcd gave no answer: the group may or may not be in the log, and the log says
                // which. A group decided on top of it appends only if it is (the head compare),
                // and otherwise meets a conflict and is decided again. Callers retry (with a
                // client token a retry is safe).
                let message = format!("{e}; the outcome is unknown until the log's engine answers again");
                answer_all(group.replies, || StoreError::Storage {
                    context: "appending a group commit",
                    message: message.clone(),
                });
                return None;
            }
            Err(e) => {
                let context = "appending a group commit";
                let message = e.to_string();
                // A failed append may or may not have reached the disk: nothing more is written
                // until the store is reopened and has read its log again.
                shared.refuse_writes(context, &message);
                answer_all(group.replies, || StoreError::Storage {
                    context,
                    message: message.clone(),
                });
                return None;
            }
        }
        if sync {
            shared.stats.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        shared.publish_views(group.views);
        shared
            .stats
            .events
            .fetch_add(group.events, std::sync::atomic::Ordering::Relaxed);
        shared.publish(group.last);
        crate::metrics::group_durable(started.elapsed(), bytes, &group.kinds);
    }
    for (reply, result) in group.replies {
        let _ = reply.send(result);
    }
    None
}

/// A group to decide again because another server appended first.
fn count_conflict(shared: &Shared) {
    shared
        .stats
        .conflicts
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    crate::metrics::conflict();
}

fn answer_all(replies: Vec<(ReplyTo, StoreResult<Executed>)>, error: impl Fn() -> StoreError) {
    for (reply, _) in replies {
        let _ = reply.send(Err(error()));
    }
}
