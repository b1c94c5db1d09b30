//! Where pixels are processed: the backend chosen at start-up, and the
//! fallback from the GPU to the CPU when a job fails on the device.

use std::sync::Arc;

use image::RgbaImage;
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

/// Failure to provide the requested backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--backend gpu` without a usable GPU.
    #[error("no usable GPU backend: {0}")]
    NoGpu(String),
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
    /// `gpu` or `cpu`: where the pixels were actually processed.
    pub backend: &'static str,
    /// GPU work counters, when the GPU did the job.
    pub gpu: Option<GpuStats>,
}

/// What `auto` would pick, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AutoDecision {
    /// `gpu` or `cpu`.
    pub backend: &'static str,
    /// The adapter chosen, when the GPU.
    pub adapter: Option<String>,
    /// Why.
    pub reason: String,
}

/// Decide what `auto` picks among `adapters` (best first).
pub fn auto_decision(adapters: &[gpu::AdapterReport]) -> AutoDecision {
    match adapters.iter().find(|a| !a.software) {
        Some(a) => AutoDecision {
            backend: "gpu",
            adapter: Some(a.name.clone()),
            reason: format!("{} is a hardware GPU ({})", a.name, a.device_type),
        },
        None if adapters.is_empty() => AutoDecision {
            backend: "cpu",
            adapter: None,
            reason: "no Vulkan adapter was found".into(),
        },
        None => AutoDecision {
            backend: "cpu",
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
                if d.backend == "cpu" {
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
            Err(e) => Err(BackendError::NoGpu(e.to_string())),
        }
    }

    /// `cpu` or `gpu`: the configured backend.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu(_) => "gpu",
        }
    }

    /// Run the shared ops once, then each output's trailing ops; one image per
    /// output, in order. A GPU failure redoes the job on the CPU.
    pub fn render(&self, src: Frame, edit: &Edit, ctx: &OpContext) -> Result<Rendered, JobError> {
        if let Backend::Gpu(g) = self {
            match g.render(&src, edit, ctx) {
                Ok((images, stats)) => {
                    return Ok(Rendered {
                        images,
                        backend: "gpu",
                        gpu: Some(stats),
                    })
                }
                Err(e) => {
                    g.note_fallback();
                    warn!(reason = %e, "the GPU failed this job; redoing it on the CPU");
                }
            }
        }
        Ok(Rendered {
            images: render_cpu(src, edit, ctx)?,
            backend: "cpu",
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
