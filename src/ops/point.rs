//! Per-pixel ops and their fusion into one pass.
//!
//! A point op maps one RGBA pixel (channels as `f32` in `0..=1`, straight
//! alpha) to another. A run of consecutive point ops is applied pixel by pixel
//! in a single pass, converting to float once and quantising once; the GPU
//! backend fuses the same runs (`shaders/point.wgsl`), so both backends round
//! at the same places.
//!
//! A point op implements [`PointOp`] (the pixel map) and [`PointOperation`]
//! (its name, parameters and validation); the rest of [`Operation`] (an
//! unchanged shape, the CPU pass, the GPU stage) is shared by all of them.
//! On the GPU each op is a stage function `<name>_apply(px, s)` in its
//! shader, reading its values with `stage_f(s, i)` and its table, if it has
//! one, with `stage_table(s, i)`.

use image::RgbaImage;
use multiversion::multiversion;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};

use super::{Frame, OpContext, Operation, Shape, Tolerance};
use crate::config::Limits;
use crate::error::{JobError, ParamError};
use crate::gpu::recorder::{GpuImage, GpuStep};
use crate::gpu::GpuError;

/// An op that changes each pixel on its own.
pub(crate) trait PointOp: Send + Sync {
    /// Map one pixel; channels in `0..=1`, the result is clamped by the caller.
    fn apply(&self, px: [f32; 4]) -> [f32; 4];

    /// Map a block of pixels, each exactly as [`PointOp::apply`] would.
    /// The default runs `apply` through [`map_block`]; an op with optional
    /// stages overrides it to run each stage as its own loop.
    fn apply_block(&self, block: &mut [[f32; 4]]) {
        map_block(block, |px| self.apply(px));
    }

    /// The op's values for its GPU stage function, at most 14, read there
    /// as `stage_f(s, 0)`, `stage_f(s, 1)`, ... (see its shader).
    fn stage_values(&self) -> Vec<f32>;

    /// A table the GPU stage reads as `stage_table(s, i)` (a tone curve, a
    /// colour LUT); empty for most ops.
    fn stage_table(&self) -> &[f32] {
        &[]
    }

    /// A faster form of the op for when it comes first after the run's
    /// per-channel ops, on 8-bit pixels: given `levels` (what each of the
    /// 256 values of each channel has become, see [`run_fused`]), a
    /// function from the pixels' bytes to the op's result for them, the
    /// same as converting through `levels` and then [`PointOp::apply_block`].
    /// `None` (the default) where the op has none.
    fn level_pass(&self, _levels: &[[f32; 4]]) -> Option<LevelPass> {
        None
    }

    /// Whether each output channel depends on the same input channel only
    /// (no mixing of channels): a run of such ops maps each channel through
    /// a function of 256 inputs, which [`run_fused`] tabulates once.
    fn per_channel(&self) -> bool {
        false
    }
}

/// A point op's pass from 8-bit pixels straight to its results
/// ([`PointOp::level_pass`]).
pub(crate) type LevelPass = Box<dyn Fn(&[u8], &mut [[f32; 4]]) + Send + Sync>;

/// The definition of a per-pixel op: what differs from one to the next.
/// Every such type is an [`Operation`] through the blanket impl below.
pub(crate) trait PointOperation:
    PointOp + Sized + std::fmt::Debug + Clone + 'static
{
    /// The op's name (see [`Operation::NAME`]).
    const NAME: &'static str;
    /// See [`Operation::SUMMARY`].
    const SUMMARY: &'static str;
    /// The parameters as a job carries them.
    type Params: DeserializeOwned + Serialize + JsonSchema + std::fmt::Debug + Clone + PartialEq;
    /// Its stage function `<NAME>_apply`, `shaders/<NAME>.wgsl`.
    const SHADER: &'static str;
    /// See [`Operation::EXAMPLES`].
    const EXAMPLES: &'static [&'static str];
    /// See [`Operation::PARITY`].
    const PARITY: Tolerance = Tolerance::FLOAT;

    /// Check every parameter; the only way to build the op.
    fn validate(p: &Self::Params, lim: &Limits) -> Result<Self, ParamError>;

    /// See [`Operation::bind`].
    fn bind(&mut self, _ctx: &OpContext) -> Result<(), JobError> {
        Ok(())
    }
}

