//! Running one job end to end: fetch, plan, decode, ops, encode, sign (the
//! versions' Content Credentials, when the worker has a signer), store.
//!
//! The order is what keeps failures clean: everything that can be checked
//! without pixels (the message, keys, the source header against the limits,
//! every op's effect on the image size) is checked first; all outputs are
//! rendered and encoded in memory next; only then is anything written, each
//! version before its manifest, and a storage failure part-way rolls back what
//! this attempt wrote. A failed job leaves storage as it found it.
//!
//! (Over 600 lines: the stages above are one sequence that is easier to
//! check for that order when read in one file.)

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tracing::{info, info_span, warn, Instrument};

use crate::audit::{self, Action, AuditEvent};
use crate::backend::{Backend, BackendKind};
use crate::codec::{self, SourceImage};
use crate::color::ColorHandling;
use crate::config::WorkerConfig;
use crate::content_credentials::{Claim, ContentCredentials};
use crate::error::{with_cause, JobError};
use crate::job::{
    identify, Edit, Encoding, Identity, Job, Output, OverlaySource, RenderFrom, Task,
    SCHEMA_VERSION,
};
use crate::keys::ObjectName;
use crate::manifest::{FromOriginal, Manifest, Recipe};
use crate::ops::{check_dims, Frame, OpContext, Shape};
use crate::result::{OutputResult, ResultMessage, Status, Timings};
use crate::storage::{Storage, StorageError};

/// Largest manifest read back (they are small JSON documents).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Counters of one job's work, for tests and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Times the source was decoded (1 for an edit job that got that far).
    pub source_decodes: u32,
    /// Overlay images decoded.
    pub overlay_decodes: u32,
    /// The source was decoded at 1/this of its size (shrink-on-load: 2, 4
    /// or 8); 1 at full size, 0 when it was not decoded.
    pub source_shrink: u32,
    /// Objects written (versions and manifests).
    pub(crate) objects_written: u32,
    /// Where the pixels were processed, once they were.
    pub backend: Option<BackendKind>,
    /// GPU work counters, when the GPU did the job.
    pub gpu: Option<crate::gpu::GpuStats>,
}

/// The result of a job and what it took.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The result message to print or publish.
    pub result: ResultMessage,
    /// Work counters.
    pub stats: JobStats,
    /// Every storage access the job made, in order (the audit trail).
    pub audit: Vec<AuditEvent>,
}

/// Runs jobs against one storage with one configuration.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: Arc<WorkerConfig>,
    storage: Arc<dyn Storage>,
    backend: Backend,
}

/// An encoded output waiting to be stored.
struct Rendered {
    bytes: Vec<u8>,
    /// SHA-256 of `bytes`, hex.
    sha256: String,
    width: u32,
    height: u32,
    /// How its colours were handled.
    color: ColorHandling,
    /// The settings it was encoded with (a byte budget's chosen quality).
    encoding: Encoding,
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Engine {
    /// An engine over `storage`.
    pub fn new(cfg: WorkerConfig, storage: Arc<dyn Storage>, backend: Backend) -> Self {
        Self {
            cfg: Arc::new(cfg),
            storage,
            backend,
        }
    }

    /// The configured backend.
    pub(crate) fn backend_kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The worker configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.cfg
    }

    /// The failed result of the job `ident` names, on its `attempt`-th
    /// delivery, from this worker: how every failure becomes a result,
    /// whether the job was refused by the queue (a bad signature), by
    /// validation, or failed while running.
    pub fn failure(&self, ident: &Identity, err: &JobError, attempt: u32) -> ResultMessage {
        ResultMessage::failed(ident, err, attempt, &self.cfg.worker_name)
    }

