//! `imgworker bench --kernels`: each op's GPU kernels alone, timed by the
//! device's timestamp queries around every compute pass, at 1920x1080,
//! 3840x2160 and 7680x4320. Each op runs its first registry example (and
//! resize also in linear light, `resize_linear`) on the photo scaled to
//! each size. Effective bandwidth is the bytes of the op's input and output
//! images over the kernel time: a floor on the traffic (a multi-pass op
//! moves more), so that per-pixel and copy kernels can be held against the
//! device's memory bandwidth. A GPU node's first look at the device
//! (`scripts/gpu-node-check.sh`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::BenchError;
use crate::backend::{Backend, BackendChoice};
use crate::config::WorkerConfig;
use crate::job::{Edit, Job};
use crate::ops::{Frame, OpContext, OPS};

/// The frame sizes timed.
pub const SIZES: [(u32, u32); 3] = [(1920, 1080), (3840, 2160), (7680, 4320)];

/// One op at one size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRow {
    /// The op (`resize_linear`: resize's first example in linear light).
    pub op: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Median kernel time over the rounds, milliseconds; `None` where the
    /// op did not run on the GPU (see `note`).
    pub kernel_ms: Option<f64>,
    /// Compute passes per render.
    pub dispatches: u32,
    /// Bytes of the input and output images.
    pub bytes: u64,
    /// `bytes` over the kernel time, GB/s.
    pub gb_per_s: Option<f64>,
    /// Why there is no time (an image larger than one storage binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Every op at every size, on one device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelReport {
    /// The adapter's name.
    pub adapter: String,
    /// Timed rounds per cell (after one untimed).
    pub iterations: usize,
    /// The cells, op by op.
    pub rows: Vec<KernelRow>,
}

impl KernelReport {
    /// A Markdown table of the report.
    pub fn table(&self) -> String {
        let mut out = format!(
            "GPU kernels on {} (median of {} rounds, timestamp queries)\n\n\
             | op | size | kernel ms | passes | GB/s |\n| --- | --- | ---: | ---: | ---: |\n",
            self.adapter, self.iterations
        );
        for r in &self.rows {
            let (ms, bw) = match (r.kernel_ms, r.gb_per_s) {
                (Some(ms), Some(bw)) => (format!("{ms:.3}"), format!("{bw:.1}")),
                _ => (r.note.clone().unwrap_or_default(), String::new()),
            };
            out.push_str(&format!(
                "| {} | {}x{} | {ms} | {} | {bw} |\n",
                r.op, r.width, r.height, r.dispatches
            ));
        }
        out
    }
}

/// The ops timed: each op's first registry example, then `resize_linear`.
fn cases() -> Vec<(String, Value)> {
    let mut cases: Vec<(String, Value)> = OPS
        .iter()
        .map(|op| {
            let case: Value = serde_json::from_str(op.examples[0]).expect("a JSON example");
            (op.name.to_string(), case)
        })
        .collect();
    if let Some((_, resize)) = cases.iter().find(|(n, _)| n == "resize") {
        let mut linear = resize.clone();
        linear["linear"] = json!(true);
        cases.push(("resize_linear".into(), linear));
    }
    cases
}

fn edit(op: &Value) -> Result<Edit, BenchError> {
    let body = json!({
        "schema": 1, "id": "kernels", "type": "edit", "image": "bench/kernels",
        "source": "original.jpg", "ops": [op],
        "outputs": [{"version": "v", "format": "png"}]
    });
    let job = Job::parse(body.to_string().as_bytes(), &WorkerConfig::new())
        .map_err(|e| BenchError::Config(format!("{op}: {}", e.message)))?;
    Ok(job.into_edit().expect("an edit job"))
}

/// The inputs the registry's examples name: `logo.png`, `grade.cube`
/// (a 33-point cube) and `mask.png`.
fn inputs() -> Result<OpContext, BenchError> {
    let logo = image::RgbaImage::from_fn(256, 256, |x, y| {
        image::Rgba([x as u8, y as u8, 200, ((x + y) / 2) as u8])
    });
    let cube = crate::ops::lut::Cube::parse("grade.cube", super::jobs::grade_cube(33).as_bytes())
        .map_err(|e| BenchError::Config(e.to_string()))?;
    Ok(OpContext {
        overlays: HashMap::from([("logo.png".to_string(), Arc::new(logo))]),
        luts: HashMap::from([("grade.cube".to_string(), Arc::new(cube))]),
        masks: HashMap::from([(
            "mask.png".to_string(),
            Arc::new(super::jobs::soft_mask(1024, 768)),
        )]),
        deadline: None,
    })
}

