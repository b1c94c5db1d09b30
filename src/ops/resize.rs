//! Resize with a choice of fit and filter, through fast_image_resize (SIMD,
//! multi-threaded). Alpha is premultiplied while filtering.
//!
//! (Longer than most op files: the GPU path needs the filter weights and
//! nearest-neighbour tables computed here exactly as fast_image_resize
//! does, so that both backends give the same pixels; they belong with the op.)
//!
//! Fits, when both `width` and `height` are given:
//! - `inside` (default): keep the aspect ratio, fit within the box;
//! - `contain`: as `inside`, then centred on a canvas of exactly the box,
//!   filled with `background`;
//! - `cover`: keep the aspect ratio, fill the box, crop the overflow equally
//!   from both sides;
//! - `fill`: stretch to the box.
//!
//! With only one side given, the other follows the aspect ratio.
//!
//! This file is longer than most (over 600 lines) because one op lives in
//! one file: besides the parameters, planner and CPU path it holds
//! fast_image_resize's coefficient and index tables, rebuilt here so that
//! the GPU kernels reproduce its fixed-point arithmetic bit for bit, the GPU
//! recording, and the tests of the fits.

use fast_image_resize::{
    images::Image as FirImage, FilterType as FirFilter, PixelType, ResizeAlg, ResizeOptions,
    Resizer,
};
use image::RgbaImage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::color::Color;
use super::crop::{record_crop, CropGravity};
use super::pad::{place_on_canvas, record_place_on_canvas};
use super::{Dims, Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{Aux, GpuImage, GpuStep};
use crate::gpu::uniform::{Uniform, UniformLayout};
use crate::gpu::GpuError;

crate::gpu_uniform! {
    /// `shaders/resize.wgsl`: one convolution pass ([`ConvPass`]).
    pub(crate) struct ResizeConvUniform {
        /// Fixed-point precision: the bits shifted out after summing
        /// (`precision` is a reserved word in WGSL).
        pub shift: u32,
        /// Coefficients per record.
        pub window: u32,
        /// The column (vertical pass) or row (horizontal pass) where the
        /// other axis's crop begins.
        pub offset: u32,
        /// Linear-light passes: 1 where the source is the `f32`
        /// intermediate, else sRGB RGBA8.
        pub src_linear: u32,
        /// Linear-light passes: 1 where the output is the `f32`
        /// intermediate, else sRGB RGBA8.
        pub dst_linear: u32,
    }
}

/// How the image fits the requested box.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Keep aspect, fit within the box.
    #[default]
    Inside,
    /// Keep aspect, fit within, letterbox to the box.
    Contain,
    /// Keep aspect, fill the box, crop the overflow.
    Cover,
    /// Stretch to the box.
    Fill,
}

/// The resampling filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Nearest neighbour.
    Nearest,
    /// Linear (triangle) filter.
    Bilinear,
    /// Catmull-Rom cubic.
    Bicubic,
    /// Mitchell-Netravali cubic (B = C = 1/3).
    Mitchell,
    /// Lanczos, three lobes.
    #[default]
    Lanczos3,
}

/// Parameters of `resize`: `width`, `height` or both (a rule the JSON Schema
/// does not express).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResizeParams {
    /// Target width, `1..=max_side` (a worker setting, default 65535); give
    /// `width`, `height` or both (not expressed in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = super::crop::MIN_SIDE, max = Limits::default().max_side))]
    pub width: Option<u32>,
    /// Target height, `1..=max_side` (a worker setting, default 65535).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = super::crop::MIN_SIDE, max = Limits::default().max_side))]
    pub height: Option<u32>,
    /// How to fit the box. Default `inside`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<Fit>,
    /// Resampling filter. Default `lanczos3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Canvas colour for `contain`, and only with `fit: contain` (not
    /// expressed in the schema). Default `#00000000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Color>,
    /// Which part `cover` keeps, and only with `fit: cover` (not expressed
    /// in the schema): `center` (default), `attention` or `entropy`, as
    /// `crop`'s gravity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravity: Option<CropGravity>,
    /// Resample in linear light, which keeps fine bright detail from
    /// darkening on downscale. Default `false` (the sRGB-encoded values).
    /// Not with `filter: nearest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<bool>,
}

/// A validated `resize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resize {
    /// Requested width.
    pub width: Option<u32>,
    /// Requested height.
    pub height: Option<u32>,
    /// Fit.
    pub fit: Fit,
    /// Filter.
    pub filter: Filter,
    /// Canvas colour for `contain`.
    pub background: Color,
    /// Which part `cover` keeps.
    pub gravity: CropGravity,
    /// Resample in linear light.
    pub linear: bool,
}

