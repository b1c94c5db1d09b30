//! The GPU backend against the CPU backend: every op and long chains, on
//! edge sizes (1x1, odd widths, 1-pixel rows and columns), with and without
//! alpha; the chain's transfer accounting; the CPU fallback on a device
//! error; buffer reuse between jobs; images too large for one binding.
//!
//! Runs on a real Vulkan device: a GPU when present, else Mesa's lavapipe.

mod common;

use std::sync::{Arc, OnceLock};

use common::{diff, test_image, EDGE_SIZES};
use image::RgbaImage;
use imgworker::backend::{Backend, BackendChoice, Rendered};
use imgworker::config::Limits;
use imgworker::config::WorkerConfig;
use imgworker::job::{Edit, Job};
use imgworker::ops::{Dims, Frame, OpContext, OpSpec, Shape, Tolerance, OPS};
use serde_json::{json, Value};

/// A GPU backend, or a failure that says how to get one.
fn new_gpu() -> Backend {
    match Backend::select(BackendChoice::Gpu) {
        Ok(b) => b,
        Err(e) => panic!(
            "the GPU tests need a Vulkan adapter ({e}). Run scripts/test.sh, which installs \
             Mesa's software driver, or `apt-get install mesa-vulkan-drivers libvulkan1`"
        ),
    }
}

/// One device shared by the tests of this file (creating one on lavapipe
/// takes a while); tests that inject faults make their own.
fn gpu() -> &'static Backend {
    static GPU: OnceLock<Backend> = OnceLock::new();
    GPU.get_or_init(new_gpu)
}

fn edit(ops: Value, outputs: Value) -> Edit {
    let body = json!({
        "schema": 1, "id": "parity", "type": "edit", "image": "t/parity",
        "source": "original.png", "ops": ops, "outputs": outputs,
    });
    let job = Job::parse(body.to_string().as_bytes(), &WorkerConfig::new()).expect("valid job");
    job.into_edit().expect("an edit job")
}

fn one_output(ops: Value) -> Edit {
    edit(ops, json!([{"version": "v", "format": "png"}]))
}

fn render(b: &Backend, img: &RgbaImage, orientation: u8, e: &Edit, ctx: &OpContext) -> Rendered {
    let frame = Frame {
        img: img.clone(),
        orientation,
    };
    b.render(frame, e, ctx).expect("render")
}

/// Render on both backends and compare every output.
fn check(name: &str, img: &RgbaImage, orientation: u8, e: &Edit, ctx: &OpContext, tol: Tolerance) {
    assert!(
        check_result(name, img, orientation, e, ctx, tol),
        "{name} on {}x{}: both backends failed",
        img.width(),
        img.height()
    );
}

/// Render on both backends: both succeed with outputs within `tol` (true),
/// or both fail with the same error code (false).
fn check_result(
    name: &str,
    img: &RgbaImage,
    orientation: u8,
    e: &Edit,
    ctx: &OpContext,
    tol: Tolerance,
) -> bool {
    let frame = || Frame {
        img: img.clone(),
        orientation,
    };
    let (g, c) = match (
        gpu().render(frame(), e, ctx),
        Backend::Cpu.render(frame(), e, ctx),
    ) {
        (Ok(g), Ok(c)) => (g, c),
        (Err(g), Err(c)) => {
            assert_eq!(g.code, c.code, "{name}: the backends fail differently");
            return false;
        }
        (g, c) => panic!(
            "{name} on {}x{}: GPU {:?}, CPU {:?}",
            img.width(),
            img.height(),
            g.err(),
            c.err()
        ),
    };
    assert_eq!(g.backend, "gpu", "{name}: the job fell back to the CPU");
    assert_eq!(g.images.len(), c.images.len());
    for (i, (gi, ci)) in g.images.iter().zip(&c.images).enumerate() {
        assert_eq!(
            gi.dimensions(),
            ci.dimensions(),
            "{name} output {i} on {}x{}: dimensions differ",
            img.width(),
            img.height()
        );
        let (max, mean) = diff(gi, ci);
        assert!(
            max <= tol.max && mean <= tol.mean,
            "{name} output {i} on {}x{} (orientation {orientation}): GPU vs CPU max diff {max} \
             (tolerance {}), mean {mean:.4} (tolerance {})",
            img.width(),
            img.height(),
            tol.max,
            tol.mean
        );
    }
    true
}