/// Time every op's kernels on the GPU at each of `sizes`, on the photo at
/// `input` scaled to each; `iterations` timed rounds after one untimed. An
/// op whose images do not fit one storage binding (lavapipe's 128 MiB holds
/// no 7680x4320 frame) gets a row with a note instead of a time. Fails
/// where the adapter has no timestamp queries.
pub fn run(
    input: &Path,
    sizes: &[(u32, u32)],
    iterations: usize,
    progress: bool,
) -> Result<KernelReport, BenchError> {
    let iterations = iterations.max(1);
    let backend = Backend::select(BackendChoice::Gpu)
        .map_err(|e| BenchError::Config(format!("--kernels needs a GPU: {e}")))?;
    let Backend::Gpu(gpu) = &backend else {
        return Err(BenchError::Config("--kernels needs a GPU".into()));
    };
    if !gpu.has_timestamps() {
        return Err(BenchError::Config(format!(
            "{} has no timestamp queries: kernel times cannot be measured",
            gpu.adapter_name()
        )));
    }
    let bytes =
        std::fs::read(input).map_err(|e| BenchError::Input(format!("{}: {e}", input.display())))?;
    let photo = image::load_from_memory(&bytes)
        .map_err(|e| BenchError::Input(format!("{}: {e}", input.display())))?
        .into_rgba8();
    let ctx = inputs()?;
    let cases = cases();
    let mut rows = Vec::new();
    for &(w, h) in sizes {
        let frame = image::imageops::resize(&photo, w, h, image::imageops::FilterType::Triangle);
        for (name, op) in &cases {
            let e = edit(op)?;
            let in_bytes = u64::from(w) * u64::from(h) * 4;
            let mut times = Vec::with_capacity(iterations);
            let mut last = None;
            let mut note = None;
            for round in 0..=iterations {
                let f = Frame {
                    img: frame.clone(),
                    orientation: if name == "auto_orient" { 6 } else { 1 },
                };
                let r = backend
                    .render(f, &e, &ctx)
                    .map_err(|e| BenchError::Tool(format!("{name} at {w}x{h}: {}", e.message)))?;
                let Some(stats) = r.gpu else {
                    // The only fallback of a healthy device: an image larger
                    // than one storage binding.
                    note = Some(format!(
                        "on the CPU: an image over the {} MiB storage binding",
                        gpu.max_binding() >> 20
                    ));
                    last = Some((0, r.images[0].dimensions()));
                    break;
                };
                if round > 0 {
                    times.push(stats.kernel_ns.unwrap_or(0) as f64 / 1e6);
                }
                last = Some((stats.dispatches, r.images[0].dimensions()));
            }
            times.sort_by(f64::total_cmp);
            let kernel_ms = note.is_none().then(|| times[times.len() / 2]);
            let (dispatches, (ow, oh)) = last.expect("at least one round");
            let bytes = in_bytes + u64::from(ow) * u64::from(oh) * 4;
            let gb_per_s = kernel_ms
                .filter(|&ms| ms > 0.0)
                .map(|ms| bytes as f64 / (ms / 1e3) / 1e9);
            if progress {
                match (kernel_ms, gb_per_s) {
                    (Some(ms), Some(bw)) => eprintln!("{name} {w}x{h}: {ms:.3} ms, {bw:.1} GB/s"),
                    _ => eprintln!("{name} {w}x{h}: {}", note.as_deref().unwrap_or("no time")),
                }
            }
            rows.push(KernelRow {
                op: name.clone(),
                width: w,
                height: h,
                kernel_ms,
                dispatches,
                bytes,
                gb_per_s,
                note,
            });
        }
    }
    Ok(KernelReport {
        adapter: gpu.adapter_name().to_string(),
        iterations,
        rows,
    })
}