/// Where pixels come from and go to for one resize of a given source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// The source rectangle sampled: left, top, width, height (fractional).
    pub src_box: [f64; 4],
    /// Size of the resampled image.
    pub scaled: Dims,
    /// Size of the final canvas (differs from `scaled` for `contain`).
    pub canvas: Dims,
    /// Where the resampled image sits on the canvas.
    pub offset: (u32, u32),
}

fn side(v: f64) -> u32 {
    v.round().clamp(1.0, f64::from(u32::MAX)) as u32
}

impl Geometry {
    /// Which passes fast_image_resize runs, (horizontal, vertical): an axis
    /// is resampled unless the box is copied along it at its own size from
    /// a whole-pixel offset.
    fn passes(&self) -> (bool, bool) {
        let [left, top, bw, bh] = self.src_box;
        (
            f64::from(self.scaled.width) != bw || left != left.round(),
            f64::from(self.scaled.height) != bh || top != top.round(),
        )
    }

    /// Whether the source box is resampled at all (else fast_image_resize
    /// copies it).
    fn resamples(&self) -> bool {
        let (h, v) = self.passes();
        h || v
    }
}

impl Resize {
    /// Work out the geometry for a source of `src` size.
    pub(crate) fn geometry(&self, src: Dims) -> Geometry {
        let (sw, sh) = (f64::from(src.width), f64::from(src.height));
        let full = [0.0, 0.0, sw, sh];
        let plain = |d: Dims| Geometry {
            src_box: full,
            scaled: d,
            canvas: d,
            offset: (0, 0),
        };
        match (self.width, self.height) {
            (Some(w), None) => plain(Dims::new(w, side(sh * f64::from(w) / sw))),
            (None, Some(h)) => plain(Dims::new(side(sw * f64::from(h) / sh), h)),
            (Some(w), Some(h)) => {
                let (bw, bh) = (f64::from(w), f64::from(h));
                match self.fit {
                    Fit::Fill => plain(Dims::new(w, h)),
                    Fit::Inside | Fit::Contain => {
                        let s = (bw / sw).min(bh / sh);
                        let scaled = Dims::new(side(sw * s).min(w), side(sh * s).min(h));
                        if self.fit == Fit::Inside {
                            plain(scaled)
                        } else {
                            let offset = ((w - scaled.width) / 2, (h - scaled.height) / 2);
                            Geometry {
                                src_box: full,
                                scaled,
                                canvas: Dims::new(w, h),
                                offset,
                            }
                        }
                    }
                    Fit::Cover => {
                        let s = (bw / sw).max(bh / sh);
                        let (cw, ch) = ((bw / s).min(sw), (bh / s).min(sh));
                        let src_box = [(sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch];
                        let d = Dims::new(w, h);
                        Geometry {
                            src_box,
                            scaled: d,
                            canvas: d,
                            offset: (0, 0),
                        }
                    }
                }
            }
            (None, None) => plain(src),
        }
    }

    /// Whether the geometry depends on the pixels (`cover` with a smart
    /// gravity).
    fn reads_pixels(&self) -> bool {
        self.fit == Fit::Cover
            && self.width.is_some()
            && self.height.is_some()
            && self.gravity.reads_pixels()
    }

    /// The geometry on these pixels: [`Self::geometry`], with `cover`'s box
    /// placed by its gravity ([`super::interest`]) where that reads pixels.
    pub fn geometry_on(&self, img: &RgbaImage) -> Geometry {
        let src = Dims::new(img.width(), img.height());
        let mut g = self.geometry(src);
        if self.reads_pixels() {
            let [_, _, cw, ch] = g.src_box;
            let (w, h) = (side(cw).min(src.width), side(ch).min(src.height));
            let Some((x, y)) = self.gravity.window(img, w, h) else {
                return g;
            };
            g.src_box[0] = f64::from(x).min(f64::from(src.width) - cw);
            g.src_box[1] = f64::from(y).min(f64::from(src.height) - ch);
        }
        g
    }

    /// How many times the sampled source box shrinks, on the axis that
    /// shrinks least, for a source of `src` size (below 1 when enlarging).
    pub(crate) fn shrink_factor(&self, src: Dims) -> f64 {
        let g = self.geometry(src);
        (g.src_box[2] / f64::from(g.scaled.width)).min(g.src_box[3] / f64::from(g.scaled.height))
    }

    /// This resize with its output size worked out for a source of `src`
    /// size, so that a smaller decode of that source (shrink-on-load) gives
    /// the same output size. `cover` and `contain` already output exactly
    /// their box.
    pub(crate) fn resolved_for(&self, src: Dims) -> Self {
        match (self.fit, self.width, self.height) {
            (Fit::Cover | Fit::Contain, Some(_), Some(_)) => self.clone(),
            _ => {
                let g = self.geometry(src);
                Self {
                    width: Some(g.scaled.width),
                    height: Some(g.scaled.height),
                    fit: Fit::Fill,
                    ..self.clone()
                }
            }
        }
    }

    /// The fast_image_resize algorithm for the filter.
    pub fn algorithm(&self) -> ResizeAlg {
        match self.filter {
            Filter::Nearest => ResizeAlg::Nearest,
            Filter::Bilinear => ResizeAlg::Convolution(FirFilter::Bilinear),
            Filter::Bicubic => ResizeAlg::Convolution(FirFilter::CatmullRom),
            Filter::Mitchell => ResizeAlg::Convolution(FirFilter::Mitchell),
            Filter::Lanczos3 => ResizeAlg::Convolution(FirFilter::Lanczos3),
        }
    }
}

impl Operation for Resize {
    const NAME: &'static str = "resize";
    const C2PA_ACTION: &'static str = "c2pa.resized";
    const SUMMARY: &'static str = "resize with a choice of fit and filter, in premultiplied alpha, optionally in linear light (fast_image_resize on the CPU, its arithmetic reproduced on the GPU)";
    type Params = ResizeParams;
    const SHADER: &'static str = include_str!("../../shaders/resize.wgsl");
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"op": "resize", "width": 512, "height": 512}"#,
        r#"{"op": "resize", "width": 11}"#,
        r#"{"op": "resize", "width": 100, "height": 100, "fit": "fill", "filter": "bilinear"}"#,
        r#"{"op": "resize", "width": 40, "height": 40, "fit": "cover", "filter": "bicubic"}"#,
        r##"{"op": "resize", "width": 30, "height": 50, "fit": "contain", "filter": "mitchell", "background": "#00ff0040"}"##,
        r#"{"op": "resize", "width": 3, "height": 200, "fit": "fill", "filter": "nearest"}"#,
        r#"{"op": "resize", "width": 500, "height": 500, "fit": "inside"}"#,
        r#"{"op": "resize", "width": 24, "height": 24, "fit": "cover", "gravity": "attention"}"#,
        r#"{"op": "resize", "width": 16, "height": 40, "fit": "cover", "gravity": "entropy", "filter": "nearest"}"#,
    ];
    // The GPU replicates fast_image_resize's fixed-point arithmetic.
    const PARITY: Tolerance = Tolerance::EXACT;

    fn validate(p: &ResizeParams, lim: &Limits) -> Result<Self, ParamError> {
        let range = format!("{}..={}", super::crop::MIN_SIDE, lim.max_side);
        for (name, v) in [("width", p.width), ("height", p.height)] {
            if v.is_some_and(|v| v < super::crop::MIN_SIDE || v > lim.max_side) {
                return Err(ParamError::range(name, &range));
            }
        }
        if p.width.is_none() && p.height.is_none() {
            return Err(ParamError::new("", "give width, height or both"));
        }
        let fit = p.fit.unwrap_or_default();
        if p.background.is_some() && fit != Fit::Contain {
            return Err(ParamError::new(
                "background",
                "only applies to fit \"contain\"",
            ));
        }
        if p.gravity.is_some() && fit != Fit::Cover {
            return Err(ParamError::new("gravity", "only applies to fit \"cover\""));
        }
        let filter = p.filter.unwrap_or_default();
        let linear = p.linear.unwrap_or(false);
        if linear && filter == Filter::Nearest {
            return Err(ParamError::new(
                "linear",
                "does not apply to filter \"nearest\", which blends no pixels",
            ));
        }
        Ok(Self {
            width: p.width,
            height: p.height,
            fit,
            filter,
            background: p.background.unwrap_or(Color::TRANSPARENT),
            gravity: p.gravity.unwrap_or(CropGravity::Center),
            linear,
        })
    }

    fn plan(&self, s: Shape) -> Result<Shape, ParamError> {
        Ok(Shape {
            dims: self.geometry(s.dims).canvas,
            ..s
        })
    }

    fn run_cpu(&self, frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        let g = self.geometry_on(&frame.img);
        let scaled = if self.linear && g.resamples() {
            resize_linear(&frame.img, g.scaled, g.src_box, self.algorithm())?
        } else {
            resize_rgba(&frame.img, g.scaled, g.src_box, self.algorithm())?
        };
        let img = if g.canvas == g.scaled {
            scaled
        } else {
            place_on_canvas(&scaled, g.canvas, g.offset.0, g.offset.1, self.background)
        };
        Ok(Frame { img, ..frame })
    }

    /// fast_image_resize's 8-bit algorithm, step for step.
    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        let g = if self.reads_pixels() {
            self.geometry_on(&step.rec.read_now(step.src)?)
        } else {
            self.geometry(step.src.dims())
        };
        let [left, top, bw, bh] = g.src_box;
        let scaled = if self.filter == Filter::Nearest {
            let tables = nearest_tables(step.src.dims(), g.src_box, g.scaled);
            step.rec.kernel(
                "resize_nearest",
                step.src,
                g.scaled,
                Aux::Words(&tables),
                (),
            )?
        } else if !g.resamples() {
            // Same size at whole-pixel offsets: fast_image_resize copies the crop.
            record_crop(step.rec, step.src, left as u32, top as u32, g.scaled)?
        } else if self.linear {
            record_linear(step.rec, step.src, &g, self.filter)?
        } else {
            let (need_h, need_v) = g.passes();
            let mut cur =
                step.rec
                    .kernel("premultiply", step.src, step.src.dims(), Aux::None, ())?;
            if need_v {
                let pass = conv_pass(step.src.height, top, top + bh, g.scaled.height, self.filter);
                let (width, offset) = if need_h {
                    (step.src.width, 0)
                } else {
                    (g.scaled.width, left as u32)
                };
                let params = ResizeConvUniform {
                    shift: pass.precision,
                    window: pass.window,
                    offset,
                    ..Default::default()
                };
                let dims = Dims::new(width, g.scaled.height);
                cur = step.rec.kernel(
                    "resize_vertical",
                    &cur,
                    dims,
                    Aux::Words(&pass.records),
                    params,
                )?;
            }
            if need_h {
                let pass = conv_pass(step.src.width, left, left + bw, g.scaled.width, self.filter);
                let params = ResizeConvUniform {
                    shift: pass.precision,
                    window: pass.window,
                    offset: if need_v { 0 } else { top as u32 },
                    ..Default::default()
                };
                let records = Aux::Words(&pass.records);
                cur = step
                    .rec
                    .kernel("resize_horizontal", &cur, g.scaled, records, params)?;
            }
            step.rec
                .kernel("unpremultiply", &cur, g.scaled, Aux::None, ())?
        };
        if g.canvas == g.scaled {
            return Ok(scaled);
        }
        let (x, y) = g.offset;
        record_place_on_canvas(step.rec, &scaled, g.canvas, x, y, self.background)
    }

    fn uniforms() -> Vec<UniformLayout> {
        vec![ResizeConvUniform::layout()]
    }
}