/// Sizes for parity: the edge sizes plus a larger odd one.
fn sizes() -> Vec<(u32, u32)> {
    let mut s = EDGE_SIZES.to_vec();
    s.push((257, 131));
    s
}

fn each_image(mut f: impl FnMut(&RgbaImage)) {
    for (i, &(w, h)) in sizes().iter().enumerate() {
        f(&test_image(w, h, i as u32 + 1, false));
        f(&test_image(w, h, i as u32 + 50, true));
    }
}

const POINT: Tolerance = Tolerance::FLOAT;
const EXACT: Tolerance = Tolerance::EXACT;

/// The image every example that names `logo.png` composites, the LUT every
/// example that names `grade.cube` grades with, and the mask every example
/// that names `mask.png` is limited by.
fn overlay_ctx() -> OpContext {
    let mut ctx = OpContext::default();
    ctx.masks
        .insert("mask.png".into(), Arc::new(common::soft_mask(11, 7)));
    ctx.overlays
        .insert("logo.png".into(), Arc::new(test_image(13, 9, 777, true)));
    ctx.luts
        .insert("grade.cube".into(), Arc::new(common::grade_cube(9)));
    ctx
}

/// Every example of every op in the registry, on every test image it fits,
/// within the op's stated tolerance.
#[test]
fn every_example_of_every_op_matches_cpu() {
    let ctx = overlay_ctx();
    for op in OPS {
        assert!(!op.examples.is_empty(), "op {} has no example", op.name);
        for example in op.examples {
            let case: Value = serde_json::from_str(example)
                .unwrap_or_else(|e| panic!("{}: example {example} is not JSON: {e}", op.name));
            let spec: OpSpec = serde_json::from_value(case.clone())
                .unwrap_or_else(|e| panic!("{}: example {example}: {e}", op.name));
            assert_eq!(
                spec.name(),
                op.name,
                "an example of {} is another op",
                op.name
            );
            let validated = spec
                .validate(&Limits::default())
                .unwrap_or_else(|e| panic!("{}: example {example} is invalid: {e}", op.name));
            let e = one_output(json!([case]));
            let mut ran = 0;
            each_image(|img| {
                let shape = Shape {
                    dims: Dims::new(img.width(), img.height()),
                    orientation: 1,
                };
                if validated.plan(shape).is_ok()
                    && check_result(example, img, 1, &e, &ctx, op.parity)
                {
                    ran += 1;
                }
            });
            assert!(
                ran > 0,
                "{}: example {example} renders on no test image",
                op.name
            );
        }
    }
}

/// Every blend mode and compositing operator, with a translucent overlay
/// on a translucent base so that every term of each formula counts.
#[test]
fn every_blend_mode_matches_cpu() {
    use imgworker::gpu::uniform::GpuEnum;
    use imgworker::ops::composite::Blend;
    let ctx = overlay_ctx();
    for mode in Blend::ALL {
        let case = json!({"op": "overlay", "source": "logo.png", "x": 1, "y": -1, "opacity": 0.85, "blend": mode});
        let e = one_output(json!([case.clone()]));
        each_image(|img| check(&case.to_string(), img, 1, &e, &ctx, Tolerance::FLOAT));
    }
}

