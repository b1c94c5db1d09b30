//! The engine's configuration: job limits, prefixes and the worker's name.
//! How they are set (defaults, file, environment, flags) is
//! [`crate::settings`].

use std::sync::Arc;
use std::time::Duration;

use crate::content_credentials::ContentCredentials;

/// Resource limits applied to every job (docs/contract.md, "Limits"). Exceeding one is
/// `limit_exceeded`, checked before the memory it guards is allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest source object in bytes. Default: 50 MB.
    pub max_source_bytes: u64,
    /// Largest source in pixels, read from the header before decoding. Default: 50 MP.
    pub max_source_pixels: u64,
    /// Largest output (and intermediate) image in pixels. Default: 50 MP.
    pub max_output_pixels: u64,
    /// Largest side of any image, source or output. Default: 65 535.
    pub(crate) max_side: u32,
    /// Most ops in one job, shared and per-output together. Default: 32.
    pub max_ops: usize,
    /// Most outputs in one job. Default: 8.
    pub max_outputs: usize,
    /// Wall-clock budget for one job. Default: 60 s. Exports and
    /// recursive purges have none: they run for as long as the account's
    /// size needs, within the export limits below.
    pub deadline: Duration,
    /// Most objects in one export archive. Default: 100 000.
    pub max_export_objects: u64,
    /// Most bytes of objects in one export archive. Default: 16 GiB.
    pub max_export_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_source_bytes: 50_000_000,
            max_source_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
            max_side: 65_535,
            max_ops: 32,
            max_outputs: 8,
            deadline: Duration::from_secs(60),
            max_export_objects: 100_000,
            max_export_bytes: 16 << 30,
        }
    }
}

impl Limits {
    /// Bytes the decoder may allocate for one image: the pixel limit at the
    /// widest sample type we accept (16-bit RGBA), plus slack for decoder state.
    pub(crate) fn max_decode_alloc(&self) -> u64 {
        self.max_source_pixels
            .saturating_mul(8)
            .saturating_add(64 << 20)
    }
}

/// Settings for running jobs, whatever delivers them.
#[derive(Debug, Clone, Default)]
pub struct WorkerConfig {
    /// Resource limits.
    pub limits: Limits,
    /// Optional allow-list of image prefixes (e.g. `users/`). Empty: all allowed.
    pub allow_prefixes: Vec<String>,
    /// Prefixes from which overlays may be read across images (e.g. `watermarks/`).
    pub watermark_prefixes: Vec<String>,
    /// Name this worker reports in results. Default: host name and pid.
    pub worker_name: String,
    /// Where accounts live and where their exports go.
    pub data_rights: DataRights,
    /// The signer of the versions' C2PA Content Credentials; none: versions
    /// carry none.
    pub content_credentials: Option<Arc<ContentCredentials>>,
}

/// The folders that account-wide jobs (a recursive purge, a prefix export)
/// may name, and where export archives are written (docs/contract.md,
/// "Data rights").
#[derive(Debug, Clone, PartialEq)]
pub struct DataRights {
    /// Folders whose sub-folders are accounts (default `users`): a
    /// recursive job must name a folder strictly inside one, so `users/42`
    /// is allowed and `users` (every account at once) is not.
    pub account_roots: Vec<String>,
    /// The folder export archives are written under (default `exports`):
    /// the export of `users/42` is `exports/users/42/<job id>.tar`, and a
    /// recursive purge of `users/42` deletes `exports/users/42` too. Never
    /// inside an account root, so an export is not part of the images it
    /// exports.
    pub export_prefix: String,
}

impl Default for DataRights {
    fn default() -> Self {
        Self {
            account_roots: vec!["users".into()],
            export_prefix: "exports".into(),
        }
    }
}

impl DataRights {
    /// The export folder of account-wide folder `dir`.
    pub fn export_dir(&self, dir: &str) -> String {
        format!("{}/{dir}", self.export_prefix)
    }

    /// Check the settings: every folder a valid key, and the export folder
    /// neither inside an account root nor holding one.
    pub fn check(&self) -> Result<(), String> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.split('/').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
        };
        if !valid(&self.export_prefix) {
            return Err(format!(
                "export_prefix {:?} must be segments of [A-Za-z0-9_-] joined by '/'",
                self.export_prefix
            ));
        }
        for root in &self.account_roots {
            if !valid(root) {
                return Err(format!(
                    "account root {root:?} must be segments of [A-Za-z0-9_-] joined by '/'"
                ));
            }
            if crate::keys::prefix_matches(&self.export_prefix, root)
                || crate::keys::prefix_matches(root, &self.export_prefix)
            {
                return Err(format!(
                    "export_prefix {:?} and account root {root:?} overlap: exports must live outside the accounts' images",
                    self.export_prefix
                ));
            }
        }
        Ok(())
    }
}

impl WorkerConfig {
    /// A configuration with default limits and this process's worker name.
    pub fn new() -> Self {
        Self {
            worker_name: default_worker_name(),
            ..Default::default()
        }
    }
}

/// `hostname:pid`, the default worker name.
pub(crate) fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}
