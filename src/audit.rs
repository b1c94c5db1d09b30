//! The audit trail: every storage read, write and delete a job makes, as
//! an event (job id, worker, action, key, bytes, outcome, time; never
//! content, never metadata text).
//!
//! Each access is an `audit` log line as it happens, and an [`AuditEvent`]
//! collected for the job ([`collect`]): `imgworker serve` publishes a job's
//! events with publisher confirms to the `imgworker.audit` exchange before
//! it acknowledges the job (docs/contract.md, "Audit trail"), and
//! `imgworker run` writes them as JSON lines where `--audit-file` says.

use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::storage::StorageError;

/// What was done to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// An object (or its absence) was read.
    Read,
    /// An object was written.
    Write,
    /// An object was deleted.
    Delete,
}

impl Action {
    /// The name in events and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }
}

/// One storage access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Always 1.
    pub schema: u32,
    /// The job that made the access: a redelivered job's accesses come
    /// again with the same id, so a consumer deduplicates by it.
    pub job_id: String,
    /// The worker that made it (`host:pid`).
    pub worker: String,
    /// What was done.
    pub action: Action,
    /// The object's storage key.
    pub key: String,
    /// Bytes read or written (0 for a delete or a failure).
    pub bytes: u64,
    /// `ok`, `absent` (a read or delete of nothing), or the error.
    pub outcome: String,
    /// When, RFC 3339 (UTC).
    pub time: String,
}

/// The events of the job running in this task.
#[derive(Debug)]
struct Collector {
    worker: String,
    events: Mutex<Vec<AuditEvent>>,
}

tokio::task_local! {
    static JOB: Arc<Collector>;
}

/// Record an access by job `job_id`: a log line, and an event when the job
/// runs inside [`collect`].
pub fn record(job_id: &str, action: Action, key: &str, bytes: u64, outcome: &str) {
    info!(target: "audit", job_id = %job_id, action = action.as_str(), key, bytes, outcome = %outcome);
    let _ = JOB.try_with(|c| {
        c.events.lock().expect("audit events").push(AuditEvent {
            schema: 1,
            job_id: job_id.to_string(),
            worker: c.worker.clone(),
            action,
            key: key.to_string(),
            bytes,
            outcome: outcome.to_string(),
            time: now(),
        });
    });
}

/// Record a read of `key` by job `job_id` and what it gave: the bytes, or
/// `absent` for a missing object (an answer, not a failure: an original
/// has no manifest), or the error.
pub fn record_read(job_id: &str, key: &str, res: &Result<Vec<u8>, StorageError>) {
    let bytes = res.as_ref().map_or(0, Vec::len) as u64;
    let outcome = match res {
        Ok(_) => "ok".into(),
        Err(StorageError::NotFound(_)) => "absent".into(),
        Err(e) => crate::error::with_cause(e),
    };
    record(job_id, Action::Read, key, bytes, &outcome);
}

/// Run `job` (one job's work) and return its output with the accesses it
/// recorded, in order.
pub async fn collect<F: Future>(worker: &str, job: F) -> (F::Output, Vec<AuditEvent>) {
    let collector = Arc::new(Collector {
        worker: worker.to_string(),
        events: Mutex::new(Vec::new()),
    });
    let out = JOB.scope(collector.clone(), job).await;
    let events = std::mem::take(&mut *collector.events.lock().expect("audit events"));
    (out, events)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_jobs_accesses_are_collected_in_order_and_only_inside_it() {
        record("outside", Action::Read, "a/b.png", 1, "ok");
        let ((), events) = collect("w:1", async {
            record("j1", Action::Read, "a/original.png", 10, "ok");
            record("j1", Action::Write, "a/v1.png", 20, "ok");
            record("j1", Action::Delete, "a/v0.png", 0, "absent");
        })
        .await;
        let got: Vec<(&str, Action, &str)> = events
            .iter()
            .map(|e| (e.job_id.as_str(), e.action, e.key.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("j1", Action::Read, "a/original.png"),
                ("j1", Action::Write, "a/v1.png"),
                ("j1", Action::Delete, "a/v0.png")
            ]
        );
        assert!(events
            .iter()
            .all(|e| e.worker == "w:1" && e.time.ends_with('Z')));
        let json = serde_json::to_value(&events[2]).unwrap();
        assert_eq!(json["action"], "delete");
        assert_eq!(json["outcome"], "absent");
    }
}