impl<T: PointOperation> Operation for T {
    const NAME: &'static str = <T as PointOperation>::NAME;
    const SUMMARY: &'static str = <T as PointOperation>::SUMMARY;
    type Params = <T as PointOperation>::Params;
    const SHADER: &'static str = <T as PointOperation>::SHADER;
    const EXAMPLES: &'static [&'static str] = <T as PointOperation>::EXAMPLES;
    const PARITY: Tolerance = <T as PointOperation>::PARITY;
    const POINT: bool = true;
    // Every per-pixel op changes colour or tone.
    const C2PA_ACTION: &'static str = "c2pa.color_adjustments";

    fn validate(p: &Self::Params, lim: &Limits) -> Result<Self, ParamError> {
        <T as PointOperation>::validate(p, lim)
    }

    fn bind(&mut self, ctx: &OpContext) -> Result<(), JobError> {
        <T as PointOperation>::bind(self, ctx)
    }

    fn plan(&self, input: Shape) -> Result<Shape, ParamError> {
        Ok(input)
    }

    fn run_cpu(&self, mut frame: Frame, _: &OpContext) -> Result<Frame, JobError> {
        run_fused(&mut frame.img, &[self]);
        Ok(frame)
    }

    fn record_gpu(&self, step: GpuStep<'_, '_>) -> Result<GpuImage, GpuError> {
        step.rec
            .point_run(step.src, &[(<T as PointOperation>::NAME, self)])
    }

    fn as_point(&self) -> Option<&dyn PointOp> {
        Some(self)
    }
}

/// Quantise a channel in `0..=1` to `0..=255`, rounding half up (as the shaders do).
#[inline]
pub(crate) fn quantize(v: f32) -> u8 {
    round_u8(v.clamp(0.0, 1.0) * 255.0)
}

/// `v` clamped to `0..=255` and rounded half up to 8 bits; NaN gives 0 (as
/// `as u8` would). Written so that the compiler vectorises it: a float to
/// `u8` cast it does not (it checks every lane for saturation), while
/// adding 2^23 to a whole number below 2^23 leaves that number in the low
/// bits of the sum's representation.
#[inline]
pub(crate) fn round_u8(v: f32) -> u8 {
    let y = (v.clamp(0.0, 255.0) + 0.5).floor();
    if y.is_nan() {
        0
    } else {
        (y + 8_388_608.0).to_bits() as u8
    }
}

/// Pixels converted to `f32` and mapped at a time: 16 KiB, within L1.
const BLOCK: usize = 1024;

/// Apply a run of point ops to every pixel in one pass, in parallel by rows.
///
/// The pixels go through in blocks of [`BLOCK`]: converted to `f32` in
/// `0..=1`, mapped by each op in turn ([`PointOp::apply_block`]), and
/// quantised. Per pixel this is the same arithmetic as applying the ops one
/// after the other to it.
///
/// Ops that are [`PointOp::per_channel`] (levels, curves, invert, an
/// adjust without saturation or hue) at the start of a run map each
/// channel's 256 input levels on their own: they are applied that same way
/// once to the 256 grey pixels `[v, v, v, v]`, giving each channel's value
/// for each input level. A run of nothing else then maps the image byte by
/// byte through those values quantised; otherwise they replace the
/// conversion to float, and the rest of the run follows as above. Either
/// way the bytes are the float pass's, at the cost of a lookup.
pub(crate) fn run_fused(img: &mut RgbaImage, ops: &[&dyn PointOp]) {
    let row = img.width() as usize * 4;
    if row == 0 {
        return;
    }
    let rows_per_task = (64 * 1024 / row).max(1);
    let tabulated = ops.iter().take_while(|op| op.per_channel()).count();
    let levels = channel_levels(&ops[..tabulated]);
    if tabulated == ops.len() {
        let mut out = vec![0u8; 256 * 4];
        from_unit(&mut out, &levels);
        let tables: [[u8; 256]; 4] =
            std::array::from_fn(|c| std::array::from_fn(|v| out[v * 4 + c]));
        img.as_mut()
            .par_chunks_mut(row * rows_per_task)
            .for_each(|chunk| map_bytes(chunk, &tables));
        return;
    }
    let rest = &ops[tabulated..];
    // The first other op may take the bytes itself.
    let first = rest[0].level_pass(&levels);
    let rest = if first.is_some() { &rest[1..] } else { rest };
    img.as_mut()
        .par_chunks_mut(row * rows_per_task)
        .for_each_init(
            || vec![[0f32; 4]; BLOCK],
            |buf, chunk| {
                for bytes in chunk.chunks_mut(BLOCK * 4) {
                    let block = &mut buf[..bytes.len() / 4];
                    match &first {
                        Some(pass) => pass(bytes, block),
                        None => {
                            for (px, b) in block.iter_mut().zip(bytes.chunks_exact(4)) {
                                *px = std::array::from_fn(|c| levels[usize::from(b[c])][c]);
                            }
                        }
                    }
                    for op in rest {
                        op.apply_block(block);
                    }
                    from_unit(bytes, block);
                }
            },
        );
}