/// A bordered image trims to its content on both backends; the ops after a
/// trim are checked against the trimmed size; an all-border image is an
/// error on both.
#[test]
fn trim_reads_back_and_crops_like_the_cpu() {
    let content = test_image(20, 11, 31, true);
    let mut img = RgbaImage::from_pixel(37, 29, image::Rgba([240, 240, 240, 255]));
    image::imageops::overlay(&mut img, &content, 9, 7);
    let e = one_output(json!([{"op": "trim", "threshold": 0.0}, {"op": "invert"}]));
    check("trim", &img, 1, &e, &OpContext::default(), EXACT);
    let r = render(gpu(), &img, 1, &e, &OpContext::default());
    assert_eq!(r.images[0].dimensions(), (20, 11));
    assert_eq!(r.backend, "gpu");

    // A crop that fits the untrimmed image but not the trimmed one.
    let e = one_output(
        json!([{"op": "trim"}, {"op": "crop", "x": 0, "y": 0, "width": 30, "height": 5}]),
    );
    for b in [gpu(), &Backend::Cpu] {
        let err = b
            .render(
                Frame {
                    img: img.clone(),
                    orientation: 1,
                },
                &e,
                &OpContext::default(),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_param", "{err}");
        assert!(
            err.message.contains("crop after a content-sized op"),
            "{err}"
        );
    }
    // All border.
    let flat = RgbaImage::from_pixel(9, 9, image::Rgba([3, 4, 5, 255]));
    let e = one_output(json!([{"op": "trim"}]));
    for b in [gpu(), &Backend::Cpu] {
        let err = b
            .render(
                Frame {
                    img: flat.clone(),
                    orientation: 1,
                },
                &e,
                &OpContext::default(),
            )
            .unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_param", "{err}");
    }
}

#[test]
fn exact_ops_and_quarter_turns_match_cpu_exactly() {
    let cases = [
        json!({"op": "rotate", "degrees": 90}),
        json!({"op": "rotate", "degrees": 180}),
        json!({"op": "rotate", "degrees": 270}),
        json!({"op": "rotate", "degrees": 0}),
    ];
    for case in cases {
        let e = one_output(json!([case.clone()]));
        each_image(|img| check(&case.to_string(), img, 1, &e, &OpContext::default(), EXACT));
    }
    each_image(|img| {
        let (w, h) = img.dimensions();
        let (x, y) = (w / 3, h / 4);
        let c = json!({"op": "crop", "x": x, "y": y, "width": (w - x).max(1), "height": (h - y).div_ceil(2).max(1)});
        check(
            &c.to_string(),
            img,
            1,
            &one_output(json!([c])),
            &OpContext::default(),
            EXACT,
        );
    });
}

#[test]
fn auto_orient_matches_cpu_for_every_orientation() {
    let e = one_output(json!([{"op": "auto_orient"}]));
    each_image(|img| {
        for orientation in 1..=8 {
            check(
                "auto_orient",
                img,
                orientation,
                &e,
                &OpContext::default(),
                EXACT,
            );
        }
    });
}

#[test]
fn resize_matches_cpu_for_every_filter_and_fit() {
    let filters = ["nearest", "bilinear", "bicubic", "mitchell", "lanczos3"];
    for filter in filters {
        let cases = [
            json!({"op": "resize", "width": 11, "filter": filter}),
            json!({"op": "resize", "width": 100, "height": 100, "fit": "fill", "filter": filter}),
            json!({"op": "resize", "width": 40, "height": 40, "fit": "cover", "filter": filter}),
            json!({"op": "resize", "width": 30, "height": 50, "fit": "contain", "filter": filter,
                   "background": "#00ff0040"}),
            json!({"op": "resize", "width": 3, "height": 200, "fit": "fill", "filter": filter}),
            json!({"op": "resize", "width": 500, "height": 500, "fit": "inside", "filter": filter}),
        ];
        for case in cases {
            let e = one_output(json!([case.clone()]));
            // The GPU replicates fast_image_resize's fixed-point arithmetic.
            each_image(|img| check(&case.to_string(), img, 1, &e, &OpContext::default(), EXACT));
        }
    }
}

/// Linear-light resize: both backends decode and encode through the same
/// tables, and filter in `f32` (the GPU) or with `f64` sums (the CPU), so
/// an output differs by at most one level where a value sits on a rounding
/// threshold. Every filter that blends, every fit, shrinking and enlarging,
/// crops at fractional offsets (`cover`), with and without alpha.
#[test]
fn linear_resize_matches_cpu_within_one_level() {
    const LINEAR: Tolerance = Tolerance { max: 1, mean: 0.01 };
    for filter in ["bilinear", "bicubic", "mitchell", "lanczos3"] {
        let cases = [
            json!({"op": "resize", "width": 11, "filter": filter, "linear": true}),
            json!({"op": "resize", "width": 100, "height": 100, "fit": "fill", "filter": filter, "linear": true}),
            json!({"op": "resize", "width": 40, "height": 40, "fit": "cover", "filter": filter, "linear": true}),
            json!({"op": "resize", "width": 30, "height": 50, "fit": "contain", "filter": filter,
                   "background": "#00ff0040", "linear": true}),
            json!({"op": "resize", "width": 3, "height": 200, "fit": "fill", "filter": filter, "linear": true}),
            json!({"op": "resize", "width": 500, "height": 500, "fit": "inside", "filter": filter, "linear": true}),
        ];
        for case in cases {
            let e = one_output(json!([case.clone()]));
            each_image(|img| check(&case.to_string(), img, 1, &e, &OpContext::default(), LINEAR));
        }
    }
}

fn long_chain() -> Value {
    json!([
        {"op": "auto_orient"},
        {"op": "crop", "x": 3, "y": 2, "width": 200, "height": 120},
        {"op": "adjust", "brightness": 0.05, "contrast": 1.1, "saturation": 1.2},
        {"op": "grayscale"},
        {"op": "invert"},
        {"op": "rotate", "degrees": 90},
        {"op": "sharpen", "sigma": 1.0, "amount": 0.6},
        {"op": "resize", "width": 80, "filter": "lanczos3"},
    ])
}

#[test]
fn long_chains_with_renditions_match_cpu() {
    let mut ctx = OpContext::default();
    ctx.overlays
        .insert("logo.png".into(), Arc::new(test_image(20, 20, 9, true)));
    let e = edit(
        long_chain(),
        json!([
            {"version": "a", "format": "png"},
            {"version": "b", "format": "png", "ops": [
                {"op": "resize", "width": 32, "height": 32, "fit": "cover"},
                {"op": "sepia"}, {"op": "blur", "sigma": 1.5}]},
            {"version": "c", "format": "png", "ops": [
                {"op": "pad", "top": 4, "right": 4, "bottom": 4, "left": 4, "color": "#fff"},
                {"op": "overlay", "source": "logo.png", "gravity": "north_west", "blend": "screen"},
                {"op": "rotate", "degrees": 15, "background": "#000"},
                {"op": "flip", "axis": "vertical"}]},
        ]),
    );
    for (seed, alpha) in [(1, false), (2, true)] {
        let img = test_image(251, 237, seed, alpha);
        for orientation in [1, 6] {
            check("long chain", &img, orientation, &e, &ctx, POINT);
        }
    }
}

#[test]
fn a_chain_of_eight_ops_and_three_outputs_uploads_once_and_downloads_thrice() {
    let e = edit(
        long_chain(),
        json!([
            {"version": "a", "format": "png"},
            {"version": "b", "format": "png", "ops": [{"op": "resize", "width": 20}]},
            {"version": "c", "format": "png", "ops": [{"op": "grayscale"}, {"op": "invert"}]},
        ]),
    );
    let img = test_image(211, 137, 3, false);
    let r = render(gpu(), &img, 1, &e, &OpContext::default());
    assert_eq!(r.backend, "gpu");
    let stats = r.gpu.expect("GPU stats");
    assert_eq!(stats.uploads, 1, "{stats:?}");
    assert_eq!(stats.downloads, 3, "{stats:?}");
    assert_eq!(stats.overlay_uploads, 0, "{stats:?}");
    // auto_orient (orientation 1) is free; adjust+grayscale+invert fuse into
    // one pass; sharpen is three (two blur passes and the mask); resize is
    // four (premultiply, vertical, horizontal, unpremultiply); output b's
    // resize four more; output c's two point ops fuse into one.
    // crop 1 + point 1 + rotate 1 + sharpen 3 + resize 4 = 10 shared.
    assert_eq!(stats.dispatches, 10 + 4 + 1, "{stats:?}");
}

#[test]
fn kernel_time_comes_from_timestamp_queries_and_grows_with_the_work() {
    let Backend::Gpu(g) = gpu() else {
        unreachable!("new_gpu gives a GPU backend")
    };
    // Every adapter these tests run on (lavapipe, NVIDIA) has timestamp
    // queries; without them kernel_ns must stay empty, never made up.
    let small = test_image(64, 64, 1, false);
    let big = test_image(1024, 1024, 2, false);
    let e = one_output(json!([{"op": "blur", "sigma": 8.0}]));
    let time = |img: &RgbaImage| {
        let started = std::time::Instant::now();
        let r = render(gpu(), img, 1, &e, &OpContext::default());
        (r.gpu.expect("GPU stats").kernel_ns, started.elapsed())
    };
    if !g.has_timestamps() {
        assert_eq!(time(&small).0, None);
        panic!(
            "this adapter ({}) has no timestamp queries",
            g.adapter_name()
        );
    }
    // The median of five, so that one slow run does not decide.
    let median = |img: &RgbaImage| {
        let mut runs: Vec<_> = (0..5).map(|_| time(img)).collect();
        runs.sort_by_key(|(k, _)| *k);
        runs[2]
    };
    let (k_small, _) = median(&small);
    let (k_big, wall_big) = median(&big);
    let (k_small, k_big) = (k_small.expect("kernel time"), k_big.expect("kernel time"));
    assert!(k_small > 0, "{k_small}");
    // 256 times the pixels: far more kernel time, yet less than the whole
    // render's wall time (upload, readback and host work come on top).
    assert!(k_big > 4 * k_small, "small {k_small} ns, big {k_big} ns");
    assert!(
        u128::from(k_big) < wall_big.as_nanos(),
        "kernel {k_big} ns, wall {wall_big:?}"
    );
}

#[test]
fn consecutive_point_ops_run_as_one_dispatch() {
    let e = one_output(json!([
        {"op": "adjust", "contrast": 1.2}, {"op": "grayscale"}, {"op": "invert"},
        {"op": "sepia"}, {"op": "adjust", "gamma": 1.3},
    ]));
    let img = test_image(64, 48, 5, true);
    let r = render(gpu(), &img, 1, &e, &OpContext::default());
    assert_eq!(r.gpu.expect("GPU stats").dispatches, 1);
    check("fused point ops", &img, 1, &e, &OpContext::default(), POINT);
}

/// Several stages with tables in one fused pass, between stages without:
/// each stage must read its own table.
#[test]
fn fused_stages_each_read_their_own_table() {
    let e = one_output(json!([
        {"op": "levels", "channel": "red", "gamma": 0.5},
        {"op": "adjust", "saturation": 1.4},
        {"op": "levels", "channel": "blue", "black": 0.3, "output_white": 0.7},
        {"op": "invert"},
        {"op": "levels", "black": 0.05, "white": 0.95, "gamma": 1.8},
    ]));
    let img = test_image(64, 48, 9, true);
    let r = render(gpu(), &img, 1, &e, &OpContext::default());
    assert_eq!(r.gpu.expect("GPU stats").dispatches, 1);
    check("fused tables", &img, 1, &e, &OpContext::default(), POINT);
}

/// The tests below need the fault and introspection hooks, which only the
/// `test-hooks` feature compiles in; without it this fails instead of
/// skipping them.
#[cfg(not(feature = "test-hooks"))]
#[test]
fn test_hooks_are_compiled_in() {
    panic!("the GPU fault tests need `--features test-hooks` (scripts/test.sh passes it)");
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_device_error_redoes_the_job_on_the_cpu_with_identical_output() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let e = edit(
        long_chain(),
        json!([{"version": "a", "format": "png"}, {"version": "b", "format": "png",
                 "ops": [{"op": "blur", "sigma": 2.0}]}]),
    );
    let img = test_image(211, 137, 4, true);
    g.inject_faults(1);
    let r = render(&backend, &img, 1, &e, &OpContext::default());
    assert_eq!(r.backend, "cpu", "a faulted job must be redone on the CPU");
    assert!(r.gpu.is_none());
    assert_eq!(g.fallbacks(), 1);
    let cpu = render(&Backend::Cpu, &img, 1, &e, &OpContext::default());
    assert_eq!(
        r.images, cpu.images,
        "the fallback output differs from the CPU path"
    );
    // The next job runs on the GPU again.
    let again = render(&backend, &img, 1, &e, &OpContext::default());
    assert_eq!(again.backend, "gpu");
    assert_eq!(g.fallbacks(), 1);
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_lost_device_is_recreated_for_the_next_job() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let e = one_output(json!([{"op": "blur", "sigma": 1.0}, {"op": "invert"}]));
    let img = test_image(40, 30, 8, true);
    let before = render(&backend, &img, 1, &e, &OpContext::default());
    g.simulate_device_loss();
    let after = render(&backend, &img, 1, &e, &OpContext::default());
    assert_eq!(g.recreated(), 1);
    assert_eq!(after.backend, "gpu", "the recreated device runs the job");
    assert_eq!(before.images, after.images);
}

#[test]
fn reused_buffers_never_leak_an_earlier_jobs_pixels() {
    let backend = new_gpu();
    // A large white job fills the pool with buffers full of 255s.
    let white = RgbaImage::from_pixel(300, 200, image::Rgba([255, 255, 255, 255]));
    let big = one_output(json!([{"op": "blur", "sigma": 2.0}, {"op": "resize", "width": 290}]));
    let r = render(&backend, &white, 1, &big, &OpContext::default());
    assert_eq!(r.backend, "gpu");
    // Smaller jobs of every kind reuse them; every output must equal the CPU's.
    let black = RgbaImage::from_pixel(37, 23, image::Rgba([0, 0, 0, 0]));
    for ops in [
        json!([{"op": "invert"}]),
        json!([{"op": "crop", "x": 1, "y": 1, "width": 30, "height": 20}]),
        json!([{"op": "pad", "top": 3, "right": 3, "bottom": 3, "left": 3, "color": "#00000000"}]),
        json!([{"op": "resize", "width": 50, "height": 50, "fit": "contain", "background": "#00000000"}]),
        json!([{"op": "rotate", "degrees": 33, "background": "#00000000"}]),
        json!([{"op": "blur", "sigma": 1.0}]),
    ] {
        let e = one_output(ops.clone());
        let g = render(&backend, &black, 1, &e, &OpContext::default());
        let c = render(&Backend::Cpu, &black, 1, &e, &OpContext::default());
        assert_eq!(g.backend, "gpu");
        assert_eq!(
            g.images, c.images,
            "{ops}: stale pixels from an earlier job"
        );
    }
}

#[cfg(feature = "test-hooks")]
#[test]
fn pooled_buffers_hold_no_pixels_once_a_job_ends() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let white = RgbaImage::from_pixel(300, 200, image::Rgba([255, 255, 255, 255]));
    let overlay = RgbaImage::from_pixel(20, 20, image::Rgba([9, 9, 9, 255]));
    let mut ctx = OpContext::default();
    ctx.overlays
        .insert("logo.png".into(), std::sync::Arc::new(overlay));
    let e = edit(
        json!([{"op": "blur", "sigma": 2.0}, {"op": "overlay", "source": "logo.png", "x": 3, "y": 3}]),
        json!([{"version": "a", "format": "png"},
               {"version": "b", "format": "png", "ops": [{"op": "resize", "width": 120}]}]),
    );
    let r = render(&backend, &white, 1, &e, &ctx);
    assert_eq!(r.backend, "gpu");
    assert!(r.images[0].as_raw().iter().any(|&b| b != 0));
    // Buffers went back to the pool (uploads, intermediates, readbacks) ...
    assert!(
        g.pool_idle_bytes() >= 300 * 200 * 4 * 3,
        "{}",
        g.pool_idle_bytes()
    );
    // ... and every byte of them is zero.
    assert_eq!(g.pooled_nonzero_bytes().unwrap(), 0);
}

