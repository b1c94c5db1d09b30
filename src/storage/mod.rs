//! Object storage behind one trait.
//!
//! Keys are `image/object` strings already validated by [`crate::keys`];
//! backends re-check them as a second line of defence. Writes are atomic: an
//! object is either absent or complete, never partial.

pub mod local;
pub mod memory;
pub mod s3;
pub mod sealed;
mod sealed_stream;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::JobError;

pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use s3::{S3Options, S3Storage};
pub use sealed::{Keyring, SealedStorage};

/// The cause of a storage failure (an I/O error, an `object_store` error,
/// a failed task), kept as the error's source.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `": {context}"`, or nothing when there is no context.
fn colon(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(": {context}")
    }
}

/// Storage failures.
///
/// A variant's message leaves its source out (print it with
/// [`crate::error::with_cause`], or walk `source()`); the conversion into a
/// [`JobError`] publishes both.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object not found: {0}")]
    NotFound(String),
    /// The object is larger than the caller allows.
    #[error("object {key} is {size} bytes, at most {max} allowed")]
    TooLarge {
        /// Key.
        key: String,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A key the backend refuses.
    #[error("forbidden key: {0}")]
    Forbidden(String),
    /// The store failed or cannot be reached (transient).
    #[error("storage unavailable{}", colon(context))]
    Unavailable {
        /// What was being done (`read failed`), or empty.
        context: String,
        /// Why, when another error said so.
        #[source]
        source: Option<Cause>,
    },
    /// A sealed object that cannot be opened: its key is not configured,
    /// or it was altered.
    #[error("sealed object cannot be opened: {0}")]
    Sealed(String),
    /// A storage URL whose scheme no backend handles (`ftp://…`). A
    /// configuration error, reported by [`open`] at start-up.
    #[error(
        "unsupported storage scheme {0:?}: use s3://bucket/prefix, file:///path, memory:// or a folder"
    )]
    UnsupportedScheme(String),
    /// A storage URL or setting that cannot work (an `s3://` URL without a
    /// bucket, an unreadable CA bundle). A configuration error, reported
    /// when the storage is opened at start-up.
    #[error("invalid storage configuration: {context}")]
    Config {
        /// What is wrong.
        context: String,
        /// Why, when another error said so.
        #[source]
        source: Option<Cause>,
    },
}

impl StorageError {
    /// A transient failure while doing `context`, caused by `source`.
    pub fn unavailable(context: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Unavailable {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A transient failure explained by `reason` alone (no underlying
    /// error).
    pub(crate) fn unavailable_because(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            context: reason.into(),
            source: None,
        }
    }

    /// A configuration error with no underlying error.
    pub fn config(context: impl Into<String>) -> Self {
        Self::Config {
            context: context.into(),
            source: None,
        }
    }

    /// Whether this is a configuration error (the storage URL or its
    /// settings), which only opening the storage reports and which no retry
    /// can fix.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::UnsupportedScheme(_) | Self::Config { .. })
    }
}

impl From<StorageError> for JobError {
    fn from(e: StorageError) -> Self {
        let message = crate::error::with_cause(&e);
        let err = match &e {
            StorageError::NotFound(_) => JobError::source_not_found(message),
            StorageError::TooLarge { .. } => JobError::limit_exceeded(message),
            StorageError::Forbidden(_) => JobError::forbidden_key(message),
            StorageError::Unavailable { .. } => JobError::storage_unavailable(message),
            StorageError::Sealed(_) => JobError::decode_failed(message),
            // Storage is opened once, at start-up, where these stop the
            // worker (exit 2); a job never opens storage, so reaching this
            // from a job would be a bug.
            StorageError::UnsupportedScheme(_) | StorageError::Config { .. } => {
                JobError::internal(message)
            }
        };
        err.with_source(e)
    }
}

/// An object store.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Read a whole object, refusing one larger than `max_bytes`.
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StorageError>;

