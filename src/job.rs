//! The job message (schema 1) and its validation into a runnable [`Job`].
//!
//! Parsing is strict: unknown fields anywhere are `invalid_job`, an unknown
//! `op` is `unsupported_op`, a parameter of the wrong type or out of range is
//! `invalid_param`, a bad key is `forbidden_key`, too many ops or outputs is
//! `limit_exceeded`. All of it happens before storage or pixels are touched.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::color::ColorSpace;
use crate::config::{DataRights, Limits, WorkerConfig};
use crate::content_credentials::DigitalSourceType;
use crate::error::{ErrorCode, JobError, ParamError};
use crate::keys::{self, ImageId, ObjectName};
use crate::ops::{canonical_name, Op, OpSpec};

/// The only job schema version this worker speaks.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Longest job id, in characters (`[A-Za-z0-9_-]`, at least one).
pub(crate) const MAX_JOB_ID_LEN: usize = 128;

/// Lowest output `quality` (jpeg, webp, avif).
pub(crate) const MIN_QUALITY: i64 = 1;
/// Highest output `quality`.
pub(crate) const MAX_QUALITY: i64 = 100;

/// Slowest AVIF encoder `speed`.
pub(crate) const MIN_AVIF_SPEED: i64 = 1;
/// Fastest AVIF encoder `speed`.
pub(crate) const MAX_AVIF_SPEED: i64 = 10;
/// AVIF encoder speed when the output gives none: a worker favours latency.
pub(crate) const DEFAULT_AVIF_SPEED: u8 = 7;

/// Largest `max_bytes` (1 GiB, far above any image a worker writes).
pub(crate) const MAX_MAX_BYTES: i64 = 1 << 30;
/// Lowest quality `max_bytes` goes down to when the output gives no
/// `min_quality`: below it, lossy formats fall apart.
pub(crate) const DEFAULT_MIN_QUALITY: u8 = 10;

/// What a job asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Derive new versions from a source object.
    Edit,
    /// Delete every object of the image, or with `recursive` every object
    /// under a folder (an account).
    Purge,
    /// Write an archive of the image's objects, or with `recursive` of
    /// every image under a folder (an account).
    Export,
}

impl JobKind {
    /// The name used in routing keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Purge => "purge",
            Self::Export => "export",
        }
    }
}

/// The job message as producers send it.
///
/// Its JSON Schema (`imgworker schema`) holds every range, pattern, length
/// and list of values the worker checks, with the limits that are worker
/// settings at their default values. Rules that tie fields together are
/// only written in the descriptions (the worker checks them): what an edit
/// or a purge job must and must not carry, the total op count, versions
/// that repeat or name the source, and the rules given with each op.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobMessage {
    /// Always 1.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    pub schema: u32,
    /// Job id, `[A-Za-z0-9_-]{1,128}` (a UUID fits).
    #[schemars(
        regex(pattern = keys::name_pattern()),
        length(min = 1, max = MAX_JOB_ID_LEN),
        extend("not" = keys::line_break_refusal())
    )]
    pub id: String,
    /// `edit`, `purge` or `export`.
    #[serde(rename = "type")]
    pub kind: JobKind,
    /// The image folder, e.g. `users/42/images/7`: segments of
    /// `[A-Za-z0-9_-]` joined by `/`, at most 256 characters. A worker may
    /// also be limited to some prefixes (its `allow_prefixes` setting, none
    /// by default), which the schema cannot state.
    #[schemars(
        regex(pattern = keys::image_pattern()),
        length(min = 1, max = keys::MAX_IMAGE_LEN),
        extend("not" = keys::line_break_refusal())
    )]
    pub image: String,
    /// Object of the image to edit, e.g. `original.jpg`: `[A-Za-z0-9_-]{1,64}`
    /// with an optional `.ext` of `[A-Za-z0-9]{1,10}`. Required for an edit,
    /// absent from a purge (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = keys::object_name_pattern()),
        length(min = 1, max = keys::MAX_OBJECT_NAME_LEN),
        extend("not" = keys::line_break_refusal())
    )]
    pub source: Option<String>,
    /// Ops applied once to the decoded source (edit only, not expressed in
    /// the schema). The shared ops and every output's ops together count
    /// against the worker's `max_ops` (default 32): the schema can only cap
    /// each list at that default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = Limits::default().max_ops))]
    pub ops: Option<Vec<OpSpec>>,
    /// What the ops apply to (edit only, not expressed in the schema):
    /// `source` (the default) decodes the source object itself; `original`
    /// follows the source's manifests back to the object its lineage starts
    /// from and renders the whole chain of recipes plus this job's ops from
    /// it, in one decode and one encode (no generation loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RenderFrom>,
    /// The colour space the ops run in and the versions are written in
    /// (edit only, not expressed in the schema): `srgb` (the default)
    /// converts a source with an ICC profile or CICP code points to sRGB
    /// and writes untagged versions; `display_p3` converts to Display P3 and
    /// writes its profile; `source` leaves the pixels in the source's space
    /// and writes the source's profile. One space for the whole job, as its
    /// shared ops run once. Pasted images are converted like the source;
    /// masks are coverage, not colour, and are never converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<ColorSpace>,
    /// How the content came to be (edit only, not expressed in the
    /// schema), a term of the IPTC Digital Source Type vocabulary:
    /// `trainedAlgorithmicMedia` for an image made by generative AI,
    /// `compositeWithTrainedAlgorithmicMedia` for one edited with it. When
    /// the worker signs Content Credentials, every action of the version's
    /// C2PA manifest carries it, so AI-generated content is marked as such;
    /// without credentials it has no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital_source_type: Option<DigitalSourceType>,
    /// Versions to write, each with optional trailing ops: at least one and
    /// at most the worker's `max_outputs` (default 8, the schema's
    /// `maxItems`), each version once and none named like the source's stem.
    /// Required for an edit, absent from a purge (neither expressed in the
    /// schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = Limits::default().max_outputs))]
    pub outputs: Option<Vec<OutputSpec>>,
    /// Purge and export only (not expressed in the schema): `true` makes
    /// `image` a folder (a user's account: `users/42`) and the job covers
    /// every object under it, nested folders included: a purge deletes
    /// them and the account's export archives under the worker's
    /// `export_prefix`, an export archives every image. The folder must lie
    /// strictly inside one of the worker's `account_roots` (default
    /// `users`), which the schema cannot state. `false` (the default)
    /// covers the objects directly in the image's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<bool>,
}