#[test]
fn an_image_larger_than_a_storage_binding_falls_back_to_the_cpu() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    // Larger than lavapipe's 128 MiB binding; on a GPU with a larger binding
    // the GPU runs it, and the outputs must still agree.
    let img = RgbaImage::from_fn(6000, 6000, |x, y| {
        image::Rgba([(x % 251) as u8, (y % 241) as u8, ((x + y) % 256) as u8, 255])
    });
    let e = one_output(
        json!([{"op": "invert"}, {"op": "crop", "x": 5000, "y": 5000, "width": 1000, "height": 1000}]),
    );
    let r = render(&backend, &img, 1, &e, &OpContext::default());
    if g.max_binding() < 6000 * 6000 * 4 {
        assert_eq!(r.backend, "cpu");
        assert_eq!(g.fallbacks(), 1);
    }
    let c = render(&Backend::Cpu, &img, 1, &e, &OpContext::default());
    assert_eq!(r.images, c.images);
}

/// Sixteen jobs with different chains, bit-exact ops only, so that GPU
/// outputs compare byte for byte.
#[cfg(feature = "test-hooks")]
fn concurrent_jobs() -> Vec<(RgbaImage, Edit)> {
    let chains = [
        json!([{"op": "invert"}]),
        json!([{"op": "flip", "axis": "horizontal"}, {"op": "invert"}]),
        json!([{"op": "resize", "width": 61}]),
        json!([{"op": "rotate", "degrees": 90}, {"op": "crop", "x": 3, "y": 4, "width": 40, "height": 30}]),
        json!([{"op": "pad", "top": 5, "left": 2, "color": "#102030"}]),
        json!([{"op": "resize", "width": 150, "height": 150, "fit": "cover", "filter": "bicubic"}]),
        json!([{"op": "pixelate", "size": 4}, {"op": "flip", "axis": "vertical"}]),
        json!([{"op": "resize", "width": 33, "filter": "nearest"}, {"op": "invert"}]),
    ];
    (0..16)
        .map(|i| {
            let img = test_image(97 + 13 * i, 71 + 7 * i, 300 + i, i % 2 == 0);
            let e = edit(
                chains[i as usize % chains.len()].clone(),
                json!([{"version": "a", "format": "png"},
                       {"version": "b", "format": "png", "ops": [{"op": "flip", "axis": "horizontal"}]}]),
            );
            (img, e)
        })
        .collect()
}