    /// Parse, validate and run a job message; never fails, a failure is a
    /// failed result.
    pub async fn run(&self, body: &[u8], attempt: u32) -> Outcome {
        let ident = identify(body);
        let job = match Job::parse(body, &self.cfg) {
            Ok(job) => job,
            Err(e) => {
                warn!(job_id = ident.id.as_deref().unwrap_or(""), code = %e.code, error = %e.message, "job rejected");
                return Outcome {
                    result: self.failure(&ident, &e, attempt),
                    stats: JobStats::default(),
                    audit: Vec::new(),
                };
            }
        };
        self.run_job(&job, attempt).await
    }

    /// Run a validated job.
    pub(crate) async fn run_job(&self, job: &Job, attempt: u32) -> Outcome {
        let span = info_span!("job", job_id = %job.id, kind = job.kind().as_str(), backend = self.backend.kind().as_str());
        let job_run = async move {
            let started = Instant::now();
            let mut stats = JobStats::default();
            let res = match &job.task {
                Task::Edit(edit) => self.edit(job, edit, started, &mut stats).await,
                Task::Purge => self.purge(job).await,
                Task::PurgeTree => self.purge_tree(job).await,
                Task::Export { recursive } => {
                    crate::export::export(&*self.storage, &self.cfg, job, *recursive)
                        .await
                        .map(|export| ResultMessage {
                            export: Some(export),
                            ..self.success(job)
                        })
                }
            };
            let mut result = match res {
                Ok(r) => r,
                Err(e) => {
                    warn!(code = %e.code, error = %e.message, "job failed");
                    self.failure(&identity(job), &e, attempt)
                }
            };
            result.attempt = attempt;
            if result.status == Status::Succeeded {
                info!(total_ms = ms(started), "job succeeded");
            }
            (result, stats)
        };
        let ((result, stats), audit) =
            audit::collect(&self.cfg.worker_name, job_run.instrument(span)).await;
        Outcome {
            result,
            stats,
            audit,
        }
    }

    fn success(&self, job: &Job) -> ResultMessage {
        ResultMessage {
            schema: SCHEMA_VERSION,
            id: job.id.clone(),
            kind: job.kind(),
            status: Status::Succeeded,
            image: Some(job.image.as_str().to_string()),
            outputs: Vec::new(),
            removed: None,
            export: None,
            backend: None,
            attempt: 1,
            worker: self.cfg.worker_name.clone(),
            timings_ms: None,
            error: None,
        }
    }

    /// Read the objects ops name besides the source (`what`: overlay, lut,
    /// mask), each once, as `(name, bytes)`.
    async fn fetch_inputs(
        &self,
        job: &Job,
        list: &[OverlaySource],
        what: &str,
        max: u64,
        deadline: Instant,
    ) -> Result<Vec<(String, Vec<u8>)>, JobError> {
        let mut out = Vec::with_capacity(list.len());
        for o in list {
            let bytes = self
                .read(job, &o.key, max, deadline)
                .await
                .map_err(|e| match e {
                    StorageError::NotFound(_) => {
                        self.not_found(&format!("{what} {}: object ", o.source), &o.key)
                    }
                    other => other.into(),
                })?;
            out.push((o.source.clone(), bytes));
        }
        Ok(out)
    }

    /// `source_not_found` for `key`, after `what`, naming the storage it was
    /// looked up in (a newcomer's first error is often the wrong folder).
    fn not_found(&self, what: &str, key: &str) -> JobError {
        JobError::source_not_found(format!(
            "{what}{key} does not exist in {}",
            self.storage.location()
        ))
    }

