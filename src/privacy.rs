//! Process-level privacy settings, applied once at start-up.
//!
//! - Core dumps are off: `RLIMIT_CORE` is 0 (soft and hard, so nothing in the
//!   process can raise it again) and the process is not dumpable
//!   (`PR_SET_DUMPABLE` 0), which also keeps other users' debuggers and
//!   `/proc/<pid>/mem` readers out.
//! - Drivers keep no caches on disk: Mesa's and NVIDIA's shader caches are
//!   switched off through their own environment variables before any GPU
//!   code runs (compiled shaders hold no pixels, but "nothing written to
//!   local disk" admits no exceptions).
//!
//! Freed memory is wiped by the binary's allocator (jemalloc, also serving
//! the C code's `malloc`, with `junk:free`), so source bytes, pixel buffers
//! and encoded outputs are overwritten once a job has dropped them, whatever
//! library allocated them. GPU buffers are zeroed at the end of each job
//! (`gpu::kernels::wipe`).

use rustix::process::{self, DumpableBehavior, Resource, Rlimit};

/// Environment switches that stop GPU drivers from writing caches to disk.
pub(crate) const NO_DISK_CACHE_ENV: &[(&str, &str)] = &[
    // Mesa (lavapipe, RADV, ANV): no on-disk shader cache.
    ("MESA_SHADER_CACHE_DISABLE", "true"),
    // NVIDIA's driver: no on-disk shader cache (OpenGL and Vulkan).
    ("__GL_SHADER_DISK_CACHE", "0"),
];

/// What [`harden`] could not do.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// `setrlimit(RLIMIT_CORE)` failed.
    #[error("cannot disable core dumps (RLIMIT_CORE)")]
    CoreLimit(#[source] std::io::Error),
    /// `prctl(PR_SET_DUMPABLE)` failed.
    #[error("cannot mark the process non-dumpable (PR_SET_DUMPABLE)")]
    Dumpable(#[source] std::io::Error),
}

/// Disable core dumps and make the process non-dumpable.
pub fn harden() -> Result<(), PrivacyError> {
    process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(|e| PrivacyError::CoreLimit(e.into()))?;
    process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| PrivacyError::Dumpable(e.into()))?;
    Ok(())
}

/// Whether core dumps are off, as the kernel reports it now.
pub fn core_dumps_disabled() -> bool {
    let limit = process::getrlimit(Resource::Core);
    limit.current == Some(0)
        && limit.maximum == Some(0)
        && process::dumpable_behavior().ok() == Some(DumpableBehavior::NotDumpable)
}

/// Set [`NO_DISK_CACHE_ENV`], overriding what the environment says.
///
/// # Safety
/// Must run while the process is single-threaded (it changes the
/// environment).
pub unsafe fn disable_driver_disk_caches() {
    for (k, v) in NO_DISK_CACHE_ENV {
        // SAFETY: the caller guarantees no other thread runs.
        unsafe { std::env::set_var(k, v) };
    }
}
