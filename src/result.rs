//! The result message a job produces, whether run locally or from the queue.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::color::ColorHandling;
use crate::error::{ErrorCode, JobError};
use crate::job::{Format, Identity, JobKind, SCHEMA_VERSION};

/// Whether the job did what it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every output and manifest is stored.
    Succeeded,
    /// Nothing was stored; see `error`.
    Failed,
}

impl Status {
    /// The name used in routing keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One stored version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputResult {
    /// Version name.
    pub version: String,
    /// Object name inside the image folder.
    pub object: String,
    /// Encoding.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Size of the stored object in bytes.
    pub bytes: u64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
    /// The quality it was encoded at (lossy formats; with `max_bytes`, the
    /// quality the search chose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// How its colours were handled.
    pub color: ColorHandling,
}

/// Time spent per stage, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    /// Reading the source and overlays.
    pub fetch: f64,
    /// Decoding.
    pub decode: f64,
    /// Running the ops.
    pub ops: f64,
    /// Encoding the outputs.
    pub encode: f64,
    /// Signing the outputs' Content Credentials, when the worker signs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<f64>,
    /// Writing outputs and manifests.
    pub store: f64,
    /// The whole job.
    pub total: f64,
}

/// The error of a failed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Explanation (never image content or secrets).
    pub message: String,
}

/// The archive an export job wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportResult {
    /// The archive's storage key (`exports/users/42/<job id>.tar`).
    pub key: String,
    /// Objects in the archive, its `index.json` not counted.
    pub objects: u64,
    /// The archive's size in bytes (before sealing, when encryption at
    /// rest is on).
    pub bytes: u64,
    /// SHA-256 of the archive's bytes (before sealing), hex.
    pub sha256: String,
}

/// The result message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultMessage {
    /// Always 1.
    pub schema: u32,
    /// The job's id (empty when the message had none).
    pub id: String,
    /// The job's type.
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// Outcome.
    pub status: Status,
    /// The job's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Stored versions (edit jobs that succeeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputResult>,
    /// Objects deleted (purge jobs that succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// The archive written (export jobs that succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportResult>,
    /// `gpu` or `cpu`: where the pixels were processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendKind>,
    /// Delivery attempt, from 1.
    pub attempt: u32,
    /// The worker that ran the job.
    pub worker: String,
    /// Stage timings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings_ms: Option<Timings>,
    /// Why the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl ResultMessage {
    /// The failed result of the job `ident` names (as much of it as could be
    /// read: an unreadable message has no id and counts as an edit), on its
    /// `attempt`-th delivery, by `worker`.
    pub fn failed(ident: &Identity, err: &JobError, attempt: u32, worker: &str) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            id: ident.id.clone().unwrap_or_default(),
            kind: ident.kind.unwrap_or(JobKind::Edit),
            status: Status::Failed,
            image: ident.image.clone(),
            outputs: Vec::new(),
            removed: None,
            export: None,
            backend: None,
            attempt,
            worker: worker.to_string(),
            timings_ms: None,
            error: Some(ErrorBody {
                code: err.code,
                message: err.message.clone(),
            }),
        }
    }

    /// The error code of a failed result (`internal` when a failed result
    /// carries none); `None` when the job succeeded.
    pub(crate) fn error_code(&self) -> Option<ErrorCode> {
        (self.status != Status::Succeeded)
            .then(|| self.error.as_ref().map_or(ErrorCode::Internal, |e| e.code))
    }

    /// The routing key on the results exchange: `{type}.{status}`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.kind.as_str(), self.status.as_str())
    }
}
