//! The export job (docs/contract.md, "Export"): every object of one image,
//! or of every image under an account folder, with the images' manifests
//! and an `index.json`, in one tar archive written to the export folder.
//!
//! The archive is streamed: objects are listed (keys and sizes), checked
//! against the export limits before anything is read, then read one at a
//! time and appended as they are read to a streamed write
//! ([`Storage::put_streamed`]: an S3 multipart upload, completed only when
//! whole), so memory holds one object and one upload part whatever the
//! export's size. The archive is deterministic (entries in key order,
//! modification times 0, no owner names), so a redelivered export rewrites
//! the same bytes under the same key.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::audit::{self, Action};
use crate::config::WorkerConfig;
use crate::error::JobError;
use crate::job::Job;
use crate::result::ExportResult;
use crate::storage::{ObjectWriter, Storage, StorageError};

/// The archive's own description of what it holds, its last entry.
pub const INDEX_NAME: &str = "index.json";

/// `index.json`: the product's JSON export of the user's images.
#[derive(Debug, Serialize)]
struct Index {
    /// Always 1.
    schema: u32,
    /// The export job's id.
    export_id: String,
    /// The exported folder (an image, or an account).
    folder: String,
    /// Objects in the archive besides this index.
    objects: u64,
    /// Their bytes.
    bytes: u64,
    /// Each image, in key order.
    images: Vec<IndexImage>,
}

/// One image folder of the export.
#[derive(Debug, Serialize)]
struct IndexImage {
    /// The image folder's key.
    image: String,
    /// Its objects: originals, versions and manifests.
    objects: Vec<IndexObject>,
    /// Its versions: each manifest as stored (lineage, recipe, format,
    /// size, hash, time).
    versions: Vec<serde_json::Value>,
}

/// One object of an image.
#[derive(Debug, Serialize)]
struct IndexObject {
    /// Object name in the image folder.
    name: String,
    /// Path of the entry in the archive.
    path: String,
    /// Bytes.
    bytes: u64,
    /// SHA-256 of the bytes, hex.
    sha256: String,
}

/// The largest object an export reads (whole, into memory): 512 MiB.
pub const MAX_EXPORT_OBJECT_BYTES: u64 = 512 << 20;

/// The archive's key for an export of `folder` by job `id`.
pub fn archive_key(cfg: &WorkerConfig, folder: &str, id: &str) -> String {
    format!("{}/{id}.tar", cfg.data_rights.export_dir(folder))
}

/// Write the export archive of `job`'s folder (with `recursive`, every
/// image under it; otherwise the objects directly in it).
pub(crate) async fn export(
    storage: &dyn Storage,
    cfg: &WorkerConfig,
    job: &Job,
    recursive: bool,
) -> Result<ExportResult, JobError> {
    let folder = job.image.as_str();
    let mut listed = storage.list_tree(folder).await?;
    if !recursive {
        listed.retain(|(key, _)| !key[folder.len() + 1..].contains('/'));
    }
    let limits = &cfg.limits;
    let count = listed.len() as u64;
    let total: u64 = listed.iter().map(|(_, size)| size).sum();
    if count > limits.max_export_objects {
        return Err(JobError::limit_exceeded(format!(
            "{folder} holds {count} objects, an export takes at most {} (max_export_objects)",
            limits.max_export_objects
        )));
    }
    if total > limits.max_export_bytes {
        return Err(JobError::limit_exceeded(format!(
            "{folder} holds {total} bytes, an export takes at most {} (max_export_bytes)",
            limits.max_export_bytes
        )));
    }
    if let Some((big, size)) = listed
        .iter()
        .find(|(_, size)| *size > MAX_EXPORT_OBJECT_BYTES)
    {
        return Err(JobError::limit_exceeded(format!(
            "{big} is {size} bytes, an export reads objects of at most {MAX_EXPORT_OBJECT_BYTES}"
        )));
    }
    let key = archive_key(cfg, folder, &job.id);
    info!(
        folder,
        objects = count,
        bytes = total,
        archive = key,
        "exporting"
    );
    let writer = storage.put_streamed(&key).await?;
    let mut archive = Archive::new(writer);
    let res = write_entries(storage, job, &listed, &mut archive).await;
    let (writer, bytes, sha256) = archive.into_parts();
    let res = match res {
        Ok(()) => writer.finish().await.map_err(JobError::from),
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    };
    let outcome = res
        .as_ref()
        .map_or_else(|e| e.message.clone(), |_| "ok".into());
    audit::record(&job.id, Action::Write, &key, bytes, &outcome);
    res?;
    Ok(ExportResult {
        key,
        objects: count,
        bytes,
        sha256,
    })
}

