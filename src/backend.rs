//! Where pixels are processed: the backend chosen at start-up.

use image::RgbaImage;

use crate::error::JobError;
use crate::job::Edit;
use crate::ops::{run_chain_cpu, Frame, OpContext};

/// What the user asked for (`--backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A real GPU when one is usable, else the CPU.
    #[default]
    Auto,
    /// The GPU; refuse to start without one.
    Gpu,
    /// The CPU.
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
}

impl Backend {
    /// Pick the backend for a choice; `auto` settles on the CPU when no GPU
    /// backend is usable.
    pub fn select(choice: BackendChoice) -> Result<Backend, BackendError> {
        match choice {
            BackendChoice::Cpu | BackendChoice::Auto => Ok(Backend::Cpu),
            BackendChoice::Gpu => Err(BackendError::NoGpu(
                "this build has no GPU backend yet".into(),
            )),
        }
    }

    /// `cpu` or `gpu`, as results and manifests record it.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
        }
    }

    /// Run the shared ops once, then each output's trailing ops; one image per
    /// output, in order.
    pub fn render(
        &self,
        src: Frame,
        edit: &Edit,
        ctx: &OpContext,
    ) -> Result<Vec<RgbaImage>, JobError> {
        match self {
            Backend::Cpu => render_cpu(src, edit, ctx),
        }
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