    /// Read an object, giving up at the job's deadline (a slow store must
    /// not hold a job past it).
    async fn read(
        &self,
        job: &Job,
        key: &str,
        max: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, StorageError> {
        let res = tokio::time::timeout_at(deadline.into(), self.storage.get(key, max))
            .await
            .unwrap_or_else(|_| {
                Err(StorageError::unavailable_because(format!(
                    "reading {key} did not finish before the job's deadline"
                )))
            });
        audit::record_read(&job.id, key, &res);
        res
    }

    async fn write(&self, job: &Job, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let res = self.storage.put(key, data).await;
        let outcome = res.as_ref().map_or_else(|e| with_cause(e), |_| "ok".into());
        audit::record(&job.id, Action::Write, key, data.len() as u64, &outcome);
        res
    }

    async fn remove(&self, job: &Job, key: &str) -> Result<bool, StorageError> {
        let res = self.storage.delete(key).await;
        let outcome = res.as_ref().map_or_else(
            |e| with_cause(e),
            |d| if *d { "ok" } else { "absent" }.into(),
        );
        audit::record(&job.id, Action::Delete, key, 0, &outcome);
        res
    }

    async fn purge(&self, job: &Job) -> Result<ResultMessage, JobError> {
        let names = self.storage.list(job.image.as_str()).await?;
        let mut removed = 0;
        for name in names {
            if self
                .remove(job, &format!("{}/{name}", job.image.as_str()))
                .await?
            {
                removed += 1;
            }
        }
        Ok(ResultMessage {
            removed: Some(removed),
            ..self.success(job)
        })
    }

    /// Delete a whole account: every object under the job's folder, nested
    /// folders included, then its export archives. Batched (S3
    /// `DeleteObjects`), every deleted key audited, idempotent: run again,
    /// it deletes what is left and reports that count. No deadline: an
    /// account of any size is deleted, batch by batch, with progress logged.
    async fn purge_tree(&self, job: &Job) -> Result<ResultMessage, JobError> {
        let dir = job.image.as_str();
        let exports = self.cfg.data_rights.export_dir(dir);
        let mut removed = 0;
        for folder in [dir, exports.as_str()] {
            let mut audit = |keys: &[String]| {
                for key in keys {
                    audit::record(&job.id, Action::Delete, key, 0, "ok");
                }
                info!(folder, batch = keys.len(), "deleted a batch");
            };
            let res = self.storage.delete_tree(folder, &mut audit).await;
            if let Err(e) = &res {
                audit::record(&job.id, Action::Delete, folder, 0, &with_cause(e));
            }
            removed += res?;
        }
        Ok(ResultMessage {
            removed: Some(removed),
            ..self.success(job)
        })
    }

    /// The parent's recipe, when the source is a version with a manifest.
    async fn parent_recipe(
        &self,
        job: &Job,
        edit: &Edit,
        deadline: Instant,
    ) -> Result<Option<Recipe>, JobError> {
        let key = job.image.key(&edit.source.manifest());
        match self.read(job, &key, MAX_MANIFEST_BYTES, deadline).await {
            Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) if m.object == edit.source.as_str() => Ok(Some(m.recipe)),
                _ => {
                    warn!(key, "parent manifest is unreadable or describes another object; lineage stops here");
                    Ok(None)
                }
            },
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Follow the source's manifests back to its original
    /// ([`crate::lineage::walk`]), hashing each version met on the way.
    async fn lineage(
        &self,
        job: &Job,
        edit: &Edit,
        deadline: Instant,
    ) -> Result<crate::lineage::Lineage, JobError> {
        use crate::lineage::Found;
        let max = self.cfg.limits.max_source_bytes;
        crate::lineage::walk(&edit.source, |object| async move {
            let bytes = |e: StorageError| match e {
                StorageError::NotFound(_) => self.not_found("object ", &job.image.key(&object)),
                other => other.into(),
            };
            let mkey = job.image.key(&object.manifest());
            let manifest = match self.read(job, &mkey, MAX_MANIFEST_BYTES, deadline).await {
                Ok(b) => b,
                Err(StorageError::NotFound(_)) => {
                    if object == edit.source {
                        // Say which is missing: the object or its manifest.
                        self.read(job, &job.image.key(&object), max, deadline)
                            .await
                            .map_err(bytes)?;
                    }
                    return Ok(Found::NoManifest);
                }
                Err(e) => return Err(e.into()),
            };
            let manifest: Manifest = serde_json::from_slice(&manifest).map_err(|e| {
                JobError::broken_lineage(format!(
                    "the manifest of {} is unreadable: {e}",
                    object.as_str()
                ))
            })?;
            let data = self
                .read(job, &job.image.key(&object), max, deadline)
                .await
                .map_err(bytes)?;
            Ok(Found::Manifest(Box::new(manifest), sha256_hex(&data)))
        })
        .await
    }

    async fn edit(
        &self,
        job: &Job,
        edit: &Edit,
        started: Instant,
        stats: &mut JobStats,
    ) -> Result<ResultMessage, JobError> {
        let lim = &self.cfg.limits;
        let deadline = started + lim.deadline;
        let mut timings = Timings::default();

        // Fetch: the source, or the original with the lineage's recipes
        // composed in front of the job's ops.
        let t = Instant::now();
        let (render, source_recipe) = match edit.from {
            RenderFrom::Source => (std::borrow::Cow::Borrowed(edit), None),
            RenderFrom::Original => {
                let lineage = self.lineage(job, edit, deadline).await?;
                let composed = crate::lineage::compose(&job.image, edit, &lineage, &self.cfg)?;
                tracing::debug!(
                    root = lineage.root.as_str(),
                    recipes = lineage.recipes.len(),
                    "rendering from the original"
                );
                (
                    std::borrow::Cow::Owned(composed),
                    Some(lineage.source_recipe),
                )
            }
        };
        let render = render.as_ref();
        let source = self
            .read(
                job,
                &job.image.key(&render.source),
                lim.max_source_bytes,
                deadline,
            )
            .await
            .map_err(|e| match e {
                StorageError::NotFound(_) => {
                    self.not_found("object ", &job.image.key(&render.source))
                }
                other => other.into(),
            })?;
        if crate::storage::sealed::is_sealed(&source) {
            return Err(JobError::decode_failed(format!(
                "{} is sealed (encrypted at rest) and no encryption keys are configured",
                render.source.as_str()
            )));
        }
        let inputs = InputBytes {
            overlays: self
                .fetch_inputs(
                    job,
                    &render.overlays,
                    "overlay",
                    lim.max_source_bytes,
                    deadline,
                )
                .await?,
            luts: self
                .fetch_inputs(
                    job,
                    &render.luts,
                    "lut",
                    crate::ops::lut::MAX_CUBE_BYTES,
                    deadline,
                )
                .await?,
            masks: self
                .fetch_inputs(job, &render.masks, "mask", lim.max_source_bytes, deadline)
                .await?,
        };
        // The walk to the original has read the source's manifest already.
        let parent_recipe = match source_recipe {
            Some(recipe) => Some(recipe),
            None => self.parent_recipe(job, edit, deadline).await?,
        };
        let origin = Origin {
            parent_recipe,
            rendered: render,
        };
        // Content Credentials name the parent version as their ingredient:
        // the source as read, or, for a render from the original, the
        // source object itself.
        let parent = match (&self.cfg.content_credentials, render.source != edit.source) {
            (Some(_), true) => Some(
                self.read(
                    job,
                    &job.image.key(&edit.source),
                    lim.max_source_bytes,
                    deadline,
                )
                .await?,
            ),
            _ => None,
        };
        timings.fetch = ms(t);

        // Plan, decode, run, encode: pixel work off the async runtime.
        let cfg = self.cfg.clone();
        let backend = self.backend.clone();
        let edit_owned = render.clone();
        let job_edit = edit.clone();
        let span = tracing::Span::current();
        let (
            Rendering {
                rendered,
                decodes,
                shrink,
                t_decode,
                t_ops,
                t_encode,
                backend: used,
                gpu,
            },
            t_sign,
        ) = tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            let mut rendering =
                render_all(&cfg, &backend, &edit_owned, &source, &inputs, deadline)?;
            let t_sign = match &cfg.content_credentials {
                Some(cc) => {
                    let t = Instant::now();
                    let parent = parent.as_deref().unwrap_or(&source);
                    sign_all(cc, &cfg, &job_edit, parent, &mut rendering.rendered)?;
                    Some(ms(t))
                }
                None => None,
            };
            Ok::<_, JobError>((rendering, t_sign))
        })
        .await
        .map_err(|e| JobError::internal(format!("pixel task failed: {e}")).with_source(e))??;
        stats.source_decodes += decodes.0;
        stats.source_shrink = shrink;
        stats.backend = Some(used);
        stats.gpu = gpu;
        stats.overlay_decodes += decodes.1;
        timings.decode = t_decode;
        timings.ops = t_ops;
        timings.encode = t_encode;
        timings.sign = t_sign;
        if Instant::now() > deadline {
            return Err(JobError::limit_exceeded(format!(
                "job exceeded its deadline of {:?}",
                lim.deadline
            )));
        }