/// Each job rendered after the previous one.
#[cfg(feature = "test-hooks")]
fn one_at_a_time(backend: &Backend, jobs: &[(RgbaImage, Edit)]) -> Vec<Rendered> {
    let ctx = OpContext::default();
    jobs.iter()
        .map(|(img, e)| render(backend, img, 1, e, &ctx))
        .collect()
}

/// Every job on a thread of its own, all at once.
#[cfg(feature = "test-hooks")]
fn concurrently(backend: &Backend, jobs: &[(RgbaImage, Edit)]) -> Vec<Rendered> {
    let ctx = OpContext::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(img, e)| s.spawn(|| render(backend, img, 1, e, &ctx)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Jobs submitted at once from sixteen threads give the same bytes as the
/// same jobs one at a time: each records, submits and reads back its own
/// work while the others run; the pool, shared, hands no buffer to two
/// jobs, and every pooled buffer is zero afterwards.
#[cfg(feature = "test-hooks")]
#[test]
fn concurrent_jobs_give_the_bytes_of_sequential_ones() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let jobs = concurrent_jobs();
    let sequential = one_at_a_time(&backend, &jobs);
    for round in 0..2 {
        let concurrent: Vec<Rendered> = concurrently(&backend, &jobs);
        for (i, (c, s)) in concurrent.iter().zip(&sequential).enumerate() {
            assert_eq!(c.backend, "gpu", "round {round} job {i} fell back");
            assert!(
                c.images == s.images,
                "round {round} job {i}: outputs differ"
            );
        }
    }
    assert_eq!(g.fallbacks(), 0);
    assert_eq!(g.pooled_nonzero_bytes().unwrap(), 0);
}

/// A device fault in one of sixteen concurrent jobs sends that job alone
/// to the CPU; the others finish on the GPU with their own outputs.
#[cfg(feature = "test-hooks")]
#[test]
fn a_fault_in_one_concurrent_job_falls_back_for_that_job_only() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let jobs = concurrent_jobs();
    let expected = one_at_a_time(&backend, &jobs);
    g.inject_faults(1);
    let got: Vec<Rendered> = concurrently(&backend, &jobs);
    let on_cpu: Vec<usize> = (0..got.len())
        .filter(|&i| got[i].backend == "cpu")
        .collect();
    assert_eq!(on_cpu.len(), 1, "exactly the faulted job falls back");
    assert_eq!(g.fallbacks(), 1);
    for (i, (r, want)) in got.iter().zip(&expected).enumerate() {
        // The ops are bit-exact on both backends, so the fallback's output
        // is the GPU's too.
        assert!(
            r.images == want.images,
            "job {i} ({}): outputs differ",
            r.backend
        );
    }
}

