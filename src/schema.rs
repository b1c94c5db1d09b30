//! JSON Schemas of the messages, generated from the Rust types.
//!
//! The job schema holds every range, pattern, length and list of values the
//! worker checks one field at a time, taken from the constants the
//! validation uses (`tests/schema_bounds.rs` holds the two to each other at
//! both sides of every limit). Limits that are worker settings (`max_side`,
//! `max_ops`, `max_outputs`) are stated at their defaults; allow-lists of
//! prefixes (`allow_prefixes`, `watermark_prefixes`) are not stated at all.
//! Rules between fields (what an edit or a purge carries, `quality` not with
//! png, `x` and `y` together, and the like) are written in the descriptions,
//! not expressed as schema.
//!
//! String patterns are anchored with `^...$`; as `$` also matches before a
//! final line break in some regex dialects (Python's `re`, which the
//! `jsonschema` package uses), key and colour fields also refuse line breaks
//! under `not` ([`crate::keys::LINE_BREAKS`]). JSON Schema counts `1.0` as an
//! integer while the worker wants integer fields written without a fraction:
//! that difference of type cannot be expressed.

use crate::job::JobMessage;
use crate::manifest::Manifest;
use crate::result::ResultMessage;

/// The schemas of the job, result and manifest documents, as one JSON object.
pub fn all() -> serde_json::Value {
    serde_json::json!({
        "job": schemars::schema_for!(JobMessage),
        "result": schemars::schema_for!(ResultMessage),
        "manifest": schemars::schema_for!(Manifest),
    })
}