    /// Write a whole object atomically, replacing any previous one.
    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;

    /// Delete an object; `Ok(false)` when there was none.
    async fn delete(&self, key: &str) -> Result<bool, StorageError>;

    /// Names of the objects directly inside folder `dir` (no nested folders),
    /// sorted.
    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError>;

    /// Delete every object under folder `dir`, nested folders included, in
    /// batches of at most [`DELETE_BATCH`] keys, and hand each batch's keys
    /// to `deleted` once the store has deleted them (for the audit trail).
    /// Folders are matched by whole segments: `users/42` never touches
    /// `users/420`. Deleting an empty or missing folder deletes nothing.
    /// Returns how many objects were deleted; on an error, the batches
    /// already reported are gone and a retry deletes the rest.
    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError>;

    /// Every object under folder `dir`, nested folders included, with its
    /// size, sorted by key; folders are matched by whole segments. For
    /// exports: the listing holds keys and sizes only, never content.
    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError>;

    /// Start writing an object piece by piece (an export archive larger
    /// than memory). Nothing is visible under `key` until
    /// [`ObjectWriter::finish`] succeeds; an aborted or dropped writer
    /// leaves nothing (S3: a multipart upload completed only when whole).
    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError>;

    /// A short description for logs (never credentials).
    fn describe(&self) -> String;

    /// Where objects are, for error messages a submitter sees: the folder
    /// or bucket and prefix, without what only operators need (which key
    /// seals it).
    fn location(&self) -> String {
        self.describe()
    }

    /// The id of the key versions are sealed with, when encryption at rest
    /// is on (recorded in manifests).
    fn sealing_key_id(&self) -> Option<String> {
        None
    }
}

/// An object being written piece by piece ([`Storage::put_streamed`]).
#[async_trait]
pub trait ObjectWriter: Send {
    /// Append `data`. Memory held stays bounded: a writer uploads or
    /// flushes as it goes.
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;

    /// Make the whole object visible under its key, atomically.
    async fn finish(self: Box<Self>) -> Result<(), StorageError>;

    /// Give up: nothing becomes visible, and what was uploaded is
    /// discarded.
    async fn abort(self: Box<Self>);
}

/// What [`Storage::delete_tree`] tells of each batch it deleted: the keys.
pub type OnDeleted<'a> = dyn for<'k> FnMut(&'k [String]) + Send + 'a;

/// Most keys [`Storage::delete_tree`] deletes in one request (S3's
/// `DeleteObjects` limit).
pub const DELETE_BATCH: usize = 1000;

/// Open storage from a URL: `s3://bucket/prefix`, `file:///path`, a plain
/// path, or `memory://`. Called once at start-up: a URL with any other
/// scheme is [`StorageError::UnsupportedScheme`] and a malformed `s3://`
/// URL [`StorageError::Config`], configuration errors that stop the worker
/// rather than failing jobs.
pub fn open(url: &str) -> Result<Arc<dyn Storage>, StorageError> {
    if url.starts_with("s3://") {
        return Ok(Arc::new(S3Storage::open(url, &S3Options::default())?));
    }
    if url == "memory://" || url == "memory:" {
        return Ok(Arc::new(MemoryStorage::new()));
    }
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Arc::new(LocalStorage::new(path)?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(StorageError::UnsupportedScheme(scheme.to_string()));
    }
    Ok(Arc::new(LocalStorage::new(url)?))
}

/// Why the storage at `url` would be reached without TLS, if it would be:
/// an `s3://` store whose endpoint is `http://` or for which plain HTTP is
/// allowed. Local folders and `memory://` never leave the process.
pub fn plain_transport(url: &str) -> Option<String> {
    if url.starts_with("s3://") {
        return s3::plain_transport(&S3Options::default());
    }
    None
}

/// Reject keys a backend must never see, whatever validated them before.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.starts_with('.'))
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StorageError::Forbidden(key.chars().take(80).collect()))
    }
}