/// Resample the `src_box` of `src` to `dst` with fast_image_resize.
pub fn resize_rgba(
    src: &RgbaImage,
    dst: Dims,
    src_box: [f64; 4],
    alg: ResizeAlg,
) -> Result<RgbaImage, JobError> {
    let mut out = vec![0u8; dst.pixels() as usize * 4];
    // Premultiplying an opaque image changes nothing but costs two passes
    // and a full-size copy of the source (`opaque_resize_skips_alpha_exactly`).
    let premultiply = !super::is_opaque(src);
    let from = (
        src.as_raw().as_slice(),
        Dims::new(src.width(), src.height()),
    );
    fir_resize(
        from,
        (&mut out, dst),
        PixelType::U8x4,
        src_box,
        alg,
        premultiply,
    )?;
    RgbaImage::from_raw(dst.width, dst.height, out)
        .ok_or_else(|| JobError::internal("resize: buffer size"))
}

/// Resample the `src_box` of `src` to `dst` in linear light: decoded to
/// premultiplied linear `f32` ([`super::linear`]), resampled by
/// fast_image_resize's `f32` path (weights and sums in `f64`), encoded back.
pub fn resize_linear(
    src: &RgbaImage,
    dst: Dims,
    src_box: [f64; 4],
    alg: ResizeAlg,
) -> Result<RgbaImage, JobError> {
    let lin = super::linear::to_linear(src);
    let mut out = vec![0f32; dst.pixels() as usize * 4];
    let from = (
        bytemuck::cast_slice(&lin),
        Dims::new(src.width(), src.height()),
    );
    let to = (bytemuck::cast_slice_mut(&mut out), dst);
    // The pixels are premultiplied already.
    fir_resize(from, to, PixelType::F32x4, src_box, alg, false)?;
    drop(lin);
    Ok(super::linear::from_linear(&out, dst.width, dst.height))
}

