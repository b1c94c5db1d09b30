//! S3-compatible object storage through `object_store`.
//!
//! `s3://bucket/prefix`, configured by the standard AWS environment
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint, and the
//! server-side encryption settings `AWS_SERVER_SIDE_ENCRYPTION`,
//! `AWS_SSE_KMS_KEY_ID`, passed through to every PUT). HTTPS by default;
//! `AWS_CA_BUNDLE` names a PEM file of extra CA certificates to trust (a
//! private store's own CA).
//!
//! Every object is written with one PUT, so a failed write leaves nothing
//! behind; S3 makes a PUT visible atomically. Export archives, which may be
//! larger than memory, are written with a multipart upload that is
//! completed only when the archive is whole (and aborted otherwise): S3
//! makes nothing of it visible before completion.
//! Requests are bounded by a timeout and a retry budget, so that a job does
//! not outlive its deadline waiting for a store that is down.

use std::time::Duration;

use async_trait::async_trait;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};

use super::{check_key, ObjectWriter, OnDeleted, Storage, StorageError};

/// Settings beyond the environment (tests pass the endpoint explicitly).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL (otherwise `AWS_ENDPOINT_URL` or AWS itself).
    pub endpoint: Option<String>,
    /// Allow `http://` endpoints (otherwise `AWS_ALLOW_HTTP`).
    pub allow_http: bool,
    /// Access key id and secret (otherwise the environment).
    pub credentials: Option<(String, String)>,
    /// Region (otherwise `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Per-request timeout (default 10 s).
    pub timeout: Option<Duration>,
    /// Extra CA certificates, PEM (otherwise `AWS_CA_BUNDLE`).
    pub ca_file: Option<std::path::PathBuf>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The endpoint the store will use: the option, else the environment (the
/// same variables `AmazonS3Builder::from_env` reads).
fn endpoint(opts: &S3Options) -> Option<String> {
    opts.endpoint.clone().or_else(|| {
        ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    })
}

/// Why this store would be reached without TLS, if it would be.
pub fn plain_transport(opts: &S3Options) -> Option<String> {
    if let Some(e) = endpoint(opts) {
        if !e.to_ascii_lowercase().starts_with("https://") {
            return Some(format!("the S3 endpoint {e} is not https://"));
        }
    }
    if opts.allow_http || env_flag("AWS_ALLOW_HTTP") {
        return Some("plain HTTP to S3 is allowed (AWS_ALLOW_HTTP)".into());
    }
    None
}

/// An S3 bucket, optionally under a prefix.
#[derive(Debug)]
pub struct S3Storage {
    store: AmazonS3,
    /// The same bucket with a longer request timeout, for streamed writes:
    /// completing a multipart upload of a large archive takes the store
    /// a while (S3 documents minutes).
    bulk: AmazonS3,
    bucket: String,
    prefix: String,
}

fn unavailable(e: object_store::Error) -> StorageError {
    StorageError::unavailable("", e)
}

/// A configuration error caused by `e`.
fn config(context: impl Into<String>, e: impl Into<super::Cause>) -> StorageError {
    StorageError::Config {
        context: context.into(),
        source: Some(e.into()),
    }
}

impl S3Storage {
    /// Open `s3://bucket[/prefix]` with the AWS environment and `opts`.
    /// Every failure here is a [`StorageError::Config`]: nothing is sent to
    /// the store until the first request.
    pub fn open(url: &str, opts: &S3Options) -> Result<Self, StorageError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StorageError::config(format!("not an s3:// URL: {url}")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StorageError::config("s3:// URL without a bucket"));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            check_key(&prefix)
                .map_err(|e| config("the s3:// URL's prefix is not a valid key", e))?;
        }
        let timeout = opts.timeout.unwrap_or(Duration::from_secs(10));
        let mut client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(Duration::from_secs(3));
        // These options replace those `from_env` read, so AWS_ALLOW_HTTP is
        // honoured here.
        if opts.allow_http || env_flag("AWS_ALLOW_HTTP") {
            client = client.with_allow_http(true);
        }
        let ca_file = opts
            .ca_file
            .clone()
            .or_else(|| std::env::var_os("AWS_CA_BUNDLE").map(Into::into));
        if let Some(path) = ca_file {
            let pem = std::fs::read(&path)
                .map_err(|e| config(format!("cannot read the CA bundle {}", path.display()), e))?;
            let certs = object_store::Certificate::from_pem_bundle(&pem)
                .map_err(|e| config(format!("the CA bundle {} is not PEM", path.display()), e))?;
            if certs.is_empty() {
                return Err(StorageError::config(format!(
                    "the CA bundle {} holds no certificate",
                    path.display()
                )));
            }
            for c in certs {
                client = client.with_root_certificate(c);
            }
        }
        let retry = |retry_timeout| RetryConfig {
            max_retries: 2,
            retry_timeout,
            ..Default::default()
        };
        let bulk_client = client.clone().with_timeout(BULK_TIMEOUT.max(timeout));
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(client)
            .with_retry(retry(timeout));
        if std::env::var_os("AWS_REGION").is_none() && opts.region.is_none() {
            b = b.with_region("us-east-1");
        }
        if let Some(r) = &opts.region {
            b = b.with_region(r);
        }
        if let Some(e) = &opts.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some((id, secret)) = &opts.credentials {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let bulk = b
            .clone()
            .with_client_options(bulk_client)
            .with_retry(retry(BULK_TIMEOUT.max(timeout)))
            .build()
            .map_err(|e| config("cannot configure the S3 client", e))?;
        let store = b
            .build()
            .map_err(|e| config("cannot configure the S3 client", e))?;
        Ok(Self {
            store,
            bulk,
            bucket: bucket.to_string(),
            prefix,
        })
    }

    fn path(&self, key: &str) -> Result<Path, StorageError> {
        check_key(key)?;
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(full).map_err(|e| StorageError::Forbidden(e.to_string()))
    }

    /// The storage key of a location in the bucket (the store's prefix
    /// removed).
    fn key_of(&self, location: &Path) -> String {
        let full = location.as_ref();
        if self.prefix.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(&self.prefix)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(full)
                .to_string()
        }
    }
}