/// What an edit's ops apply to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenderFrom {
    /// The source object as stored.
    #[default]
    Source,
    /// The original the source was derived from, through its recorded
    /// recipes.
    Original,
}

/// Output encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Baseline JPEG; alpha is flattened onto black.
    #[serde(alias = "jpg")]
    Jpeg,
    /// PNG (lossless).
    Png,
    /// WebP, lossy by default, lossless on request.
    Webp,
    /// AVIF (AV1 still image).
    Avif,
}

impl Format {
    /// File extension of the version object.
    pub fn ext(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Avif => "avif",
        }
    }

    /// Its MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// Quality used when the output gives none; `None` where quality does not apply.
    pub fn default_quality(self) -> Option<u8> {
        match self {
            Self::Jpeg => Some(85),
            Self::Webp => Some(80),
            Self::Avif => Some(60),
            Self::Png => None,
        }
    }

    /// Largest side the encoder accepts.
    pub(crate) fn max_side(self) -> u32 {
        match self {
            Self::Webp => 16_383,
            Self::Jpeg | Self::Avif => 65_535,
            Self::Png => u32::MAX,
        }
    }
}

/// One version to write.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Version name, `[A-Za-z0-9_-]{1,64}`; the object is `{version}.{ext}`.
    #[schemars(
        regex(pattern = keys::name_pattern()),
        length(min = 1, max = keys::MAX_VERSION_LEN),
        extend("not" = keys::line_break_refusal())
    )]
    pub version: String,
    /// Encoding; `jpg` is read as `jpeg`; `auto` writes the smallest of
    /// the `candidates`.
    #[schemars(transform = with_jpg_alias)]
    pub format: OutputFormat,
    /// With `format: auto` only (not expressed in the schema): the formats
    /// to choose from, each at most once (default `["avif", "webp",
    /// "jpeg"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4))]
    pub candidates: Option<Vec<Format>>,
    /// `1..=100` for jpeg, webp and avif (defaults 85, 80, 60); not with png
    /// (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_QUALITY, max = MAX_QUALITY))]
    pub quality: Option<i64>,
    /// WebP only (not expressed in the schema): encode losslessly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lossless: Option<bool>,
    /// AVIF only (not expressed in the schema): encoder speed, `1` (slowest,
    /// smallest files) to `10` (fastest); default 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_AVIF_SPEED, max = MAX_AVIF_SPEED))]
    pub speed: Option<i64>,
    /// jpeg, lossy webp and avif only (not expressed in the schema): the
    /// most bytes the version may take. The worker encodes at `quality` (or
    /// the format's default) and, when that is too large, searches down to
    /// `min_quality` for the highest quality that fits, in at most 6
    /// encodes; `limit_exceeded` when even `min_quality` does not fit. The
    /// result gives the quality chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = MAX_MAX_BYTES))]
    pub max_bytes: Option<i64>,
    /// With `max_bytes` only (not expressed in the schema): the lowest
    /// quality the search may choose, `1..=quality`; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_QUALITY, max = MAX_QUALITY))]
    pub min_quality: Option<i64>,
    /// JPEG only (not expressed in the schema): progressive scans instead of
    /// one baseline scan (default `false`). Progressive files are smaller
    /// and show a coarse whole image early while loading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressive: Option<bool>,
    /// JPEG and AVIF only (not expressed in the schema): chroma subsampling
    /// (default `4:2:0`, as libvips, Pillow and ImageMagick below quality
    /// 90, and the only one AVIF's baseline profile, which some hardware
    /// decoders are limited to, allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroma_subsampling: Option<ChromaSubsampling>,
    /// JPEG only (not expressed in the schema): Huffman tables optimised for
    /// the image (a second pass over it; a few percent smaller) instead of
    /// the standard tables (default `false`; progressive files always have
    /// optimised tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize_coding: Option<bool>,
    /// Ops applied after the job's shared ops, for this output only. They
    /// count against the same `max_ops` as the shared ops (see the job's
    /// `ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = Limits::default().max_ops))]
    pub ops: Option<Vec<OpSpec>>,
    /// What happens to the source's metadata (default `strip`); `keep_exif`
    /// is not for webp (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataPolicy>,
}

