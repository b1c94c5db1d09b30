//! Error types and the stable error codes of the job contract, and what
//! the queue does with a job that failed with each code.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The stable error codes a failed result carries (docs/contract.md, "Error codes").
///
/// The string form (`code.as_str()`) is part of the contract: producers branch on
/// it, dead-letter headers carry it. Never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not a well-formed job (JSON, schema, unknown fields, duplicates).
    InvalidJob,
    /// Signing is configured and the job's signature is missing or wrong.
    InvalidSignature,
    /// An `op` name this worker does not know.
    UnsupportedOp,
    /// An op or output parameter is missing, of the wrong type or out of range.
    InvalidParam,
    /// An image id, object name or version that is malformed or not allowed.
    ForbiddenKey,
    /// The source (or an overlay) object does not exist.
    SourceNotFound,
    /// The source is not in a format the worker decodes.
    UnsupportedFormat,
    /// The source claims a supported format but cannot be decoded.
    DecodeFailed,
    /// A configured limit (bytes, pixels, ops, outputs, deadline) was exceeded.
    LimitExceeded,
    /// A render from the original cannot follow the source's lineage: a
    /// manifest is missing or unreadable, an object was changed outside
    /// imgworker, or the manifests form a cycle.
    BrokenLineage,
    /// Storage could not be reached or failed; transient.
    StorageUnavailable,
    /// A bug or an unexpected failure inside the worker; transient.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in results and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJob => "invalid_job",
            Self::InvalidSignature => "invalid_signature",
            Self::UnsupportedOp => "unsupported_op",
            Self::InvalidParam => "invalid_param",
            Self::ForbiddenKey => "forbidden_key",
            Self::SourceNotFound => "source_not_found",
            Self::UnsupportedFormat => "unsupported_format",
            Self::DecodeFailed => "decode_failed",
            Self::LimitExceeded => "limit_exceeded",
            Self::BrokenLineage => "broken_lineage",
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
        }
    }

    /// Whether a retry can succeed (storage down, worker bug) as opposed to a
    /// permanent failure of the job itself.
    pub(crate) fn is_transient(self) -> bool {
        matches!(self, Self::StorageUnavailable | Self::Internal)
    }

    /// What the queue does with a job that failed with this code on its
    /// `attempt`-th delivery (from 1), when at most `delivery_limit`
    /// attempts are retried: a transient failure is retried until the
    /// attempts run out, everything else is dead-lettered at once.
    pub(crate) fn disposition(self, attempt: u32, delivery_limit: u32) -> Disposition {
        if self.is_transient() && attempt <= delivery_limit {
            Disposition::Retry
        } else {
            Disposition::DeadLetter
        }
    }
}

/// What the queue does with a delivery once its job has run. The one place
/// that maps an outcome to ack, retry or dead-letter is
/// [`Disposition::of`] (with [`ErrorCode::disposition`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Disposition {
    /// The job succeeded: publish its result, then ack.
    Ack,
    /// A transient failure with attempts left: park the job in the retry
    /// queue for its backoff, then ack it, publishing no result.
    Retry,
    /// A permanent failure, or a transient one out of attempts: publish the
    /// failed result, dead-letter the message with its code, then ack.
    DeadLetter,
}

impl Disposition {
    /// The disposition of a job that failed with `code` (`None`: it
    /// succeeded) on its `attempt`-th delivery.
    pub fn of(code: Option<ErrorCode>, attempt: u32, delivery_limit: u32) -> Self {
        match code {
            None => Self::Ack,
            Some(code) => code.disposition(attempt, delivery_limit),
        }
    }
}

/// `e`'s message followed by its direct source's, as `"{e}: {source}"`:
/// the one-line text of an error whose own `Display` leaves its source out
/// (the convention of this crate's error types). Only one level is added:
/// third-party errors (I/O, `object_store`, lapin) already print their own
/// causes.
pub(crate) fn with_cause(e: &(dyn StdError + 'static)) -> String {
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter that failed validation. Carries the parameter's name and what
/// was expected, never the offending value when it could be user content.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    /// Dotted path of the parameter, e.g. `ops[2].sigma`.
    pub param: String,
    /// What is wrong, e.g. `must be in 0.1..=64`.
    pub reason: String,
}

impl ParamError {
    /// A value outside its allowed range.
    pub fn range(param: &str, range: &str) -> Self {
        Self {
            param: param.into(),
            reason: format!("must be in {range}"),
        }
    }

    /// Any other problem with a parameter.
    pub fn new(param: &str, reason: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            reason: reason.into(),
        }
    }

    /// Prefix the parameter path, e.g. with `ops[2]`.
    pub fn at(mut self, prefix: &str) -> Self {
        self.param = if self.param.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.param)
        };
        self
    }
}