/// One fast_image_resize call: the `src_box` of an image of `pixel`s
/// (bytes and size) resampled into another, premultiplying alpha around
/// the filter where asked.
fn fir_resize(
    (src, src_dims): (&[u8], Dims),
    (dst, dst_dims): (&mut [u8], Dims),
    pixel: PixelType,
    src_box: [f64; 4],
    alg: ResizeAlg,
    premultiply: bool,
) -> Result<(), JobError> {
    let internal = |e: &dyn std::fmt::Display| JobError::internal(format!("resize: {e}"));
    let src_view =
        fast_image_resize::images::ImageRef::new(src_dims.width, src_dims.height, src, pixel)
            .map_err(|e| internal(&e))?;
    let mut dst_view = FirImage::from_slice_u8(dst_dims.width, dst_dims.height, dst, pixel)
        .map_err(|e| internal(&e))?;
    let [l, t, w, h] = src_box;
    let mut opts = ResizeOptions::new().resize_alg(alg).crop(l, t, w, h);
    opts.mul_div_alpha = premultiply;
    Resizer::new()
        .resize(&src_view, &mut dst_view, &opts)
        .map_err(|e| internal(&e))
}

/// The linear-light resize on the GPU, as [`resize_linear`] does it, pass
/// for pass: where both axes are resampled, a horizontal pass into a
/// premultiplied `f32` image of the output's width and the source rows the
/// vertical pass reads, then the vertical pass; where one is, that pass
/// alone, from sRGB to sRGB (as fast_image_resize skips the other: a
/// filter such as Mitchell's is no identity at scale 1).
fn record_linear(
    rec: &mut crate::gpu::recorder::Recorder<'_>,
    src: &GpuImage,
    g: &Geometry,
    filter: Filter,
) -> Result<GpuImage, GpuError> {
    use crate::gpu::recorder::PixelLayout;
    let [left, top, bw, bh] = g.src_box;
    let (need_h, need_v) = g.passes();
    let h = weights(src.width, left, left + bw, g.scaled.width, filter);
    let v = weights(src.height, top, top + bh, g.scaled.height, filter);
    let params = |w: &Weights, offset: u32, src_linear: bool, dst_linear: bool| ResizeConvUniform {
        shift: 0,
        window: w.window as u32,
        offset,
        src_linear: u32::from(src_linear),
        dst_linear: u32::from(dst_linear),
    };
    match (need_h, need_v) {
        (true, true) => {
            let y_first = v.bounds.first().map_or(0, |b| b.0);
            let y_last = v.bounds.iter().map(|&(s, n)| s + n).max().unwrap_or(1);
            let mid = rec.kernel_into(
                "resize_linear_horizontal",
                src,
                Dims::new(g.scaled.width, (y_last - y_first).max(1)),
                PixelLayout::RgbaF32,
                Aux::Words(&h.linear_aux(0)),
                params(&h, y_first, false, true),
            )?;
            rec.kernel(
                "resize_linear_vertical",
                &mid,
                g.scaled,
                Aux::Words(&v.linear_aux(y_first)),
                params(&v, 0, true, false),
            )
        }
        (true, false) => rec.kernel(
            "resize_linear_horizontal",
            src,
            g.scaled,
            Aux::Words(&h.linear_aux(0)),
            params(&h, top as u32, false, false),
        ),
        (false, _) => rec.kernel(
            "resize_linear_vertical",
            src,
            g.scaled,
            Aux::Words(&v.linear_aux(0)),
            params(&v, left as u32, false, false),
        ),
    }
}