/// An output's `format`: one format, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// JPEG.
    #[serde(alias = "jpg")]
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// AVIF.
    Avif,
    /// The smallest encoding among the output's `candidates`, each at its
    /// default settings (see the contract for the rule).
    Auto,
}

impl OutputFormat {
    /// The one format asked for; `None` for `auto`.
    fn concrete(self) -> Option<Format> {
        Some(match self {
            Self::Jpeg => Format::Jpeg,
            Self::Png => Format::Png,
            Self::Webp => Format::Webp,
            Self::Avif => Format::Avif,
            Self::Auto => return None,
        })
    }
}

/// `format: auto`'s candidates when the output names none: the three
/// lossy formats, most compact first (ties go to the earlier).
pub(crate) const DEFAULT_CANDIDATES: [Format; 3] = [Format::Avif, Format::Webp, Format::Jpeg];

/// The schema of [`OutputSpec::format`]: [`OutputFormat`]'s, plus the alias `jpg`
/// that serde reads as `jpeg` (the schema of `Format` itself, shared with
/// the results and manifests the worker writes, has `jpeg` only).
fn with_jpg_alias(schema: &mut schemars::Schema) {
    if let Some(format) = schema.remove("$ref") {
        schema.insert(
            "anyOf".into(),
            serde_json::json!([
                { "$ref": format },
                { "const": "jpg", "type": "string", "description": "Same as `jpeg`." }
            ]),
        );
    }
}

/// The source's metadata on an output. The ICC profile written depends on
/// the job's `color`, not on this; XMP and comments are never written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetadataPolicy {
    /// Drop EXIF (GPS included), XMP and comments.
    #[default]
    Strip,
    /// Carry the source's EXIF block over, GPS included (jpeg, png, avif).
    /// When the pixels were re-oriented by `auto_orient`, the orientation
    /// tag is reset so viewers do not rotate them twice.
    KeepExif,
}

/// JPEG and AVIF chroma subsampling: how many chroma samples each block of
/// luma samples keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ChromaSubsampling {
    /// Full chroma resolution (sharp colour edges, text, graphics).
    #[serde(rename = "4:4:4")]
    Full,
    /// Half the chroma columns.
    #[serde(rename = "4:2:2")]
    Half,
    /// Half the chroma columns and rows (photographs).
    #[default]
    #[serde(rename = "4:2:0")]
    Quarter,
}

/// JPEG encoder settings, recorded with every JPEG version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JpegSettings {
    /// Progressive scans.
    #[serde(default)]
    pub progressive: bool,
    /// Chroma subsampling.
    #[serde(default)]
    pub chroma_subsampling: ChromaSubsampling,
    /// Huffman tables optimised for the image.
    #[serde(default)]
    pub optimize_coding: bool,
}