/// The grey pixel `[v, v, v, v]` of each level `v`, in `0..=1`, through
/// `ops` (per-channel ops; none gives the plain conversion to float):
/// channel `c` of entry `v` is what a pixel whose channel `c` is `v` becomes.
fn channel_levels(ops: &[&dyn PointOp]) -> Vec<[f32; 4]> {
    let levels: Vec<u8> = (0..=255u8).flat_map(|v| [v; 4]).collect();
    let mut block = vec![[0f32; 4]; 256];
    to_unit(&mut block, &levels);
    for op in ops {
        op.apply_block(&mut block);
    }
    block
}

/// RGBA8 bytes through one table per channel.
fn map_bytes(bytes: &mut [u8], tables: &[[u8; 256]; 4]) {
    for px in bytes.chunks_exact_mut(4) {
        for (c, v) in px.iter_mut().enumerate() {
            *v = tables[c][usize::from(*v)];
        }
    }
}

/// RGBA8 to channels in `0..=1`.
fn to_unit(dst: &mut [[f32; 4]], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = [s[0], s[1], s[2], s[3]].map(|v| f32::from(v) / 255.0);
    }
}

/// Channels in `0..=1` back to RGBA8 ([`quantize`]).
#[multiversion(targets = "simd")]
fn from_unit(dst: &mut [u8], src: &[[f32; 4]]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src) {
        d.copy_from_slice(&s.map(quantize));
    }
}

/// Map every pixel of `block` through `f`, compiled for AVX2 and SSE4.2 as
/// well and chosen at run time, so that a simple `f` is vectorised.
#[multiversion(targets = "simd")]
pub(crate) fn map_block<F: Fn([f32; 4]) -> [f32; 4]>(block: &mut [[f32; 4]], f: F) {
    for px in block {
        *px = f(*px);
    }
}

/// Rec. 709 luma of gamma-encoded RGB, the weights W3C filter effects use.
#[inline]
pub(crate) fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// Multiply RGB by a 3x3 matrix (row-major), keeping alpha.
#[inline]
pub(crate) fn mat3(m: &[[f32; 3]; 3], px: [f32; 4]) -> [f32; 4] {
    let [r, g, b, a] = px;
    [
        m[0][0] * r + m[0][1] * g + m[0][2] * b,
        m[1][0] * r + m[1][1] * g + m[1][2] * b,
        m[2][0] * r + m[2][1] * g + m[2][2] * b,
        a,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-channel op: a different curve on each channel, alpha included.
    struct Curvy;
    impl PointOp for Curvy {
        fn apply(&self, px: [f32; 4]) -> [f32; 4] {
            [
                px[0].powf(0.7),
                1.0 - px[1] * 0.8,
                px[2] * px[2],
                px[3] * 0.9 + 0.05,
            ]
        }
        fn stage_values(&self) -> Vec<f32> {
            Vec::new()
        }
        fn per_channel(&self) -> bool {
            true
        }
    }

    /// The same op, not declared per-channel: the float path.
    struct CurvyFloat;
    impl PointOp for CurvyFloat {
        fn apply(&self, px: [f32; 4]) -> [f32; 4] {
            Curvy.apply(px)
        }
        fn stage_values(&self) -> Vec<f32> {
            Vec::new()
        }
    }

    #[test]
    fn tabulated_runs_give_the_float_path_s_bytes() {
        let img = RgbaImage::from_fn(300, 7, |x, y| {
            image::Rgba([
                x as u8,
                (x * 7 + y) as u8,
                (300 - x) as u8,
                (x / 2 + y * 30) as u8,
            ])
        });
        let (mut table, mut float) = (img.clone(), img.clone());
        run_fused(&mut table, &[&Curvy, &Curvy]);
        run_fused(&mut float, &[&CurvyFloat, &CurvyFloat]);
        assert_eq!(table, float);
        // A per-channel prefix tabulated, then a float op.
        let (mut mixed, mut float) = (img.clone(), img.clone());
        run_fused(&mut mixed, &[&Curvy, &CurvyFloat, &Curvy]);
        run_fused(&mut float, &[&CurvyFloat, &CurvyFloat, &CurvyFloat]);
        assert_eq!(mixed, float);
    }

    /// `round_u8` is the plain cast, bit for bit, on every value that
    /// matters: a fine sweep over and beyond the range, every half step,
    /// and the special values.
    #[test]
    fn round_u8_is_the_saturating_cast() {
        let plain = |v: f32| (v.clamp(0.0, 255.0) + 0.5).floor() as u8;
        let sweep = (-4000..=300_000).map(|i| i as f32 / 1000.0);
        let halves = (-10..=520).map(|i| i as f32 * 0.5);
        let ulps = (0..=255).flat_map(|i| {
            let h = i as f32 + 0.5;
            [h.next_down(), h, h.next_up()]
        });
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            1e30,
            -1e30,
        ];
        for v in sweep.chain(halves).chain(ulps).chain(special) {
            assert_eq!(round_u8(v), plain(v), "{v}");
        }
    }
}