/// fast_image_resize's `precompute_coefficients` for one axis: per output
/// line, its first source line, how many it reads, and `window` weights
/// (zero-padded).
struct Weights {
    window: usize,
    bounds: Vec<(u32, u32)>,
    coeffs: Vec<f64>,
}

impl Weights {
    /// The linear-light kernels' aux words: the decoding table (256 words),
    /// the encoding thresholds (255 and a pad), then per output line its
    /// start (less `start_shift`), its size and its weights as `f32` bits.
    fn linear_aux(&self, start_shift: u32) -> Vec<u32> {
        let mut words = Vec::with_capacity(512 + (self.window + 2) * self.bounds.len());
        words.extend(super::linear::decode_table().iter().map(|v| v.to_bits()));
        words.extend(
            super::linear::encode_thresholds()
                .iter()
                .map(|v| v.to_bits()),
        );
        words.push(f32::INFINITY.to_bits());
        for (chunk, &(start, size)) in self.coeffs.chunks_exact(self.window).zip(&self.bounds) {
            words.push(start - start_shift);
            words.push(size);
            words.extend(chunk.iter().map(|&c| (c as f32).to_bits()));
        }
        words
    }
}

/// fast_image_resize's `precompute_coefficients`, for one axis:
/// `in_size` source pixels, the crop `in0..in1`, `out_size` outputs.
fn weights(in_size: u32, in0: f64, in1: f64, out_size: u32, filter: Filter) -> Weights {
    let (f, support) = filter_fn(filter);
    let scale = (in1 - in0) / f64::from(out_size);
    let filter_scale = scale.max(1.0);
    let radius = support * filter_scale;
    let window = radius.ceil() as usize * 2 + 1;
    let recip = 1.0 / filter_scale;
    let mut coeffs: Vec<f64> = Vec::with_capacity(window * out_size as usize);
    let mut bounds = Vec::with_capacity(out_size as usize);
    for out_x in 0..out_size {
        let in_center = in0 + (f64::from(out_x) + 0.5) * scale;
        let x_min = (in_center - radius).floor().max(0.) as u32;
        let x_max = (in_center + radius).ceil().min(f64::from(in_size)) as u32;
        let cur = coeffs.len();
        let center = in_center - 0.5;
        let (mut start, mut end) = (x_min, x_max);
        let mut ww = 0.0;
        for x in x_min..x_max {
            let w = f((f64::from(x) - center) * recip);
            if x == start && w == 0. {
                start += 1;
            } else {
                coeffs.push(w);
                ww += w;
            }
        }
        for &c in coeffs.iter().rev() {
            if end <= start || c != 0. {
                break;
            }
            end -= 1;
        }
        if ww != 0.0 {
            coeffs[cur..].iter_mut().for_each(|w| *w /= ww);
        }
        coeffs.resize(cur + window, 0.);
        bounds.push((start, end - start));
    }
    Weights {
        window,
        bounds,
        coeffs,
    }
}