        // Store: each version, then its manifest; undo this attempt's writes on failure.
        let t = Instant::now();
        let mut written: Vec<String> = Vec::new();
        let mut stale: Vec<String> = Vec::new();
        let mut outputs = Vec::with_capacity(rendered.len());
        let store = async {
            for (out, r) in edit.outputs.iter().zip(&rendered) {
                let out = &out.resolved(r.encoding)?;
                let key = job.image.key(&out.object);
                self.write(job, &key, &r.bytes).await?;
                written.push(key);
                let (manifest, replaced) = self.manifest(job, edit, &origin, out, r, used).await?;
                stale.extend(replaced.map(|o| job.image.key(&o)));
                let mkey = job.image.key(&out.object.manifest());
                let body = serde_json::to_vec_pretty(&manifest)
                    .map_err(|e| JobError::internal(e.to_string()).with_source(e))?;
                self.write(job, &mkey, &body).await?;
                written.push(mkey);
                outputs.push(OutputResult {
                    version: out.version.clone(),
                    object: out.object.as_str().to_string(),
                    format: out.encoding.format,
                    width: r.width,
                    height: r.height,
                    bytes: r.bytes.len() as u64,
                    sha256: r.sha256.clone(),
                    quality: r.encoding.quality.filter(|_| !r.encoding.lossless),
                    color: r.color,
                });
            }
            Ok::<(), JobError>(())
        };
        if let Err(e) = store.await {
            for key in written.iter().rev() {
                if let Err(undo) = self.remove(job, key).await {
                    warn!(key, error = %with_cause(&undo), "could not roll back a write of the failed job");
                }
            }
            return Err(e);
        }
        // A version is one object: one the version had in another format
        // (`format: auto` choosing differently, a job naming another
        // format) goes once everything new is stored.
        for key in stale {
            if let Err(e) = self.remove(job, &key).await {
                warn!(key, error = %with_cause(&e), "could not delete the version's object in its previous format");
            }
        }
        stats.objects_written += written.len() as u32;
        timings.store = ms(t);
        timings.total = ms(started);
        Ok(ResultMessage {
            outputs,
            backend: Some(used),
            timings_ms: Some(timings),
            ..self.success(job)
        })
    }

    async fn manifest(
        &self,
        job: &Job,
        edit: &Edit,
        origin: &Origin<'_>,
        out: &Output,
        r: &Rendered,
        backend: BackendKind,
    ) -> Result<(Manifest, Option<ObjectName>), JobError> {
        // A redelivered job keeps the first write's timestamp, so it rewrites
        // identical bytes. The object the version had before, when it was
        // in another format, is returned to be deleted.
        let mkey = job.image.key(&out.object.manifest());
        let previous = match self.storage.get(&mkey, MAX_MANIFEST_BYTES).await {
            Ok(b) => serde_json::from_slice::<Manifest>(&b).ok(),
            Err(_) => None,
        };
        let replaced = previous
            .as_ref()
            .filter(|m| m.object != out.object.as_str())
            .and_then(|m| ObjectName::parse(&m.object).ok())
            .filter(|o| o.stem() == out.object.stem());
        let created_at = previous
            .filter(|m| m.job_id == job.id && m.sha256 == r.sha256)
            .map(|m| m.created_at)
            .unwrap_or_else(now_rfc3339);
        let manifest = Manifest {
            schema: SCHEMA_VERSION,
            image: job.image.as_str().to_string(),
            version: out.version.clone(),
            object: out.object.as_str().to_string(),
            parent: edit.source.as_str().to_string(),
            recipe: Recipe {
                parent: edit.source.as_str().to_string(),
                ops: edit.specs.iter().chain(&out.specs).cloned().collect(),
                output: r.encoding,
                color: Some(r.color),
                candidates: (!out.candidates.is_empty()).then(|| out.candidates.clone()),
                parent_recipe: origin.parent_recipe.clone().map(Box::new),
                from_original: (edit.from == RenderFrom::Original).then(|| FromOriginal {
                    object: origin.rendered.source.as_str().to_string(),
                    ops: (origin.rendered.specs.iter())
                        .chain(&out.specs)
                        .cloned()
                        .collect(),
                }),
            },
            format: out.encoding.format,
            width: r.width,
            height: r.height,
            bytes: r.bytes.len() as u64,
            sha256: r.sha256.clone(),
            created_at,
            job_id: job.id.clone(),
            backend: backend.to_string(),
            encryption: self
                .storage
                .sealing_key_id()
                .map(|id| serde_json::json!({"algorithm": "AES-256-GCM", "key_id": id})),
        };
        Ok((manifest, replaced))
    }
}