/// How an output is encoded, after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Encoding {
    /// Format.
    pub format: Format,
    /// Quality where it applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_QUALITY, max = MAX_QUALITY))]
    pub quality: Option<u8>,
    /// WebP lossless.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lossless: bool,
    /// Carry the source's EXIF over (`metadata: keep_exif`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_exif: bool,
    /// AVIF encoder speed, `1..=10` (AVIF outputs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_AVIF_SPEED, max = MAX_AVIF_SPEED))]
    pub speed: Option<u8>,
    /// AVIF chroma subsampling (AVIF outputs only; a JPEG's is in `jpeg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chroma_subsampling: Option<ChromaSubsampling>,
    /// JPEG settings (JPEG outputs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg: Option<JpegSettings>,
    /// The byte budget asked for (`quality` is then the quality chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// The lowest quality the byte budget's search could choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = MIN_QUALITY, max = MAX_QUALITY))]
    pub min_quality: Option<u8>,
}

impl Encoding {
    /// The settings `format: auto` encodes a candidate with: the format's
    /// defaults, and this output's metadata policy and byte budget.
    pub(crate) fn for_candidate(&self, format: Format) -> Encoding {
        Encoding {
            format,
            quality: format.default_quality(),
            lossless: false,
            keep_exif: self.keep_exif,
            speed: (format == Format::Avif).then_some(DEFAULT_AVIF_SPEED),
            chroma_subsampling: (format == Format::Avif).then(ChromaSubsampling::default),
            jpeg: (format == Format::Jpeg).then(JpegSettings::default),
            max_bytes: self.max_bytes,
            min_quality: self.min_quality,
        }
    }
}

/// A validated output.
#[derive(Debug, Clone)]
pub struct Output {
    /// Version name.
    pub version: String,
    /// Object name `{version}.{ext}`.
    pub object: ObjectName,
    /// Encoding settings (with `format: auto`, those of the first
    /// candidate until the encoder chooses).
    pub encoding: Encoding,
    /// `format: auto`'s candidates, in the order given; empty otherwise.
    pub candidates: Vec<Format>,
    /// Trailing ops, validated.
    pub ops: Vec<Op>,
    /// Trailing ops as given (recorded in the manifest).
    pub(crate) specs: Vec<OpSpec>,
}

impl Output {
    /// This output as it was written: with the encoding the encoder used
    /// (`format: auto`'s choice, a byte budget's quality) and the object
    /// name of that format.
    pub(crate) fn resolved(&self, encoding: Encoding) -> Result<Output, JobError> {
        Ok(Output {
            object: ObjectName::parse(&format!("{}.{}", self.version, encoding.format.ext()))?,
            encoding,
            ..self.clone()
        })
    }
}

/// Where an op reads an object besides the source (a composite's image, a
/// lut's `.cube`, a mask).
#[derive(Debug, Clone, PartialEq)]
pub struct OverlaySource {
    /// The string the op names it by (`source`, `object`).
    pub source: String,
    /// The storage key.
    pub key: String,
}

/// A validated edit.
#[derive(Debug, Clone)]
pub struct Edit {
    /// The source object.
    pub source: ObjectName,
    /// Shared ops, validated.
    pub ops: Vec<Op>,
    /// Shared ops as given.
    pub(crate) specs: Vec<OpSpec>,
    /// Outputs.
    pub outputs: Vec<Output>,
    /// Overlay images to fetch, each once.
    pub overlays: Vec<OverlaySource>,
    /// `.cube` LUTs to fetch, each once.
    pub luts: Vec<OverlaySource>,
    /// Masks to fetch, each once.
    pub masks: Vec<OverlaySource>,
    /// Whether to render from the source or from its original.
    pub from: RenderFrom,
    /// The colour space of the ops and the versions.
    pub color: ColorSpace,
    /// Whether the source's EXIF may be carried to outputs that keep it
    /// (false when rendering from an original whose EXIF a version in
    /// between dropped).
    pub(crate) source_exif: bool,
    /// What the job declared the content to be, for its Content
    /// Credentials.
    pub digital_source_type: Option<DigitalSourceType>,
}

impl Edit {
    /// Find the objects the ops read besides the source (composite images,
    /// `.cube` LUTs, masks), each once, as storage keys.
    pub(crate) fn resolve_inputs(
        &mut self,
        image: &ImageId,
        cfg: &WorkerConfig,
    ) -> Result<(), JobError> {
        let all = || {
            self.ops
                .iter()
                .chain(self.outputs.iter().flat_map(|o| &o.ops))
        };
        self.overlays = input_sources(image, all(), cfg, |op| match op.unmasked() {
            Op::Composite(o) => Some(&o.source),
            _ => None,
        })?;
        self.luts = input_sources(image, all(), cfg, |op| match op.unmasked() {
            Op::Lut(l) => Some(&l.object),
            _ => None,
        })?;
        self.masks = input_sources(image, all(), cfg, |op| op.mask().map(|m| &m.object))?;
        Ok(())
    }