/// One convolution pass of fast_image_resize's 8-bit path, as the GPU
/// kernels in `shaders/resize.wgsl` read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConvPass {
    /// Fixed-point precision in bits.
    pub(crate) precision: u32,
    /// Coefficients per output line (the record stride is `window + 2`).
    pub window: u32,
    /// Per output line: start, size, then `window` i16 coefficients as i32.
    pub records: Vec<u32>,
}

/// The filter function and its support, as fast_image_resize defines them.
fn filter_fn(filter: Filter) -> (fn(f64) -> f64, f64) {
    use std::f64::consts::PI;
    fn bilinear(x: f64) -> f64 {
        let x = x.abs();
        if x < 1.0 {
            1.0 - x
        } else {
            0.0
        }
    }
    fn catmull_rom(x: f64) -> f64 {
        const A: f64 = -0.5;
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.) * x - (A + 3.)) * x * x + 1.
        } else if x < 2.0 {
            (((x - 5.) * x + 8.) * x - 4.) * A
        } else {
            0.0
        }
    }
    fn mitchell(x: f64) -> f64 {
        let x = x.abs();
        if x < 1.0 {
            (7. * x / 6. - 2.) * x * x + 16. / 18.
        } else if x < 2.0 {
            ((2. - 7. * x / 18.) * x - 10. / 3.) * x + 16. / 9.
        } else {
            0.0
        }
    }
    fn sinc(x: f64) -> f64 {
        if x == 0.0 {
            1.0
        } else {
            (x * PI).sin() / (x * PI)
        }
    }
    fn lanczos3(x: f64) -> f64 {
        if (-3.0..3.0).contains(&x) {
            sinc(x) * sinc(x / 3.)
        } else {
            0.0
        }
    }
    match filter {
        Filter::Bilinear => (bilinear, 1.0),
        Filter::Bicubic => (catmull_rom, 2.0),
        Filter::Mitchell => (mitchell, 2.0),
        Filter::Lanczos3 | Filter::Nearest => (lanczos3, 3.0),
    }
}

