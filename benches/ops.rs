//! Every op of the registry (its first example; resize also in linear
//! light, `resize_linear`) on the CPU and on the GPU at
//! 1024x576, 1920x1080 and 3840x2160, on the real photo scaled to each size. A GPU sample in `ops/gpu` is a
//! whole render: upload, the op's dispatches and the readback; `ops/gpu-kernel`
//! times the same renders by the device's timestamp queries around each
//! compute pass, the kernels alone (where the adapter has timestamp queries).
//! Device and pipelines are set up once, outside the timing; so are the
//! frames.
//!
//! `cargo bench --bench ops [-- FILTER]` (needs scripts/fetch-photos.sh; the
//! GPU group needs a Vulkan adapter, lavapipe included, and is skipped with
//! a note without one).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use imgworker::backend::{Backend, BackendChoice};
use imgworker::ops::{Frame, OpContext, OPS};
use serde_json::{json, Value};

/// One case per op: the first example of each op in the registry; then
/// `resize_linear`, resize's first example in linear light, whose time
/// beside `resize`'s is the cost of `"linear": true`.
fn cases() -> Vec<(&'static str, Value)> {
    let mut cases: Vec<(&'static str, Value)> = OPS
        .iter()
        .map(|op| {
            let case: Value = serde_json::from_str(op.examples[0]).expect("a JSON example");
            (op.name, json!([case]))
        })
        .collect();
    let mut linear = cases
        .iter()
        .find(|(name, _)| *name == "resize")
        .expect("resize is in the registry")
        .1
        .clone();
    linear[0]["linear"] = json!(true);
    cases.push(("resize_linear", linear));
    cases
}

/// Which clock a group reads.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    /// Host wall time of the whole render.
    Wall,
    /// The device's timestamps around the kernels.
    Kernel,
}

fn bench_backend(c: &mut Criterion, name: &str, backend: &Backend, clock: Clock) {
    let frames = common::photo_frames();
    let mut ctx = OpContext::default();
    let wm = image::RgbaImage::from_fn(256, 256, |x, y| {
        image::Rgba([x as u8, y as u8, 200, ((x + y) / 2) as u8])
    });
    // The overlay examples composite `logo.png`; the lut examples grade
    // with `grade.cube`, a 33-point cube (a common size).
    ctx.overlays = HashMap::from([("logo.png".to_string(), Arc::new(wm))]);
    ctx.luts = HashMap::from([("grade.cube".to_string(), Arc::new(common::grade_cube(33)))]);
    // The masked examples are limited by `mask.png`, a soft disc of another
    // size than the photo (their `fit` scales it).
    ctx.masks = HashMap::from([(
        "mask.png".to_string(),
        Arc::new(common::soft_mask(1024, 768)),
    )]);
    let mut group = c.benchmark_group(format!("ops/{name}"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for img in &frames {
        let (w, h) = img.dimensions();
        group.throughput(Throughput::Elements(u64::from(w) * u64::from(h)));
        for (op, ops) in cases() {
            let edit = common::edit(ops.clone());
            // auto_orient has work to do only on a rotated source.
            let orientation = if op == "auto_orient" { 6 } else { 1 };
            let frame = || Frame {
                img: img.clone(),
                orientation,
            };
            let id = BenchmarkId::new(op, format!("{w}x{h}"));
            match clock {
                Clock::Wall => group.bench_function(id, |b| {
                    b.iter_batched(
                        frame,
                        |f| backend.render(f, &edit, &ctx).expect("renders"),
                        BatchSize::LargeInput,
                    )
                }),
                Clock::Kernel => group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let done = backend.render(frame(), &edit, &ctx).expect("renders");
                                let ns = done.gpu.and_then(|g| g.kernel_ns).unwrap_or(0);
                                Duration::from_nanos(ns)
                            })
                            .sum()
                    })
                }),
            };
        }
    }
    group.finish();
}

fn ops(c: &mut Criterion) {
    bench_backend(c, "cpu", &Backend::Cpu, Clock::Wall);
    match Backend::select(BackendChoice::Gpu) {
        Ok(gpu) => {
            bench_backend(c, "gpu", &gpu, Clock::Wall);
            if let Backend::Gpu(g) = &gpu {
                if g.has_timestamps() {
                    bench_backend(c, "gpu-kernel", &gpu, Clock::Kernel);
                } else {
                    eprintln!("no kernel-only GPU benches: the adapter has no timestamp queries");
                }
            }
        }
        Err(e) => eprintln!("no GPU benches: {e}"),
    }
}

criterion_group!(benches, ops);
criterion_main!(benches);