/// What a failed result says about a validated job.
fn identity(job: &Job) -> Identity {
    Identity {
        id: Some(job.id.clone()),
        kind: Some(job.kind()),
        image: Some(job.image.as_str().to_string()),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Where a job's versions come from, for their manifests: the source's
/// own recipe, and the edit that was rendered (of the original, when the
/// job asked for a render from the original; else the job's own).
struct Origin<'a> {
    parent_recipe: Option<Recipe>,
    rendered: &'a Edit,
}

/// The objects a job's ops read besides the source, as fetched: each
/// `(name, bytes)`.
struct InputBytes {
    overlays: Vec<(String, Vec<u8>)>,
    luts: Vec<(String, Vec<u8>)>,
    masks: Vec<(String, Vec<u8>)>,
}

/// What the pixel work produced, and what it took.
struct Rendering {
    rendered: Vec<Rendered>,
    /// Source and overlay decodes.
    decodes: (u32, u32),
    /// The source's shrink-on-load factor (1: full size).
    shrink: u32,
    t_decode: f64,
    t_ops: f64,
    t_encode: f64,
    backend: BackendKind,
    gpu: Option<crate::gpu::GpuStats>,
}

/// Embed each version's signed C2PA manifest ([`crate::content_credentials`]):
/// the parent version as its ingredient, the recipe's ops as its actions.
/// The versions' bytes and hashes become the signed ones.
fn sign_all(
    cc: &ContentCredentials,
    cfg: &WorkerConfig,
    edit: &Edit,
    parent: &[u8],
    rendered: &mut [Rendered],
) -> Result<(), JobError> {
    let parent_format = SourceImage::open(parent, &cfg.limits)
        .ok()
        .map(|s| s.probe.format.name());
    for (out, r) in edit.outputs.iter().zip(rendered) {
        let object = out.resolved(r.encoding)?.object;
        let _span = tracing::debug_span!("sign", version = %out.version).entered();
        let claim = Claim {
            title: object.as_str(),
            parent_title: edit.source.as_str(),
            parent,
            parent_format,
            ops: (edit.specs.iter().chain(&out.specs))
                .map(|s| (s.name(), s.c2pa_action()))
                .collect(),
            digital_source_type: edit.digital_source_type,
        };
        r.bytes = cc.sign(&claim, r.encoding.format, &r.bytes).map_err(|e| {
            JobError::internal(format!(
                "signing the Content Credentials of {}: {e}",
                object.as_str()
            ))
            .with_source(e)
        })?;
        r.sha256 = sha256_hex(&r.bytes);
    }
    Ok(())
}

/// The source's EXIF for one output: its orientation tag reset when
/// `auto_orient` turned the pixels upright.
fn exif_for(exif: &[u8], edit: &Edit, out: &crate::job::Output) -> Vec<u8> {
    let mut exif = exif.to_vec();
    let reoriented = edit
        .ops
        .iter()
        .chain(&out.ops)
        .any(|op| matches!(op, crate::ops::Op::AutoOrient(_)));
    if reoriented {
        let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut exif);
    }
    exif
}

