//! JSON Schemas of the messages, generated from the Rust types.

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