/// Jobs' work overlaps on the device, as its own timestamp queries show:
/// job A (a trim, which reads its image back in the middle of the job) is
/// held right after that readback, with its first kernels done and its last
/// still to record; job B runs from start to end meanwhile. B's kernels
/// then lie between A's first and A's last on the device's clock, which no
/// design that holds one lock for a whole job allows (B would wait for A,
/// and A for the test). Both give the bytes they give alone.
#[cfg(feature = "test-hooks")]
#[test]
fn jobs_overlap_on_the_device_by_its_timestamps() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    assert!(
        g.has_timestamps(),
        "the device has no timestamp queries, so the overlap cannot be seen"
    );
    // A: a framed picture, inverted, trimmed of its frame, then blurred.
    let framed = RgbaImage::from_fn(160, 120, |x, y| {
        if (20..140).contains(&x) && (15..105).contains(&y) {
            image::Rgba([(x * 2) as u8, (y * 2) as u8, ((x + y) % 256) as u8, 255])
        } else {
            image::Rgba([255, 255, 255, 255])
        }
    });
    let job_a = one_output(json!([
        {"op": "invert"}, {"op": "trim"}, {"op": "blur", "sigma": 2.0}
    ]));
    let other = test_image(211, 137, 7, false);
    let job_b = one_output(json!([{"op": "blur", "sigma": 3.0}, {"op": "invert"}]));
    let ctx = OpContext::default();
    let alone_a = render(&backend, &framed, 1, &job_a, &ctx);
    let alone_b = render(&backend, &other, 1, &job_b, &ctx);
    let (held, go) = g.hold_next_mid_job_readback();
    let (a, b) = std::thread::scope(|s| {
        // Dropped with this closure, so that a failure here lets A go on.
        let go = go;
        let a = s.spawn(|| render(&backend, &framed, 1, &job_a, &ctx));
        held.recv_timeout(std::time::Duration::from_secs(30))
            .expect("job A reached its mid-job readback");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (backend, other, job_b, ctx) = (&backend, &other, &job_b, &ctx);
        let b = s.spawn(move || {
            let r = render(backend, other, 1, job_b, ctx);
            let _ = done_tx.send(());
            r
        });
        let finished = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        go.send(()).unwrap();
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(
            finished.is_ok(),
            "job B did not finish while job A was held: jobs do not overlap"
        );
        (a, b)
    });
    for (name, got, alone) in [("A", &a, &alone_a), ("B", &b, &alone_b)] {
        assert_eq!(got.backend, "gpu", "job {name} fell back");
        assert!(got.images == alone.images, "job {name}: outputs differ");
    }
    let span = |r: &Rendered| r.gpu.and_then(|s| s.kernel_span_ns).expect("kernel span");
    let ((a0, a1), (b0, b1)) = (span(&a), span(&b));
    println!("device spans: A {a0}..{a1} ns, B {b0}..{b1} ns");
    assert!(
        a0 < b0 && b1 < a1,
        "B's kernels ({b0}..{b1}) lie within A's ({a0}..{a1}) on the device's clock"
    );
}