/// fast_image_resize's `precompute_coefficients` and `Normalizer16`, for one
/// axis: `in_size` source pixels, the crop `in0..in1`, `out_size` outputs.
pub(crate) fn conv_pass(
    in_size: u32,
    in0: f64,
    in1: f64,
    out_size: u32,
    filter: Filter,
) -> ConvPass {
    let Weights {
        window,
        bounds,
        coeffs,
    } = weights(in_size, in0, in1, out_size, filter);
    // Normalizer16: the largest precision whose scaled maximum fits in i16.
    let max_weight = coeffs.iter().copied().fold(f64::MIN, f64::max).max(0.0);
    let mut precision = 0u32;
    for p in 0..22u32 {
        precision = p;
        if (max_weight * f64::from(1u32 << (p + 1))).round() as i32 >= 1 << 15 {
            break;
        }
    }
    let fixed = f64::from(1u32 << precision);
    let mut records = Vec::with_capacity((window + 2) * out_size as usize);
    for (chunk, &(start, size)) in coeffs.chunks_exact(window).zip(&bounds) {
        records.push(start);
        records.push(size);
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i < size as usize {
                (c * fixed).round() as i16
            } else {
                0
            };
            records.push(i32::from(v) as u32);
        }
    }
    ConvPass {
        precision,
        window: window as u32,
        records,
    }
}

