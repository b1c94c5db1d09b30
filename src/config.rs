//! The engine's configuration: job limits, prefixes and the worker's name.
//! How they are set (defaults, file, environment, flags) is
//! [`crate::settings`].

use std::time::Duration;

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
    /// Wall-clock budget for one job. Default: 60 s.
    pub deadline: Duration,
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