    /// The edit with every op bound to the job's fetched inputs
    /// ([`Op::bind`]).
    pub fn bound(&self, ctx: &crate::ops::OpContext) -> Result<Edit, JobError> {
        let mut e = self.clone();
        for op in e
            .ops
            .iter_mut()
            .chain(e.outputs.iter_mut().flat_map(|o| o.ops.iter_mut()))
        {
            op.bind(ctx)?;
        }
        Ok(e)
    }
}

/// What a validated job does.
#[derive(Debug, Clone)]
pub enum Task {
    /// Derive versions.
    Edit(Edit),
    /// Delete the image.
    Purge,
    /// Delete every object under the folder (an account), and its exports.
    PurgeTree,
    /// Archive the image's objects, or with `recursive` every image under
    /// the folder.
    Export {
        /// Every image under the folder, not only the folder's objects.
        recursive: bool,
    },
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Image folder.
    pub image: ImageId,
    /// What to do.
    pub task: Task,
}

impl Job {
    /// The edit, when the job is one.
    pub fn into_edit(self) -> Option<Edit> {
        match self.task {
            Task::Edit(e) => Some(e),
            _ => None,
        }
    }

    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        match self.task {
            Task::Edit(_) => JobKind::Edit,
            Task::Purge | Task::PurgeTree => JobKind::Purge,
            Task::Export { .. } => JobKind::Export,
        }
    }
}

/// What can be told about a message even when it fails validation: used to
/// address the failed result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The `id` field, when it is a valid id.
    pub id: Option<String>,
    /// The `type` field, when recognised.
    pub kind: Option<JobKind>,
    /// The `image` field, when a string.
    pub image: Option<String>,
}

/// Read the identity fields of a message without validating the rest.
pub(crate) fn identify(body: &[u8]) -> Identity {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Identity::default();
    };
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Identity {
        id: s("id").filter(|id| valid_id(id)),
        kind: v
            .get("type")
            .and_then(|t| serde_json::from_value(t.clone()).ok()),
        image: s("image").filter(|i| i.len() <= keys::MAX_IMAGE_LEN),
    }
}

/// Refuse an account-wide job's folder unless it lies strictly inside one
/// of the account roots: `users/42` when `users` is a root, never `users`
/// itself (every account) nor a folder outside the roots.
fn check_account_folder(dir: &str, rights: &DataRights) -> Result<(), JobError> {
    let inside = rights
        .account_roots
        .iter()
        .any(|root| dir != root.as_str() && keys::prefix_matches(dir, root));
    if inside {
        Ok(())
    } else {
        Err(JobError::forbidden_key(format!(
            "a recursive job must name a folder inside an account root ({}), such as {}/42",
            rights.account_roots.join(", "),
            rights.account_roots.first().map_or("users", String::as_str)
        )))
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_JOB_ID_LEN).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Classify a serde error on part of a message.
fn part_error(path: &str, e: serde_json::Error) -> JobError {
    let msg = e.to_string();
    let code = if msg.starts_with("unknown field") {
        ErrorCode::InvalidJob
    } else {
        ErrorCode::InvalidParam
    };
    JobError::new(code, format!("{path}: {msg}"))
}

/// Check every op in a JSON array: known name, parameters of the right shape.
fn prescan_ops(ops: Option<&Value>, path: &str) -> Result<(), JobError> {
    let Some(ops) = ops else { return Ok(()) };
    let ops = ops
        .as_array()
        .ok_or_else(|| JobError::invalid_job(format!("{path} must be an array")))?;
    for (i, op) in ops.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::invalid_job(format!("{at}: missing \"op\"")))?;
        if canonical_name(name).is_none() {
            let shown: String = name.chars().take(64).collect();
            return Err(JobError::unsupported_op(format!(
                "{at}: unknown op {shown:?}"
            )));
        }
        serde_json::from_value::<OpSpec>(op.clone())
            .map_err(|e| part_error(&blamed_param(&at, op, &e), e))?;
    }
    Ok(())
}