/// fast_image_resize's nearest-neighbour index tables: the source column of
/// each output column, then the source row of each output row.
pub(crate) fn nearest_tables(src: Dims, src_box: [f64; 4], dst: Dims) -> Vec<u32> {
    let [left, top, bw, bh] = src_box;
    let x_scale = bw / f64::from(dst.width);
    let y_scale = bh / f64::from(dst.height);
    let x_start = left + x_scale * 0.5;
    let mut out: Vec<u32> = (0..dst.width)
        .map(|x| ((x_start + x_scale * f64::from(x)) as u32).min(src.width - 1))
        .collect();
    // Rows advance by repeated addition, as fast_image_resize steps them.
    let mut y = top + y_scale * 0.5;
    for _ in 0..dst.height {
        out.push((y as u32).min(src.height - 1));
        y += y_scale;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(w: Option<u32>, h: Option<u32>, fit: Fit) -> Resize {
        Resize::validate(
            &ResizeParams {
                width: w,
                height: h,
                fit: Some(fit),
                ..Default::default()
            },
            &Limits::default(),
        )
        .unwrap()
    }

    /// An opaque image resized without premultiplying gives the same bytes
    /// as fast_image_resize's own premultiplied path.
    #[test]
    fn opaque_resize_skips_alpha_exactly() {
        let (w, h) = (97u32, 61u32);
        let src = RgbaImage::from_fn(w, h, |x, y| {
            let v = (x * 7 + y * 13) ^ (x * y);
            image::Rgba([v as u8, (v >> 3) as u8, (x * 11 + y) as u8, 255])
        });
        let view =
            fast_image_resize::images::ImageRef::new(w, h, src.as_raw(), PixelType::U8x4).unwrap();
        for (dw, dh) in [(40, 25), (33, 90), (200, 7)] {
            for alg in [
                ResizeAlg::Convolution(FirFilter::Lanczos3),
                ResizeAlg::Convolution(FirFilter::CatmullRom),
                ResizeAlg::Convolution(FirFilter::Bilinear),
            ] {
                let got =
                    resize_rgba(&src, Dims::new(dw, dh), [0.0, 0.0, 97.0, 61.0], alg).unwrap();
                let mut want = FirImage::new(dw, dh, PixelType::U8x4);
                let mut opts = ResizeOptions::new().resize_alg(alg);
                opts.mul_div_alpha = true;
                Resizer::new().resize(&view, &mut want, &opts).unwrap();
                assert_eq!(got.as_raw(), want.buffer(), "{dw}x{dh} {alg:?}");
            }
        }
    }

    /// The resize op, every filter, shrinking and enlarging, opaque and
    /// with alpha, on edge sizes (1x1, odd, very wide and very tall), gives
    /// exactly what a direct fast_image_resize call gives. (Here rather
    /// than in tests/ops_reference.rs: a direct call there compiles the
    /// library's generic resizer again, minutes of an optimised build.)
    #[test]
    fn the_op_equals_a_direct_fast_image_resize_call() {
        use crate::ops::{Frame, OpContext, OpSpec};
        let filters = [
            ("nearest", ResizeAlg::Nearest),
            ("bilinear", ResizeAlg::Convolution(FirFilter::Bilinear)),
            ("bicubic", ResizeAlg::Convolution(FirFilter::CatmullRom)),
            ("mitchell", ResizeAlg::Convolution(FirFilter::Mitchell)),
            ("lanczos3", ResizeAlg::Convolution(FirFilter::Lanczos3)),
        ];
        let sizes = [(1, 1), (9, 7), (17, 5), (65, 40), (300, 1), (1, 300)];
        for (i, &(w, h)) in sizes.iter().enumerate() {
            for alpha in [false, true] {
                let img = RgbaImage::from_fn(w, h, |x, y| {
                    let v = (x * 7 + y * 13 + i as u32 * 31) ^ (x * y);
                    let a = if alpha {
                        (v * 5 % 256).max(1) as u8
                    } else {
                        255
                    };
                    image::Rgba([v as u8, (v >> 3) as u8, (x * 11 + y) as u8, a])
                });
                for (name, alg) in filters {
                    for (tw, th) in [(w.div_ceil(3), h.div_ceil(2)), (w * 2 + 1, h + 3)] {
                        let op = serde_json::from_value::<OpSpec>(serde_json::json!({
                            "op": "resize", "width": tw, "height": th, "fit": "fill", "filter": name
                        }))
                        .unwrap()
                        .validate(&Limits::default())
                        .unwrap();
                        let frame = Frame {
                            img: img.clone(),
                            orientation: 1,
                        };
                        let got = op.run_cpu(frame, &OpContext::default()).unwrap().img;
                        let src = fast_image_resize::images::ImageRef::new(
                            w,
                            h,
                            img.as_raw(),
                            PixelType::U8x4,
                        )
                        .unwrap();
                        let mut want = FirImage::new(tw, th, PixelType::U8x4);
                        Resizer::new()
                            .resize(&src, &mut want, &ResizeOptions::new().resize_alg(alg))
                            .unwrap();
                        assert_eq!(
                            got.as_raw(),
                            want.buffer(),
                            "{name} {w}x{h} -> {tw}x{th}, alpha {alpha}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn validation() {
        let lim = Limits::default();
        assert!(Resize::validate(&ResizeParams::default(), &lim).is_err());
        assert!(Resize::validate(
            &ResizeParams {
                width: Some(0),
                ..Default::default()
            },
            &lim
        )
        .is_err());
        assert!(Resize::validate(
            &ResizeParams {
                width: Some(70_000),
                ..Default::default()
            },
            &lim
        )
        .is_err());
        let bg = ResizeParams {
            width: Some(5),
            background: Some(Color::TRANSPARENT),
            ..Default::default()
        };
        assert!(Resize::validate(&bg, &lim).is_err());
        let linear = |filter| ResizeParams {
            width: Some(5),
            filter: Some(filter),
            linear: Some(true),
            ..Default::default()
        };
        let err = Resize::validate(&linear(Filter::Nearest), &lim).unwrap_err();
        assert_eq!(err.param, "linear");
        assert!(
            Resize::validate(&linear(Filter::Lanczos3), &lim)
                .unwrap()
                .linear
        );
    }

    #[test]
    fn fits() {
        let src = Dims::new(4000, 3000);
        assert_eq!(
            r(Some(256), None, Fit::Inside).geometry(src).canvas,
            Dims::new(256, 192)
        );
        assert_eq!(
            r(None, Some(300), Fit::Inside).geometry(src).canvas,
            Dims::new(400, 300)
        );
        assert_eq!(
            r(Some(256), Some(256), Fit::Inside).geometry(src).canvas,
            Dims::new(256, 192)
        );
        let c = r(Some(256), Some(256), Fit::Contain).geometry(src);
        assert_eq!(
            (c.scaled, c.canvas, c.offset),
            (Dims::new(256, 192), Dims::new(256, 256), (0, 32))
        );
        let c = r(Some(256), Some(256), Fit::Cover).geometry(src);
        assert_eq!(c.canvas, Dims::new(256, 256));
        assert_eq!(c.src_box, [500.0, 0.0, 3000.0, 3000.0]);
        assert_eq!(
            r(Some(10), Some(20), Fit::Fill).geometry(src).canvas,
            Dims::new(10, 20)
        );
    }
}