/// A shared, type-erased error: the source a [`JobError`] keeps.
pub(crate) type SharedError = Arc<dyn StdError + Send + Sync + 'static>;

/// Why a job failed: a stable code plus a message safe to publish (no pixel
/// data, no metadata text, no secrets).
///
/// The message is complete on its own (it is what producers read, and it
/// already names the cause); the optional source keeps the typed error it
/// came from (a [`crate::storage::StorageError`], a signature error, a task
/// failure) for logs, tests and `downcast_ref`. Two `JobError`s are equal
/// when their code and message are: the source is diagnostic detail, not
/// part of the outcome.
#[derive(Clone)]
pub struct JobError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    source: Option<SharedError>,
}

impl JobError {
    /// Build an error from a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// Keep `source` as the error this one was made from.
    pub(crate) fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.with_shared_source(Arc::new(source))
    }

    /// Keep an already shared `source`.
    pub(crate) fn with_shared_source(mut self, source: SharedError) -> Self {
        self.source = Some(source);
        self
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JobError");
        d.field("code", &self.code).field("message", &self.message);
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl StdError for JobError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        // The inner error itself, not the `Arc` around it, so that
        // `downcast_ref` finds its type.
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl PartialEq for JobError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl From<ParamError> for JobError {
    fn from(e: ParamError) -> Self {
        Self::new(ErrorCode::InvalidParam, e.to_string()).with_source(e)
    }
}

macro_rules! job_error_ctor {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl JobError {
            $(
                #[doc = concat!("A `", stringify!($name), "` error.")]
                pub fn $name(message: impl Into<String>) -> Self {
                    Self::new(ErrorCode::$code, message)
                }
            )*
        }
    };
}

job_error_ctor!(
    invalid_job => InvalidJob,
    unsupported_op => UnsupportedOp,
    invalid_param => InvalidParam,
    forbidden_key => ForbiddenKey,
    source_not_found => SourceNotFound,
    unsupported_format => UnsupportedFormat,
    decode_failed => DecodeFailed,
    limit_exceeded => LimitExceeded,
    broken_lineage => BrokenLineage,
    storage_unavailable => StorageUnavailable,
    internal => Internal,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        use Disposition::*;
        assert_eq!(Disposition::of(None, 9, 5), Ack);
        for code in [ErrorCode::StorageUnavailable, ErrorCode::Internal] {
            assert_eq!(Disposition::of(Some(code), 1, 5), Retry);
            assert_eq!(Disposition::of(Some(code), 5, 5), Retry);
            assert_eq!(Disposition::of(Some(code), 6, 5), DeadLetter);
        }
        for code in [
            ErrorCode::InvalidJob,
            ErrorCode::InvalidSignature,
            ErrorCode::UnsupportedOp,
            ErrorCode::InvalidParam,
            ErrorCode::ForbiddenKey,
            ErrorCode::SourceNotFound,
            ErrorCode::UnsupportedFormat,
            ErrorCode::DecodeFailed,
            ErrorCode::LimitExceeded,
            ErrorCode::BrokenLineage,
        ] {
            assert_eq!(code.disposition(1, 5), DeadLetter, "{code}");
        }
    }

    #[test]
    fn job_errors_keep_their_source_and_compare_by_code_and_message() {
        let io = std::io::Error::other("disk on fire");
        let e = JobError::storage_unavailable("storage unavailable: disk on fire").with_source(io);
        let src = e.source().expect("a source");
        assert_eq!(
            src.downcast_ref::<std::io::Error>().unwrap().to_string(),
            "disk on fire"
        );
        assert_eq!(
            e,
            JobError::storage_unavailable("storage unavailable: disk on fire")
        );
        assert_ne!(e, JobError::internal("storage unavailable: disk on fire"));
        assert_eq!(
            e.to_string(),
            "storage_unavailable: storage unavailable: disk on fire"
        );
        assert!(e.clone().source().is_some());
    }

    #[test]
    fn with_cause_adds_one_level() {
        let e = JobError::internal("outer").with_source(std::io::Error::other("inner"));
        assert_eq!(with_cause(&e), "internal: outer: inner");
        assert_eq!(with_cause(&JobError::internal("alone")), "internal: alone");
    }
}