/// The path of the parameter a serde error on `op` (at `at`) is about:
/// serde's own messages for a bad value ("colour must be #RGB, ...",
/// "unknown variant ...", "invalid type ...") do not name the field, so
/// each parameter is tried alone, and the one that alone gives the same
/// error is named. `at` itself where none does (or the message already
/// names it: unknown fields).
fn blamed_param(at: &str, op: &Value, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let Some(fields) = op.as_object() else {
        return at.to_string();
    };
    // These name the field themselves (a missing one is named in the
    // message, and any present field alone would "give" the same error).
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        return at.to_string();
    }
    for (name, value) in fields {
        if name == "op" || name == "mask" {
            continue;
        }
        let alone = serde_json::json!({"op": fields["op"], name.as_str(): value});
        if serde_json::from_value::<OpSpec>(alone).is_err_and(|e| e.to_string() == msg) {
            return format!("{at}.{name}");
        }
    }
    at.to_string()
}

/// Validate ops into runnable ones, prefixing errors with their position.
fn validate_ops(specs: &[OpSpec], path: &str, cfg: &WorkerConfig) -> Result<Vec<Op>, JobError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.validate(&cfg.limits)
                .map_err(|e: ParamError| e.at(&format!("{path}[{i}]")).into())
        })
        .collect()
}

impl Job {
    /// Parse and validate a job message.
    pub fn parse(body: &[u8], cfg: &WorkerConfig) -> Result<Job, JobError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            // JSON has no NaN or infinity; a number too large for f64 is how
            // a non-finite parameter arrives.
            if e.to_string().starts_with("number out of range") {
                JobError::invalid_param(format!("a number is out of range: {e}"))
            } else {
                JobError::invalid_job(format!("not JSON: {e}"))
            }
        })?;
        if !v.is_object() {
            return Err(JobError::invalid_job("a job must be a JSON object"));
        }
        if v.get("schema").and_then(Value::as_u64) != Some(u64::from(SCHEMA_VERSION)) {
            return Err(JobError::invalid_job(format!(
                "\"schema\" must be {SCHEMA_VERSION}"
            )));
        }
        prescan_ops(v.get("ops"), "ops")?;
        if let Some(outs) = v.get("outputs").and_then(Value::as_array) {
            for (i, o) in outs.iter().enumerate() {
                prescan_ops(o.get("ops"), &format!("outputs[{i}].ops"))?;
                serde_json::from_value::<OutputSpec>(o.clone())
                    .map_err(|e| part_error(&format!("outputs[{i}]"), e))?;
            }
        }
        let msg: JobMessage =
            serde_json::from_value(v).map_err(|e| JobError::invalid_job(e.to_string()))?;
        msg.validate(cfg)
    }
}

impl JobMessage {
    /// Refuse an edit's fields in a purge or an export (`what`).
    fn folder_job_fields_only(&self, what: &str) -> Result<(), JobError> {
        if self.source.is_some()
            || self.ops.is_some()
            || self.outputs.is_some()
            || self.from.is_some()
            || self.color.is_some()
            || self.digital_source_type.is_some()
        {
            return Err(JobError::invalid_job(format!(
                "{what} job has only schema, id, type, image and recursive"
            )));
        }
        Ok(())
    }