/// Append every listed object, then the index and the archive's end.
async fn write_entries(
    storage: &dyn Storage,
    job: &Job,
    listed: &[(String, u64)],
    archive: &mut Archive,
) -> Result<(), JobError> {
    let folder = job.image.as_str();
    let mut index = Index {
        schema: 1,
        export_id: job.id.clone(),
        folder: folder.to_string(),
        objects: 0,
        bytes: 0,
        images: Vec::new(),
    };
    for (key, _) in listed {
        let data = read(storage, job, key, MAX_EXPORT_OBJECT_BYTES).await?;
        let (image, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        if index.images.last().is_none_or(|i| i.image != image) {
            index.images.push(IndexImage {
                image: image.to_string(),
                objects: Vec::new(),
                versions: Vec::new(),
            });
        }
        let entry = index.images.last_mut().expect("pushed above");
        if name.ends_with(".json") {
            // A manifest describes a version; one that does not parse is
            // still exported as an object, just not listed as a version.
            if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&data) {
                entry.versions.push(m);
            }
        }
        entry.objects.push(IndexObject {
            name: name.to_string(),
            path: key.clone(),
            bytes: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
        });
        index.objects += 1;
        index.bytes += data.len() as u64;
        archive.append(key, &data).await?;
    }
    let json = serde_json::to_vec_pretty(&index)
        .map_err(|e| JobError::internal(format!("cannot write the export index: {e}")))?;
    archive.append(INDEX_NAME, &json).await?;
    archive.end().await
}

/// Read one object for the export, audited.
async fn read(storage: &dyn Storage, job: &Job, key: &str, max: u64) -> Result<Vec<u8>, JobError> {
    let res = storage.get(key, max).await;
    audit::record_read(&job.id, key, &res);
    res.map_err(|e| match e {
        // Listed a moment ago: deleted meanwhile (a purge racing the
        // export). Retried, the export lists again.
        StorageError::NotFound(_) => {
            JobError::storage_unavailable(format!("{key} disappeared while it was being exported"))
        }
        other => other.into(),
    })
}

/// A tar archive written into a streamed object, hashed as it goes.
struct Archive {
    tar: tar::Builder<Vec<u8>>,
    writer: Box<dyn ObjectWriter>,
    hash: Sha256,
    bytes: u64,
}

impl Archive {
    fn new(writer: Box<dyn ObjectWriter>) -> Self {
        Self {
            tar: tar::Builder::new(Vec::new()),
            writer,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Append a regular file entry at `path` and send it on.
    async fn append(&mut self, path: &str, data: &[u8]) -> Result<(), JobError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        self.tar
            .append_data(&mut header, path, data)
            .map_err(|e| JobError::internal(format!("cannot add {path} to the archive: {e}")))?;
        self.flush().await
    }

    /// Write the archive's end (two zero blocks) and send it on.
    async fn end(&mut self) -> Result<(), JobError> {
        self.tar
            .finish()
            .map_err(|e| JobError::internal(format!("cannot end the archive: {e}")))?;
        self.flush().await
    }

    /// Send what the tar writer produced to the object, and hash it.
    async fn flush(&mut self) -> Result<(), JobError> {
        let buf = self.tar.get_mut();
        if buf.is_empty() {
            return Ok(());
        }
        self.hash.update(&buf[..]);
        self.bytes += buf.len() as u64;
        let chunk = std::mem::take(buf);
        self.writer.write(&chunk).await?;
        Ok(())
    }

    /// The writer, the archive's size and its SHA-256 (hex).
    fn into_parts(self) -> (Box<dyn ObjectWriter>, u64, String) {
        // Whatever the tar writer still holds (its end, when an error
        // stopped the archive early) goes nowhere: the archive is complete
        // after `end`, or abandoned.
        let Self {
            tar,
            writer,
            hash,
            bytes,
        } = self;
        drop(tar);
        (writer, bytes, hex::encode(hash.finalize()))
    }
}
