//! Where pixels are processed: the backend chosen at start-up, and the
//! fallback from the GPU to the CPU when a job fails on the device.

use std::fmt;
use std::sync::Arc;

use image::RgbaImage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::error::JobError;
use crate::gpu::{self, GpuBackend, GpuStats};
use crate::job::Edit;
use crate::ops::{run_chain_cpu, Frame, OpContext};

/// What the user asked for (`--backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A real GPU when one is usable, else the CPU. A software Vulkan
    /// adapter (lavapipe) is slower than the native CPU code, so `auto`
    /// does not pick one.
    #[default]
    Auto,
    /// The GPU (a software adapter too); refuse to start without one.
    Gpu,
    /// The native CPU code.
    Cpu,
}

/// Where pixels are (or were) processed. Serialised as `"cpu"` / `"gpu"`
/// in results, manifests and `imgworker devices --json`; the same strings
/// are its `Display` form and its metrics label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The native CPU code.
    Cpu,
    /// wgpu compute shaders.
    Gpu,
}

impl BackendKind {
    /// `"cpu"` or `"gpu"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the string form, so `kind == "gpu"` reads as it prints.
impl PartialEq<str> for BackendKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Compares with the string form, so `kind == "gpu"` reads as it prints.
impl PartialEq<&str> for BackendKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Failure to provide the requested backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--backend gpu` without a usable GPU.
    #[error("no usable GPU backend: {0}")]
    NoGpu(String),
    /// `--backend gpu`: an adapter was found but its device could not be
    /// set up.
    #[error("no usable GPU backend: the GPU could not be set up")]
    GpuSetup(#[source] gpu::GpuError),
}

/// A backend ready to run jobs.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Native CPU code (SIMD resize, rayon).
    Cpu,
    /// wgpu compute shaders, with the CPU as fallback.
    Gpu(Arc<GpuBackend>),
}

/// Images for every output, and where they were made.
#[derive(Debug)]
pub struct Rendered {
    /// One image per output, in order.
    pub images: Vec<RgbaImage>,
    /// Where the pixels were actually processed.
    pub backend: BackendKind,
    /// GPU work counters, when the GPU did the job.
    pub gpu: Option<GpuStats>,
}

/// What `auto` would pick, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AutoDecision {
    /// The backend `auto` picks.
    pub backend: BackendKind,
    /// The adapter chosen, when the GPU.
    pub adapter: Option<String>,
    /// Why.
    pub reason: String,
}

/// Decide what `auto` picks among `adapters` (best first).
pub fn auto_decision(adapters: &[gpu::AdapterReport]) -> AutoDecision {
    match adapters.iter().find(|a| !a.software) {
        Some(a) => AutoDecision {
            backend: BackendKind::Gpu,
            adapter: Some(a.name.clone()),
            reason: format!("{} is a hardware GPU ({})", a.name, a.device_type),
        },
        None if adapters.is_empty() => AutoDecision {
            backend: BackendKind::Cpu,
            adapter: None,
            reason: "no Vulkan adapter was found".into(),
        },
        None => AutoDecision {
            backend: BackendKind::Cpu,
            adapter: None,
            reason: format!(
                "only software adapters were found ({}); the native CPU code is faster than a software rasteriser",
                adapters.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

impl Backend {
    /// Pick the backend for a choice.
    pub fn select(choice: BackendChoice) -> Result<Backend, BackendError> {
        if choice == BackendChoice::Cpu {
            return Ok(Backend::Cpu);
        }
        let instance = gpu::instance();
        let adapters = gpu::adapters(&instance);
        let reports: Vec<_> = adapters.iter().map(gpu::report).collect();
        let adapter = match choice {
            BackendChoice::Auto => {
                let d = auto_decision(&reports);
                if d.backend == BackendKind::Cpu {
                    tracing::info!(reason = %d.reason, "backend auto: using the CPU");
                    return Ok(Backend::Cpu);
                }
                adapters
                    .into_iter()
                    .find(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
            }
            _ => adapters.into_iter().next(),
        };
        let Some(adapter) = adapter else {
            return Err(BackendError::NoGpu(
                "no Vulkan adapter found; install a GPU driver, or Mesa's software driver with `apt-get install mesa-vulkan-drivers libvulkan1`"
                    .into(),
            ));
        };
        match GpuBackend::new(instance, &adapter) {
            Ok(g) => Ok(Backend::Gpu(Arc::new(g))),
            Err(e) if choice == BackendChoice::Auto => {
                warn!(error = %e, "backend auto: the GPU could not be set up; using the CPU");
                Ok(Backend::Cpu)
            }
            Err(e) => Err(BackendError::GpuSetup(e)),
        }
    }

    /// The configured backend's kind.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Cpu => BackendKind::Cpu,
            Backend::Gpu(_) => BackendKind::Gpu,
        }
    }

    /// `"cpu"` or `"gpu"`: [`Self::kind`] as a string, for tracing fields
    /// (which take `&str`, not `Display` types, without a `%`).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Run the shared ops once, then each output's trailing ops; one image per
    /// output, in order. A GPU failure redoes the job on the CPU; a failure
    /// of the job itself is returned as it is.
    pub fn render(&self, src: Frame, edit: &Edit, ctx: &OpContext) -> Result<Rendered, JobError> {
        let edit = &edit.bound(ctx)?;
        if let Backend::Gpu(g) = self {
            match g.render(&src, edit, ctx) {
                Ok((images, stats)) => {
                    return Ok(Rendered {
                        images,
                        backend: BackendKind::Gpu,
                        gpu: Some(stats),
                    })
                }
                // The job's own failure (its deadline, an all-border trim)
                // is the same on the CPU: no reason to redo it there.
                Err(crate::gpu::GpuError::Job(e)) => return Err(e),
                Err(e) => {
                    g.note_fallback();
                    warn!(reason = %e, "the GPU failed this job; redoing it on the CPU");
                }
            }
        }
        Ok(Rendered {
            images: render_cpu(src, edit, ctx)?,
            backend: BackendKind::Cpu,
            gpu: None,
        })
    }
}

fn render_cpu(src: Frame, edit: &Edit, ctx: &OpContext) -> Result<Vec<RgbaImage>, JobError> {
    let shared = run_chain_cpu(src, &edit.ops, ctx)?;
    let n = edit.outputs.len();
    let mut shared = Some(shared);
    let mut out = Vec::with_capacity(n);
    for (i, o) in edit.outputs.iter().enumerate() {
        // The last output takes the shared frame; the others work on copies.
        let frame = if i + 1 == n {
            shared.take().expect("shared frame")
        } else {
            shared.clone().expect("shared frame")
        };
        out.push(run_chain_cpu(frame, &o.ops, ctx)?.img);
    }
    Ok(out)
}