    /// Validate a deserialised message.
    pub fn validate(&self, cfg: &WorkerConfig) -> Result<Job, JobError> {
        let lim = &cfg.limits;
        if self.schema != SCHEMA_VERSION {
            return Err(JobError::invalid_job(format!(
                "\"schema\" must be {SCHEMA_VERSION}"
            )));
        }
        if !valid_id(&self.id) {
            return Err(JobError::invalid_job(format!(
                "\"id\" must be [A-Za-z0-9_-]{{1,{MAX_JOB_ID_LEN}}}"
            )));
        }
        let image = ImageId::parse(&self.image, &cfg.allow_prefixes)?;
        let task = match self.kind {
            JobKind::Export => {
                self.folder_job_fields_only("an export")?;
                let recursive = self.recursive == Some(true);
                if recursive {
                    check_account_folder(image.as_str(), &cfg.data_rights)?;
                }
                Task::Export { recursive }
            }
            JobKind::Purge => {
                self.folder_job_fields_only("a purge")?;
                if self.recursive == Some(true) {
                    check_account_folder(image.as_str(), &cfg.data_rights)?;
                    Task::PurgeTree
                } else {
                    Task::Purge
                }
            }
            JobKind::Edit => {
                if self.recursive.is_some() {
                    return Err(JobError::invalid_job(
                        "\"recursive\" belongs to purge and export jobs, not to an edit",
                    ));
                }
                let source = self
                    .source
                    .as_deref()
                    .ok_or_else(|| JobError::invalid_job("\"source\" is required"))?;
                let source = ObjectName::parse(source)?;
                let outputs = self.outputs.as_deref().unwrap_or_default();
                if outputs.is_empty() {
                    return Err(JobError::invalid_job(
                        "\"outputs\" must list at least one version",
                    ));
                }
                if outputs.len() > lim.max_outputs {
                    return Err(JobError::limit_exceeded(format!(
                        "{} outputs, at most {} allowed",
                        outputs.len(),
                        lim.max_outputs
                    )));
                }
                let specs = self.ops.clone().unwrap_or_default();
                let n_ops = specs.len()
                    + outputs
                        .iter()
                        .map(|o| o.ops.as_ref().map_or(0, Vec::len))
                        .sum::<usize>();
                if n_ops > lim.max_ops {
                    return Err(JobError::limit_exceeded(format!(
                        "{n_ops} ops, at most {} allowed",
                        lim.max_ops
                    )));
                }
                let ops = validate_ops(&specs, "ops", cfg)?;
                let mut seen = HashSet::new();
                let outputs = outputs
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let out = o.validate(i, cfg)?;
                        if !seen.insert(out.version.clone()) {
                            return Err(JobError::invalid_job(format!(
                                "version {:?} appears twice",
                                out.version
                            )));
                        }
                        if out.object.stem() == source.stem() {
                            return Err(JobError::invalid_job(format!(
                                "outputs[{i}]: version {:?} would overwrite the source",
                                out.version
                            )));
                        }
                        Ok(out)
                    })
                    .collect::<Result<Vec<_>, JobError>>()?;
                let mut edit = Edit {
                    source,
                    ops,
                    specs,
                    outputs,
                    overlays: Vec::new(),
                    luts: Vec::new(),
                    masks: Vec::new(),
                    from: self.from.unwrap_or_default(),
                    color: self.color.unwrap_or_default(),
                    source_exif: true,
                    digital_source_type: self.digital_source_type,
                };
                edit.resolve_inputs(&image, cfg)?;
                Task::Edit(edit)
            }
        };
        Ok(Job {
            id: self.id.clone(),
            image,
            task,
        })
    }
}