/// A job whose deadline passes while it waits for the device fails with
/// the CPU's code (not a fallback), and its buffers come back wiped once
/// the device is done with them.
#[cfg(feature = "test-hooks")]
#[test]
fn a_deadline_passing_during_the_gpu_wait_fails_the_job() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let img = test_image(1500, 1500, 9, false);
    // More blurs until the device takes longer than the deadline (two
    // are enough on lavapipe; a fast GPU needs more).
    let mut failed = None;
    for blurs in [2, 8, 24] {
        let e = one_output(json!(vec![json!({"op": "blur", "sigma": 40.0}); blurs]));
        let started = std::time::Instant::now();
        let ctx = OpContext {
            deadline: Some(started + std::time::Duration::from_millis(300)),
            ..OpContext::default()
        };
        let frame = Frame {
            img: img.clone(),
            orientation: 1,
        };
        if let Err(err) = backend.render(frame, &e, &ctx) {
            failed = Some((err, started.elapsed()));
            break;
        }
    }
    let (err, took) = failed.expect("no chain outlasted its deadline on this device");
    assert_eq!(err.code.as_str(), "limit_exceeded", "{}", err.message);
    assert!(err.message.contains("deadline"), "{}", err.message);
    assert!(
        took < std::time::Duration::from_secs(5),
        "the job waited for the device past its deadline ({took:?})"
    );
    assert_eq!(g.fallbacks(), 0, "a deadline is not a device failure");
    // Once the device finishes, the job's buffers are wiped and pooled.
    let mut waited = 0;
    while g.pool_idle_bytes() == 0 && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(g.pool_idle_bytes() > 0, "the buffers never came back");
    assert_eq!(g.pooled_nonzero_bytes().unwrap(), 0);
}