/// Shrink-on-load for a JPEG source: when the chain starts (after any
/// `auto_orient`) with a resize that shrinks by 4 or more (and not in
/// linear light), the source can be
/// decoded at 1/2, 1/4 or 1/8 in the DCT domain. Returns that factor and the
/// edit with the resize's output size fixed from the full-size plan. The
/// chain is the shared ops, followed by the output's own when there is one
/// output.
fn shrink_on_load(edit: &Edit, source: Shape) -> Option<(u32, Edit)> {
    use crate::ops::Op;
    let single = match edit.outputs.as_slice() {
        [only] => only.ops.as_slice(),
        _ => &[],
    };
    let mut shape = source;
    for (i, op) in edit.ops.iter().chain(single).enumerate() {
        match op {
            Op::AutoOrient(_) => shape = op.plan(shape).ok()?,
            // The DCT's shrink averages sRGB-encoded values: a linear-light
            // resize reads the full-size decode.
            Op::Resize(r) if r.linear => return None,
            Op::Resize(r) => {
                let s = codec::jpeg::load_shrink(r.shrink_factor(shape.dims));
                if s == 1 {
                    return None;
                }
                let resolved = Op::Resize(r.resolved_for(shape.dims));
                let mut e = edit.clone();
                match i.checked_sub(edit.ops.len()) {
                    None => e.ops[i] = resolved,
                    Some(j) => e.outputs[0].ops[j] = resolved,
                }
                return Some((s, e));
            }
            _ => return None,
        }
    }
    None
}

