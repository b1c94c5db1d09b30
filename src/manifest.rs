//! Version manifests: what a version is and how it was made.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::color::ColorHandling;
use crate::job::{Encoding, Format};
use crate::ops::OpSpec;

/// How a version was derived from its parent; `parent_recipe` continues the
/// chain back to the original (absent when the parent has no manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The object this version was made from.
    pub parent: String,
    /// Ops applied to the parent: the job's shared ops, then the output's own.
    pub ops: Vec<OpSpec>,
    /// Encoding of this version.
    pub output: Encoding,
    /// How its colours were handled (absent from manifests written before
    /// imgworker managed colour: their pixels kept the source's space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<ColorHandling>,
    /// With `format: auto`: the candidates `output.format` was chosen from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<Format>>,
    /// The parent's own recipe, when the parent is a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_recipe: Option<Box<Recipe>>,
    /// Present when the version was rendered from the original
    /// (`"from": "original"`): what was decoded and every op applied to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_original: Option<FromOriginal>,
}

/// How a version rendered from the original was made: one decode of
/// `object`, then `ops`, then one encode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromOriginal {
    /// The object the lineage starts from.
    pub object: String,
    /// The recipes of the lineage and this version's own ops, composed.
    pub ops: Vec<OpSpec>,
}

impl Recipe {
    /// The chain from the original to this version, oldest first.
    pub fn lineage(&self) -> Vec<&Recipe> {
        let mut chain = vec![self];
        while let Some(p) = chain.last().and_then(|r| r.parent_recipe.as_deref()) {
            chain.push(p);
        }
        chain.reverse();
        chain
    }
}

/// The manifest stored beside each version as `{version}.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always 1.
    pub schema: u32,
    /// Image folder.
    pub image: String,
    /// Version name.
    pub version: String,
    /// Object name of the version.
    pub object: String,
    /// Object it was made from.
    pub parent: String,
    /// How it was made.
    pub recipe: Recipe,
    /// Encoding.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Stored size in bytes.
    pub bytes: u64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
    /// RFC 3339 time the version was first written.
    pub created_at: String,
    /// The job that wrote it.
    pub job_id: String,
    /// `gpu` or `cpu`.
    pub backend: String,
    /// Encryption at rest, when used (key id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<serde_json::Value>,
}