/// With a device memory budget that holds about two of them, sixteen
/// concurrent jobs queue for memory: all finish on the GPU with the bytes
/// of sequential runs, and the memory reserved at once never exceeds the
/// budget (or one job, for a job larger than it).
#[cfg(feature = "test-hooks")]
#[test]
fn concurrent_jobs_stay_within_the_device_memory_budget() {
    let backend = new_gpu();
    let Backend::Gpu(g) = &backend else {
        unreachable!()
    };
    let jobs = concurrent_jobs();
    let ctx = OpContext::default();
    let sizes: Vec<u64> = jobs
        .iter()
        .map(|(img, e)| {
            let frame = Frame {
                img: img.clone(),
                orientation: 1,
            };
            g.job_bytes(&frame, e, &ctx)
        })
        .collect();
    let largest = *sizes.iter().max().unwrap();
    let budget = 2 * largest;
    let sequential = one_at_a_time(&backend, &jobs);
    g.set_memory_budget(budget);
    let concurrent: Vec<Rendered> = concurrently(&backend, &jobs);
    for (i, (c, s)) in concurrent.iter().zip(&sequential).enumerate() {
        assert_eq!(c.backend, "gpu", "job {i} fell back");
        assert!(c.images == s.images, "job {i}: outputs differ");
    }
    let peak = g.memory_budget_peak();
    assert!(
        peak <= budget,
        "{peak} bytes reserved at once, budget {budget}"
    );
    assert!(
        peak >= largest,
        "the peak {peak} is below one job ({largest})"
    );
}