impl OutputSpec {
    fn validate(&self, i: usize, cfg: &WorkerConfig) -> Result<Output, JobError> {
        keys::validate_version(&self.version)?;
        let at = format!("outputs[{i}]");
        let requested = self.format.concrete();
        let candidates = match (requested, &self.candidates) {
            (Some(_), Some(_)) => {
                let what = "applies only with format auto";
                return Err(ParamError::new(&format!("{at}.candidates"), what).into());
            }
            (Some(_), None) => Vec::new(),
            (None, None) => DEFAULT_CANDIDATES.to_vec(),
            (None, Some(list)) => {
                let mut seen = Vec::new();
                for &f in list {
                    if seen.contains(&f) {
                        let what = format!("lists {} twice", f.ext());
                        return Err(ParamError::new(&format!("{at}.candidates"), &what).into());
                    }
                    seen.push(f);
                }
                if seen.is_empty() {
                    let what = "must list at least one format";
                    return Err(ParamError::new(&format!("{at}.candidates"), what).into());
                }
                seen
            }
        };
        if requested.is_none() && self.quality.is_some() {
            let what = "does not apply to format auto (each candidate uses its default)";
            return Err(ParamError::new(&format!("{at}.quality"), what).into());
        }
        // The format the settings below are read for: auto's first
        // candidate stands in until the encoder chooses.
        let format = requested.unwrap_or_else(|| candidates[0]);
        // A setting of one format, given on another's output.
        let only_for = |name: &str, given: bool, format: Format| -> Result<(), JobError> {
            if given && requested != Some(format) {
                let name_of = match format {
                    Format::Jpeg => "jpeg",
                    other => other.ext(),
                };
                let only = format!("only applies to {name_of}");
                return Err(ParamError::new(&format!("{at}.{name}"), &only).into());
            }
            Ok(())
        };
        // A whole-number setting within `min..=max`.
        let in_range = |name: &str, v: i64, min: i64, max: i64| -> Result<u8, JobError> {
            if !(min..=max).contains(&v) {
                let range = format!("{min}..={max}");
                return Err(ParamError::range(&format!("{at}.{name}"), &range).into());
            }
            Ok(v as u8)
        };
        let quality = match (self.quality, format.default_quality()) {
            (Some(_), None) => {
                return Err(
                    ParamError::new(&format!("{at}.quality"), "does not apply to png").into(),
                );
            }
            (Some(q), Some(_)) => Some(in_range("quality", q, MIN_QUALITY, MAX_QUALITY)?),
            (None, d) => d,
        };
        only_for("lossless", self.lossless.is_some(), Format::Webp)?;
        only_for("speed", self.speed.is_some(), Format::Avif)?;
        let speed = match self.speed {
            Some(s) => Some(in_range("speed", s, MIN_AVIF_SPEED, MAX_AVIF_SPEED)?),
            None => (format == Format::Avif).then_some(DEFAULT_AVIF_SPEED),
        };
        only_for("progressive", self.progressive.is_some(), Format::Jpeg)?;
        if self.chroma_subsampling.is_some()
            && !matches!(requested, Some(Format::Jpeg | Format::Avif))
        {
            let what = "only applies to jpeg and avif";
            return Err(ParamError::new(&format!("{at}.chroma_subsampling"), what).into());
        }
        let chroma_subsampling =
            (format == Format::Avif).then(|| self.chroma_subsampling.unwrap_or_default());
        only_for(
            "optimize_coding",
            self.optimize_coding.is_some(),
            Format::Jpeg,
        )?;
        let jpeg = (format == Format::Jpeg).then(|| JpegSettings {
            progressive: self.progressive.unwrap_or(false),
            chroma_subsampling: self.chroma_subsampling.unwrap_or_default(),
            optimize_coding: self.optimize_coding.unwrap_or(false),
        });
        let lossy = if candidates.is_empty() {
            quality.is_some() && self.lossless != Some(true)
        } else {
            candidates.iter().all(|f| f.default_quality().is_some())
        };
        let max_bytes = match self.max_bytes {
            Some(_) if !lossy => {
                let what = "applies to jpeg, lossy webp and avif";
                return Err(ParamError::new(&format!("{at}.max_bytes"), what).into());
            }
            Some(b) if !(1..=MAX_MAX_BYTES).contains(&b) => {
                let range = format!("1..={MAX_MAX_BYTES}");
                return Err(ParamError::range(&format!("{at}.max_bytes"), &range).into());
            }
            other => other.map(|b| b as u64),
        };
        let min_quality = match (self.min_quality, max_bytes) {
            (Some(_), None) => {
                let what = "applies only with max_bytes";
                return Err(ParamError::new(&format!("{at}.min_quality"), what).into());
            }
            (Some(m), Some(_)) => {
                let ceiling = match candidates.is_empty() {
                    true => quality,
                    false => candidates.iter().filter_map(|f| f.default_quality()).min(),
                };
                let ceiling = i64::from(ceiling.unwrap_or(MAX_QUALITY as u8));
                Some(in_range("min_quality", m, MIN_QUALITY, ceiling)?)
            }
            (None, Some(_)) => Some(DEFAULT_MIN_QUALITY.min(quality.unwrap_or(1))),
            (None, None) => None,
        };
        let keep_exif = self.metadata == Some(MetadataPolicy::KeepExif);
        if keep_exif && (format == Format::Webp || candidates.contains(&Format::Webp)) {
            return Err(ParamError::new(
                &format!("{at}.metadata"),
                "keep_exif applies to jpeg, png and avif, not webp",
            )
            .into());
        }
        let specs = self.ops.clone().unwrap_or_default();
        let ops = validate_ops(&specs, &format!("{at}.ops"), cfg)?;
        Ok(Output {
            version: self.version.clone(),
            object: ObjectName::parse(&format!("{}.{}", self.version, format.ext()))?,
            candidates,
            encoding: Encoding {
                format,
                quality,
                lossless: self.lossless.unwrap_or(false),
                keep_exif,
                speed,
                chroma_subsampling,
                jpeg,
                max_bytes,
                min_quality,
            },
            ops,
            specs,
        })
    }
}

/// Resolve the objects ops read besides the source (overlay images, `.cube`
/// LUTs), each named by the string `name` picks from an op, to storage keys,
/// once per name.
fn input_sources<'a>(
    image: &ImageId,
    ops: impl Iterator<Item = &'a Op>,
    cfg: &WorkerConfig,
    name: impl Fn(&'a Op) -> Option<&'a String>,
) -> Result<Vec<OverlaySource>, JobError> {
    let mut out: Vec<OverlaySource> = Vec::new();
    for source in ops.filter_map(name) {
        if out.iter().any(|s| &s.source == source) {
            continue;
        }
        let key = if source.contains('/') {
            let (img, obj) = keys::parse_foreign_key(source, &cfg.watermark_prefixes)?;
            img.key(&obj)
        } else {
            image.key(&ObjectName::parse(source)?)
        };
        out.push(OverlaySource {
            source: source.clone(),
            key,
        });
    }
    Ok(out)
}
