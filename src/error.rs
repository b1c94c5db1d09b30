//! Error types and the stable error codes of the job contract.

use serde::{Deserialize, Serialize};

/// The stable error codes a failed result carries (DESIGN.md, "Result message").
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
            Self::StorageUnavailable => "storage_unavailable",
            Self::Internal => "internal",
        }
    }

    /// Whether a retry can succeed (storage down, worker bug) as opposed to a
    /// permanent failure of the job itself.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::StorageUnavailable | Self::Internal)
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

/// Why a job failed: a stable code plus a message safe to publish (no pixel
/// data, no metadata text, no secrets).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct JobError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
}

impl JobError {
    /// Build an error from a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ParamError> for JobError {
    fn from(e: ParamError) -> Self {
        Self::new(ErrorCode::InvalidParam, e.to_string())
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
    storage_unavailable => StorageUnavailable,
    internal => Internal,
);
