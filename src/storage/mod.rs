//! Object storage behind one trait.
//!
//! Keys are `image/object` strings already validated by [`crate::keys`];
//! backends re-check them as a second line of defence. Writes are atomic: an
//! object is either absent or complete, never partial.

pub mod local;
pub mod memory;
pub mod s3;
pub mod sealed;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::JobError;

pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use s3::{S3Options, S3Storage};
pub use sealed::{Keyring, SealedStorage};

/// Storage failures.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    /// The store failed or cannot be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A sealed object that cannot be opened: its key is not configured,
    /// or it was altered.
    #[error("sealed object cannot be opened: {0}")]
    Sealed(String),
}

impl From<StorageError> for JobError {
    fn from(e: StorageError) -> Self {
        match &e {
            StorageError::NotFound(_) => JobError::source_not_found(e.to_string()),
            StorageError::TooLarge { .. } => JobError::limit_exceeded(e.to_string()),
            StorageError::Forbidden(_) => JobError::forbidden_key(e.to_string()),
            StorageError::Unavailable(_) => JobError::storage_unavailable(e.to_string()),
            StorageError::Sealed(_) => JobError::decode_failed(e.to_string()),
        }
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

    /// A short description for logs (never credentials).
    fn describe(&self) -> String;

    /// The id of the key versions are sealed with, when encryption at rest
    /// is on (recorded in manifests).
    fn sealing_key_id(&self) -> Option<String> {
        None
    }
}

/// Open storage from a URL: `s3://bucket/prefix`, `file:///path`, a plain
/// path, or `memory://`.
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
    if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or_default();
        return Err(StorageError::Unavailable(format!(
            "unsupported storage scheme {scheme:?}"
        )));
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
