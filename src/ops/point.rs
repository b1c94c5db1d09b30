//! Per-pixel ops and their fusion into one pass.
//!
//! A point op maps one RGBA pixel (channels as `f32` in `0..=1`, straight
//! alpha) to another. A run of consecutive point ops is applied pixel by pixel
//! in a single pass, converting to float once and quantising once; the GPU
//! backend fuses the same runs, so both backends round at the same places.

use image::RgbaImage;
use rayon::prelude::*;

/// An op that changes each pixel on its own.
pub trait PointOp: Send + Sync {
    /// Map one pixel; channels in `0..=1`, the result is clamped by the caller.
    fn apply(&self, px: [f32; 4]) -> [f32; 4];

    /// The same op as a stage record for `shaders/point.wgsl`: word 0 is the
    /// kind, words 1..=15 the op's `f32` values (see its shader file).
    fn stage(&self) -> [u32; 16];
}

/// Build a stage record from a kind and up to 15 values.
pub fn stage(kind: u32, values: &[f32]) -> [u32; 16] {
    let mut s = [0u32; 16];
    s[0] = kind;
    for (slot, v) in s[1..].iter_mut().zip(values) {
        *slot = v.to_bits();
    }
    s
}

/// Quantise a channel in `0..=1` to `0..=255`, rounding half up (as the shaders do).
#[inline]
pub fn quantize(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5).floor() as u8
}

/// Apply a run of point ops to every pixel in one pass, in parallel by rows.
pub fn run_fused(img: &mut RgbaImage, ops: &[&dyn PointOp]) {
    let row = img.width() as usize * 4;
    if row == 0 {
        return;
    }
    let rows_per_task = (64 * 1024 / row).max(1);
    img.as_mut()
        .par_chunks_mut(row * rows_per_task)
        .for_each(|chunk| {
            for px in chunk.chunks_exact_mut(4) {
                let mut v = [
                    f32::from(px[0]) / 255.0,
                    f32::from(px[1]) / 255.0,
                    f32::from(px[2]) / 255.0,
                    f32::from(px[3]) / 255.0,
                ];
                for op in ops {
                    v = op.apply(v);
                }
                for (dst, src) in px.iter_mut().zip(v) {
                    *dst = quantize(src);
                }
            }
        });
}

/// Rec. 709 luma of gamma-encoded RGB, the weights W3C filter effects use.
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.2126 * r + 0.7152 * g + 0.0722 * b
}

/// Multiply RGB by a 3x3 matrix (row-major), keeping alpha.
#[inline]
pub fn mat3(m: &[[f32; 3]; 3], px: [f32; 4]) -> [f32; 4] {
    let [r, g, b, a] = px;
    [
        m[0][0] * r + m[0][1] * g + m[0][2] * b,
        m[1][0] * r + m[1][1] * g + m[1][2] * b,
        m[2][0] * r + m[2][1] * g + m[2][2] * b,
        a,
    ]
}