/// Open each fetched image's header, checked against the limits.
fn open_headers<'a>(
    list: &'a [(String, Vec<u8>)],
    lim: &crate::config::Limits,
) -> Result<Vec<(&'a String, SourceImage<'a>)>, JobError> {
    list.iter()
        .map(|(name, b)| Ok((name, SourceImage::open(b, lim)?)))
        .collect()
}

/// Plan every output from the headers, then decode once, run and encode.
fn render_all(
    cfg: &WorkerConfig,
    backend: &Backend,
    edit: &Edit,
    source: &[u8],
    inputs: &InputBytes,
    deadline: Instant,
) -> Result<Rendering, JobError> {
    let lim = &cfg.limits;
    let t = Instant::now();
    let mut src = SourceImage::open(source, lim)?;
    // EXIF is read only when an output keeps it.
    let exif = if edit.source_exif && edit.outputs.iter().any(|o| o.encoding.keep_exif) {
        src.exif()
    } else {
        None
    };
    // The other images' headers too, before any pixel is decoded.
    let overlay_srcs = open_headers(&inputs.overlays, lim)?;
    let mask_srcs = open_headers(&inputs.masks, lim)?;

    // Plan: every intermediate and final size, before any pixel buffer.
    let source_shape = Shape {
        dims: src.probe.dims,
        orientation: src.probe.orientation,
    };
    let plan_chain =
        |mut shape: Shape, ops: &[crate::ops::Op], path: &str| -> Result<Shape, JobError> {
            for (i, op) in ops.iter().enumerate() {
                shape = op
                    .plan(shape)
                    .map_err(|e| JobError::from(e.at(&format!("{path}[{i}]"))))?;
                check_dims(shape.dims, lim)?;
            }
            Ok(shape)
        };
    let shared = plan_chain(source_shape, &edit.ops, "ops")?;
    for (i, out) in edit.outputs.iter().enumerate() {
        let shape = plan_chain(shared, &out.ops, &format!("outputs[{i}].ops"))?;
        // `format: auto` needs one candidate that can hold the size.
        let max = (out.candidates.iter())
            .map(|f| f.max_side())
            .max()
            .unwrap_or(out.encoding.format.max_side());
        if shape.dims.width > max || shape.dims.height > max {
            return Err(JobError::limit_exceeded(format!(
                "outputs[{i}]: {}x{} is larger than {} allows ({max} per side)",
                shape.dims.width,
                shape.dims.height,
                if out.candidates.is_empty() {
                    out.encoding.format.ext()
                } else {
                    "any candidate format"
                }
            )));
        }
    }

    // Decode the source once (smaller, when a large downscale comes first
    // and the format can), and each overlay once.
    let shrunk = if src.probe.format == crate::codec::decode::SourceFormat::Jpeg {
        shrink_on_load(edit, source_shape)
    } else {
        None
    };
    let (mut decoded, shrink) = src.decode_shrunk(shrunk.as_ref().map_or(1, |(s, _)| *s))?;
    // Into the job's colour space before any op: both backends see the
    // same pixels, and the profile written matches them.
    let color = crate::color::manage(&mut decoded.img, decoded.icc.as_deref(), edit.color)?;
    let edit = match shrunk {
        Some((_, resolved)) if shrink > 1 => {
            tracing::debug!(shrink, "shrink-on-load");
            std::borrow::Cow::Owned(resolved)
        }
        _ => std::borrow::Cow::Borrowed(edit),
    };
    let edit = edit.as_ref();
    let mut ctx = OpContext {
        deadline: Some(deadline),
        ..Default::default()
    };
    for (name, o) in overlay_srcs {
        let mut pasted = o.decode()?;
        crate::color::manage(&mut pasted.img, pasted.icc.as_deref(), edit.color)?;
        ctx.overlays.insert(name.clone(), Arc::new(pasted.img));
    }
    for (name, bytes) in &inputs.luts {
        let cube = crate::ops::lut::Cube::parse(name, bytes)?;
        ctx.luts.insert(name.clone(), Arc::new(cube));
    }
    for (name, m) in mask_srcs {
        let has_alpha = m.probe.has_alpha;
        let plane = crate::ops::mask::mask_plane(&m.decode()?.img, has_alpha);
        ctx.masks.insert(name.clone(), Arc::new(plane));
    }
    let decodes = (1, ctx.overlays.len() as u32);
    let t_decode = ms(t);

    let t = Instant::now();
    let done = backend.render(
        Frame {
            img: decoded.img,
            orientation: source_shape.orientation,
        },
        edit,
        &ctx,
    )?;
    let frames = done.images;
    let t_ops = ms(t);

    let t = Instant::now();
    let icc = color.profile.as_deref();
    let handling = color.handling;
    let rendered = frames
        .into_par_iter()
        .zip(&edit.outputs)
        .map(|(img, out)| {
            let _span = tracing::debug_span!("encode", version = %out.version, format = out.encoding.format.ext()).entered();
            let exif = exif.as_ref().map(|e| exif_for(e, edit, out));
            let (bytes, encoding) = codec::encode_choosing(&img, &out.encoding, &out.candidates, icc, exif.as_deref())?;
            Ok(Rendered { sha256: sha256_hex(&bytes), bytes, width: img.width(), height: img.height(), color: handling, encoding })
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    Ok(Rendering {
        rendered,
        decodes,
        shrink,
        t_decode,
        t_ops,
        t_encode: ms(t),
        backend: done.backend,
        gpu: done.gpu,
    })
}