/// Per-request timeout of streamed writes (their parts and completion).
const BULK_TIMEOUT: Duration = Duration::from_secs(300);

/// Size of a multipart upload's parts (S3's minimum is 5 MiB).
const PART_BYTES: usize = 8 << 20;

/// Parts of one upload in flight at once: with the part being filled,
/// memory holds at most `(PARTS_IN_FLIGHT + 1) * PART_BYTES`.
const PARTS_IN_FLIGHT: usize = 3;

/// A multipart upload ([`Storage::put_streamed`]): S3 makes the object
/// visible only when the upload is completed, so an aborted or abandoned
/// upload shows nothing (its parts are discarded by `abort`, or by the
/// bucket's lifecycle rule for incomplete uploads).
struct S3Writer {
    upload: WriteMultipart,
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.upload
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(|e| StorageError::unavailable("upload failed", e))?;
        self.upload.write(data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), StorageError> {
        self.upload
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| StorageError::unavailable("completing the upload failed", e))
    }

    async fn abort(self: Box<Self>) {
        let _ = self.upload.abort().await;
    }
}

fn not_found_or(e: object_store::Error, key: &str) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound(key.to_string()),
        e => unavailable(e),
    }
}

#[async_trait]
impl Storage for S3Storage {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        let res = self
            .store
            .get(&path)
            .await
            .map_err(|e| not_found_or(e, key))?;
        // The size comes with the response headers, before the body.
        if res.meta.size > max_bytes {
            return Err(StorageError::TooLarge {
                key: key.to_string(),
                size: res.meta.size,
                max: max_bytes,
            });
        }
        let bytes = res.bytes().await.map_err(|e| not_found_or(e, key))?;
        Ok(bytes.to_vec())
    }

    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(data.to_vec()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        // S3 deletes are idempotent and do not say whether anything was there.
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(unavailable(e)),
        }
        self.store.delete(&path).await.map_err(unavailable)?;
        Ok(true)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let path = self.path(dir)?;
        // A delimiter listing of `dir/` sees only its direct children, so
        // `u/1` never lists `u/10`.
        let listing = self
            .store
            .list_with_delimiter(Some(&path))
            .await
            .map_err(unavailable)?;
        let mut names: Vec<String> = listing
            .objects
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        use futures_lite::StreamExt;
        let root = self.path(dir)?;
        let mut listing = self.store.list(Some(&root));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(unavailable)?;
            out.push((self.key_of(&meta.location), meta.size));
        }
        out.sort();
        Ok(out)
    }

    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let path = self.path(key)?;
        let upload = self.bulk.put_multipart(&path).await.map_err(unavailable)?;
        Ok(Box::new(S3Writer {
            upload: WriteMultipart::new_with_chunk_size(upload, PART_BYTES),
        }))
    }

    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError> {
        use futures_lite::StreamExt;
        let root = self.path(dir)?;
        // A listing of `dir` matches whole segments (`u/1` is not a prefix of
        // `u/10/x`) and is paginated by the client; each page's keys are
        // deleted with one DeleteObjects request as they arrive, so memory
        // holds one batch whatever the folder's size. S3 lists by key, after
        // the last key returned, so deleting behind the listing is safe.
        let mut listing = self.store.list(Some(&root));
        let mut count = 0;
        let mut done = false;
        while !done {
            let mut batch = Vec::with_capacity(super::DELETE_BATCH);
            while batch.len() < super::DELETE_BATCH {
                match listing.next().await {
                    Some(meta) => batch.push(meta.map_err(unavailable)?.location),
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let requested = batch.len();
            let paths: std::pin::Pin<
                Box<dyn futures_lite::Stream<Item = object_store::Result<Path>> + Send>,
            > = Box::pin(futures_lite::stream::iter(batch.into_iter().map(Ok)));
            let mut keys = Vec::with_capacity(requested);
            let mut results = self.store.delete_stream(paths);
            while let Some(r) = results.next().await {
                match r {
                    Ok(p) => keys.push(self.key_of(&p)),
                    // Deleted meanwhile (a redelivered purge racing itself).
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        if !keys.is_empty() {
                            deleted(&keys);
                        }
                        return Err(StorageError::unavailable("delete failed", e));
                    }
                }
            }
            count += keys.len() as u64;
            deleted(&keys);
        }
        Ok(count)
    }

    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}
